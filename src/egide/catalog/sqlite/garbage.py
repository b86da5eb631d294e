"""The trash, garbage collection's sightings and references, and crypto-shredding in SQLite."""

from __future__ import annotations

import dataclasses
import json
import sqlite3
from functools import partial

from egide.catalog import rules
from egide.catalog.garbage import ShreddedBucket, ShredSummary, TrashedShard
from egide.catalog.sqlite.changes import _drop_upload, _trash_version
from egide.catalog.sqlite.connection import SQLiteConnection
from egide.catalog.sqlite.rights import bump_rights
from egide.catalog.sqlite.rows import _VERSION_COLUMNS, _parts, _version
from egide.domain import SETTINGS_RECORD_SETTING, BucketNotFound, ObjectVersion


def _referenced(db: sqlite3.Connection, site: str, name: str) -> bool:
    """Whether the catalog still needs file `name` on `site` (see `unreferenced`): the facts
    gathered here, the decision `catalog.rules`'s."""
    if db.execute(
        "SELECT 1 FROM trash WHERE site = ? AND shard = ? LIMIT 1", (site, name)
    ).fetchone():
        return True
    match rules.classify_file(name):
        case None:
            return False
        case rules.PackFile():
            row = db.execute("SELECT sites FROM packs WHERE name = ?", (name,)).fetchone()
            return rules.pack_kept(site, json.loads(row[0]) if row else None)
        case rules.CredentialsRecord():
            return True
        case rules.SettingsRecord():
            return bool(db.execute(
                "SELECT 1 FROM bucket_settings WHERE name = ? AND value = ?",
                (SETTINGS_RECORD_SETTING, name),
            ).fetchone())  # fmt: skip
        case rules.LegacySettingsRecord(bucket_id=bucket_id):
            exists = db.execute("SELECT 1 FROM buckets WHERE id = ?", (bucket_id,)).fetchone()
            current = db.execute(
                "SELECT 1 FROM bucket_settings WHERE bucket_id = ? AND name = ?",
                (bucket_id, SETTINGS_RECORD_SETTING),
            ).fetchone()
            return rules.legacy_settings_kept(exists is not None, current is not None)
        case rules.VersionRecord() as record:
            row = db.execute(
                "SELECT bucket_id, delete_marker FROM versions WHERE version_id = ?",
                (record.version_id,),
            ).fetchone()
            return rules.record_kept(record, (bytes(row[0]), bool(row[1])) if row else None)
        case rules.ShardFile() as file:
            return _shard_referenced(db, site, file)


def _shard_referenced(db: sqlite3.Connection, site: str, file: rules.ShardFile) -> bool:
    if db.execute("SELECT 1 FROM uploads WHERE upload_id = ?", (file.owner_id,)).fetchone():
        return True  # a part of an upload in progress (its parts row may not exist yet)
    row = db.execute(
        "SELECT sites, parts, pack FROM versions WHERE version_id = ?", (file.owner_id,)
    ).fetchone()
    if row is not None:
        return rules.shard_kept(site, file, json.loads(row[0]), _parts(row[1]), row[2] is not None)
    if file.seq != 0:
        return False
    # A part file (decision 0018): its owner is an upload in progress or a committed version.
    owner = db.execute(
        "SELECT version_id FROM part_files WHERE file_id = ?", (file.owner_id,)
    ).fetchone()
    if owner is None:
        return False
    if db.execute("SELECT 1 FROM uploads WHERE upload_id = ?", (owner[0],)).fetchone():
        return True
    row = db.execute(
        "SELECT sites, parts FROM versions WHERE version_id = ?", (owner[0],)
    ).fetchone()
    return row is not None and rules.part_file_kept(site, file, json.loads(row[0]), _parts(row[1]))


