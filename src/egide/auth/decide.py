"""The Authorizer's decision: AWS's policy evaluation over the policies that apply to a request
(docs/decisions/0030-policies-decide.md).

The identity policies of the caller's user and of its groups are read from the catalog and
compiled once per distinct text (`cached_policy`); what is read is kept until the catalog's
rights counter moves (`forget_all`, asked by egide.auth.rights before each request), so that a
policy attached, changed or detached is applied by every worker from its next request on, and at
most `LIFETIME` (a fallback), as secrets are (egide.auth.credentials). The user `admin` is the
account's administrator, as AWS's root user: every action is allowed to it by identity; only an
explicit Deny of a bucket policy stops it, never for the bucket policy's own actions, so that it
cannot lock itself out. Every other user has no right until a policy grants it one (default
deny); an unsigned request is the anonymous caller, allowed only where a bucket policy allows
everyone. What no policy allowed and none denied explicitly, ownership or an ACL may still allow
(`grants`, asked of the S3 side only then, so that the common path reads no object:
docs/decisions/0031-owners-and-acls.md). An STS session has its role's policies (kept as
identity policies are: a role deleted or a policy detached is seen from the next request on)
and is then decided as a user is (object tags, ACL grants:
docs/decisions/0037-sessions-and-forms.md), every right limited by its session policy if it was
given one (docs/sts.md).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass

from egide.auth.authorize import Principal, RequestContext
from egide.auth.policy import (
    ANONYMOUS_CALLER,
    IMPLICIT_DENY,
    Caller,
    MalformedPolicy,
    Policy,
    PolicyKind,
    cached_policy,
    evaluate,
    session_caller,
    user_caller,
)
from egide.auth.policy.context import condition_keys
from egide.catalog.base import Catalog
from egide.clock import SYSTEM_CLOCK, Clock
from egide.domain import ADMIN_USER
from egide.engine.events import Event, EventKind

log = logging.getLogger("egide.auth")

#: Longest a worker keeps an identity policy, in seconds: a fallback (a change is applied from
#: the next request on, egide.auth.rights).
LIFETIME = 1.0

#: What the administrator may always do, whatever a bucket policy denies: mend that policy.
UNLOCKABLE = frozenset({"s3:GetBucketPolicy", "s3:PutBucketPolicy", "s3:DeleteBucketPolicy"})

#: Answered from the bucket's CORS rules to browsers that send no credentials (Fetch
#: standard): allowed to anyone unless a bucket policy denies it explicitly.
OPEN_ACTIONS = frozenset({"egide:CorsPreflight"})

#: The bucket policy that applies to a resource ARN (None: none), given by the S3 side.
BucketPolicyLookup = Callable[[str], Awaitable[Policy | None]]


#: Whether ownership or an ACL allows a request no policy allowed (the S3 side's `Access`).
GrantLookup = Callable[[Principal, str, str, RequestContext], Awaitable[bool]]
#: Whether the Public Access Block of a resource's bucket keeps its public policy from
#: granting anyone outside the account (RestrictPublicBuckets with a public policy).
RestrictLookup = Callable[[str], Awaitable[bool]]


#: The tags of the object a resource ARN names (s3:ExistingObjectTag/<key>); asked only when
#: a policy that applies has a condition on them.
TagLookup = Callable[[str, RequestContext], Awaitable[Mapping[str, str]]]
_EXISTING_TAG = "s3:existingobjecttag/"


def _asks_tags(policies: Iterable[Policy | None], action: str) -> bool:
    """Whether a statement for `action` has a condition on s3:ExistingObjectTag/<key>."""
    return any(
        key.startswith(_EXISTING_TAG)
        for policy in policies
        if policy is not None
        for key in policy.plan(action).condition_keys
    )


async def no_tags(resource: str, context: RequestContext) -> Mapping[str, str]:
    return {}


async def no_bucket_policy(resource: str) -> Policy | None:
    return None


async def no_grants(
    principal: Principal, action: str, resource: str, context: RequestContext
) -> bool:
    return False


async def unrestricted(resource: str) -> bool:
    return False


@dataclass(frozen=True)
class _Role:
    at: float
    id: str | None
    policies: tuple[Policy, ...] | None


@dataclass(frozen=True)
class _Identity:
    at: float
    policies: tuple[Policy, ...]


def _compiled(text: str, name: str) -> Policy | None:
    """A stored identity policy compiled; one that AWS would refuse grants nothing (logged)."""
    try:
        return cached_policy(text, PolicyKind.IDENTITY, name=name)
    except MalformedPolicy as exc:
        log.warning("identity policy %s is not valid and grants nothing: %s", name, exc)
        return None


def _session_policy(principal: Principal) -> Policy | None:
    """The session policy given at AssumeRole, compiled (None: none, or not valid)."""
    text = principal.session_policy
    return None if text is None else _compiled(text, "session")


def _within_session_policy(
    principal: Principal, caller: Caller, action: str, resource: str,
    values: dict[str, str | Sequence[str]],
) -> bool:  # fmt: skip
    """Whether the session policy, if the session was given one, allows the request: it
    limits every right of the session, never grants (AWS); one not valid allows nothing."""
    if principal.session_policy is None:
        return True
    limit = _session_policy(principal)
    return (
        limit is not None
        and evaluate(caller, action, resource, values, identity_policies=(limit,)).allowed
    )


class PolicyDecision:
    """A `Decision` (egide.auth.authorize) by identity and bucket policies."""

    def __init__(
        self,
        catalog: Catalog,
        *,
        bucket_policy: BucketPolicyLookup = no_bucket_policy,
        grants: GrantLookup = no_grants,
        restricted: RestrictLookup = unrestricted,
        object_tags: TagLookup = no_tags,
        clock: Clock = SYSTEM_CLOCK,
        lifetime: float = LIFETIME,
    ) -> None:
        self._catalog = catalog
        self._bucket_policy = bucket_policy
        self._grants = grants
        self._restricted = restricted
        self._object_tags = object_tags
        self._clock = clock
        self._lifetime = lifetime
        self._identities: dict[tuple[str, frozenset[str]], _Identity] = {}
        #: Bumped by `forget`: a read begun before it is not kept.
        self._generation = 0
        self._roles: dict[str, _Role] = {}
        self._account: str | None = None

    async def forget(self, event: Event) -> None:
        """An engine observer: an identity changed through this worker is applied at once (a
        change made elsewhere within `lifetime`)."""
        if event.kind is EventKind.CREDENTIALS_CHANGED:
            self.forget_all()

    def forget_all(self) -> None:
        """Rights changed somewhere (egide.auth.rights): read every policy again."""
        self._identities.clear()
        self._roles.clear()
        self._generation += 1

    async def account(self) -> str:
        if self._account is None:
            self._account = await self._catalog.account_id()
        return self._account

    async def identity_policies(self, user: str, groups: frozenset[str]) -> tuple[Policy, ...]:
        """The policies of `user` and of its `groups`, read at most `lifetime` ago."""
        now = self._clock.monotonic()
        held = self._identities.get((user, groups))
        if held is not None and now - held.at < self._lifetime:
            return held.policies
        generation = self._generation
        texts = [(f"user/{user}/{n}", t) for n, t in (await self._identity("user", user))]
        for group in sorted(groups):
            texts += [(f"group/{group}/{n}", t) for n, t in (await self._identity("group", group))]
        compiled = (_compiled(text, name) for name, text in texts)
        policies = tuple(p for p in compiled if p is not None)
        if len(self._identities) > 4096:
            self._identities.clear()
        if generation == self._generation:
            self._identities[(user, groups)] = _Identity(now, policies)
        return policies

    async def _identity(self, kind: str, name: str) -> list[tuple[str, str]]:
        return sorted((await self._catalog.identity_policies(kind, name)).items())

    async def role_policies(self, role: str, role_id: str | None) -> tuple[Policy, ...] | None:
        """The policies of the role `role` whose id is `role_id`, read at most `lifetime` ago;
        None when there is no such role (deleted, or made again under that name)."""
        now = self._clock.monotonic()
        held = self._roles.get(role)
        if held is None or now - held.at >= self._lifetime:
            generation = self._generation
            found = await self._catalog.role(role)
            policies = None
            if found is not None:
                texts = await self._identity("role", role)
                compiled = (_compiled(text, f"role/{role}/{name}") for name, text in texts)
                policies = tuple(p for p in compiled if p is not None)
            if len(self._roles) > 4096:
                self._roles.clear()
            held = _Role(now, None if found is None else found.id, policies)
            if generation == self._generation:  # else read before a change: used once
                self._roles[role] = held
        return held.policies if held.id == role_id else None

    async def caller(self, principal: Principal) -> Caller:
        if principal.role is not None and principal.session is not None:
            return session_caller(
                await self.account(), principal.role, principal.session, principal.role_id
            )
        if principal.user is None:
            return ANONYMOUS_CALLER
        return user_caller(await self.account(), principal.user)

    async def identity_allows(
        self, principal: Principal, action: str, resource: str, context: RequestContext
    ) -> bool:
        """Whether the caller's own identity policies allow it (ListBuckets shows the buckets
        a user may list by them, not those an ACL or bucket policy opens to everyone); a
        session's are its role's, within its session policy."""
        caller = await self.caller(principal)
        values = condition_keys(context, caller)
        if principal.role is not None:
            found = await self.role_policies(principal.role, principal.role_id)
            return (
                found is not None
                and evaluate(caller, action, resource, values, identity_policies=found).allowed
                and _within_session_policy(principal, caller, action, resource, values)
            )
        if principal.user is None:
            return False
        if principal.user == ADMIN_USER:
            return True
        identity = await self.identity_policies(principal.user, principal.groups)
        return evaluate(caller, action, resource, values, identity_policies=identity).allowed

    async def __call__(
        self, principal: Principal, action: str, resource: str, context: RequestContext
    ) -> bool:
        caller = await self.caller(principal)
        bucket_policy = await self._bucket_policy(resource)
        values = condition_keys(context, caller)
        admin = principal.user == ADMIN_USER or action in OPEN_ACTIONS
        # A session has its role's policies (none once the role is gone: its sessions with
        # it), limited by its session policy; then it is decided as a user is.
        session = principal.role is not None
        if session:
            assert principal.role is not None
            found = await self.role_policies(principal.role, principal.role_id)
            if found is None:
                return False
            identity = found
        elif principal.user is not None and not admin:
            identity = await self.identity_policies(principal.user, principal.groups)
        else:
            identity = ()
        if "/" in resource.partition(":::")[2] and _asks_tags(
            (bucket_policy, _session_policy(principal), *identity), action
        ):
            tags = await self._object_tags(resource, context)
            values.update({f"s3:ExistingObjectTag/{k}": v for k, v in tags.items()})
        if admin and not session:
            if bucket_policy is None or action in UNLOCKABLE:
                return True
            verdict = evaluate(caller, action, resource, values, bucket_policy=bucket_policy)
            return verdict.allowed or not verdict.explicit
        verdict = evaluate(
            caller, action, resource, values,
            identity_policies=identity, bucket_policy=bucket_policy,
            resource_account=await self.account(),
        )  # fmt: skip
        if verdict.allowed and principal.anonymous and await self._restricted(resource):
            verdict = IMPLICIT_DENY  # only the bucket policy can have allowed it
        if verdict.explicit and not verdict.allowed:
            return False  # an explicit Deny
        if not verdict.allowed and not await self._grants(principal, action, resource, context):
            return False
        # A session policy limits every right of the session, never grants (AWS).
        return _within_session_policy(principal, caller, action, resource, values)
