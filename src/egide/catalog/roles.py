"""Roles of the organisation's account, assumed through STS (docs/decisions/0032-sts.md).

A role is a name, its unique id, its trust policy (kept as given: evaluating it is
egide.auth's) and its longest session. Its identity policies are `IdentityPolicyCatalog`'s,
kind "role", and go with it when it is deleted.
"""

from __future__ import annotations

from typing import Protocol

from egide.domain import Role


class RoleCatalog(Protocol):
    async def create_role(self, role: Role) -> None:
        """Raises IdentityExists if a role of that name exists."""

    async def roles(self) -> list[Role]:
        """Every role, by name."""

    async def role(self, name: str) -> Role | None:
        """The role of that name; None if there is none (one indexed read)."""

    async def update_role(
        self, name: str, *, trust_policy: str | None = None, max_session: int | None = None
    ) -> None:
        """Replace what is given. Raises IdentityNotFound."""

    async def delete_role(self, name: str) -> None:
        """Delete the role and its attached policies. Raises IdentityNotFound."""
