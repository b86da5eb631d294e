"""Users, groups and access keys of the organisation's account (docs/decisions/0029-identities.md).

Every change is one call that does all it needs, as `credentials.CredentialService` does for
the first keys: the catalog, the credentials record on the sites when the service has a store
to write it with (a command's own service leaves it to the next housekeeping round of a
server), and the event CREDENTIALS_CHANGED (`detail` says what changed, `access_key` names the
key when one did; never a secret). Servers see a change within a second: their secret caches
keep nothing longer (egide.auth.credentials).
"""

from __future__ import annotations

import json
import re
import secrets
import string
from collections.abc import Awaitable, Callable

from egide.catalog.base import Catalog
from egide.clock import SYSTEM_CLOCK, Clock
from egide.crypto.keyring import Keyring
from egide.domain import (
    ADMIN_USER,
    KEY_ACTIVE,
    KEY_INACTIVE,
    ROLE_MAX_SESSION_BOUNDS,
    AccessKey,
    Group,
    IdentityNotFound,
    IdentityRefused,
    InvalidIdentityName,
    Role,
    User,
)
from egide.engine.events import EventBus, EventKind

#: Longest identity policy document kept, in bytes of JSON (IAM's managed policy limit).
MAX_POLICY_BYTES = 6144
#: What an identity policy attaches to.
POLICY_KINDS = ("user", "group", "role")

#: IAM's user and group names: letters, digits and +=,.@_- (64 and 128 at most).
_NAME = re.compile(r"[\w+=,.@-]+", re.ASCII)


def check_name(kind: str, name: str, longest: int) -> str:
    if not (0 < len(name) <= longest and _NAME.fullmatch(name)):
        raise InvalidIdentityName(
            f"{kind} name {name!r}: 1 to {longest} letters, digits or +=,.@_-"
        )
    return name


def new_credential() -> tuple[str, str]:
    """A new access key id (EG + 18 letters or digits) and its secret."""
    alphabet = string.ascii_uppercase + string.digits
    access = "EG" + "".join(secrets.choice(alphabet) for _ in range(18))
    return access, secrets.token_urlsafe(30)


def new_identity_id(prefix: str) -> str:
    """IAM's unique ids: AIDA… for a user, AGPA… for a group (prefix and 17 letters or digits)."""
    alphabet = string.ascii_uppercase + string.digits
    return prefix + "".join(secrets.choice(alphabet) for _ in range(17))


def _json_object(document: str) -> str:
    """A policy document as kept: a JSON object of at most MAX_POLICY_BYTES."""
    if len(document.encode()) > MAX_POLICY_BYTES:
        raise InvalidIdentityName(f"a policy document is at most {MAX_POLICY_BYTES} bytes")
    try:
        parsed = json.loads(document)
    except json.JSONDecodeError as exc:
        raise InvalidIdentityName(f"the policy document is not JSON: {exc}") from None
    if not isinstance(parsed, dict):
        raise InvalidIdentityName("a policy document is a JSON object")
    return document


def _session_bounds(seconds: int) -> int:
    shortest, longest = ROLE_MAX_SESSION_BOUNDS
    if not shortest <= seconds <= longest:
        raise InvalidIdentityName(
            f"a role's longest session is {shortest} to {longest} seconds, not {seconds}"
        )
    return seconds


