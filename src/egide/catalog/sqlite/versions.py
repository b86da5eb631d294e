"""Object versions in SQLite: group commit, reads, deletes, Object Lock, tags, listing."""

from __future__ import annotations

import asyncio
import json
import sqlite3
from functools import partial

from egide.catalog import rules
from egide.catalog.rules import prefix_end
from egide.catalog.sqlite.changes import _commit_each, _trash_version, _unref_pack
from egide.catalog.sqlite.connection import SQLiteConnection
from egide.catalog.sqlite.rows import _VERSION_COLUMNS, _Commit, _select_version, _version
from egide.clock import Clock
from egide.domain import DomainError, KeyNotFound, ObjectVersion, WriteCondition

#: Listing rows up to which a query is a probe: read at once on the reader connection, like
#: get_object, instead of a hop to the catalog thread (a delimiter listing makes one probe
#: per common prefix, and the hop costs more than the probe).
PROBE = 8


class SQLiteVersions(SQLiteConnection):
    """`catalog.versions.VersionCatalog`. Versions are group-committed: every version waiting while
    a transaction runs is committed in the next one, so many PUTs share one fsync."""

    async def get_object(self, bucket_id: bytes, key: str) -> ObjectVersion | None:
        def run(db: sqlite3.Connection) -> ObjectVersion | None:
            row = db.execute(
                f"SELECT {_VERSION_COLUMNS} FROM objects o JOIN versions v USING (version_id) "
                "WHERE o.bucket_id = ? AND o.key = ?",
                (bucket_id, key),
            ).fetchone()
            return _version(row) if row else None

        return self._read(run)

    async def get_version(
        self, bucket_id: bytes, key: str, version_id: bytes | None
    ) -> ObjectVersion | None:
        def run(db: sqlite3.Connection) -> ObjectVersion | None:
            row = db.execute(*_select_version(bucket_id, key, version_id)).fetchone()
            return _version(row) if row else None

        return self._read(run)

    async def get_version_by_id(self, version_id: bytes) -> ObjectVersion | None:
        def run(db: sqlite3.Connection) -> ObjectVersion | None:
            row = db.execute(
                f"SELECT {_VERSION_COLUMNS} FROM versions v WHERE version_id = ?", (version_id,)
            ).fetchone()
            return _version(row) if row else None

        return self._read(run)

    async def commit_version(
        self, version: ObjectVersion, condition: WriteCondition | None = None
    ) -> None:
        future = asyncio.get_running_loop().create_future()
        self._commits.append(((version, condition), future))
        if self._committer is None:
            self._committer = asyncio.ensure_future(self._commit_waiting())
        await future

    async def _commit_waiting(self) -> None:
        try:
            while self._commits:
                batch, self._commits = self._commits, []
                items = [item for item, _ in batch]
                try:
                    commit = partial(self._commit_batch, items=items, clock=self._clock)
                    results = await self._call(commit)
                except Exception as exc:
                    for _, future in batch:
                        if not future.done():  # a waiter cancelled (client gone) is skipped
                            future.set_exception(exc)
                    continue
                for (_, future), error in zip(batch, results, strict=True):
                    if future.done():  # cancelled: its version is committed all the same
                        continue
                    if error is None:
                        future.set_result(None)
                    else:
                        future.set_exception(error)
        finally:
            self._committer = None

    @staticmethod
    def _commit_batch(
        db: sqlite3.Connection, items: list[_Commit], clock: Clock
    ) -> list[DomainError | None]:
        """Commit in order, in one transaction; one version's error does not sink the rest."""
        with db:
            db.execute("BEGIN IMMEDIATE")
            return _commit_each(db, items, clock.time())

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

        def run(db: sqlite3.Connection) -> list[DomainError | None]:
            now = self._clock.time()
            with db:
                db.execute("BEGIN IMMEDIATE")
                # Count every version first: one of them may replace another of the same pack
                # (two PUTs of one key in one batch), which takes its reference away at once.
                db.execute(
                    "INSERT INTO packs (name, sites, live) VALUES (?, ?, ?)",
                    (name, json.dumps(sorted(sites)), len(versions)),
                )
                results = _commit_each(db, items, now)
                if failed := sum(1 for error in results if error is not None):
                    _unref_pack(db, name, now, failed)
            return results

        return await self._call(run)

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
        current. Returns it, or None if there was no such version (or, with `expected`, if
        the key's current version is no longer `expected`: a lifecycle rule decided on it).
        Raises ObjectLocked while Object Lock protects it."""

        def run(db: sqlite3.Connection) -> ObjectVersion | None:
            now = self._clock.time()
            with db:
                db.execute("BEGIN IMMEDIATE")
                row = db.execute(*_select_version(bucket_id, key, version_id)).fetchone()
                if row is None:
                    return None
                version = _version(row)
                current = db.execute(
                    "SELECT version_id FROM objects WHERE bucket_id = ? AND key = ?",
                    (bucket_id, key),
                ).fetchone()
                if not rules.still_expected(expected, current[0] if current else None):
                    return None
                rules.check_delete(version, now, bypass_governance=bypass_governance)
                if current is not None and current[0] == version.version_id:
                    # The pointer moves first: it references the row about to go.
                    newest = db.execute(
                        "SELECT version_id FROM versions WHERE bucket_id = ? AND key = ? "
                        "AND version_id != ? ORDER BY seq DESC LIMIT 1",
                        (bucket_id, key, version.version_id),
                    ).fetchone()
                    if newest is None:
                        db.execute(
                            "DELETE FROM objects WHERE bucket_id = ? AND key = ?", (bucket_id, key)
                        )
                    else:
                        db.execute(
                            "UPDATE objects SET version_id = ? WHERE bucket_id = ? AND key = ?",
                            (newest[0], bucket_id, key),
                        )
                _trash_version(db, version.version_id, now)
                return version

        return await self._call(run)

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
        """Change a version's retention (mode, until; (None, None) removes it) or legal hold.
        An active COMPLIANCE retention can only be extended; an active GOVERNANCE one can be
        shortened, weakened or removed only with `bypass_governance`. Raises NoSuchVersion
        via KeyNotFound, ObjectLocked."""

        def run(db: sqlite3.Connection) -> ObjectVersion:
            with db:
                db.execute("BEGIN IMMEDIATE")
                row = db.execute(*_select_version(bucket_id, key, version_id)).fetchone()
                if row is None:
                    raise KeyNotFound(key)
                version = _version(row)
                if retention is not None:
                    rules.check_retention_change(
                        version, retention, bypass_governance, self._clock.time()
                    )
                    mode, until = retention
                    db.execute(
                        "UPDATE versions SET retention_mode = ?, retain_until = ? "
                        "WHERE version_id = ?",
                        (mode, until, version.version_id),
                    )
                if legal_hold is not None:
                    db.execute(
                        "UPDATE versions SET legal_hold = ? WHERE version_id = ?",
                        (legal_hold, version.version_id),
                    )
                return _version(db.execute(*_select_version(bucket_id, key, version_id)).fetchone())

        return await self._call(run)

    async def update_version_headers(self, version_id: bytes, headers: dict[str, str]) -> bool:
        """Replace a version's headers; False if the version is gone."""

        def run(db: sqlite3.Connection) -> bool:
            cursor = db.execute(
                "UPDATE versions SET headers = ? WHERE version_id = ?",
                (json.dumps(headers), version_id),
            )
            return cursor.rowcount > 0

        return await self._call(run)

    async def list_versions(
        self, bucket_id: bytes, prefix: str, after: tuple[str, int] | None, limit: int
    ) -> list[tuple[ObjectVersion, bool]]:
        """(version, is it the key's newest) for keys starting with `prefix`, by key and then
        newest first, after the (key, seq) position `after` (seq 0: after every version of
        the key; a seq above every real one: from the key's newest)."""

        def run(db: sqlite3.Connection) -> list[tuple[ObjectVersion, bool]]:
            # One lower bound, the further of prefix and cursor: SQLite seeks the index to it
            # (given two, it seeks to one and scans every key up to the other).
            lower = prefix if after is None else max(prefix, after[0])
            sql = (
                f"SELECT {_VERSION_COLUMNS}, o.version_id IS NOT NULL FROM versions v "
                "LEFT JOIN objects o ON o.bucket_id = v.bucket_id AND o.key = v.key "
                "AND o.version_id = v.version_id WHERE v.bucket_id = ? AND v.key >= ?"
            )
            args: list[object] = [bucket_id, lower]
            if (end := prefix_end(prefix)) is not None:
                sql += " AND v.key < ?"
                args.append(end)
            if after is not None:
                sql += " AND (v.key > ? OR (v.key = ? AND v.seq < ?))"
                args += [after[0], after[0], after[1]]
            sql += " ORDER BY v.key, v.seq DESC LIMIT ?"
            args.append(limit)
            return [(_version(row), bool(row[-1])) for row in db.execute(sql, args)]

        return self._read(run) if limit <= PROBE else await self._call(run)

    async def list_objects(
        self,
        bucket_id: bytes,
        prefix: str,
        after: str | None,
        limit: int,
        *,
        inclusive: bool = False,
    ) -> list[ObjectVersion]:
        def run(db: sqlite3.Connection) -> list[ObjectVersion]:
            # One lower bound, the further of prefix and cursor: SQLite seeks the primary key
            # to it (given two, it seeks to one and scans every key up to the other). Python
            # orders str by code point, as SQLite's BINARY collation orders UTF-8 bytes.
            lower, strict = prefix, False
            if after is not None and after >= prefix:
                lower, strict = after, not inclusive
            sql = (
                f"SELECT {_VERSION_COLUMNS} FROM objects o JOIN versions v USING (version_id) "
                f"WHERE o.bucket_id = ? AND o.key {'>' if strict else '>='} ? "
                "AND v.delete_marker = 0"
            )
            args: list[object] = [bucket_id, lower]
            if (end := prefix_end(prefix)) is not None:
                sql += " AND o.key < ?"
                args.append(end)
            sql += " ORDER BY o.key LIMIT ?"
            args.append(limit)
            return [_version(row) for row in db.execute(sql, args)]

        return self._read(run) if limit <= PROBE else await self._call(run)
