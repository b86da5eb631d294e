"""IAM JSON policy documents: parsed, validated as AWS validates them, compiled once.

An identity policy (attached to a user, group or role) names no principal; a bucket policy must
(Principal or NotPrincipal) and may only speak of its bucket's resources; a role's trust policy
names principals and no resource (it speaks of its role). Sizes are AWS's: a
bucket policy up to 20 KiB of JSON, an identity policy up to 6,144 characters not counting
whitespace (a managed policy's limit). `parse_policy` returns immutable compiled statements;
`cached_policy` keeps the last thousand or so, keyed by their text.
"""

from __future__ import annotations

import json
import re
from collections.abc import Collection
from dataclasses import dataclass, field
from enum import Enum
from functools import lru_cache

from egide.auth.policy.conditions import Condition, compile_condition
from egide.auth.policy.errors import MalformedPolicy
from egide.auth.policy.patterns import Pattern, Values
from egide.auth.policy.principals import PrincipalSet, compile_principal

BUCKET_POLICY_MAX_BYTES = 20 * 1024
IDENTITY_POLICY_MAX_CHARS = 6144
VERSIONS = ("2012-10-17", "2008-10-17")
#: The version where `${…}` are policy variables; before it they are literal text.
VARIABLES_VERSION = "2012-10-17"

_TOP_FIELDS = frozenset({"Version", "Id", "Statement"})
_STATEMENT_FIELDS = frozenset(
    {"Sid", "Effect", "Principal", "NotPrincipal", "Action", "NotAction", "Resource",
     "NotResource", "Condition"}
)  # fmt: skip
_ACTION = re.compile(r"[A-Za-z0-9-]+:[A-Za-z0-9*?_-]+")
_RESOURCE_ARN = re.compile(r"arn:[^:]*:[^:]*:[^:]*:[^:]*:.+", re.DOTALL)


class PolicyKind(Enum):
    IDENTITY = "identity"
    BUCKET = "bucket"
    #: A role's trust policy: who may assume it (Principal required, no Resource: the role).
    TRUST = "trust"


class ActionMatcher:
    """Action or NotAction: `service:Name` patterns, case-insensitive, as one expression."""

    __slots__ = ("_all", "_names", "_regex", "patterns")

    def __init__(self, patterns: tuple[str, ...]) -> None:
        self.patterns = patterns
        self._all = "*" in patterns
        self._names = frozenset(p.lower() for p in patterns if "*" not in p and "?" not in p)
        alternatives = "|".join(
            re.escape(p).replace(r"\*", ".*").replace(r"\?", ".")
            for p in patterns
            if "*" in p or "?" in p
        )
        self._regex = (
            re.compile(f"(?:{alternatives})", re.IGNORECASE | re.DOTALL) if alternatives else None
        )

    def matches(self, action: str) -> bool:
        if self._all or action.lower() in self._names:
            return True
        return self._regex is not None and self._regex.fullmatch(action) is not None


class ResourceMatcher:
    """Resource or NotResource: ARN patterns (case-sensitive), variables resolved per request."""

    __slots__ = ("_all", "_regex", "_with_variables", "fixed_source", "patterns")

    def __init__(self, patterns: tuple[Pattern, ...]) -> None:
        self.patterns = patterns
        self._all = any(p.text == "*" for p in patterns)
        fixed = [p for p in patterns if not p.has_variables]
        self._with_variables = tuple(p for p in patterns if p.has_variables)
        #: One expression for the patterns without variables (None: there are none).
        self.fixed_source = "|".join(f"(?:{p.regex_source})" for p in fixed) or None
        self._regex = re.compile(self.fixed_source, re.DOTALL) if self.fixed_source else None

    def matches(self, resource: str, values: Values) -> bool:
        if self._all:
            return True
        if self._regex is not None and self._regex.fullmatch(resource) is not None:
            return True
        return self.matches_with_variables(resource, values)

    def matches_with_variables(self, resource: str, values: Values) -> bool:
        return any(p.matches(resource, values) for p in self._with_variables)


@dataclass(frozen=True, eq=False)
class Statement:
    """One statement, compiled. `index` is its place in the policy (for statements without Sid)."""

    index: int
    sid: str | None
    deny: bool
    principal: PrincipalSet | None
    not_principal: bool
    action: ActionMatcher
    not_action: bool
    resource: ResourceMatcher
    not_resource: bool
    condition: Condition | None


