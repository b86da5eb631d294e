"""The PostgreSQL catalog's side of catalog recovery (egide.catalog.backup).

Catalog files stay what they are: self-contained SQLite catalog files (what snapshots store,
what restore and rebuild write and read). A PostgreSQL catalog's `copy_to` writes one: every
table read in one REPEATABLE READ, READ ONLY transaction (one consistent state while writers
go on), streamed into a new SQLite catalog file of the current schema, row for row (the two
schemas have the same tables and columns). A snapshot of a PostgreSQL catalog therefore
restores onto either backend. Putting a catalog file in place of a PostgreSQL catalog (restore,
rebuild) is not done yet: `egide.catalog.install_catalog` refuses it, saying so.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from pathlib import Path

from egide.catalog.postgres.connection import Db, PostgresConnection
from egide.catalog.sqlite.schema import MIGRATIONS as SQLITE_MIGRATIONS
from egide.owner_only import owner_only_file

#: Every table of the catalog, in an order that inserts referenced rows first.
TABLES = (
    "account", "users", "groups", "group_members", "credentials", "identity_policies", "roles",
    "account_settings", "buckets", "bucket_settings", "bucket_key_generations",
    "shredded_buckets", "versions", "objects", "packs", "part_files", "uploads", "parts",
    "ended_uploads", "trash", "sightings", "damaged", "jobs", "reports", "rights",
    "iceberg_namespaces", "iceberg_tables",
)  # fmt: skip
#: Rows read and written at a time.
BATCH = 2000


def _new_file(target: Path) -> sqlite3.Connection:
    """A new SQLite catalog file at `target` (owner only), of the current schema, emptied (its
    first migration draws an account: the copied one replaces it), in one open transaction."""
    owner_only_file(target)
    # Used by one thread at a time (asyncio.to_thread's, in turn).
    db = sqlite3.connect(target, isolation_level=None, check_same_thread=False)
    for number, script in enumerate(SQLITE_MIGRATIONS, start=1):
        db.executescript(f"BEGIN; {script}; PRAGMA user_version={number}; COMMIT;")
    db.execute("BEGIN")
    for table in TABLES:
        db.execute(f"DELETE FROM {table}")
    return db


def _insert(
    db: sqlite3.Connection, table: str, columns: list[str], batch: list[tuple[object, ...]]
) -> None:
    marks = ", ".join("?" * len(columns))
    db.executemany(f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks})", batch)


class PostgresBackup(PostgresConnection):
    """`CatalogBackup`: the live catalog's consistent copy into a catalog file."""

    async def copy_to(self, target: Path) -> None:
        sink = await asyncio.to_thread(_new_file, target)
        try:

            async def copy(db: Db) -> None:
                await db.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
                for table in TABLES:
                    async with db.cursor(name=f"copy_{table}") as cur:
                        await cur.execute(f"SELECT * FROM {table}")
                        assert cur.description is not None
                        columns = [column.name for column in cur.description]
                        while batch := await cur.fetchmany(BATCH):
                            await asyncio.to_thread(_insert, sink, table, columns, batch)

            await self._transaction(copy)
            await asyncio.to_thread(sink.execute, "COMMIT")
        except BaseException:
            sink.close()
            with contextlib.suppress(FileNotFoundError):
                target.unlink()
            raise
        sink.close()