class IdentityService:
    def __init__(
        self,
        catalog: Catalog,
        keyring: Keyring,
        events: EventBus | None = None,
        *,
        record: Callable[[], Awaitable[bool]] | None = None,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        self._catalog = catalog
        self._keyring = keyring
        #: A command's own service gets a bus of its own (nobody listens in a command).
        self.events = events if events is not None else EventBus()
        #: Writes the credentials record on the sites (the store's; None before one exists).
        self._record = record
        self._clock = clock

    async def _changed(self, detail: str, access_key: str | None = None) -> None:
        self.events.announce(
            EventKind.CREDENTIALS_CHANGED, "", access_key=access_key, detail=detail
        )
        if self._record is not None:
            await self._record()

    async def account_id(self) -> str:
        return await self._catalog.account_id()

    # -- users --------------------------------------------------------------------------------

    async def create_user(self, name: str) -> User:
        user = User(check_name("user", name, 64), new_identity_id("AIDA"), self._clock.time())
        await self._catalog.create_user(user)
        await self._changed(f"user-created:{name}")
        return user

    async def users(self) -> list[User]:
        return await self._catalog.users()

    async def delete_user(self, name: str, *, force: bool = False) -> list[str]:
        """Delete a user; one with access keys only with `force` (its keys deleted with it).
        The user admin stays: the first key and `egide credentials create`'s are its."""
        if name == ADMIN_USER:
            raise IdentityRefused(f"the user {ADMIN_USER} cannot be deleted (disable its keys)")
        deleted = await self._catalog.delete_user(name, force=force)
        await self._changed(f"user-deleted:{name}")
        return deleted

    # -- groups -------------------------------------------------------------------------------

    async def create_group(self, name: str) -> Group:
        group = Group(check_name("group", name, 128), new_identity_id("AGPA"), self._clock.time())
        await self._catalog.create_group(group)
        await self._changed(f"group-created:{name}")
        return group

    async def groups(self) -> list[Group]:
        return await self._catalog.groups()

    async def delete_group(self, name: str) -> None:
        await self._catalog.delete_group(name)
        await self._changed(f"group-deleted:{name}")

    async def set_member(self, group: str, user: str, member: bool) -> bool:
        """Put `user` in `group` or take it out; whether anything changed."""
        changed = await self._catalog.set_group_member(group, user, member)
        if changed:
            await self._changed(f"{'member-added' if member else 'member-removed'}:{group}")
        return changed

    # -- roles (STS: docs/decisions/0032-sts.md) -----------------------------------------------

    async def create_role(self, name: str, trust_policy: str, max_session: int) -> Role:
        """A role whose trust policy the caller validated (egide.auth parses policies; the
        engine only checks it is a JSON object, as for identity policies)."""
        role = Role(
            check_name("role", name, 64), new_identity_id("AROA"), self._clock.time(),
            _json_object(trust_policy), _session_bounds(max_session),
        )  # fmt: skip
        await self._catalog.create_role(role)
        await self._changed(f"role-created:{name}")
        return role

    async def roles(self) -> list[Role]:
        return await self._catalog.roles()

    async def role(self, name: str) -> Role:
        role = await self._catalog.role(name)
        if role is None:
            raise IdentityNotFound(f"role {name}")
        return role

    async def update_role(
        self, name: str, *, trust_policy: str | None = None, max_session: int | None = None
    ) -> None:
        await self._catalog.update_role(
            name,
            trust_policy=None if trust_policy is None else _json_object(trust_policy),
            max_session=None if max_session is None else _session_bounds(max_session),
        )
        await self._changed(f"role-updated:{name}")

    async def delete_role(self, name: str) -> None:
        """Delete a role and its policies: its sessions are refused within a second."""
        await self._catalog.delete_role(name)
        await self._changed(f"role-deleted:{name}")

    # -- identity policies (kept as given; validated and evaluated by egide.auth) -------------

    async def put_policy(
        self, kind: str, name: str, policy: str, document: str, *, validate: Callable[[str], None]
    ) -> None:
        """Attach `document` as `policy` of the user or group `name`, replacing one of that
        name: a JSON object of at most MAX_POLICY_BYTES, kept as given once `validate` (the
        front door's, egide.auth.policy.check_identity_policy: the engine may not import it)
        accepted it; what it raises is raised, and nothing is stored."""
        if kind not in POLICY_KINDS:
            raise InvalidIdentityName(f"policies attach to {' or '.join(POLICY_KINDS)}")
        check_name("policy", policy, 128)
        _json_object(document)
        validate(document)
        await self._catalog.put_identity_policy(kind, name, policy, document)
        await self._changed(f"policy-put:{kind}/{name}/{policy}")

    async def policies(self, kind: str, name: str) -> dict[str, str]:
        """Policy name → document attached to the user or group."""
        return await self._catalog.identity_policies(kind, name)

    async def delete_policy(self, kind: str, name: str, policy: str) -> None:
        await self._catalog.delete_identity_policy(kind, name, policy)
        await self._changed(f"policy-deleted:{kind}/{name}/{policy}")

    # -- access keys --------------------------------------------------------------------------

    async def create_key(self, user: str, *, expires: float | None = None) -> tuple[AccessKey, str]:
        """A new Active key of `user`; its secret, returned here only, is shown once."""
        access, secret = new_credential()
        key = AccessKey(access, user, KEY_ACTIVE, self._clock.time(), expires)
        await self._catalog.add_access_key(key, self._keyring.seal_secret(access, secret.encode()))
        await self._changed("added", access)
        return key, secret

    async def keys(self, user: str | None = None) -> list[AccessKey]:
        return await self._catalog.access_keys(user)

    async def key(self, access: str) -> AccessKey:
        holder = await self._catalog.key_holder(access)
        if holder is None:
            raise IdentityNotFound(f"access key {access}")
        return holder.key

    async def set_key_active(self, access: str, active: bool) -> None:
        """Enable or disable a key: a disabled one is refused until enabled again."""
        await self._catalog.set_access_key_status(access, KEY_ACTIVE if active else KEY_INACTIVE)
        await self._changed("enabled" if active else "disabled", access)

    async def rotate_key(
        self, access: str, *, expires: float | None = None
    ) -> tuple[AccessKey, str]:
        """A new key for the user of `access`; the old one stays Active until deleted, so that
        clients move to the new one at their pace."""
        return await self.create_key((await self.key(access)).user, expires=expires)

    async def delete_key(self, access: str) -> None:
        await self._catalog.delete_access_key(access)
        await self._changed("deleted", access)
