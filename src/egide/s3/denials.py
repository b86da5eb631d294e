"""What a refused request is told: 404 instead of 403 where AWS says it, since the caller could
learn it anyway.

S3 answers a request on a bucket that does not exist with 404 NoSuchBucket, whoever asks (the
bucket's name is global and its absence no secret), and a GET or HEAD of a key that does not
exist with 404 NoSuchKey when the caller may list the bucket (it would see the key is absent;
without s3:ListBucket, 403 AccessDenied: "GetObject", "Permissions"). The listing right is
asked with `s3:prefix` set to the key, as listing with that prefix would ask it, so a right
limited to a prefix tells of the keys under it only. Asked only once a request is refused.
"""

from __future__ import annotations

import dataclasses

from egide.auth.authorize import Authorizer, Principal, RequestContext
from egide.auth.errors import AccessDenied
from egide.domain import BucketNotFound, KeyNotFound
from egide.engine.store import ObjectStore

_PREFIX = "arn:aws:s3:::"
#: Reads whose refusal becomes NoSuchKey when the key is absent and listing is allowed.
_READS = frozenset({"s3:GetObject", "s3:GetObjectTorrent"})


async def explain(
    store: ObjectStore,
    authorizer: Authorizer,
    principal: Principal,
    action: str,
    resource: str,
    context: RequestContext,
) -> BucketNotFound | KeyNotFound | None:
    """The 404 to answer instead of refusing `action` on `resource`, or None (403 stays)."""
    if not resource.startswith(_PREFIX) or action == "s3:CreateBucket":
        return None  # a bucket to create is one that does not exist
    bucket, _, key = resource[len(_PREFIX) :].partition("/")
    try:
        await store.bucket(bucket, cached=True)
    except BucketNotFound as absent:
        return absent
    if action not in _READS or not key:
        return None
    try:
        await store.head_object(bucket, key)
    except KeyNotFound as absent:
        listing = dataclasses.replace(context, keys={**context.keys, "s3:prefix": key})
        try:
            await authorizer.authorize(principal, "s3:ListBucket", _PREFIX + bucket, listing)
        except AccessDenied:
            return None
        return absent
    return None
