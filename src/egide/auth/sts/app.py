"""The STS API: AssumeRole, AssumeRoleWithWebIdentity and GetCallerIdentity, answered in STS's
XML (https://docs.aws.amazon.com/STS/latest/APIReference/).

A request is a POST to `/` with a form body (`Action=…&Version=2011-06-15&…`), which the S3
app hands here (`is_sts_request`): S3 has no operation there (a form upload goes to
`/<bucket>`). AssumeRole and GetCallerIdentity are signed with SigV4 for the service `sts`;
AssumeRoleWithWebIdentity is not signed: the ID token is the proof. A session's credentials
are sealed in its token (egide.auth.sts.tokens): nothing is written anywhere.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import parse_qsl
from xml.sax.saxutils import escape

from egide.auth.authorize import Authorizer, Principal, context_of
from egide.auth.credentials import SecretCache
from egide.auth.errors import AccessDenied
from egide.auth.policy import (
    Caller,
    MalformedPolicy,
    PolicyKind,
    cached_policy,
    parse_policy,
    session_caller,
    trust_allows,
    user_caller,
)
from egide.auth.policy.context import condition_keys
from egide.auth.sigv4 import authenticate
from egide.auth.sts.oidc import Identity, OidcVerifier
from egide.auth.sts.tokens import Session, new_session_key, seal
from egide.catalog.base import Catalog
from egide.clock import SYSTEM_CLOCK, Clock
from egide.crypto.keyring import Keyring
from egide.domain import Role, role_arn
from egide.web.dispatch import Call, send_response
from egide.web.errors import HttpError, http_error
from egide.web.hosts import bucket_from_host
from egide.web.http import Response, Send
from egide.web.request import RequestHead

NAMESPACE = "https://sts.amazonaws.com/doc/2011-06-15/"
VERSION = "2011-06-15"
MAX_BODY = 64 * 1024
#: A session policy's longest text (AWS's packed limit, roughly).
MAX_SESSION_POLICY = 2048
DEFAULT_DURATION = 3600

ValidationError = http_error("ValidationError", 400, "The request is not valid.")
MalformedPolicyDocument = http_error("MalformedPolicyDocument", 400, "The policy is not valid.")
PackedPolicyTooLarge = http_error(
    "PackedPolicyTooLarge", 400, "The session policy is larger than allowed."
)
InvalidAction = http_error("InvalidAction", 400, "The action is not valid for this endpoint.")
MissingAuthenticationToken = http_error(
    "MissingAuthenticationToken", 403, "Request is missing Authentication Token"
)
NotImplementedParameter = http_error(
    "NotImplemented", 501, "A parameter you provided is not implemented."
)

_ROLE_ARN = re.compile(r"arn:aws:iam::([0-9]{12}):role/(?:[\w+=,.@-]+/)*([\w+=,.@-]{1,64})")
_SESSION_NAME = re.compile(r"[\w+=,.@-]{2,64}", re.ASCII)
_PARAMETERS = {
    "AssumeRole": {"RoleArn", "RoleSessionName", "DurationSeconds", "Policy"},
    "AssumeRoleWithWebIdentity": {
        "RoleArn", "RoleSessionName", "DurationSeconds", "Policy", "WebIdentityToken"
    },
    "GetCallerIdentity": set(),
}  # fmt: skip


def is_sts_request(head: RequestHead, domains: tuple[str, ...]) -> bool:
    """A POST of a form to the endpoint's root, path-style: no S3 operation lives there."""
    content_type = (head.header("content-type") or "").split(";")[0].strip().lower()
    return (
        head.method == "POST"
        and head.path == "/"
        and content_type == "application/x-www-form-urlencoded"
        and bucket_from_host(head.header("host"), domains) is None
    )


