"""The PostgreSQL catalog's plumbing: the pool of connections, migrations at open, reads in
autocommit, write transactions retried on serialization failures and deadlocks.

Every connection of the pool is in autocommit: a read is one statement, a write that needs
several runs in `_transaction` (READ COMMITTED, PostgreSQL's default), which row locks and
per-key advisory locks make correct when several gateways write at once.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar
from urllib.parse import urlsplit, urlunsplit

import psycopg
from psycopg import AsyncConnection
from psycopg.errors import DeadlockDetected, SerializationFailure
from psycopg_pool import AsyncConnectionPool

from egide.catalog.errors import CatalogOpenError
from egide.catalog.postgres.schema import KEY_LOCK_CLASS, migrate
from egide.clock import SYSTEM_CLOCK, Clock

T = TypeVar("T")

#: A connection of the pool (rows as tuples).
Db = AsyncConnection[tuple[Any, ...]]

#: Attempts of a write transaction that PostgreSQL aborted for a serialization failure or a
#: deadlock (another gateway's transaction won); after them the error is the caller's.
ATTEMPTS = 5
#: Seconds to wait for a connection before an operation fails (the database is gone).
POOL_TIMEOUT = 30.0


class CatalogUnreachable(CatalogOpenError):
    """The database could not be reached at open (the message names it, without password)."""


def redacted(url: str) -> str:
    """`url` without its password, to name it in messages and logs."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    netloc = f"{parts.username or ''}@{host}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc))


async def one(db: Db, sql: str, args: Sequence[object] = ()) -> tuple[Any, ...] | None:
    return await (await db.execute(sql, args)).fetchone()


async def rows(db: Db, sql: str, args: Sequence[object] = ()) -> list[tuple[Any, ...]]:
    return await (await db.execute(sql, args)).fetchall()


async def run(db: Db, sql: str, args: Sequence[object] = ()) -> int:
    """Execute `sql`; how many rows it changed."""
    return (await db.execute(sql, args)).rowcount


async def lock_keys(db: Db, keys: Sequence[tuple[bytes, str]]) -> None:
    """Hold, until the transaction ends, the lock of each (bucket id, key): every write of a
    key's versions takes it first, so two gateways writing one key take turns (a key without
    any row yet has no row to lock). Taken in one fixed order, so that no two writers each
    hold one another wants."""
    for bucket_id, key in sorted(set(keys)):
        await db.execute(
            "SELECT pg_advisory_xact_lock(%s, hashtext(encode(%s::BYTEA, 'hex') || '/' || %s))",
            (KEY_LOCK_CLASS, bucket_id, key),
        )


class PostgresConnection:
    """The pool every concern of the PostgreSQL catalog uses. It opens in the first event
    loop that uses it (a pool belongs to one loop); migrations run at `open()`, before."""

    def __init__(
        self,
        url: str,
        *,
        password: str | None = None,
        clock: Clock = SYSTEM_CLOCK,
        max_size: int = 10,
    ) -> None:
        self._url = url
        self._password = password
        #: Wall time as the catalog stamps rows and judges Object Lock retentions by.
        self._clock = clock
        self._max_size = max_size
        self._pool: AsyncConnectionPool[Db] | None = None
        self._opening: asyncio.Lock | None = None

    @property
    def url(self) -> str:
        """The database, without password."""
        return redacted(self._url)

    def _conninfo(self) -> str:
        extra = {"password": self._password} if self._password is not None else {}
        return psycopg.conninfo.make_conninfo(self._url, **extra)

    def _connect(self) -> psycopg.Connection[tuple[Any, ...]]:
        try:
            return psycopg.connect(self._conninfo(), connect_timeout=10)
        except psycopg.OperationalError as exc:
            said = str(exc).replace(self._password or "\0", "***").split()
            raise CatalogUnreachable(
                f"cannot reach the catalog database {self.url}: {' '.join(said)}"
            ) from None

    def schema_present(self) -> bool:
        """Whether the database holds a catalog (any gateway ever opened it)."""
        with self._connect() as db:
            row = db.execute("SELECT to_regclass('schema_version') IS NOT NULL").fetchone()
            return bool(row and row[0])

    def other_sessions(self) -> int:
        """How many other sessions have this database open (running gateways)."""
        with self._connect() as db:
            row = db.execute(
                "SELECT count(*) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid != pg_backend_pid()"
            ).fetchone()
            return int(row[0]) if row else 0

    def open(self) -> None:
        """Check that the database answers and bring it to the current schema; called once,
        before serving. Raises CatalogUnreachable, schema.CatalogTooNew."""
        with self._connect() as db:
            migrate(db, self.url)

    async def _connections(self) -> AsyncConnectionPool[Db]:
        if self._pool is not None:
            return self._pool
        if self._opening is None:
            self._opening = asyncio.Lock()
        async with self._opening:
            if self._pool is None:
                pool: AsyncConnectionPool[Db] = AsyncConnectionPool(
                    self._conninfo(), min_size=1, max_size=self._max_size, open=False,
                    kwargs={"autocommit": True}, timeout=POOL_TIMEOUT, name="egide-catalog",
                )  # fmt: skip
                await pool.open(wait=True, timeout=POOL_TIMEOUT)
                self._pool = pool
        return self._pool

    async def _read(self, fn: Callable[[Db], Awaitable[T]]) -> T:
        """`fn` on a connection in autocommit: each statement sees what is committed."""
        async with (await self._connections()).connection() as db:
            return await fn(db)

    async def _transaction(self, fn: Callable[[Db], Awaitable[T]]) -> T:
        """`fn` in one transaction, run again (whole) if PostgreSQL aborted it for a
        serialization failure or a deadlock; `fn` reads the clock itself, each time."""
        pool = await self._connections()
        for attempt in range(1, ATTEMPTS + 1):
            try:
                async with pool.connection() as db, db.transaction():
                    return await fn(db)
            except (SerializationFailure, DeadlockDetected):
                if attempt == ATTEMPTS:
                    raise
                await asyncio.sleep(random.uniform(0.001, 0.01) * attempt)
        raise AssertionError("unreachable")

    async def close(self) -> None:
        if self._pool is not None:
            await self._pool.close()
            self._pool = None
