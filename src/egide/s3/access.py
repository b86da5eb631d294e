"""Who owns a bucket or an object and what its ACL grants, as the Authorizer's decision and the
handlers need it (docs/decisions/0031-owners-and-acls.md).

A bucket's owner, ACL, Object Ownership and Public Access Block are bucket settings; an object
version's owner and ACL are kept in its headers (`OWNER_HEADER`, `ACL_HEADER`, never returned
to clients), so that they follow the version everywhere its headers go (copies of its record
on the sites, catalog rebuilds). A bucket or version from before owners existed is `admin`'s
(an object: its bucket owner's). What is read per bucket, and the users' canonical IDs, are
kept per worker as bucket policies are (s3/bucketpolicy.py): until the catalog's rights counter
moves (`forget_all`, egide.auth.rights), and at most `LIFETIME` (a fallback).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass

from egide.auth.authorize import Principal, RequestContext
from egide.clock import SYSTEM_CLOCK, Clock
from egide.domain import ACL_HEADER, ADMIN_USER, OWNER_HEADER, DomainError, ObjectVersion
from egide.engine.store import ObjectStore
from egide.s3.acl import BUCKET_PERMISSIONS, OBJECT_PERMISSIONS, Acl, Owner, canonical_id, private
from egide.s3.bucketpolicy import BucketPolicies, is_public
from egide.s3.tagging import tags_of

OWNER_SETTING = "owner"
ACL_SETTING = "acl"
OWNERSHIP_SETTING = "ownership"
PAB_SETTING = "public-access-block"
ENFORCED = "BucketOwnerEnforced"
PREFERRED = "BucketOwnerPreferred"
WRITER = "ObjectWriter"
OWNERSHIPS = (ENFORCED, PREFERRED, WRITER)
#: Longest a worker keeps an owner, ACL or setting, in seconds: a fallback (a change is applied
#: from the next request on, egide.auth.rights).
LIFETIME = 1.0
_PREFIX = "arn:aws:s3:::"
#: The bucket ACL's actions that are about the bucket itself (the others, its objects').
_ON_BUCKET = frozenset(
    {"s3:ListBucket", "s3:ListBucketVersions", "s3:ListBucketMultipartUploads",
     "s3:GetBucketAcl", "s3:PutBucketAcl"}
)  # fmt: skip
_OBJECT_ACL_ACTIONS = frozenset(
    {"s3:GetObjectAcl", "s3:GetObjectVersionAcl", "s3:PutObjectAcl", "s3:PutObjectVersionAcl"}
)
PAB_FLAGS = ("BlockPublicAcls", "IgnorePublicAcls", "BlockPublicPolicy", "RestrictPublicBuckets")


@dataclass(frozen=True)
class BucketFacts:
    owner: Owner
    #: BucketOwnerEnforced, BucketOwnerPreferred, ObjectWriter; None: a bucket from before
    #: Object Ownership (ACLs work on it, as on AWS's buckets of before 2023).
    ownership: str | None
    acl: Acl
    #: The Public Access Block flags set (names of `PAB_FLAGS`); None: no configuration.
    public_access_block: frozenset[str] | None

    @property
    def acls_enabled(self) -> bool:
        return self.ownership != ENFORCED

    def blocks(self, flag: str) -> bool:
        return self.public_access_block is not None and flag in self.public_access_block


@dataclass(frozen=True)
class _Held:
    at: float
    value: object


def object_owner(version: ObjectVersion, facts: BucketFacts) -> Owner:
    if not facts.acls_enabled:
        return facts.owner
    stored = version.headers.get(OWNER_HEADER)
    return Owner.from_stored(stored) if stored else facts.owner


def object_acl(version: ObjectVersion, facts: BucketFacts) -> Acl:
    """What GetObjectAcl shows: under BucketOwnerEnforced, the bucket owner's FULL_CONTROL."""
    owner = object_owner(version, facts)
    if not facts.acls_enabled:
        return private(owner)
    return Acl.from_stored(owner, version.headers.get(ACL_HEADER))