class Plan:
    """The statements of a policy that speak of one action, and their resources tested at once:
    one expression of optional lookaheads, group i set when statement i's fixed patterns match."""

    __slots__ = ("_probe", "_variables", "condition_keys", "statements")

    def __init__(self, statements: tuple[Statement, ...]) -> None:
        self.statements = statements
        #: Every condition key these statements test, lowercased (what a request must carry).
        self.condition_keys = frozenset(
            clause.key.lower()
            for s in statements
            if s.condition is not None
            for clause in s.condition.clauses
        )
        probes = "".join(f"(?:(?=({s.resource.fixed_source or '(?!)'})\\Z)|)" for s in statements)
        self._probe = re.compile(probes, re.DOTALL)
        self._variables = tuple(
            any(p.has_variables for p in s.resource.patterns) for s in statements
        )

    def resource_hits(self, resource: str, values: Values) -> list[bool]:
        """For each statement: does its Resource (or NotResource) list name `resource`?"""
        found = self._probe.match(resource)
        assert found is not None  # every lookahead is optional: the probe always matches
        hits = [g is not None for g in found.groups()]
        for i, variable in enumerate(self._variables):
            if variable and not hits[i]:
                hits[i] = self.statements[i].resource.matches_with_variables(resource, values)
        return hits


_PLANS_KEPT = 512


@dataclass(frozen=True, eq=False)
class Policy:
    """A policy document, compiled; `name` identifies it in verdicts (a policy's or bucket's)."""

    kind: PolicyKind
    name: str
    version: str | None
    id: str | None
    statements: tuple[Statement, ...]
    _plans: dict[str, Plan] = field(default_factory=dict, init=False, repr=False, compare=False)

    def plan(self, action: str) -> Plan:
        """The statements whose Action (or NotAction) covers `action`, kept per action."""
        plan = self._plans.get(action)
        if plan is None:
            plan = Plan(
                tuple(s for s in self.statements if s.action.matches(action) != s.not_action)
            )
            if len(self._plans) < _PLANS_KEPT:
                self._plans[action] = plan
        return plan


def _strings(value: object, element: str, invalid: str) -> tuple[str, ...]:
    values = value if isinstance(value, list) else [value]
    if not values:
        raise MalformedPolicy(invalid)
    if not all(isinstance(v, str) for v in values):
        raise MalformedPolicy(invalid)
    return tuple(v for v in values if isinstance(v, str))


def _actions(value: object, known: Collection[str] | None) -> ActionMatcher:
    invalid = "Policy has invalid action"
    patterns = _strings(value, "Action", invalid)
    for pattern in patterns:
        if pattern != "*" and _ACTION.fullmatch(pattern) is None:
            raise MalformedPolicy(invalid)
    if known is not None:
        known_matcher_input = tuple(known)
        for pattern in patterns:
            if pattern == "*":
                continue
            single = ActionMatcher((pattern,))
            service = pattern.split(":", 1)[0].lower()
            ours = [a for a in known_matcher_input if a.split(":", 1)[0].lower() == service]
            if ours and not any(single.matches(a) for a in ours):
                raise MalformedPolicy(invalid)
            if not ours:
                raise MalformedPolicy(invalid)
    return ActionMatcher(patterns)


def _in_bucket(pattern: Pattern, bucket: str) -> bool:
    """Could this Resource pattern name `bucket` or one of its objects?"""
    arn = f"arn:aws:s3:::{bucket}"
    prefix = pattern.prefix()
    if prefix == pattern.text:  # no wildcard and no variable
        return prefix == arn or prefix.startswith(arn + "/")
    return prefix.startswith(arn + "/") or (arn + "/").startswith(prefix)


def _resources(value: object, *, variables: bool, bucket: str | None) -> ResourceMatcher:
    invalid = "Policy has invalid resource"
    patterns = []
    for text in _strings(value, "Resource", invalid):
        if text != "*" and _RESOURCE_ARN.fullmatch(text) is None:
            raise MalformedPolicy(invalid)
        pattern = Pattern(text, wildcards=True, variables=variables)
        if bucket is not None and not _in_bucket(pattern, bucket):
            raise MalformedPolicy(invalid)
        patterns.append(pattern)
    return ResourceMatcher(tuple(patterns))


def _one_of(raw: dict[str, object], name: str, negated: str) -> tuple[object, bool] | None:
    if name in raw and negated in raw:
        raise MalformedPolicy(f"Statement cannot have both {name} and {negated}")
    if name in raw:
        return raw[name], False
    if negated in raw:
        return raw[negated], True
    return None


