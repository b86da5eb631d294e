"""The SQLite catalog's side of catalog recovery (egide.catalog.backup): its catalog file is
the database file itself, left in rollback-journal mode so that nothing is needed beside it.

A copy is SQLite's online backup (writers go on; the copy is one consistent state), read
through a connection of its own; recovery's writes run on the catalog's writer thread, in one
transaction. The location functions work on the live database file and its `-wal`/`-shm`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import sqlite3
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import TypeVar

from egide.catalog.backup import CatalogRepair
from egide.catalog.identities import Identities
from egide.catalog.sqlite.connection import SQLiteConnection
from egide.catalog.sqlite.identities import replace_identities
from egide.catalog.sqlite.rows import _VERSION_INSERT, _version_row
from egide.domain import Bucket, ObjectVersion, Part, shard_name

T = TypeVar("T")

#: Which version each part file id (decision 0018) belongs to (garbage collection's index).
_PART_FILES_INSERT = "INSERT OR REPLACE INTO part_files (file_id, version_id) VALUES (?, ?)"
_JOURNAL_SUFFIXES = ("-wal", "-shm")


def _part_file_rows(versions: Iterable[ObjectVersion]) -> list[tuple[bytes, bytes]]:
    return [(p.pid, v.version_id) for v in versions for p in v.parts if p.pid]


class SQLiteBackup(SQLiteConnection):
    """Mixed into SQLiteCatalog: `CatalogBackup` and `CatalogRecovery` over its file."""

    async def copy_to(self, target: Path) -> None:
        await asyncio.to_thread(backup_file, self.path, target)

    async def fill(
        self,
        buckets: Sequence[Bucket],
        keys: Mapping[tuple[bytes, str], Sequence[ObjectVersion]],
        settings: Mapping[bytes, Mapping[str, str]],
        retired: Mapping[bytes, Sequence[bytes]],
        credentials: Identities,
    ) -> None:
        def run(db: sqlite3.Connection) -> None:
            packs: dict[str, tuple[set[str], int]] = {}
            db.executemany(
                "INSERT INTO buckets (id, name, created, wrapped_key) VALUES (?, ?, ?, ?)",
                [(b.id, b.name, b.created, b.wrapped_key) for b in buckets],
            )
            now = self._clock.time()
            db.executemany(
                "INSERT INTO bucket_key_generations (bucket_id, generation, wrapped_key, "
                "retired) VALUES (?, ?, ?, ?)",
                [
                    (bucket_id, len(wrapped_keys) - i, wrapped, now)
                    for bucket_id, wrapped_keys in retired.items()
                    for i, wrapped in enumerate(wrapped_keys)
                ],
            )
            for (bucket_id, key), versions in keys.items():
                if not versions:
                    continue
                db.executemany(
                    _VERSION_INSERT, [_version_row(v, seq) for seq, v in enumerate(versions, 1)]
                )
                db.executemany(_PART_FILES_INSERT, _part_file_rows(versions))
                db.execute(
                    "INSERT INTO objects (bucket_id, key, version_id) VALUES (?, ?, ?)",
                    (bucket_id, key, versions[-1].version_id),
                )
                for version in versions:
                    if version.pack is not None:
                        sites, live = packs.get(version.pack, (set(), 0))
                        packs[version.pack] = (sites | set(version.sites), live + 1)
            db.executemany(
                "INSERT INTO packs (name, sites, live) VALUES (?, ?, ?)",
                [(name, json.dumps(sorted(s)), live) for name, (s, live) in packs.items()],
            )
            db.executemany(
                "INSERT INTO bucket_settings (bucket_id, name, value) VALUES (?, ?, ?)",
                [(b, n, v) for b, named in settings.items() for n, v in named.items()],
            )
            replace_identities(db, credentials, now)

        await self._call(lambda db: self._in_transaction(run, db))

    async def repair(self, work: Callable[[CatalogRepair], T]) -> T:
        return await self._call(lambda db: self._in_transaction(lambda db: work(_Repair(db)), db))

    async def close_as_file(self) -> None:
        await self.close()
        with contextlib.closing(sqlite3.connect(self.path, isolation_level=None)) as db:
            db.execute("PRAGMA journal_mode=DELETE")


class _Repair:
    """`CatalogRepair` on the writer connection, inside `SQLiteBackup.repair`'s transaction."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db

    def uploads_in_progress(self) -> set[bytes]:
        return {row[0] for row in self._db.execute("SELECT upload_id FROM uploads")}

    def delete_marker_ids(self) -> set[bytes]:
        query = "SELECT version_id FROM versions WHERE delete_marker = 1"
        return {row[0] for row in self._db.execute(query)}

    def bucket_ids(self) -> set[bytes]:
        return {row[0] for row in self._db.execute("SELECT id FROM buckets")}

    def add_bucket(self, bucket: Bucket) -> None:
        self._db.execute(
            "INSERT INTO buckets (id, name, created, wrapped_key) VALUES (?, ?, ?, ?)",
            (bucket.id, bucket.name, bucket.created, bucket.wrapped_key),
        )

    def append_versions(
        self, bucket_id: bytes, key: str, versions: Sequence[ObjectVersion]
    ) -> None:
        (seq,) = self._db.execute(
            "SELECT coalesce(max(seq), 0) FROM versions WHERE bucket_id = ? AND key = ?",
            (bucket_id, key),
        ).fetchone()
        rows = [_version_row(v, seq + n) for n, v in enumerate(versions, 1)]
        self._db.executemany(_VERSION_INSERT, rows)
        self._db.executemany(_PART_FILES_INSERT, _part_file_rows(versions))

    def null_versions(self, bucket_id: bytes, key: str) -> list[bytes]:
        return [
            row[0]
            for row in self._db.execute(
                "SELECT version_id FROM versions WHERE bucket_id = ? AND key = ? AND is_null = 1",
                (bucket_id, key),
            )
        ]

    def drop_versions(self, version_ids: Sequence[bytes]) -> None:
        rows = [(v,) for v in version_ids]
        self._db.executemany("DELETE FROM objects WHERE version_id = ?", rows)
        self._db.executemany("DELETE FROM damaged WHERE version_id = ?", rows)
        self._db.executemany("DELETE FROM versions WHERE version_id = ?", rows)
        self._db.executemany("DELETE FROM part_files WHERE version_id = ?", rows)

    def relocate_versions(
        self, moves: Sequence[tuple[bytes, tuple[str, ...], str | None, int]]
    ) -> None:
        self._db.executemany(
            "UPDATE versions SET sites = ?, pack = ?, pack_offset = ? WHERE version_id = ?",
            [(json.dumps(sites), pack, offset, v) for v, sites, pack, offset in moves],
        )

    def amend_versions(self, versions: Sequence[ObjectVersion]) -> None:
        self._db.executemany(
            "UPDATE versions SET headers = ?, retention_mode = ?, retain_until = ?, "
            "legal_hold = ? WHERE version_id = ?",
            [
                (json.dumps(v.headers), v.retention_mode, v.retain_until, v.legal_hold,
                 v.version_id)
                for v in versions
            ],
        )  # fmt: skip

    def point_at_newest(self, bucket_id: bytes, key: str) -> None:
        row = self._db.execute(
            "SELECT version_id FROM versions WHERE bucket_id = ? AND key = ? "
            "ORDER BY seq DESC LIMIT 1",
            (bucket_id, key),
        ).fetchone()
        if row is None:
            self._db.execute(
                "DELETE FROM objects WHERE bucket_id = ? AND key = ?", (bucket_id, key)
            )
        else:
            self._db.execute(
                "INSERT OR REPLACE INTO objects (bucket_id, key, version_id) VALUES (?, ?, ?)",
                (bucket_id, key, row[0]),
            )

    def forget_uploads(self, upload_ids: Sequence[bytes]) -> None:
        rows = [(u,) for u in upload_ids]
        self._db.executemany("DELETE FROM parts WHERE upload_id = ?", rows)
        self._db.executemany("DELETE FROM uploads WHERE upload_id = ?", rows)

    def replace_credentials(self, identities: Identities, now: float) -> None:
        replace_identities(self._db, identities, now)

    def replace_bucket_settings(self, settings: Mapping[bytes, Mapping[str, str]]) -> int:
        present = self.bucket_ids()
        replaced = 0
        for bucket_id, values in settings.items():
            if bucket_id in present:
                self._db.execute("DELETE FROM bucket_settings WHERE bucket_id = ?", (bucket_id,))
                self._db.executemany(
                    "INSERT INTO bucket_settings (bucket_id, name, value) VALUES (?, ?, ?)",
                    [(bucket_id, name, value) for name, value in values.items()],
                )
                replaced += 1
        return replaced

    def recount_packs(self) -> None:
        db = self._db
        counts: dict[str, tuple[set[str], int]] = {}
        for pack, sites in db.execute("SELECT pack, sites FROM versions WHERE pack IS NOT NULL"):
            held, live = counts.get(pack, (set(), 0))
            counts[pack] = (held | set(json.loads(sites)), live + 1)
        for pack, sites in db.execute("SELECT name, sites FROM packs").fetchall():
            if pack in counts:
                counts[pack] = (counts[pack][0] | set(json.loads(sites)), counts[pack][1])
        db.execute("DELETE FROM packs")
        db.executemany(
            "INSERT INTO packs (name, sites, live) VALUES (?, ?, ?)",
            [(name, json.dumps(sorted(sites)), live) for name, (sites, live) in counts.items()],
        )

    def keep_referenced_out_of_trash(self) -> None:
        db = self._db
        referenced: set[tuple[str, str]] = set()
        for version_id, sites, pack, parts in db.execute(
            "SELECT version_id, sites, pack, parts FROM versions WHERE delete_marker = 0"
        ):
            names = json.loads(sites)
            if pack is not None:
                referenced.update((site, pack) for site in names)
                continue
            referenced.update((site, shard_name(version_id, 0, i)) for i, site in enumerate(names))
            for part in (Part.from_fields(fields) for fields in json.loads(parts or "[]")):
                referenced.update((site, part.file(version_id, i)) for i, site in enumerate(names))
        doomed = [
            (trash_id,)
            for trash_id, site, shard in db.execute("SELECT id, site, shard FROM trash").fetchall()
            if (site, shard) in referenced
        ]
        db.executemany("DELETE FROM trash WHERE id = ?", doomed)

    def forget_sightings(self) -> None:
        self._db.execute("DELETE FROM sightings")

    def totals(self) -> tuple[int, int, int, int]:
        db = self._db
        buckets = db.execute("SELECT count(*) FROM buckets").fetchone()[0]
        versions, size = db.execute(
            "SELECT count(*), coalesce(sum(size), 0) FROM versions"
        ).fetchone()
        objects = db.execute("SELECT count(*) FROM objects").fetchone()[0]
        return buckets, versions, size, objects


