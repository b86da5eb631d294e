"""The rights-change counter in PostgreSQL: a one-row table (migration 2) bumped by
`bump_rights` inside each write transaction that changes rights. PostgreSQL offers no cheap
"anything committed since" signal a worker could read without a round trip (SQLite's
`PRAGMA data_version`), so the mark is new on every call and the counter (one primary-key
read) is read before each request: the strict choice of decision 0035."""

from __future__ import annotations

import itertools

from egide.catalog.postgres.connection import Db, PostgresConnection, one


async def bump_rights(db: Db) -> None:
    """Move the counter; call it inside the transaction of the change, after its other
    writes (every writer takes the counter's row lock last, so no two wait on each other)."""
    await db.execute("UPDATE rights SET version = version + 1 WHERE id = 1")


class PostgresRights(PostgresConnection):
    """`catalog.rights.RightsCatalog`."""

    _marks = itertools.count()

    async def rights_version(self) -> int:
        async def read(db: Db) -> int:
            row = await one(db, "SELECT version FROM rights WHERE id = 1")
            assert row is not None
            return int(row[0])

        return await self._read(read)

    def changes_mark(self) -> int:
        return next(self._marks)
