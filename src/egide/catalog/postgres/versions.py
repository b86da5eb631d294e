"""Object versions in PostgreSQL: commits, reads, deletes, Object Lock, tags, listing.

Each commit is its own transaction (the pool's connections commit side by side; SQLite's
group commit exists to share one fsync per writer thread). Every write of a key takes that
key's lock (`connection.lock_keys`) before reading what it decides on, so two gateways
writing one key are decided in turn: exactly one conditional write wins, a delete and a
commit never interleave. Listings are keyset-paginated on (bucket, key[, seq]) in
code-point order (`COLLATE "C"`), one lower bound seeking the index, never an OFFSET.
"""

from __future__ import annotations

import json

from egide.catalog import rules
from egide.catalog.postgres.changes import commit_each, trash_version, unref_pack
from egide.catalog.postgres.connection import Db, PostgresConnection, lock_keys, one, rows, run
from egide.catalog.postgres.rows import VERSION_COLUMNS, before_nul, select_version, version
from egide.catalog.rules import prefix_end
from egide.domain import DomainError, KeyNotFound, ObjectVersion, WriteCondition


def versions_query(
    bucket_id: bytes, prefix: str, after: tuple[str, int] | None, limit: int
) -> tuple[str, list[object]]:
    """`list_versions`' query: one lower bound (the further of prefix and cursor) on the index
    (bucket, key, seq DESC), read in its order up to `limit` rows."""
    if after is not None and (cut := before_nul(after[0])) is not None:
        after = (cut, 0)  # after every version of `cut`: the next key is past the bound
    lower = prefix if after is None else max(prefix, after[0])
    sql = (
        f"SELECT {VERSION_COLUMNS}, o.version_id IS NOT NULL FROM versions v "
        "LEFT JOIN objects o ON o.bucket_id = v.bucket_id AND o.key = v.key "
        "AND o.version_id = v.version_id WHERE v.bucket_id = %s AND v.key >= %s"
    )
    args: list[object] = [bucket_id, lower]
    if (end := prefix_end(prefix)) is not None:
        sql += " AND v.key < %s"
        args.append(end)
    if after is not None:
        sql += " AND (v.key > %s OR (v.key = %s AND v.seq < %s))"
        args += [after[0], after[0], after[1]]
    sql += " ORDER BY v.key, v.seq DESC LIMIT %s"
    args.append(limit)
    return sql, args


def objects_query(
    bucket_id: bytes, prefix: str, after: str | None, limit: int, inclusive: bool
) -> tuple[str, list[object]]:
    """`list_objects`' query: one lower bound (the further of prefix and cursor) on the primary
    key (bucket, key COLLATE "C"), so that a delimiter listing's jump past a common prefix
    (a cursor at its end, limit 1) is one index probe, however many keys the prefix holds."""
    lower, strict = prefix, False
    if after is not None and after >= prefix:
        lower, strict = after, not inclusive
        if (cut := before_nul(after)) is not None:
            lower, strict = cut, True
    sql = (
        f"SELECT {VERSION_COLUMNS} FROM objects o JOIN versions v USING (version_id) "
        f"WHERE o.bucket_id = %s AND o.key {'>' if strict else '>='} %s "
        "AND NOT v.delete_marker"
    )
    args: list[object] = [bucket_id, lower]
    if (end := prefix_end(prefix)) is not None:
        sql += " AND o.key < %s"
        args.append(end)
    sql += " ORDER BY o.key LIMIT %s"
    args.append(limit)
    return sql, args


