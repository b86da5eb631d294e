"""Session tokens: everything a gateway needs to check a session, sealed in the token itself
(docs/decisions/0032-sts.md).

A token is AES-GCM under a key derived from the master key (egide.crypto.keyring), so any
worker or gateway of the organisation opens it with no catalog write at AssumeRole and no
catalog read per request beyond the role's policies (kept one second, as users' are). It holds
the session's access key id (a request must name the same), its secret, its role (name and
id), the session's name, its expiry and an optional session policy. A token altered by one bit,
or sealed by another organisation, does not open.
"""

from __future__ import annotations

import base64
import binascii
import json
import secrets
import string
from dataclasses import asdict, dataclass

from egide.auth.authorize import Principal
from egide.auth.errors import ExpiredToken, InvalidToken
from egide.crypto.aead import DecryptionError
from egide.crypto.keyring import Keyring

#: What a token starts with: its format (a new format gets a new prefix).
PREFIX = "EGS1"


@dataclass(frozen=True)
class Session:
    access_key: str
    secret: str
    account: str
    role: str
    role_id: str
    name: str
    #: Wall time (seconds since the epoch) from which the session is refused.
    expires: float
    policy: str | None = None
    #: How it was obtained: "AssumeRole" or "AssumeRoleWithWebIdentity".
    source: str = "AssumeRole"

    @property
    def arn(self) -> str:
        return f"arn:aws:sts::{self.account}:assumed-role/{self.role}/{self.name}"

    @property
    def assumed_role_id(self) -> str:
        return f"{self.role_id}:{self.name}"

    def principal(self) -> Principal:
        return Principal(
            access_key=self.access_key, session=self.name, arn=self.arn, role=self.role,
            role_id=self.role_id, session_policy=self.policy,
        )  # fmt: skip


def new_session_key() -> tuple[str, str]:
    """A temporary access key id (ASIA + 16 letters or digits, as AWS's) and its secret."""
    alphabet = string.ascii_uppercase + string.digits
    return "ASIA" + "".join(secrets.choice(alphabet) for _ in range(16)), secrets.token_urlsafe(30)


def seal(keyring: Keyring, session: Session) -> str:
    data = json.dumps(asdict(session), separators=(",", ":")).encode()
    return PREFIX + base64.urlsafe_b64encode(keyring.seal_session(data)).decode().rstrip("=")


def open_token(keyring: Keyring, token: str, access_key: str, now: float) -> Session:
    """The session a request's token holds. Raises InvalidToken (not ours, altered, or for
    another access key) or ExpiredToken (past its expiry)."""
    if not token.startswith(PREFIX) or len(token) > 16_384:
        raise InvalidToken()
    try:
        raw = base64.urlsafe_b64decode(token[len(PREFIX) :] + "=" * (-len(token) % 4))
        session = Session(**json.loads(keyring.open_session(raw)))
    except (binascii.Error, ValueError, TypeError, DecryptionError):
        raise InvalidToken() from None
    if session.access_key != access_key:
        raise InvalidToken("The security token does not match the access key id.")
    if now >= session.expires:
        raise ExpiredToken()
    return session