def _statement(
    raw: object,
    index: int,
    kind: PolicyKind,
    *,
    variables: bool,
    bucket: str | None,
    known_actions: Collection[str] | None,
) -> Statement:
    if not isinstance(raw, dict):
        raise MalformedPolicy("Statement must be an object")
    for key in raw:
        if key not in _STATEMENT_FIELDS:
            raise MalformedPolicy(f"Unknown field {key}")
    sid = raw.get("Sid")
    if sid is not None and not isinstance(sid, str):
        raise MalformedPolicy("Statement Sid must be a string")
    if "Effect" not in raw:
        raise MalformedPolicy("Missing required field Effect")
    effect = raw["Effect"]
    if effect not in ("Allow", "Deny"):
        raise MalformedPolicy(f"Invalid effect: {effect}")
    principal = _one_of(raw, "Principal", "NotPrincipal")
    if kind is not PolicyKind.IDENTITY and principal is None:
        raise MalformedPolicy("Missing required field Principal")
    if kind is PolicyKind.IDENTITY and principal is not None:
        raise MalformedPolicy("Policy document should not specify a principal.")
    action = _one_of(raw, "Action", "NotAction")
    if action is None:
        raise MalformedPolicy("Missing required field Action")
    resource = _one_of(raw, "Resource", "NotResource")
    if kind is PolicyKind.TRUST:
        if resource is not None:
            raise MalformedPolicy("Has prohibited field Resource")
        resource = ("*", False)  # a trust policy speaks of its role only
    if resource is None:
        raise MalformedPolicy("Missing required field Resource")
    condition = raw.get("Condition")
    return Statement(
        index=index,
        sid=sid,
        deny=effect == "Deny",
        principal=compile_principal(principal[0]) if principal else None,
        not_principal=principal[1] if principal else False,
        action=_actions(action[0], known_actions),
        not_action=action[1],
        resource=_resources(resource[0], variables=variables, bucket=bucket),
        not_resource=resource[1],
        condition=(
            compile_condition(condition, variables=variables) if condition is not None else None
        ),
    )


def _check_size(text: str, kind: PolicyKind) -> None:
    if kind is PolicyKind.BUCKET:
        too_big = len(text.encode()) > BUCKET_POLICY_MAX_BYTES
    else:
        too_big = sum(not c.isspace() for c in text) > IDENTITY_POLICY_MAX_CHARS
    if too_big:
        raise MalformedPolicy("Policy exceeds the maximum allowed document size.")


def parse_policy(
    text: str | bytes,
    kind: PolicyKind,
    *,
    name: str = "",
    bucket: str | None = None,
    known_actions: Collection[str] | None = None,
) -> Policy:
    """Validate and compile a policy document, or raise MalformedPolicy with AWS's reason.

    `bucket` (bucket policies): every Resource must be that bucket or under it. `known_actions`:
    when given, an action (or pattern) of a service listed there must name one of them.
    """
    if isinstance(text, bytes):
        try:
            text = text.decode()
        except UnicodeDecodeError:
            raise MalformedPolicy("Policies must be valid UTF-8") from None
    _check_size(text, kind)
    try:
        document = json.loads(text)
    except ValueError:
        raise MalformedPolicy("This policy contains invalid Json") from None
    if not isinstance(document, dict):
        raise MalformedPolicy("Policies must be valid JSON and the first byte must be '{'")
    for key in document:
        if key not in _TOP_FIELDS:
            raise MalformedPolicy(f"Unknown field {key}")
    version = document.get("Version")
    if version is not None and version not in VERSIONS:
        raise MalformedPolicy("The policy must contain a valid version string")
    policy_id = document.get("Id")
    if policy_id is not None and not isinstance(policy_id, str):
        raise MalformedPolicy("Policy Id must be a string")
    if "Statement" not in document:
        raise MalformedPolicy("Missing required field Statement")
    raw = document["Statement"]
    raws = raw if isinstance(raw, list) else [raw]
    if not raws:
        raise MalformedPolicy("Could not parse the policy: Statement is empty!")
    variables = version == VARIABLES_VERSION
    statements = tuple(
        _statement(r, i, kind, variables=variables, bucket=bucket, known_actions=known_actions)
        for i, r in enumerate(raws)
    )
    sids = [s.sid for s in statements if s.sid]
    if len(sids) != len(set(sids)):
        raise MalformedPolicy("Statement IDs (SID) in a single policy must be unique")
    return Policy(kind, name, version, policy_id, statements)


def check_identity_policy(text: str) -> None:
    """Raise MalformedPolicy with IAM's reason if IAM would refuse `text` as an identity policy
    (attached to a user or group: refused when put, so that none is kept that grants nothing)."""
    parse_policy(text, PolicyKind.IDENTITY)


@lru_cache(maxsize=1024)
def cached_policy(
    text: str,
    kind: PolicyKind,
    *,
    name: str = "",
    bucket: str | None = None,
    known_actions: frozenset[str] | None = None,
) -> Policy:
    """`parse_policy`, once per distinct document: compiled policies are immutable."""
    return parse_policy(text, kind, name=name, bucket=bucket, known_actions=known_actions)