class PostgresVersions(PostgresConnection):
    """`catalog.versions.VersionCatalog`."""

    async def get_object(self, bucket_id: bytes, key: str) -> ObjectVersion | None:
        async def read(db: Db) -> ObjectVersion | None:
            row = await one(
                db,
                f"SELECT {VERSION_COLUMNS} FROM objects o JOIN versions v USING (version_id) "
                "WHERE o.bucket_id = %s AND o.key = %s",
                (bucket_id, key),
            )
            return version(row) if row else None

        return await self._read(read)

    async def get_version(
        self, bucket_id: bytes, key: str, version_id: bytes | None
    ) -> ObjectVersion | None:
        async def read(db: Db) -> ObjectVersion | None:
            row = await one(db, *select_version(bucket_id, key, version_id))
            return version(row) if row else None

        return await self._read(read)

    async def get_version_by_id(self, version_id: bytes) -> ObjectVersion | None:
        async def read(db: Db) -> ObjectVersion | None:
            row = await one(
                db, f"SELECT {VERSION_COLUMNS} FROM versions v WHERE version_id = %s", (version_id,)
            )
            return version(row) if row else None

        return await self._read(read)

    async def commit_version(
        self, version: ObjectVersion, condition: WriteCondition | None = None
    ) -> None:
        async def write(db: Db) -> list[DomainError | None]:
            return await commit_each(db, [(version, condition)], self._clock.time())

        (error,) = await self._transaction(write)
        if error is not None:
            raise error

    async def commit_pack(
        self,
        name: str,
        sites: list[str],
        versions: list[ObjectVersion],
        conditions: list[WriteCondition | None] | None = None,
    ) -> list[DomainError | None]:
        """Record a written pack and commit the versions it holds, in one transaction; the
        pack keeps one reference per live version."""
        items = list(zip(versions, conditions or [None] * len(versions), strict=True))

        async def write(db: Db) -> list[DomainError | None]:
            now = self._clock.time()
            # Count every version first: one of them may replace another of the same pack
            # (two PUTs of one key in one batch), which takes its reference away at once.
            await db.execute(
                "INSERT INTO packs (name, sites, live) VALUES (%s, %s, %s)",
                (name, json.dumps(sorted(sites)), len(versions)),
            )
            results = await commit_each(db, items, now)
            if failed := sum(1 for error in results if error is not None):
                await unref_pack(db, name, now, failed)
            return results

        return await self._transaction(write)

    async def delete_version(
        self,
        bucket_id: bytes,
        key: str,
        version_id: bytes | None,
        *,
        bypass_governance: bool = False,
        expected: bytes | None = None,
    ) -> ObjectVersion | None:
        """Remove one version for good (None: the null version); the next newest becomes
        current. None if there was no such version (or, with `expected`, if the key's current
        version is no longer `expected`). Raises ObjectLocked while Object Lock protects it."""

        async def write(db: Db) -> ObjectVersion | None:
            now = self._clock.time()
            await lock_keys(db, [(bucket_id, key)])
            row = await one(db, *select_version(bucket_id, key, version_id, lock=True))
            if row is None:
                return None
            gone = version(row)
            current = await one(
                db,
                "SELECT version_id FROM objects WHERE bucket_id = %s AND key = %s FOR UPDATE",
                (bucket_id, key),
            )
            if not rules.still_expected(expected, bytes(current[0]) if current else None):
                return None
            rules.check_delete(gone, now, bypass_governance=bypass_governance)
            if current is not None and bytes(current[0]) == gone.version_id:
                # The pointer moves first: it references the row about to go.
                newest = await one(
                    db,
                    "SELECT version_id FROM versions WHERE bucket_id = %s AND key = %s "
                    "AND version_id != %s ORDER BY seq DESC LIMIT 1",
                    (bucket_id, key, gone.version_id),
                )
                if newest is None:
                    await db.execute(
                        "DELETE FROM objects WHERE bucket_id = %s AND key = %s", (bucket_id, key)
                    )
                else:
                    await db.execute(
                        "UPDATE objects SET version_id = %s WHERE bucket_id = %s AND key = %s",
                        (newest[0], bucket_id, key),
                    )
            await trash_version(db, gone.version_id, now)
            return gone

        return await self._transaction(write)

    async def set_lock(
        self,
        bucket_id: bytes,
        key: str,
        version_id: bytes | None,
        *,
        retention: tuple[str | None, float | None] | None = None,
        legal_hold: bool | None = None,
        bypass_governance: bool = False,
    ) -> ObjectVersion:
        """Change a version's retention (mode, until; (None, None) removes it) or legal hold,
        the version's row locked while the rule decides. Raises KeyNotFound, ObjectLocked."""

        async def write(db: Db) -> ObjectVersion:
            row = await one(db, *select_version(bucket_id, key, version_id, lock=True))
            if row is None:
                raise KeyNotFound(key)
            locked = version(row)
            if retention is not None:
                rules.check_retention_change(
                    locked, retention, bypass_governance, self._clock.time()
                )
                mode, until = retention
                await db.execute(
                    "UPDATE versions SET retention_mode = %s, retain_until = %s "
                    "WHERE version_id = %s",
                    (mode, until, locked.version_id),
                )
            if legal_hold is not None:
                await db.execute(
                    "UPDATE versions SET legal_hold = %s WHERE version_id = %s",
                    (legal_hold, locked.version_id),
                )
            changed = await one(db, *select_version(bucket_id, key, version_id))
            assert changed is not None
            return version(changed)

        return await self._transaction(write)

    async def update_version_headers(self, version_id: bytes, headers: dict[str, str]) -> bool:
        """Replace a version's headers (one statement); False if the version is gone."""

        async def write(db: Db) -> bool:
            return (
                await run(
                    db,
                    "UPDATE versions SET headers = %s WHERE version_id = %s",
                    (json.dumps(headers), version_id),
                )
                > 0
            )

        return await self._read(write)

    async def list_versions(
        self, bucket_id: bytes, prefix: str, after: tuple[str, int] | None, limit: int
    ) -> list[tuple[ObjectVersion, bool]]:
        """(version, is it the key's newest) for keys starting with `prefix`, by key and then
        newest first, after the (key, seq) position `after` (seq 0: after every version of
        the key; a seq above every real one: from the key's newest)."""
        if before_nul(prefix) is not None:
            return []  # no key holds a NUL

        async def read(db: Db) -> list[tuple[ObjectVersion, bool]]:
            found = await rows(db, *versions_query(bucket_id, prefix, after, limit))
            return [(version(row), bool(row[-1])) for row in found]

        return await self._read(read)

    async def list_objects(
        self,
        bucket_id: bytes,
        prefix: str,
        after: str | None,
        limit: int,
        *,
        inclusive: bool = False,
    ) -> list[ObjectVersion]:
        if before_nul(prefix) is not None:
            return []  # no key holds a NUL

        async def read(db: Db) -> list[ObjectVersion]:
            found = await rows(db, *objects_query(bucket_id, prefix, after, limit, inclusive))
            return [version(row) for row in found]

        return await self._read(read)
