"""Roles (STS) in SQLite."""

from __future__ import annotations

import sqlite3
from functools import partial

from egide.catalog.sqlite.connection import SQLiteConnection
from egide.catalog.sqlite.rights import bump_rights
from egide.domain import IdentityExists, IdentityNotFound, Role

_COLUMNS = "name, role_id, created, trust_policy, max_session"


def _role(row: tuple[object, ...]) -> Role:
    name, role_id, created, trust, longest = row
    return Role(str(name), str(role_id), float(created), str(trust), int(longest))  # type: ignore[arg-type,call-overload]


class SQLiteRoles(SQLiteConnection):
    """`catalog.roles.RoleCatalog`."""

    async def create_role(self, role: Role) -> None:
        def run(db: sqlite3.Connection) -> None:
            try:
                db.execute(
                    f"INSERT INTO roles ({_COLUMNS}) VALUES (?, ?, ?, ?, ?)",
                    (role.name, role.id, role.created, role.trust_policy, role.max_session),
                )
            except sqlite3.IntegrityError as exc:
                raise IdentityExists(f"role {role.name}") from exc
            bump_rights(db)

        await self._call(partial(self._in_transaction, run))

    async def roles(self) -> list[Role]:
        return self._read(
            lambda db: [_role(r) for r in db.execute(f"SELECT {_COLUMNS} FROM roles ORDER BY name")]
        )

    async def role(self, name: str) -> Role | None:
        def run(db: sqlite3.Connection) -> Role | None:
            row = db.execute(f"SELECT {_COLUMNS} FROM roles WHERE name = ?", (name,)).fetchone()
            return None if row is None else _role(row)

        return self._read(run)

    async def update_role(
        self, name: str, *, trust_policy: str | None = None, max_session: int | None = None
    ) -> None:
        def run(db: sqlite3.Connection) -> None:
            cursor = db.execute(
                "UPDATE roles SET trust_policy = coalesce(?, trust_policy), "
                "max_session = coalesce(?, max_session) WHERE name = ?",
                (trust_policy, max_session, name),
            )
            if cursor.rowcount == 0:
                raise IdentityNotFound(f"role {name}")
            bump_rights(db)

        await self._call(partial(self._in_transaction, run))

    async def delete_role(self, name: str) -> None:
        def run(db: sqlite3.Connection) -> None:
            if db.execute("DELETE FROM roles WHERE name = ?", (name,)).rowcount == 0:
                raise IdentityNotFound(f"role {name}")
            db.execute("DELETE FROM identity_policies WHERE kind = 'role' AND name = ?", (name,))
            bump_rights(db)

        await self._call(partial(self._in_transaction, run))
