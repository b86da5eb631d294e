"""Secrets of access keys, opened with the keyring from the catalog's sealed credentials, and
who each key is (its user, the user's ARN and groups).

The SigV4 check is synchronous (egide.auth.sigv4 takes a lookup function), so the secret a
request names is loaded first (`load`), then read from the cache (`get`). What is loaded is kept
at most `LIFETIME` (one second, by the injected clock's monotonic time): a key disabled, deleted
or past its expiry, or a user moved between groups, is seen by every worker from its next
request on: the rights watch (egide.auth.rights) has every key loaded again (`forget_all`) when
the catalog's rights counter moved (docs/decisions/0035-rights-counter.md); the lifetime is only
a fallback, and what bounds the use of a key past its expiry. Only usable keys are kept: an
unknown or refused one is asked of the catalog again (an indexed read), so a client naming
random keys cannot grow a worker's memory.

A request with a session token (X-Amz-Security-Token, from STS) is checked against the token
alone (egide.auth.sts.tokens): its secret and principal are the token's, kept for that request
only (a context variable set by `load`, read by `get` and `principal` in the same task), so a
session's key is never accepted without its token.
"""

from __future__ import annotations

import dataclasses
import re
from contextvars import ContextVar
from dataclasses import dataclass

from egide.auth.authorize import Principal
from egide.auth.sts.tokens import Session, open_token
from egide.catalog.base import Catalog
from egide.clock import SYSTEM_CLOCK, Clock
from egide.crypto.keyring import Keyring
from egide.domain import user_arn
from egide.engine.events import Event, EventKind
from egide.web.request import RequestHead

_CREDENTIAL = re.compile(r"Credential=([^/,\s]+)/")

#: Longest a worker keeps a key loaded, in seconds: a fallback (a key disabled or deleted is
#: refused from the next request on, egide.auth.rights), and the bound on an expired key's use.
LIFETIME = 1.0

#: The STS session of the request being authenticated (see the module docstring).
_session: ContextVar[Session | None] = ContextVar("egide_sts_session", default=None)


def security_token(head: RequestHead) -> str | None:
    """The session token a request carries (header or presigned query), None when none."""
    return head.header("x-amz-security-token") or head.query_value("X-Amz-Security-Token")


def access_key_named(head: RequestHead) -> str:
    """The access key id a request names (header or presigned query), "" when none."""
    match = _CREDENTIAL.search(head.header("authorization") or "")
    access_key = match.group(1) if match else (head.query_value("X-Amz-Credential") or "")
    return access_key.split("/", 1)[0]


@dataclass(frozen=True)
class _Loaded:
    #: When it was loaded (the clock's monotonic time).
    at: float
    #: The secret, None for a key unknown or not usable (disabled, expired).
    secret: str | None
    principal: Principal
    #: The sealed secret it was opened from (a key's secret is opened again only if changed).
    sealed: bytes = b""
    #: The cache's epoch when it was loaded: one before the last `forget_all` is loaded again.
    epoch: int = 0


class SecretCache:
    """access key id → secret access key and principal, shared by every mounted app of one
    process."""

    def __init__(
        self,
        catalog: Catalog,
        keyring: Keyring,
        *,
        clock: Clock = SYSTEM_CLOCK,
        lifetime: float = LIFETIME,
    ) -> None:
        self._catalog = catalog
        self._keyring = keyring
        self._clock = clock
        self._lifetime = lifetime
        self._loaded: dict[str, _Loaded] = {}
        #: Bumped by `forget`: a key loaded while it ran is not kept.
        self._generation = 0
        #: Bumped by `forget_all`: every key is loaded again by its next request.
        self._epoch = 0

    async def forget(self, event: Event) -> None:
        """An engine observer: a key, user or group changed through this worker is applied at
        once (a change made elsewhere within `lifetime`)."""
        if event.kind is not EventKind.CREDENTIALS_CHANGED:
            return
        self._generation += 1
        if event.access_key is not None:
            self._loaded.pop(event.access_key, None)
        else:  # a user, a group or a membership: who each key is may have changed
            self._loaded.clear()

    def forget_all(self) -> None:
        """Rights changed somewhere (egide.auth.rights): every key is loaded again by its next
        request. What was loaded stays for `get` and `principal` meanwhile (a request that
        already loaded its key keeps who it is), and a secret unchanged is not opened again."""
        self._generation += 1
        self._epoch += 1

    async def secret(self, access_key: str) -> str | None:
        """The secret of `access_key`, loaded if need be; None if unknown or not usable."""
        if not access_key:
            return None
        now = self._clock.monotonic()
        loaded = self._loaded.get(access_key)
        epoch = self._epoch
        if loaded is None or loaded.epoch != epoch or now - loaded.at >= self._lifetime:
            generation = self._generation
            loaded = dataclasses.replace(await self._load(access_key, now, loaded), epoch=epoch)
            if loaded.secret is None:
                self._loaded.pop(access_key, None)
                return None
            if generation == self._generation:
                self._loaded[access_key] = loaded
            else:  # changed while loading: used for this request, loaded again for the next
                self._loaded[access_key] = dataclasses.replace(loaded, at=now - self._lifetime)
        return loaded.secret

    async def _load(self, access_key: str, now: float, before: _Loaded | None) -> _Loaded:
        holder = await self._catalog.key_holder(access_key)
        if holder is None or not holder.key.usable(self._clock.time()):
            return _Loaded(now, None, Principal(access_key=access_key))
        if (
            before is not None
            and before.secret is not None
            and before.sealed == holder.sealed_secret
        ):
            secret = before.secret
        else:
            secret = self._keyring.open_secret(access_key, holder.sealed_secret).decode()
        account = await self._catalog.account_id()
        principal = Principal(
            access_key=access_key,
            user=holder.key.user,
            groups=frozenset(holder.groups),
            arn=user_arn(account, holder.key.user),
        )
        return _Loaded(now, secret, principal, holder.sealed_secret)

    def __len__(self) -> int:
        """How many keys are kept (usable ones only)."""
        return len(self._loaded)

    async def load(self, head: RequestHead) -> None:
        """Load the secret of the access key `head` names, for `get` to find; with a session
        token, open it (InvalidToken, ExpiredToken) for this request's `get` and `principal`."""
        await self.load_key(access_key_named(head), security_token(head))

    async def load_key(self, access_key: str, token: str | None) -> None:
        """`load` for a key and token given apart (a form upload's fields)."""
        if token is None:
            _session.set(None)
            await self.secret(access_key)
            return
        _session.set(open_token(self._keyring, token, access_key, self._clock.time()))

    def get(self, access_key: str) -> str | None:
        """The secret loaded last (a `SecretLookup` for egide.auth.sigv4.authenticate)."""
        session = _session.get()
        if session is not None and session.access_key == access_key:
            return session.secret
        loaded = self._loaded.get(access_key)
        return loaded.secret if loaded is not None else None

    def principal(self, access_key: str) -> Principal:
        """Who `access_key` is, as loaded last with its secret (the key alone if not loaded)."""
        session = _session.get()
        if session is not None and session.access_key == access_key:
            return session.principal()
        loaded = self._loaded.get(access_key)
        return loaded.principal if loaded is not None else Principal(access_key=access_key)
