"""Bucket policies: Put (validated by egide.auth.policy, MalformedPolicy with AWS's reason),
Get, Delete, GetBucketPolicyStatus, and the lookup the Authorizer's decision asks for the
policy of the bucket a request is about (docs/decisions/0030-policies-decide.md).

A policy is a bucket setting (`policy`, kept as given); the lookup keeps what it read until the
catalog's rights counter moves (`forget_all`, asked by egide.auth.rights before each request),
so that a change made by any worker or process is applied everywhere from the next request on,
and at most `LIFETIME` (a fallback); it compiles each distinct text once (`cached_policy`).
"""

from __future__ import annotations

from dataclasses import dataclass

from egide.auth.policy import (
    BUCKET_POLICY_MAX_BYTES,
    MalformedPolicy,
    Policy,
    PolicyKind,
    cached_policy,
)
from egide.clock import SYSTEM_CLOCK, Clock
from egide.domain import DomainError
from egide.engine import changes
from egide.engine.events import Event, EventKind
from egide.engine.store import ObjectStore
from egide.s3 import errors
from egide.s3.body import read_checked_body
from egide.s3.http import Request, Response
from egide.s3.xml import document, element

SETTING = "policy"
#: Longest a worker keeps a bucket policy, in seconds: a fallback (a change is applied from the
#: next request on, egide.auth.rights).
LIFETIME = 1.0
_PREFIX = "arn:aws:s3:::"
_FORGETTING = frozenset(
    {EventKind.BUCKET_CHANGED, EventKind.BUCKET_CREATED, EventKind.BUCKET_REMOVED}
)


def compiled(text: str, bucket: str) -> Policy:
    return cached_policy(text, PolicyKind.BUCKET, name=f"the bucket policy of {bucket}",
                         bucket=bucket)  # fmt: skip


def is_public(policy: Policy) -> bool:
    """AWS's "public": an Allow for everyone (or all but some) with no condition."""
    return any(
        not s.deny
        and s.condition is None
        and (s.not_principal or (s.principal is not None and s.principal.everyone))
        for s in policy.statements
    )


async def handle_put_bucket_policy(req: Request, store: ObjectStore) -> Response:
    assert req.bucket is not None
    bucket = await store.bucket(req.bucket)
    body = await read_checked_body(req, BUCKET_POLICY_MAX_BYTES + 1)
    try:
        policy = compiled(body.decode("utf-8", "replace"), req.bucket)
        text = body.decode()
    except (MalformedPolicy, UnicodeDecodeError) as exc:
        raise errors.MalformedPolicy(str(exc) or "Policies must be valid UTF-8") from None
    facts = None if req.access is None else await req.access.facts(req.bucket)
    if facts is not None and facts.blocks("BlockPublicPolicy") and is_public(policy):
        raise errors.AccessDenied(
            "Public policies are blocked by the bucket's Public Access Block."
        )
    await changes.put_bucket_setting(store, bucket, SETTING, text)
    if req.access is not None:
        req.access.forget(req.bucket)  # this worker applies it at once
    return Response(204)


async def _text(req: Request, store: ObjectStore) -> str:
    assert req.bucket is not None
    text = await changes.bucket_setting(store, await store.bucket(req.bucket), SETTING)
    if not text:
        raise errors.NoSuchBucketPolicy(BucketName=req.bucket)
    return text


async def handle_get_bucket_policy(req: Request, store: ObjectStore) -> Response:
    return Response(200, {"content-type": "application/json"}, (await _text(req, store)).encode())


async def handle_delete_bucket_policy(req: Request, store: ObjectStore) -> Response:
    assert req.bucket is not None
    bucket = await store.bucket(req.bucket)
    await changes.put_bucket_setting(store, bucket, SETTING, None)
    if req.access is not None:
        req.access.forget(req.bucket)
    return Response(204)


async def handle_get_bucket_policy_status(req: Request, store: ObjectStore) -> Response:
    """IsPublic: the bucket policy allows everyone. The status is the policy's alone, as AWS's
    (a bucket without one is 404 NoSuchBucketPolicy, whatever its ACL; RGW answers false and
    counts public ACLs: docs/compatibility.md)."""
    public = is_public(compiled(await _text(req, store), req.bucket or ""))
    body = document("PolicyStatus", element("IsPublic", "true" if public else "false"))
    return Response(200, {"content-type": "application/xml"}, body)


@dataclass(frozen=True)
class _Read:
    at: float
    policy: Policy | None


class BucketPolicies:
    """resource ARN → the policy of its bucket (a `BucketPolicyLookup` of egide.auth.decide)."""

    def __init__(self, store: ObjectStore, *, clock: Clock = SYSTEM_CLOCK) -> None:
        self._store = store
        self._clock = clock
        self._read: dict[str, _Read] = {}
        #: Bumped by `forget`: a policy read while it ran is not kept.
        self._generation = 0

    async def forget(self, event: Event) -> None:
        """An engine observer: a bucket's policy changed through this worker (or the bucket
        created or removed) is applied at once."""
        if event.kind in _FORGETTING and (
            event.kind is not EventKind.BUCKET_CHANGED or event.detail == SETTING
        ):
            self._read.pop(event.bucket, None)
            self._generation += 1

    def forget_all(self) -> None:
        """Rights changed somewhere (egide.auth.rights): read every policy again."""
        self._read.clear()
        self._generation += 1

    def forget_bucket(self, bucket: str) -> None:
        """The bucket's policy changed in this worker: read it again at once."""
        self._read.pop(bucket, None)
        self._generation += 1

    async def __call__(self, resource: str) -> Policy | None:
        if not resource.startswith(_PREFIX):
            return None
        name = resource[len(_PREFIX) :].split("/", 1)[0]
        now = self._clock.monotonic()
        held = self._read.get(name)
        if held is not None and now - held.at < LIFETIME:
            return held.policy
        policy: Policy | None = None
        generation = self._generation
        try:
            bucket = await self._store.bucket(name, cached=True)
            text = await self._store.bucket_settings.get(bucket, SETTING)
            policy = compiled(text, name) if text else None
        except (DomainError, MalformedPolicy):
            policy = None  # no bucket, or no policy that could be stored
        if len(self._read) > 4096:
            self._read.clear()
        if generation == self._generation:
            self._read[name] = _Read(now, policy)
        return policy