def _iso(when: float) -> str:
    return datetime.fromtimestamp(when, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _xml(action: str, result: str, request_id: str) -> Response:
    body = (
        f'<{action}Response xmlns="{NAMESPACE}"><{action}Result>{result}</{action}Result>'
        f"<ResponseMetadata><RequestId>{request_id}</RequestId></ResponseMetadata>"
        f"</{action}Response>"
    )
    return Response(200, {"content-type": "text/xml"}, body.encode())


def error_response(exc: HttpError, request_id: str) -> Response:
    kind = "Sender" if exc.status < 500 else "Receiver"
    body = (
        f'<ErrorResponse xmlns="{NAMESPACE}"><Error><Type>{kind}</Type>'
        f"<Code>{escape(exc.code)}</Code><Message>{escape(exc.message)}</Message></Error>"
        f"<RequestId>{request_id}</RequestId></ErrorResponse>"
    )
    return Response(exc.status, {"content-type": "text/xml"}, body.encode())


def _credentials(session: Session, token: str) -> str:
    return (
        f"<Credentials><AccessKeyId>{session.access_key}</AccessKeyId>"
        f"<SecretAccessKey>{session.secret}</SecretAccessKey>"
        f"<SessionToken>{token}</SessionToken>"
        f"<Expiration>{_iso(session.expires)}</Expiration></Credentials>"
        f"<AssumedRoleUser><AssumedRoleId>{escape(session.assumed_role_id)}</AssumedRoleId>"
        f"<Arn>{escape(session.arn)}</Arn></AssumedRoleUser>"
    )


@dataclass(frozen=True)
class _Asked:
    """What AssumeRole… asks for, checked."""

    role: Role
    arn: str
    session_name: str
    duration: int
    policy: str | None


class StsApp:
    def __init__(
        self,
        catalog: Catalog,
        keyring: Keyring,
        secrets: SecretCache,
        authorizer: Authorizer,
        *,
        oidc: OidcVerifier | None = None,
        min_duration: int = 900,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        self._catalog = catalog
        self._keyring = keyring
        self._secrets = secrets
        self._authorizer = authorizer
        self._oidc = oidc
        self._min_duration = min_duration
        self._clock = clock
        self._account: str | None = None

    async def _account_id(self) -> str:
        if self._account is None:
            self._account = await self._catalog.account_id()
        return self._account

    async def serve(self, call: Call, send: Send) -> None:
        call.exchange.operation = "STS"
        try:
            body = bytearray()
            async for chunk in call.body.chunks():
                body += chunk
                if len(body) > MAX_BODY:
                    raise ValidationError("The request body is too large.")
            try:
                form = dict(parse_qsl(body.decode(), keep_blank_values=True, strict_parsing=False))
            except UnicodeDecodeError:
                raise ValidationError("The request body is not UTF-8.") from None
            action = form.pop("Action", "")
            call.exchange.operation = f"STS.{action}"
            version = form.pop("Version", VERSION)
            if action not in _PARAMETERS:
                raise InvalidAction(f"Could not find operation {action} for version {version}")
            if version != VERSION:
                raise InvalidAction(f"Could not find operation {action} for version {version}")
            # Refused, never ignored: Tags, ExternalId, PolicyArns, MFA … change who may assume
            # a role or what a session may do.
            unknown = sorted(set(form) - _PARAMETERS[action])
            if unknown:
                raise NotImplementedParameter(
                    f"Égide does not implement the parameter {', '.join(unknown)} of {action}."
                )
            if action == "AssumeRoleWithWebIdentity":
                response = await self._assume_with_web_identity(call, form)
            else:
                principal = await self._signed(call, bytes(body))
                if action == "AssumeRole":
                    response = await self._assume_role(call, form, principal)
                else:
                    response = await self._caller_identity(call, principal)
        except HttpError as exc:
            call.exchange.error = exc.code
            response = error_response(exc, call.request_id)
        await send_response(response, call, send)

    async def _signed(self, call: Call, body: bytes) -> Principal:
        await self._secrets.load(call.head)
        auth = authenticate(
            call.head, self._secrets.get, now=datetime.fromtimestamp(self._clock.time(), UTC),
            service="sts", body_sha256=hashlib.sha256(body).hexdigest(),
        )  # fmt: skip
        if auth is None:
            raise MissingAuthenticationToken()
        return self._secrets.principal(auth.access_key)

    async def _caller(self, principal: Principal) -> Caller:
        account = await self._account_id()
        if principal.role is not None and principal.session is not None:
            return session_caller(account, principal.role, principal.session, principal.role_id)
        assert principal.user is not None
        return user_caller(account, principal.user)

    async def _asked(self, form: dict[str, str], denied: str) -> _Asked:
        """The role, session name, duration and session policy asked for, or the error AWS
        answers. A role that does not exist is refused as AWS refuses it (AccessDenied: the
        caller learns nothing of which roles exist)."""
        arn = form.get("RoleArn", "")
        name = form.get("RoleSessionName", "")
        if not arn or not name:
            missing = "roleArn" if not arn else "roleSessionName"
            raise ValidationError(
                f"1 validation error detected: Value null at '{missing}' failed to satisfy "
                "constraint: Member must not be null"
            )
        if not _SESSION_NAME.fullmatch(name):
            raise ValidationError(
                f"1 validation error detected: Value '{name}' at 'roleSessionName' failed to "
                "satisfy constraint: Member must satisfy regular expression pattern: "
                "[\\w+=,.@-]* and have length 2 to 64"
            )
        found = _ROLE_ARN.fullmatch(arn)
        if found is None:
            raise ValidationError(f"{arn} is invalid")
        role = await self._catalog.role(found.group(2))
        if found.group(1) != await self._account_id() or role is None:
            raise AccessDenied(denied)
        raw = form.get("DurationSeconds")
        duration = min(DEFAULT_DURATION, role.max_session)
        if raw is not None:
            if not raw.isdigit():
                raise ValidationError(f"Value '{raw}' at 'durationSeconds' is not a number")
            duration = int(raw)
        if duration < self._min_duration:
            raise ValidationError(
                f"1 validation error detected: Value '{duration}' at 'durationSeconds' failed "
                f"to satisfy constraint: Member must have value greater than or equal to "
                f"{self._min_duration}"
            )
        if duration > role.max_session:
            raise ValidationError(
                f"The requested DurationSeconds exceeds the MaxSessionDuration set for this "
                f"role ({role.max_session})."
            )
        policy = form.get("Policy")
        if policy is not None:
            if len(policy) > MAX_SESSION_POLICY:
                raise PackedPolicyTooLarge(
                    f"Session policy is {len(policy)} characters, more than {MAX_SESSION_POLICY}."
                )
            try:
                parse_policy(policy, PolicyKind.IDENTITY)
            except MalformedPolicy as exc:
                raise MalformedPolicyDocument(str(exc)) from None
        return _Asked(role, role_arn(found.group(1), role.name), name, duration, policy)

    def _trusts(
        self, role: Role, caller: Caller, action: str, call: Call, keys: dict[str, str]
    ) -> bool:
        try:
            trust = cached_policy(role.trust_policy, PolicyKind.TRUST, name=f"trust/{role.name}")
        except MalformedPolicy:
            return False
        context = context_of(call, datetime.now(UTC))
        context.keys.update(keys)
        return trust_allows(trust, caller, action, condition_keys(context, caller))

    async def _issue(self, asked: _Asked, source: str) -> tuple[Session, str]:
        access, secret = new_session_key()
        session = Session(
            access, secret, await self._account_id(), asked.role.name, asked.role.id,
            asked.session_name, self._clock.time() + asked.duration, asked.policy, source,
        )  # fmt: skip
        return session, seal(self._keyring, session)

    async def _assume_role(self, call: Call, form: dict[str, str], who: Principal) -> Response:
        caller = await self._caller(who)
        denied = (
            f"User: {caller.arn} is not authorized to perform: sts:AssumeRole on resource: "
            f"{form.get('RoleArn', '')}"
        )
        asked = await self._asked(form, denied)
        try:
            await self._authorizer.authorize(
                who, "sts:AssumeRole", asked.arn, context_of(call, datetime.now(UTC))
            )
        except HttpError:
            raise AccessDenied(denied) from None
        if not self._trusts(asked.role, caller, "sts:AssumeRole", call, {}):
            raise AccessDenied(denied)
        session, token = await self._issue(asked, "AssumeRole")
        return _xml("AssumeRole", _credentials(session, token), call.request_id)

    async def _assume_with_web_identity(self, call: Call, form: dict[str, str]) -> Response:
        if self._oidc is None:
            raise AccessDenied("No OpenID Connect provider is configured ([[oidc]]).")
        token = form.get("WebIdentityToken", "")
        if not token:
            raise ValidationError(
                "1 validation error detected: Value null at 'webIdentityToken' failed to "
                "satisfy constraint: Member must not be null"
            )
        identity = await self._oidc.verify(token)
        denied = "Not authorized to perform sts:AssumeRoleWithWebIdentity"
        asked = await self._asked(form, denied)
        if not self._web_identity_allowed(asked.role, identity, call):
            raise AccessDenied(denied)
        session, sealed = await self._issue(asked, "AssumeRoleWithWebIdentity")
        result = (
            _credentials(session, sealed)
            + f"<SubjectFromWebIdentityToken>{escape(identity.subject)}"
            "</SubjectFromWebIdentityToken>"
            f"<Audience>{escape(identity.audience)}</Audience>"
            f"<Provider>{escape(identity.provider_id)}</Provider>"
        )
        return _xml("AssumeRoleWithWebIdentity", result, call.request_id)

    def _web_identity_allowed(self, role: Role, identity: Identity, call: Call) -> bool:
        """A rule of the provider maps the token's claims to the role, or the role's trust
        policy names the provider (its issuer, or AWS's `…:oidc-provider/<host/path>`);
        an explicit Deny of the trust policy refuses either way."""
        assert self._oidc is not None
        account = self._account or ""
        keys = {
            f"{identity.provider_id}:aud": identity.audience,
            f"{identity.provider_id}:sub": identity.subject,
        }
        action = "sts:AssumeRoleWithWebIdentity"
        callers = (
            Caller(federated=identity.provider.issuer, principal_type="WebIdentity"),
            Caller(federated=f"arn:aws:iam::{account}:oidc-provider/{identity.provider_id}",
                   principal_type="WebIdentity"),
        )  # fmt: skip
        trusted = any(self._trusts(role, c, action, call, keys) for c in callers)
        if trusted:
            return True
        if role.name not in self._oidc.provider_roles(identity):
            return False
        try:
            trust = cached_policy(role.trust_policy, PolicyKind.TRUST, name=f"trust/{role.name}")
        except MalformedPolicy:
            return True  # the configured rule grants it; a broken trust policy denies nothing
        return not any(
            s.deny and s.principal is not None and s.principal.match(c).value
            for s in trust.plan(action).statements
            for c in callers
        )

    async def _caller_identity(self, call: Call, who: Principal) -> Response:
        caller = await self._caller(who)
        result = (
            f"<Arn>{escape(caller.arn or '')}</Arn><UserId>{escape(caller.userid or '')}</UserId>"
            f"<Account>{await self._account_id()}</Account>"
        )
        return _xml("GetCallerIdentity", result, call.request_id)
