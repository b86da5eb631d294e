"""ACLs, Object Ownership and Public Access Block through S3: Get/PutBucketAcl,
Get/PutObjectAcl, Put/Get/DeleteBucketOwnershipControls, Put/Get/DeletePublicAccessBlock, and
the owner and ACL of what CreateBucket and every object write create
(docs/decisions/0031-owners-and-acls.md)."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping

from egide.domain import ACL_HEADER, ADMIN_USER, OWNER_HEADER, Bucket, ObjectVersion
from egide.engine import changes
from egide.engine.store import ObjectStore
from egide.s3 import errors
from egide.s3.access import (
    ACL_SETTING,
    ENFORCED,
    OWNER_SETTING,
    OWNERSHIP_SETTING,
    OWNERSHIPS,
    PAB_FLAGS,
    PAB_SETTING,
    PREFERRED,
    Access,
    BucketFacts,
    object_acl,
    stored_headers,
)
from egide.s3.acl import Acl, Grant, Owner, parse_policy, private, requested
from egide.s3.body import read_small_body
from egide.s3.http import Request, Response
from egide.s3.xml import document, element, parse
from egide.web.request import RequestHead

_XML = {"content-type": "application/xml"}
#: The one canned ACL S3 accepts on object writes where ACLs are disabled.
_OWNER_ONLY = frozenset({"bucket-owner-full-control"})


def _access(req: Request) -> Access:
    assert req.access is not None, "an S3App gives every request its Access"
    return req.access


async def _facts(req: Request, bucket: str | None = None) -> BucketFacts:
    name = bucket or req.bucket
    assert name is not None
    facts = await _access(req).facts(name)
    if facts is None:
        raise errors.NoSuchBucket(BucketName=name)
    return facts


async def caller(req: Request) -> Owner:
    """The caller as an owner; a request of no user (tests' `allow_all`) is the admin's."""
    access = _access(req)
    return await access.owner_of(req.principal) or await access.admin()


def _check(acl: Acl | None, head: RequestHead, facts: BucketFacts | None, owner: Owner) -> None:
    """Refuse an ACL the bucket's controls forbid (S3's codes)."""
    if acl is None:
        return
    if facts is not None and not facts.acls_enabled:
        canned = head.header("x-amz-acl")
        full = {Grant("id", owner.id, "FULL_CONTROL")}
        if canned is not None and canned.strip() not in _OWNER_ONLY:
            raise errors.AccessControlListNotSupported()
        if canned is None and set(acl.grants) != full:
            raise errors.AccessControlListNotSupported()
    if acl.public and facts is not None and facts.blocks("BlockPublicAcls"):
        raise errors.AccessDenied("Public ACLs are blocked by the bucket's Public Access Block.")


# -- what writes keep ------------------------------------------------------------------------


async def version_headers(
    req: Request, bucket: str, head: RequestHead | None = None
) -> dict[str, str]:
    """The owner and ACL headers of a version `req` writes in `bucket` (x-amz-acl or
    x-amz-grant-* of `head`, the request's by default; a form's for POST uploads)."""
    head = head or req.head
    facts = await _facts(req, bucket)
    # What an anonymous caller writes (where an ACL or policy lets everyone) is the bucket's.
    writer = facts.owner if req.principal.anonymous else await caller(req)
    acl = requested(head, writer, facts.owner)
    _check(acl, head, facts, facts.owner)
    if not facts.acls_enabled:
        return {OWNER_HEADER: facts.owner.stored()}
    owner = writer
    if facts.ownership == PREFERRED and (head.header("x-amz-acl") or "").strip() == (
        "bucket-owner-full-control"
    ):
        owner = facts.owner
    if acl is not None and owner != writer:
        acl = Acl(owner, acl.grants)
    return stored_headers(owner, acl)


def with_version_headers(headers: dict[str, str], kept: dict[str, str]) -> dict[str, str]:
    """`headers` with the owner and ACL of `kept` instead of any it had (a copy's source's)."""
    out = {n: v for n, v in headers.items() if n not in (OWNER_HEADER, ACL_HEADER)}
    out.update(kept)
    return out


# -- CreateBucket ----------------------------------------------------------------------------


async def new_bucket_settings(req: Request) -> dict[str, str]:
    """The settings a bucket created by `req` starts with: owner, Object Ownership, ACL;
    checked before the bucket exists."""
    owner = await caller(req)
    ownership = req.head.header("x-amz-object-ownership")
    if ownership is not None and ownership not in OWNERSHIPS:
        raise errors.InvalidArgument(
            f"Invalid x-amz-object-ownership {ownership!r}.",
            ArgumentName="x-amz-object-ownership", ArgumentValue=ownership,
        )  # fmt: skip
    ownership = ownership or _access(req).default_ownership
    acl = requested(req.head, owner)
    if (
        acl is not None
        and ownership == ENFORCED
        and set(acl.grants) != {Grant("id", owner.id, "FULL_CONTROL")}
    ):
        raise errors.InvalidBucketAclWithObjectOwnership()
    settings = {OWNER_SETTING: owner.stored(), OWNERSHIP_SETTING: ownership}
    if acl is not None:
        settings[ACL_SETTING] = acl.stored()
    return settings


async def check_recreate(req: Request, name: str) -> None:
    """CreateBucket of an existing bucket: 409 BucketAlreadyExists unless the caller owns it
    and asks for the ACL it has (another ACL would be accepted and ignored: RGW refuses it
    too, and s3-tests expects that)."""
    facts = await _facts(req, name)
    me = await caller(req)
    if facts.owner != me:
        raise errors.BucketAlreadyExists(BucketName=name)
    if (requested(req.head, me) or private(me)) != facts.acl:
        raise errors.BucketAlreadyExists(
            "The bucket exists with another ACL: change it with PutBucketAcl.", BucketName=name
        )


async def visible_buckets(req: Request, buckets: list[Bucket]) -> list[Bucket]:
    """ListBuckets shows a user the buckets it owns or may list by its identity policies (an
    auditor's); the administrator sees them all; an STS session, those its role's policies
    (within its session policy) let it list: it owns none (decision 0037)."""
    session = req.principal.role is not None
    if not session and req.principal.user in (None, ADMIN_USER):
        return buckets
    me = None if session else await caller(req)
    access = _access(req)
    out = []
    for bucket in buckets:
        facts = await access.facts(bucket.name)
        if facts is not None and (
            facts.owner == me
            or (
                req.may is not None
                and await req.may("s3:ListBucket", f"arn:aws:s3:::{bucket.name}")
            )
        ):
            out.append(bucket)
    return out


async def owner_xml(req: Request) -> str:
    """`<ID>…</ID><DisplayName>…</DisplayName>` of the caller (ListBuckets)."""
    return (await caller(req)).xml()


OwnerXml = Callable[[Mapping[str, str]], str]


async def owners_in(req: Request) -> OwnerXml:
    """For listings of the request's bucket: a version's or upload's headers → the
    `<ID>…</ID><DisplayName>…</DisplayName>` of its owner."""
    facts = await _facts(req)

    def xml(headers: Mapping[str, str]) -> str:
        stored = headers.get(OWNER_HEADER)
        if stored and facts.acls_enabled:
            return Owner.from_stored(stored).xml()
        return facts.owner.xml()

    return xml


# -- ACL subresources ------------------------------------------------------------------------


async def _new_acl(req: Request, owner: Owner, facts: BucketFacts) -> Acl:
    """The ACL a Put*Acl asks for: headers, or an AccessControlPolicy body. Where ACLs are
    disabled, every Put*Acl is refused, as AWS refuses it."""
    if not facts.acls_enabled:
        raise errors.AccessControlListNotSupported()
    acl = requested(req.head, owner, facts.owner)
    body = await read_small_body(req)
    if acl is not None and body.strip():
        raise errors.InvalidRequest(
            "Give an ACL by headers or by an AccessControlPolicy body, not both."
        )
    if acl is None:
        if not body.strip():
            raise errors.MalformedACLError()
        acl = parse_policy(body, owner)
    _check(acl, req.head, facts, facts.owner)
    return acl


async def handle_get_bucket_acl(req: Request, store: ObjectStore) -> Response:
    facts = await _facts(req)
    acl = (
        facts.acl
        if facts.acls_enabled
        else Acl(facts.owner, (Grant("id", facts.owner.id, "FULL_CONTROL"),))
    )
    return Response(200, _XML, acl.xml(await _access(req).names()))


async def handle_put_bucket_acl(req: Request, store: ObjectStore) -> Response:
    assert req.bucket is not None
    facts = await _facts(req)
    acl = await _new_acl(req, facts.owner, facts)
    bucket = await store.bucket(req.bucket)
    await changes.put_bucket_setting(store, bucket, ACL_SETTING, acl.stored())
    _access(req).forget(req.bucket)
    return Response(200)


async def _version(req: Request, store: ObjectStore) -> ObjectVersion:
    assert req.bucket is not None and req.key is not None
    return await store.head_object(req.bucket, req.key, req.head.query_value("versionId"))


async def handle_get_object_acl(req: Request, store: ObjectStore) -> Response:
    facts = await _facts(req)
    version = await _version(req, store)
    headers = {"x-amz-version-id": version.s3_version_id} if not version.is_null else {}
    acl = object_acl(version, facts)
    return Response(200, {**_XML, **headers}, acl.xml(await _access(req).names()))


async def handle_put_object_acl(req: Request, store: ObjectStore) -> Response:
    facts = await _facts(req)
    version = await _version(req, store)
    owner = object_acl(version, facts).owner
    acl = await _new_acl(req, owner, facts)
    headers = with_version_headers(version.headers, stored_headers(owner, acl))
    if acl == Acl(owner, (Grant("id", owner.id, "FULL_CONTROL"),)):
        headers.pop(ACL_HEADER, None)
    await changes.set_version_headers(store, version, headers)
    return Response(200)


# -- Object Ownership ------------------------------------------------------------------------


async def _bucket(req: Request, store: ObjectStore) -> Bucket:
    assert req.bucket is not None
    return await store.bucket(req.bucket)


async def handle_put_ownership_controls(req: Request, store: ObjectStore) -> Response:
    bucket = await _bucket(req, store)
    root = parse(await read_small_body(req))
    rules = root.findall("Rule") if root.tag == "OwnershipControls" else []
    values = [r.findtext("ObjectOwnership", "").strip() for r in rules]
    if len(values) != 1 or values[0] not in OWNERSHIPS:
        raise errors.MalformedXML()
    facts = await _facts(req)
    if values[0] == ENFORCED and facts.acl.grants != (Grant("id", facts.owner.id, "FULL_CONTROL"),):
        raise errors.InvalidBucketAclWithObjectOwnership(
            "Bucket ownership cannot be BucketOwnerEnforced while its ACL grants others."
        )
    await changes.put_bucket_setting(store, bucket, OWNERSHIP_SETTING, values[0])
    _access(req).forget(bucket.name)
    return Response(200)


async def handle_get_ownership_controls(req: Request, store: ObjectStore) -> Response:
    facts = await _facts(req)
    if facts.ownership is None:
        raise errors.OwnershipControlsNotFoundError(BucketName=req.bucket or "")
    inner = f"<Rule>{element('ObjectOwnership', facts.ownership)}</Rule>"
    return Response(200, _XML, document("OwnershipControls", inner))


async def handle_delete_ownership_controls(req: Request, store: ObjectStore) -> Response:
    bucket = await _bucket(req, store)
    await changes.put_bucket_setting(store, bucket, OWNERSHIP_SETTING, None)
    _access(req).forget(bucket.name)
    return Response(204)


# -- Public Access Block ---------------------------------------------------------------------


async def handle_put_public_access_block(req: Request, store: ObjectStore) -> Response:
    bucket = await _bucket(req, store)
    root = parse(await read_small_body(req))
    if root.tag != "PublicAccessBlockConfiguration":
        raise errors.MalformedXML()
    flags = []
    for flag in PAB_FLAGS:
        value = (root.findtext(flag) or "false").strip().lower()
        if value not in ("true", "false"):
            raise errors.MalformedXML()
        if value == "true":
            flags.append(flag)
    await changes.put_bucket_setting(store, bucket, PAB_SETTING, json.dumps(flags))
    _access(req).forget(bucket.name)
    return Response(200)


async def handle_get_public_access_block(req: Request, store: ObjectStore) -> Response:
    facts = await _facts(req)
    if facts.public_access_block is None:
        raise errors.NoSuchPublicAccessBlockConfiguration(BucketName=req.bucket or "")
    inner = "".join(element(f, f in facts.public_access_block) for f in PAB_FLAGS)
    return Response(200, _XML, document("PublicAccessBlockConfiguration", inner))


async def handle_delete_public_access_block(req: Request, store: ObjectStore) -> Response:
    bucket = await _bucket(req, store)
    await changes.put_bucket_setting(store, bucket, PAB_SETTING, None)
    _access(req).forget(bucket.name)
    return Response(204)
