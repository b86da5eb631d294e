"""Virtual-hosted-style addressing: `<bucket>.<domain>` in the Host header names the bucket.

https://docs.aws.amazon.com/AmazonS3/latest/userguide/VirtualHosting.html
A Host that is not under a configured domain (an IP address, localhost, the domain itself)
leaves the request path style, so both styles work on one endpoint.
"""

from __future__ import annotations

from collections.abc import Sequence

from egide.s3.request import RequestHead


def host_name(host: str) -> str:
    """The Host header without its port, lower-case, without a trailing dot."""
    host = host.strip().lower()
    if host.startswith("["):  # an IPv6 literal, "[::1]:9000": never a bucket
        return host.split("]", 1)[0] + "]"
    return host.rsplit(":", 1)[0].rstrip(".")


def bucket_from_host(host: str | None, domains: Sequence[str]) -> str | None:
    """The bucket a Host names under one of `domains`, or None for a path-style request.

    The longest matching domain wins, so that both `example.org` and `s3.example.org` can be
    configured; a bucket name may itself contain dots (`my.bucket.s3.example.org`).
    """
    if not host or not domains:
        return None
    name = host_name(host)
    normalised = [domain.strip().lower().rstrip(".") for domain in domains]
    if name in normalised:
        return None  # a configured domain itself (s3.example.org under example.org too)
    best: str | None = None
    for domain in normalised:
        suffix = "." + domain
        if name.endswith(suffix) and len(name) > len(suffix):
            bucket = name[: -len(suffix)]
            if best is None or len(bucket) < len(best):
                best = bucket
    return best


def virtual_host_target(head: RequestHead, domains: Sequence[str]) -> tuple[str, str | None] | None:
    """(bucket, key) of a virtual-hosted-style request, None when it is path style.

    The whole path is the key: `/` is the bucket itself and `//a` is the key `/a`.
    """
    bucket = bucket_from_host(head.header("host"), domains)
    if bucket is None:
        return None
    return bucket, head.path[1:] or None
