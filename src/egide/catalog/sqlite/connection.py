"""The SQLite catalog's plumbing: one connection on one writer thread, a read-only
connection for point reads, migrations at open, transactions."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TypeVar

from egide.catalog.sqlite.rows import _Commit
from egide.catalog.sqlite.schema import MIGRATIONS
from egide.clock import SYSTEM_CLOCK, Clock
from egide.owner_only import owner_only_file, tighten

T = TypeVar("T")


def _closing(fn: Callable[[sqlite3.Connection], T], db: sqlite3.Connection) -> T:
    """Run `fn` on the writer thread. A cursor it returns (`lambda db: db.execute(…)`) is
    closed here: finalised later by the garbage collector on another thread, it would touch
    the connection while this thread uses it (SQLite: "bad parameter or other API misuse")."""
    result = fn(db)
    if isinstance(result, sqlite3.Cursor):
        result.close()
        return None  # type: ignore[return-value]
    return result


class SQLiteConnection:
    """The connections and the writer thread every concern of the SQLite catalog uses."""

    def __init__(self, path: Path, clock: Clock = SYSTEM_CLOCK) -> None:
        self._path = path
        #: Wall time as the catalog stamps rows (trash, jobs, credentials) and judges Object
        #: Lock retentions by.
        self._clock = clock
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="egide-catalog")
        self._db: sqlite3.Connection | None = None
        self._reader: sqlite3.Connection | None = None
        #: Versions waiting for the next group commit (`versions.SQLiteVersions`).
        self._commits: list[tuple[_Commit, asyncio.Future[None]]] = []
        #: The task committing waiting versions, while there is one.
        self._committer: asyncio.Future[None] | None = None

    @property
    def path(self) -> Path:
        """The database file (catalog snapshots copy it)."""
        return self._path

    def open(self) -> None:
        """Open (creating if needed) and migrate; called once, before serving."""
        self._thread.submit(self._open).result()

    def _open(self) -> None:
        # Names, metadata and tags are in clear here; the -wal and -shm files SQLite creates
        # take the database file's mode, so creating it 0600 first covers all three.
        owner_only_file(self._path)
        for suffix in ("-wal", "-shm"):
            tighten(self._path.with_name(self._path.name + suffix))
        db = sqlite3.connect(self._path, isolation_level=None, check_same_thread=False)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=FULL")
        db.execute("PRAGMA foreign_keys=ON")
        db.execute("PRAGMA busy_timeout=10000")
        current = db.execute("PRAGMA user_version").fetchone()[0]
        if current > len(MIGRATIONS):
            db.close()
            raise RuntimeError(
                f"catalog {self._path} has schema {current}, newer than this Égide "
                f"({len(MIGRATIONS)}): upgrade Égide"
            )
        for number, script in enumerate(MIGRATIONS[current:], start=current + 1):
            db.executescript(f"BEGIN; {script}; PRAGMA user_version={number}; COMMIT;")
        self._db = db
        reader = sqlite3.connect(self._path, isolation_level=None, check_same_thread=False)
        reader.execute("PRAGMA query_only=1")
        self._reader = reader

    def _read(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        assert self._reader is not None, "catalog not opened"
        return fn(self._reader)

    async def _call(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        db = self._db
        assert db is not None, "catalog not opened"
        return await asyncio.get_running_loop().run_in_executor(self._thread, _closing, fn, db)

    async def close(self) -> None:
        if self._db is not None:
            await self._call(lambda db: db.close())
            self._db = None
        if self._reader is not None:
            self._reader.close()
            self._reader = None
        self._thread.shutdown()

    @staticmethod
    def _in_transaction(fn: Callable[[sqlite3.Connection], T], db: sqlite3.Connection) -> T:
        db.execute("BEGIN IMMEDIATE")
        try:
            result = fn(db)
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")
        return result