class SQLiteGarbage(SQLiteConnection):
    """`catalog.garbage.GarbageCatalog` and `ShreddingCatalog`."""

    async def trash_due(self, before: float, limit: int) -> list[TrashedShard]:
        def run(db: sqlite3.Connection) -> list[TrashedShard]:
            rows = db.execute(
                "SELECT id, site, shard FROM trash WHERE since < ? ORDER BY id LIMIT ?",
                (before, limit),
            )
            return [TrashedShard(*row) for row in rows]

        return await self._call(run)

    async def trash_on(self, site: str, limit: int) -> list[TrashedShard]:
        """Trashed files of one site, grace period or not (evacuation empties a site now)."""
        return self._read(
            lambda db: [
                TrashedShard(*row)
                for row in db.execute(
                    "SELECT id, site, shard FROM trash WHERE site = ? ORDER BY id LIMIT ?",
                    (site, limit),
                )
            ]
        )

    async def forget_trash(self, ids: list[int]) -> None:
        await self._call(
            lambda db: db.executemany("DELETE FROM trash WHERE id = ?", [(i,) for i in ids])
        )

    async def unreferenced(self, site: str, names: list[str]) -> list[str]:
        """Which of these files on `site` the catalog does not reference: no committed version
        keeps that shard there, no upload in progress owns it, no pack lives there, and it is
        not already in the trash."""

        def run(db: sqlite3.Connection) -> list[str]:
            return [name for name in names if not _referenced(db, site, name)]

        return self._read(run)

    async def record_sightings(self, site: str, names: list[str]) -> None:
        """Note files first seen unreferenced now (a later pass removes those still so)."""
        now = self._clock.time()
        await self._call(
            lambda db: db.executemany(
                "INSERT OR IGNORE INTO sightings (site, shard, seen) VALUES (?, ?, ?)",
                [(site, name, now) for name in names],
            )
        )

    async def sightings(self, site: str) -> dict[str, float]:
        return self._read(
            lambda db: {
                row[0]: row[1]
                for row in db.execute("SELECT shard, seen FROM sightings WHERE site = ?", (site,))
            }
        )

    async def forget_sightings(self, site: str, names: list[str]) -> None:
        await self._call(
            lambda db: db.executemany(
                "DELETE FROM sightings WHERE site = ? AND shard = ?", [(site, n) for n in names]
            )
        )

    async def first_locked_version(self, bucket_id: bytes, now: float) -> ObjectVersion | None:
        """A version of the bucket under legal hold or retention at `now`, if there is one."""

        def run(db: sqlite3.Connection) -> ObjectVersion | None:
            row = db.execute(
                f"SELECT {_VERSION_COLUMNS} FROM versions v WHERE bucket_id = ? "
                "AND (legal_hold = 1 OR retain_until > ?) ORDER BY key LIMIT 1",
                (bucket_id, now),
            ).fetchone()
            return _version(row) if row else None

        return self._read(run)

    async def count_bucket(self, bucket_id: bytes) -> tuple[int, int, int]:
        """(versions holding data, their bytes, uploads in progress) of a bucket."""

        def run(db: sqlite3.Connection) -> tuple[int, int, int]:
            versions, size = db.execute(
                "SELECT count(*), coalesce(sum(size), 0) FROM versions "
                "WHERE bucket_id = ? AND delete_marker = 0",
                (bucket_id,),
            ).fetchone()
            uploads = db.execute(
                "SELECT count(*) FROM uploads WHERE bucket_id = ?", (bucket_id,)
            ).fetchone()[0]
            return int(versions), int(size), int(uploads)

        return self._read(run)

    async def shred_bucket(self, bucket_id: bytes, pending_sites: list[str]) -> ShredSummary:
        """Forget a bucket and everything in it, its keys included, in one transaction, and
        record it as shredded (`pending_sites`: where its key record is still to delete). Its
        shard files go to the trash. Raises BucketNotFound, ObjectLocked (nothing changed).
        SQLite's secure_delete zeroes the freed rows and the WAL is checkpointed, so that the
        catalog file keeps no copy of the wrapped bucket key."""

        def shred(db: sqlite3.Connection) -> ShredSummary:
            row = db.execute("SELECT name FROM buckets WHERE id = ?", (bucket_id,)).fetchone()
            if row is None:
                raise BucketNotFound(bucket_id.hex())
            now = self._clock.time()
            locked = db.execute(
                f"SELECT {_VERSION_COLUMNS} FROM versions v WHERE bucket_id = ? "
                "AND (legal_hold = 1 OR retain_until > ?) LIMIT 1",
                (bucket_id, now),
            ).fetchone()
            if locked is not None:
                rules.check_delete(_version(locked), now)
            first_trash = db.execute("SELECT coalesce(max(id), 0) FROM trash").fetchone()[0]
            ids = [
                (bytes(r[0]), bool(r[1]))
                for r in db.execute(
                    "SELECT version_id, delete_marker FROM versions WHERE bucket_id = ?",
                    (bucket_id,),
                )
            ]
            db.execute("DELETE FROM objects WHERE bucket_id = ?", (bucket_id,))
            db.execute(
                "DELETE FROM damaged WHERE version_id IN "
                "(SELECT version_id FROM versions WHERE bucket_id = ?)",
                (bucket_id,),
            )
            for version_id, _ in ids:
                _trash_version(db, version_id, now)
            uploads = [
                r[0]
                for r in db.execute(
                    "SELECT upload_id FROM uploads WHERE bucket_id = ?", (bucket_id,)
                ).fetchall()
            ]
            for upload_id in uploads:
                _drop_upload(db, upload_id, (), now)
            settings = db.execute(
                "DELETE FROM bucket_settings WHERE bucket_id = ?", (bucket_id,)
            ).rowcount
            retired = db.execute(
                "DELETE FROM bucket_key_generations WHERE bucket_id = ?", (bucket_id,)
            ).rowcount
            db.execute("DELETE FROM buckets WHERE id = ?", (bucket_id,))
            bump_rights(db)
            trashed = db.execute(
                "SELECT count(*) FROM trash WHERE id > ?", (first_trash,)
            ).fetchone()[0]
            markers = sum(1 for _, marker in ids if marker)
            summary = ShredSummary(
                versions=len(ids) - markers, delete_markers=markers, uploads=len(uploads),
                settings=settings, bucket_keys=retired + 1, trashed_files=trashed,
            )  # fmt: skip
            db.execute(
                "INSERT INTO shredded_buckets (bucket_id, name, shredded, summary, pending_sites) "
                "VALUES (?, ?, ?, ?, ?)",
                (bucket_id, row[0], now, json.dumps(summary.counts()),
                 json.dumps(sorted(pending_sites))),
            )  # fmt: skip
            return summary

        def run(db: sqlite3.Connection) -> ShredSummary:
            secure = db.execute("PRAGMA secure_delete").fetchone()[0]
            db.execute("PRAGMA secure_delete=ON")
            try:
                summary = self._in_transaction(shred, db)
            finally:
                db.execute(f"PRAGMA secure_delete={int(secure)}")
            busy = db.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()[0]
            return dataclasses.replace(summary, catalog_scrubbed=busy == 0)

        return await self._call(run)

    async def shredded_buckets(self) -> list[ShreddedBucket]:
        def run(db: sqlite3.Connection) -> list[ShreddedBucket]:
            rows = db.execute(
                "SELECT bucket_id, name, shredded, summary, pending_sites FROM shredded_buckets "
                "ORDER BY shredded"
            )
            found = []
            for bucket_id, name, shredded, summary, pending in rows:
                counts = ShredSummary(**json.loads(summary))
                sites = tuple(json.loads(pending))
                found.append(ShreddedBucket(bytes(bucket_id), name, shredded, counts, sites))
            return found

        return self._read(run)

    async def forget_pending_sites(self, bucket_id: bytes, done: list[str]) -> None:
        """The key record of a shredded bucket is gone from the sites `done`."""

        def run(db: sqlite3.Connection) -> None:
            row = db.execute(
                "SELECT pending_sites FROM shredded_buckets WHERE bucket_id = ?", (bucket_id,)
            ).fetchone()
            if row is not None:
                pending = sorted(set(json.loads(row[0])) - set(done))
                db.execute(
                    "UPDATE shredded_buckets SET pending_sites = ? WHERE bucket_id = ?",
                    (json.dumps(pending), bucket_id),
                )

        await self._call(partial(self._in_transaction, run))
