"""May this caller do this action on this resource? AWS's evaluation for one account, no SCPs.

An explicit Deny in any applicable statement wins; otherwise an Allow from an identity policy or
from the bucket policy (its Principal naming the caller) allows; otherwise the request is denied
implicitly. Across accounts (the caller's account is not the resource's) both sides must allow,
and a bucket policy naming the caller's account then counts as the resource side's Allow.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from egide.auth.policy.document import Policy, Statement
from egide.auth.policy.patterns import ContextMapping, Values, as_values
from egide.auth.policy.principals import Caller, Match


@dataclass(frozen=True, slots=True)
class Verdict:
    """The answer, and which statement gave it (for the audit trail and error messages)."""

    allowed: bool
    explicit: bool  # decided by a statement (an Allow, or an explicit Deny)
    policy: str | None = None
    statement: int | None = None
    sid: str | None = None

    @property
    def reason(self) -> str:
        if not self.explicit:
            return "implicitly denied: no statement allows it"
        which = f"statement {self.sid!r}" if self.sid else f"statement #{self.statement}"
        verb = "allowed" if self.allowed else "explicitly denied"
        return f"{verb} by {which} of {self.policy or 'a policy'}"


IMPLICIT_DENY = Verdict(allowed=False, explicit=False)


def _verdict(allowed: bool, policy: Policy, statement: Statement) -> Verdict:
    return Verdict(allowed, True, policy.name, statement.index, statement.sid)


def _principal_match(statement: Statement, caller: Caller) -> Match:
    """How the statement's Principal names the caller; NotPrincipal names all but its own."""
    if statement.principal is None:
        return Match.DIRECT  # an identity policy speaks of whom it is attached to
    found = statement.principal.match(caller)
    if statement.not_principal:
        return Match.NONE if found is Match.DIRECT else Match.DIRECT
    return found


def evaluate(
    caller: Caller,
    action: str,
    resource: str,
    context: ContextMapping | Values,
    *,
    identity_policies: Iterable[Policy] = (),
    bucket_policy: Policy | None = None,
    resource_account: str | None = None,
) -> Verdict:
    """The verdict for one request. `identity_policies` are those attached to the caller (its
    user's, groups', role's); `resource_account` the bucket owner's account, when known."""
    values = as_values(context)
    cross_account = (
        resource_account is not None
        and caller.account is not None  # the anonymous caller has only the resource side
        and caller.account != resource_account
    )
    identity_allow: Verdict | None = None
    resource_allow: Verdict | None = None
    for policy in identity_policies:
        plan = policy.plan(action)
        hits = plan.resource_hits(resource, values)
        for statement, hit in zip(plan.statements, hits, strict=True):
            if hit == statement.not_resource:
                continue
            if not statement.deny and identity_allow is not None:
                continue  # allowed already: only a Deny can change the answer
            if statement.condition is not None and not statement.condition.holds(values):
                continue
            if statement.deny:
                return _verdict(False, policy, statement)
            identity_allow = _verdict(True, policy, statement)
    if bucket_policy is not None:
        plan = bucket_policy.plan(action)
        hits = plan.resource_hits(resource, values)
        for statement, hit in zip(plan.statements, hits, strict=True):
            if hit == statement.not_resource:
                continue
            match = _principal_match(statement, caller)
            if match is Match.NONE:
                continue
            if statement.deny:
                if statement.condition is None or statement.condition.holds(values):
                    return _verdict(False, bucket_policy, statement)
                continue
            if resource_allow is not None or (match is Match.ACCOUNT and not cross_account):
                continue  # decided already; or an account named grants its users nothing itself
            if statement.condition is None or statement.condition.holds(values):
                resource_allow = _verdict(True, bucket_policy, statement)
    if cross_account:
        return resource_allow if identity_allow and resource_allow else IMPLICIT_DENY
    return identity_allow or resource_allow or IMPLICIT_DENY


def trust_allows(
    trust: Policy, caller: Caller, action: str, context: ContextMapping | Values
) -> bool:
    """Whether a role's trust policy lets `caller` do `action` (sts:AssumeRole …) on it: an
    Allow naming the caller, or its account (the account's identity policies then decide, as
    AWS does), and no Deny naming it."""
    values = as_values(context)
    allowed = False
    for statement in trust.plan(action).statements:
        if _principal_match(statement, caller) is Match.NONE:
            continue
        if statement.condition is not None and not statement.condition.holds(values):
            continue
        if statement.deny:
            return False
        allowed = True
    return allowed