# -- the catalog file and its location ------------------------------------------------------


def backup_file(source: Path, target: Path) -> None:
    """A consistent copy of the live database `source` into the new file `target` (SQLite's
    online backup: writers go on), left in rollback-journal mode: one file, nothing beside."""
    with (
        contextlib.closing(sqlite3.connect(source, timeout=30)) as src,
        contextlib.closing(sqlite3.connect(target)) as dst,
    ):
        src.backup(dst)
        dst.execute("PRAGMA journal_mode=DELETE")


def in_use(path: Path) -> bool:
    """Whether another process holds the database open (a running server): an exclusive lock
    cannot be taken then."""
    if not path.exists():
        return False
    db = sqlite3.connect(path, timeout=0, isolation_level=None)
    try:
        db.execute("PRAGMA locking_mode=EXCLUSIVE")
        db.execute("BEGIN EXCLUSIVE")
        db.execute("COMMIT")
        return False
    except sqlite3.OperationalError:
        return True
    finally:
        db.close()


def install(new: Path, live: Path, suffix: str) -> Path | None:
    """Put the database file `new` in place of `live`; the old one (with its WAL files) is
    kept as `<live>.<suffix>`, returned (None if there was none). A stale WAL never meets the
    new file: the old -wal/-shm go aside with the old file (or away, if there was none)."""
    aside = None
    if live.exists():
        aside = live.with_name(f"{live.name}.{suffix}")
        os.replace(live, aside)
    for extra in _JOURNAL_SUFFIXES:
        old = live.with_name(live.name + extra)
        if old.exists():
            if aside is not None:
                os.replace(old, aside.with_name(aside.name + extra))
            else:
                old.unlink()
    os.replace(new, live)
    return aside
