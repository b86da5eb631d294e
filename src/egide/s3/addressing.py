"""Virtual-hosted-style addressing: `<bucket>.<domain>` in the Host header names the bucket.

https://docs.aws.amazon.com/AmazonS3/latest/userguide/VirtualHosting.html; the Host rules
are in egide.web.hosts.
"""

from __future__ import annotations

from collections.abc import Sequence

from egide.web.hosts import bucket_from_host
from egide.web.request import RequestHead


def virtual_host_target(head: RequestHead, domains: Sequence[str]) -> tuple[str, str | None] | None:
    """(bucket, key) of a virtual-hosted-style request, None when it is path style.

    The whole path is the key: `/` is the bucket itself and `//a` is the key `/a`.
    """
    bucket = bucket_from_host(head.header("host"), domains)
    if bucket is None:
        return None
    return bucket, head.path[1:] or None
