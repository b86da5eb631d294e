"""Which bucket a Host header names: `<bucket>.<domain>` under a configured domain.

https://docs.aws.amazon.com/AmazonS3/latest/userguide/VirtualHosting.html
A Host that is not under a configured domain (an IP address, localhost, the domain itself)
leaves the request path style, so both styles work on one endpoint. The front door reads it
too: a virtual-hosted request is always S3's (`<bucket>.<domain>/_egide/x` is an object key).
"""

from __future__ import annotations

from collections.abc import Sequence


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
