"""Roles (STS) in PostgreSQL."""

from __future__ import annotations

from psycopg.errors import UniqueViolation

from egide.catalog.postgres.connection import Db, PostgresConnection, one, rows, run
from egide.catalog.postgres.rights import bump_rights
from egide.domain import IdentityExists, IdentityNotFound, Role

_COLUMNS = "name, role_id, created, trust_policy, max_session"


def role_of(row: tuple[object, ...]) -> Role:
    name, role_id, created, trust, longest = row
    return Role(str(name), str(role_id), float(created), str(trust), int(longest))  # type: ignore[arg-type,call-overload]


class PostgresRoles(PostgresConnection):
    """`catalog.roles.RoleCatalog`."""

    async def create_role(self, role: Role) -> None:
        async def write(db: Db) -> None:
            await db.execute(
                f"INSERT INTO roles ({_COLUMNS}) VALUES (%s, %s, %s, %s, %s)",
                (role.name, role.id, role.created, role.trust_policy, role.max_session),
            )
            await bump_rights(db)

        try:
            await self._transaction(write)
        except UniqueViolation as exc:
            raise IdentityExists(f"role {role.name}") from exc

    async def roles(self) -> list[Role]:
        async def read(db: Db) -> list[Role]:
            return [
                role_of(r) for r in await rows(db, f"SELECT {_COLUMNS} FROM roles ORDER BY name")
            ]

        return await self._read(read)

    async def role(self, name: str) -> Role | None:
        async def read(db: Db) -> Role | None:
            row = await one(db, f"SELECT {_COLUMNS} FROM roles WHERE name = %s", (name,))
            return None if row is None else role_of(row)

        return await self._read(read)

    async def update_role(
        self, name: str, *, trust_policy: str | None = None, max_session: int | None = None
    ) -> None:
        async def write(db: Db) -> None:
            if not await run(
                db,
                "UPDATE roles SET trust_policy = coalesce(%s, trust_policy), "
                "max_session = coalesce(%s, max_session) WHERE name = %s",
                (trust_policy, max_session, name),
            ):
                raise IdentityNotFound(f"role {name}")
            await bump_rights(db)

        await self._transaction(write)

    async def delete_role(self, name: str) -> None:
        async def write(db: Db) -> None:
            if await run(db, "DELETE FROM roles WHERE name = %s", (name,)) == 0:
                raise IdentityNotFound(f"role {name}")
            await db.execute(
                "DELETE FROM identity_policies WHERE kind = 'role' AND name = %s", (name,)
            )
            await bump_rights(db)

        await self._transaction(write)
