"""The one `authorize(principal, action, resource, context)` every request of every mounted app
passes, after authentication and before its handler runs.

Actions are in AWS's vocabulary (`s3:GetObject`; Égide's own APIs `egide:SubmitJob` …), resources
are ARNs (`arn:aws:s3:::bucket/key`, `arn:egide:admin:::jobs/7`), the context holds what AWS's
global condition keys read (aws:SourceIp, aws:SecureTransport, aws:CurrentTime …). Servers
decide by identity and bucket policies (egide.auth.decide); `allow_all` is for tests that
inject their own decision, and must be named: an Authorizer has no default decision, so none is
ever built that allows everything by omission. A denial is raised as AccessDenied, which each
front door answers in its dialect.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime

from egide.auth.errors import AccessDenied
from egide.web.dispatch import Call


@dataclass(frozen=True)
class Principal:
    """Who asks: an access key, its user (name and ARN) and the user's groups; or an STS
    session (its name, its role, the role's id and the session policy it was given)."""

    access_key: str | None = None
    user: str | None = None
    groups: frozenset[str] = frozenset()
    session: str | None = None
    #: The user's ARN, arn:aws:iam::<account>:user/<name>; a session's
    #: arn:aws:sts::<account>:assumed-role/<role>/<session>.
    arn: str | None = None
    #: A session's role: its name and unique id (AROA…: a role deleted and made again under
    #: the same name is another role, whose policies the old sessions do not get).
    role: str | None = None
    role_id: str | None = None
    #: The session policy given to AssumeRole (IAM JSON), which limits the role's rights.
    session_policy: str | None = None

    @property
    def anonymous(self) -> bool:
        return self.access_key is None and self.user is None and self.session is None


#: A request that carries no credentials (a CORS preflight; a form's policy is signed).
ANONYMOUS = Principal()


@dataclass(frozen=True)
class RequestContext:
    """What a policy's conditions may read about the request (AWS global condition keys)."""

    request_time: datetime  # aws:CurrentTime
    source_ip: str | None = None  # aws:SourceIp
    secure_transport: bool = False  # aws:SecureTransport
    user_agent: str | None = None  # aws:UserAgent
    #: Service keys, e.g. s3:prefix; several values: s3:RequestObjectTagKeys.
    keys: dict[str, str | tuple[str, ...]] = field(default_factory=dict)


def context_of(call: Call, now: datetime) -> RequestContext:
    """What a policy may read about `call` besides who asks and what for."""
    return RequestContext(
        request_time=now,
        source_ip=call.client[0] if call.client else None,
        secure_transport=call.scheme == "https",
        user_agent=call.head.header("user-agent"),
    )


#: The decision: may `principal` do `action` on `resource` in `context`?
Decision = Callable[[Principal, str, str, RequestContext], Awaitable[bool]]


async def allow_all(
    principal: Principal, action: str, resource: str, context: RequestContext
) -> bool:
    """Every request is allowed (tests only: a server decides by policies)."""
    return True


class Authorizer:
    """Holds the decision of one server process; front doors call `authorize`."""

    def __init__(self, decide: Decision) -> None:
        self.decide = decide

    async def authorize(
        self, principal: Principal, action: str, resource: str, context: RequestContext
    ) -> None:
        """Return if allowed; raise AccessDenied (403) otherwise."""
        if not await self.decide(principal, action, resource, context):
            raise AccessDenied()
