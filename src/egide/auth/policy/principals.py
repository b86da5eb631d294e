"""Who a policy speaks of: the caller as policies see it, and a Principal element compiled.

AWS principals are `"*"`, `{"AWS": …}` (account ids, account roots, users, roles, assumed-role
sessions, or `"*"`), `{"Federated": …}`, `{"Service": …}` and `{"CanonicalUser": …}`; no
wildcard inside an ARN. Naming an account (`123456789012` or its root ARN) names the account,
not each of its users: the account's administrator grants them with identity policies.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import Enum

from egide.auth.policy.errors import MalformedPolicy

#: AWS account ids are twelve digits; Égide's accounts use the same form.
ACCOUNT_ID = r"[0-9]{12}"
_ACCOUNT = re.compile(ACCOUNT_ID)
_IAM_ARN = re.compile(
    rf"arn:aws:iam::({ACCOUNT_ID}):(root|user/[\w+=,.@/-]+|role/[\w+=,.@/-]+|federated-user/.+)"
)
_STS_ARN = re.compile(
    rf"arn:aws:sts::({ACCOUNT_ID}):(assumed-role/[\w+=,.@-]+/.+|federated-user/.+)"
)
_INVALID = "Invalid principal in policy"


@dataclass(frozen=True)
class Caller:
    """Who asks, as a policy sees it. `arn` None is the anonymous caller.

    `also` holds the other ARNs the caller acts as (an assumed-role session is its role too);
    `username`, `userid` and `principal_type` feed aws:username, aws:userid, aws:PrincipalType.
    """

    arn: str | None = None
    account: str | None = None
    username: str | None = None
    userid: str | None = None
    principal_type: str = "Anonymous"
    also: frozenset[str] = frozenset()
    federated: str | None = None
    service: str | None = None
    canonical_id: str | None = None

    @property
    def anonymous(self) -> bool:
        return self.arn is None and self.federated is None and self.service is None


ANONYMOUS_CALLER = Caller()


def user_caller(account: str, name: str, userid: str | None = None, path: str = "/") -> Caller:
    """An IAM user of `account` (the usual caller)."""
    return Caller(
        arn=f"arn:aws:iam::{account}:user{path}{name}",
        account=account,
        username=name,
        userid=userid or name,
        principal_type="User",
    )


def session_caller(account: str, role: str, session: str, role_id: str | None = None) -> Caller:
    """An assumed-role session: its ARN, and its role's (a policy naming the role names its
    sessions); aws:userid is `<role id>:<session>`, as AWS's."""
    return Caller(
        arn=f"arn:aws:sts::{account}:assumed-role/{role}/{session}",
        account=account,
        userid=f"{role_id or role}:{session}",
        principal_type="AssumedRole",
        also=frozenset({f"arn:aws:iam::{account}:role/{role}"}),
    )


def root_caller(account: str) -> Caller:
    """The account itself (its root user)."""
    return Caller(
        arn=f"arn:aws:iam::{account}:root",
        account=account,
        userid=account,
        principal_type="Account",
    )


class Match(Enum):
    """How a Principal element names a caller."""

    NONE = 0
    ACCOUNT = 1  # only through the caller's account
    DIRECT = 2  # `*`, or one of the caller's own ARNs


@dataclass(frozen=True)
class PrincipalSet:
    """A Principal (or NotPrincipal) element, compiled."""

    everyone: bool = False
    arns: frozenset[str] = frozenset()
    accounts: frozenset[str] = frozenset()
    federated: frozenset[str] = frozenset()
    services: frozenset[str] = frozenset()
    canonical: frozenset[str] = frozenset()

    def match(self, caller: Caller) -> Match:
        if self.everyone:
            return Match.DIRECT
        if caller.arn is not None and (
            caller.arn in self.arns or not self.arns.isdisjoint(caller.also)
        ):
            return Match.DIRECT
        if caller.federated is not None and caller.federated in self.federated:
            return Match.DIRECT
        if caller.service is not None and caller.service in self.services:
            return Match.DIRECT
        if caller.canonical_id is not None and caller.canonical_id in self.canonical:
            return Match.DIRECT
        if caller.account is not None and caller.account in self.accounts:
            return Match.ACCOUNT
        return Match.NONE


def _strings(value: object) -> list[str]:
    values = value if isinstance(value, list) else [value]
    if not values or not all(isinstance(v, str) and v for v in values):
        raise MalformedPolicy(_INVALID)
    return [v for v in values if isinstance(v, str)]


def compile_principal(value: object) -> PrincipalSet:
    """A Principal element as AWS accepts it, or MalformedPolicy("Invalid principal in policy")."""
    if value == "*":
        return PrincipalSet(everyone=True)
    if not isinstance(value, dict) or not value:
        raise MalformedPolicy(_INVALID)
    arns: set[str] = set()
    accounts: set[str] = set()
    federated: set[str] = set()
    services: set[str] = set()
    canonical: set[str] = set()
    for kind, names in value.items():
        if kind == "AWS":
            for name in _strings(names):
                if name == "*":
                    return PrincipalSet(everyone=True)
                if _ACCOUNT.fullmatch(name):
                    accounts.add(name)
                    continue
                iam = _IAM_ARN.fullmatch(name)
                sts = _STS_ARN.fullmatch(name)
                if iam is None and sts is None:
                    raise MalformedPolicy(_INVALID)
                if iam is not None and iam.group(2) == "root":
                    accounts.add(iam.group(1))
                arns.add(name)
        elif kind == "Federated":
            federated.update(_strings(names))
        elif kind == "Service":
            services.update(_strings(names))
        elif kind == "CanonicalUser":
            canonical.update(_strings(names))
        else:
            raise MalformedPolicy(_INVALID)
    # The root ARN is the account's own ARN too: the root user itself matches it directly.
    arns.update(f"arn:aws:iam::{a}:root" for a in accounts)
    return PrincipalSet(
        arns=frozenset(arns),
        accounts=frozenset(accounts),
        federated=frozenset(federated),
        services=frozenset(services),
        canonical=frozenset(canonical),
    )
