"""AWS's policy language and its evaluation: identity and bucket policies parsed, validated and
compiled once (`document`), conditions (`conditions`), principals (`principals`), wildcards and
policy variables (`patterns`), the verdict (`evaluation`), the request's keys (`context`).
Pure: no I/O; the Authorizer's decision calls `evaluate` with the policies that apply."""

from egide.auth.policy.conditions import OPERATORS
from egide.auth.policy.document import (
    BUCKET_POLICY_MAX_BYTES,
    IDENTITY_POLICY_MAX_CHARS,
    Policy,
    PolicyKind,
    Statement,
    cached_policy,
    check_identity_policy,
    parse_policy,
)
from egide.auth.policy.errors import MalformedPolicy
from egide.auth.policy.evaluation import IMPLICIT_DENY, Verdict, evaluate, trust_allows
from egide.auth.policy.patterns import Values
from egide.auth.policy.principals import (
    ANONYMOUS_CALLER,
    Caller,
    root_caller,
    session_caller,
    user_caller,
)

__all__ = [
    "ANONYMOUS_CALLER",
    "BUCKET_POLICY_MAX_BYTES",
    "IDENTITY_POLICY_MAX_CHARS",
    "IMPLICIT_DENY",
    "OPERATORS",
    "Caller",
    "MalformedPolicy",
    "Policy",
    "PolicyKind",
    "Statement",
    "Values",
    "Verdict",
    "cached_policy",
    "check_identity_policy",
    "evaluate",
    "parse_policy",
    "root_caller",
    "session_caller",
    "trust_allows",
    "user_caller",
]
