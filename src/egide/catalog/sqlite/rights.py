"""The rights-change counter in SQLite: a one-row table (schema 13) bumped by `bump_rights`
inside each write transaction that changes rights, and `PRAGMA data_version` on the reader
connection as the mark (it changes whenever another connection, the writer included, has
committed since the reader last asked)."""

from __future__ import annotations

import sqlite3

from egide.catalog.sqlite.connection import SQLiteConnection


def bump_rights(db: sqlite3.Connection) -> None:
    """Move the counter; call it inside the transaction of the change."""
    db.execute("UPDATE rights SET version = version + 1")


class SQLiteRights(SQLiteConnection):
    """`catalog.rights.RightsCatalog`."""

    async def rights_version(self) -> int:
        return self._read(lambda db: int(db.execute("SELECT version FROM rights").fetchone()[0]))

    def changes_mark(self) -> int:
        return self._read(lambda db: int(db.execute("PRAGMA data_version").fetchone()[0]))
