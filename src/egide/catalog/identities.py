"""Identities: the organisation's account, its users and groups, and each user's access keys
(docs/decisions/0029-identities.md).

Every catalog has one account, its 12-digit id drawn when the catalog is first opened, and
the user `admin`, to whom the keys from before users existed belong. A key's secret is sealed
under the master key as `keys.CredentialCatalog` always kept it; `add_credential` still adds a
key, the admin's.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from egide.domain import AccessKey, Group, Role, User


@dataclass(frozen=True)
class KeyHolder:
    """What a request signed with an access key needs: the key, its sealed secret, and the
    groups of its user."""

    key: AccessKey
    sealed_secret: bytes
    groups: tuple[str, ...]


@dataclass(frozen=True)
class Identities:
    """Every identity at once, as the credentials record keeps them on the sites
    (egide.engine.credentialrecords) and a rebuilt or restored catalog takes them back."""

    #: The account id; None from a record older than users (the catalog keeps its own).
    account: str | None
    users: tuple[User, ...]
    groups: tuple[Group, ...]
    #: Each key with its secret sealed under the master key.
    keys: tuple[tuple[AccessKey, bytes], ...]
    #: (kind "user", "group" or "role", its name, policy name, JSON document) of attached
    #: policies.
    policies: tuple[tuple[str, str, str, str], ...] = ()
    #: Roles (STS), by name; their policies are in `policies` (kind "role").
    roles: tuple[Role, ...] = ()


class UserCatalog(Protocol):
    async def account_id(self) -> str:
        """The organisation's account id: 12 digits, the same for the catalog's life."""

    async def get_account_setting(self, name: str) -> str | None:
        """One of the account's settings (its quota), or None if unset."""

    async def put_account_setting(self, name: str, value: str | None) -> None:
        """Set one of the account's settings, or remove it with None."""

    async def identities(self) -> Identities:
        """Every user, group and key with its sealed secret, in name and creation order."""

    async def create_user(self, user: User) -> None:
        """Raises IdentityExists if a user of that name exists."""

    async def users(self) -> list[User]:
        """Every user, by name."""

    async def delete_user(self, name: str, *, force: bool = False) -> list[str]:
        """Delete the user and its memberships; one with access keys only with `force`, its
        keys then deleted too (the access keys deleted are returned). Raises IdentityNotFound,
        UserHasKeys."""

    async def create_group(self, group: Group) -> None:
        """Raises IdentityExists if a group of that name exists (its members are ignored)."""

    async def groups(self) -> list[Group]:
        """Every group with its members, by name."""

    async def delete_group(self, name: str) -> None:
        """Raises IdentityNotFound."""

    async def set_group_member(self, group: str, user: str, member: bool) -> bool:
        """Put `user` in `group` (or take it out); whether that changed anything. Raises
        IdentityNotFound for an unknown group or user."""


class IdentityPolicyCatalog(Protocol):
    """Identity policies attached to a user, a group or a role (`kind` "user", "group" or
    "role"), kept as the JSON given; evaluating them is egide.auth's. They go with their
    user, group or role."""

    async def put_identity_policy(self, kind: str, name: str, policy: str, document: str) -> None:
        """Attach (or replace) `policy`. Raises IdentityNotFound for an unknown user or group."""

    async def identity_policies(self, kind: str, name: str) -> dict[str, str]:
        """Policy name → document of the user or group, by name."""

    async def delete_identity_policy(self, kind: str, name: str, policy: str) -> None:
        """Raises IdentityNotFound if no such policy is attached."""


class AccessKeyCatalog(Protocol):
    async def add_access_key(self, key: AccessKey, sealed_secret: bytes) -> None:
        """Raises IdentityNotFound for an unknown user, IdentityExists for a known key."""

    async def access_keys(self, user: str | None = None) -> list[AccessKey]:
        """The keys of `user` (every key without), by user then creation time."""

    async def key_holder(self, access_key: str) -> KeyHolder | None:
        """The key, its sealed secret and its user's groups; None for an unknown key."""

    async def set_access_key_status(self, access_key: str, status: str) -> None:
        """Active or Inactive. Raises IdentityNotFound."""

    async def delete_access_key(self, access_key: str) -> None:
        """Raises IdentityNotFound."""