def stored_headers(owner: Owner, acl: Acl | None) -> dict[str, str]:
    """The headers a version keeps for its owner and ACL (none kept: private)."""
    headers = {OWNER_HEADER: owner.stored()}
    if acl is not None and acl != private(owner):
        headers[ACL_HEADER] = acl.stored()
    return headers


def bucket_name(resource: str) -> tuple[str, str | None] | None:
    if not resource.startswith(_PREFIX):
        return None
    name, slash, key = resource[len(_PREFIX) :].partition("/")
    return name, key if slash else None


class Access:
    """Owners, ACLs, Object Ownership and Public Access Block of one store, as read by this
    worker: the grants the Authorizer's decision asks about, and the owners handlers show."""

    def __init__(
        self,
        store: ObjectStore,
        *,
        policies: BucketPolicies | None = None,
        clock: Clock = SYSTEM_CLOCK,
        default_ownership: str = ENFORCED,
    ) -> None:
        self._store = store
        #: The Object Ownership of a bucket created without x-amz-object-ownership.
        self.default_ownership = default_ownership
        self._policies = policies or BucketPolicies(store, clock=clock)
        self._clock = clock
        self._users: _Held | None = None
        self._facts: dict[str, _Held] = {}
        self._account: str | None = None
        #: Bumped by `forget_all`: what was read before it is not kept.
        self._generation = 0

    # -- users --------------------------------------------------------------------------------

    async def owners(self) -> dict[str, Owner]:
        """user name → its Owner (canonical ID, display name)."""
        now = self._clock.monotonic()
        held = self._users
        if held is None or now - held.at >= LIFETIME:
            generation = self._generation
            identities = self._store.identities
            account = await identities.account_id()
            users = {
                u.name: Owner(canonical_id(account, u.id), u.name) for u in await identities.users()
            }
            held = _Held(now, users)
            if generation == self._generation:
                self._users = held
        assert isinstance(held.value, dict)
        return held.value

    async def owner_of(self, principal: Principal) -> Owner | None:
        """The caller's Owner; None for the anonymous caller (or a user just deleted)."""
        if principal.user is None:
            return None
        owners = await self.owners()
        if principal.user not in owners:
            self._users = None  # a user created within the second
            owners = await self.owners()
        return owners.get(principal.user)

    async def admin(self) -> Owner:
        owners = await self.owners()
        return owners.get(ADMIN_USER) or Owner("", ADMIN_USER)

    async def names(self) -> dict[str, str]:
        """canonical ID → display name."""
        return {o.id: o.name for o in (await self.owners()).values()}

    # -- buckets ------------------------------------------------------------------------------

    def forget_all(self) -> None:
        """Rights changed somewhere (egide.auth.rights): read every bucket (its policy too)
        and user again."""
        self._facts.clear()
        self._users = None
        self._generation += 1
        self._policies.forget_all()

    def forget(self, bucket: str) -> None:
        """A setting of `bucket` (its policy too) changed in this worker: read it again at
        once."""
        self._facts.pop(bucket, None)
        self._policies.forget_bucket(bucket)

    async def facts(self, bucket: str) -> BucketFacts | None:
        """The bucket's owner, ACL and controls; None if there is no such bucket."""
        now = self._clock.monotonic()
        held = self._facts.get(bucket)
        if held is not None and now - held.at < LIFETIME:
            return held.value  # type: ignore[return-value]
        facts: BucketFacts | None = None
        generation = self._generation
        try:
            found = await self._store.bucket(bucket, cached=True)
            settings = self._store.bucket_settings
            stored = await settings.get(found, OWNER_SETTING)
            owner = Owner.from_stored(stored) if stored else await self.admin()
            pab = await settings.get(found, PAB_SETTING)
            facts = BucketFacts(
                owner,
                await settings.get(found, OWNERSHIP_SETTING),
                Acl.from_stored(owner, await settings.get(found, ACL_SETTING)),
                None if pab is None else frozenset(json.loads(pab)),
            )
        except DomainError:
            facts = None
        if len(self._facts) > 4096:
            self._facts.clear()
        if generation == self._generation:
            self._facts[bucket] = _Held(now, facts)
        return facts

    async def is_owner(self, bucket: str, expected: str, creator: Principal | None) -> bool:
        """Whether `expected` (x-amz-expected-bucket-owner) names the bucket's owner: the
        organisation's account id (what AWS means by it) or the owner's canonical ID (the
        Owner Égide shows). A bucket not there yet is its `creator`'s (CreateBucket); with no
        creator, nothing is there to protect (the request is answered NoSuchBucket)."""
        if self._account is None:
            self._account = await self._store.identities.account_id()
        if expected == self._account:
            return True
        facts = await self.facts(bucket)
        if facts is not None:
            owner: Owner | None = facts.owner
        elif creator is None:
            return True
        else:
            owner = await self.owner_of(creator)
        return owner is not None and expected == owner.id

    # -- the decision's questions --------------------------------------------------------------

    async def restricted(self, resource: str) -> bool:
        """RestrictPublicBuckets: a public bucket policy grants no one outside the account."""
        named = bucket_name(resource)
        facts = None if named is None else await self.facts(named[0])
        if facts is None or not facts.blocks("RestrictPublicBuckets"):
            return False
        policy = await self._policies(resource)
        return policy is not None and is_public(policy)

    async def grants(
        self, principal: Principal, action: str, resource: str, context: RequestContext
    ) -> bool:
        """Whether ownership or an ACL allows what no policy did (and none denied)."""
        named = bucket_name(resource)
        if named is None:
            return False
        facts = await self.facts(named[0])
        if facts is None:
            return False
        # An STS session is no user: no canonical ID, no ownership; only group grants reach
        # it (AuthenticatedUsers: it is signed), as on AWS (decision 0037).
        caller = await self.owner_of(principal)
        caller_id = None if caller is None else caller.id
        signed = not principal.anonymous
        acl_of_object = named[1] is not None and action in _OBJECT_ACL_ACTIONS
        # The bucket owner has full control of it and of what it holds, but for the ACL of an
        # object another user owns (ACLs enabled): that is its owner's, as in S3.
        bucket_owner = caller_id is not None and caller_id == facts.owner.id
        if bucket_owner and not (acl_of_object and facts.acls_enabled):
            return True
        if not facts.acls_enabled:
            return False
        ignore = facts.blocks("IgnorePublicAcls")
        bucket_permissions = BUCKET_PERMISSIONS.get(action)
        on_bucket = action in _ON_BUCKET
        if (
            bucket_permissions is not None
            and on_bucket == (named[1] is None)
            and facts.acl.allows(bucket_permissions, caller_id, ignore_public=ignore, signed=signed)
        ):
            return True
        object_permissions = OBJECT_PERMISSIONS.get(action)
        if object_permissions is None or named[1] is None:
            return False
        version = await self._version(named[0], named[1], context.keys)
        if version is None:
            return bucket_owner  # the bucket owner learns it is not there
        owner = object_owner(version, facts)
        if caller_id == owner.id and acl_of_object:
            return True  # the object owner has full control of its ACL
        return object_acl(version, facts).allows(
            object_permissions, caller_id, ignore_public=ignore, signed=signed
        )

    async def object_tags(self, resource: str, context: RequestContext) -> Mapping[str, str]:
        """The tags of the version a request names (s3:ExistingObjectTag/<key>); none if
        there is no such object."""
        named = bucket_name(resource)
        if named is None or named[1] is None:
            return {}
        version = await self._version(named[0], named[1], context.keys)
        return {} if version is None else tags_of(version.headers)

    async def _version(
        self, bucket: str, key: str, keys: Mapping[str, str | tuple[str, ...]]
    ) -> ObjectVersion | None:
        version_id = keys.get("s3:VersionId")
        try:
            return await self._store.head_object(
                bucket, key, version_id if isinstance(version_id, str) else None
            )
        except DomainError:
            return None
