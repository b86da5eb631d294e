"""The trash, garbage collection's sightings and references, and crypto-shredding in
PostgreSQL."""

from __future__ import annotations

import json

from egide.catalog import rules
from egide.catalog.garbage import ShreddedBucket, ShredSummary, TrashedShard
from egide.catalog.postgres.changes import drop_upload, trash_version
from egide.catalog.postgres.connection import Db, PostgresConnection, one, rows, run
from egide.catalog.postgres.rights import bump_rights
from egide.catalog.postgres.rows import VERSION_COLUMNS, version
from egide.catalog.sqlite.rows import _parts
from egide.domain import SETTINGS_RECORD_SETTING, BucketNotFound, ObjectVersion


async def referenced(db: Db, site: str, name: str) -> bool:
    """Whether the catalog still needs file `name` on `site` (see `unreferenced`): the facts
    gathered here, the decision `catalog.rules`'s."""
    if await one(db, "SELECT 1 FROM trash WHERE site = %s AND shard = %s LIMIT 1", (site, name)):
        return True
    match rules.classify_file(name):
        case None:
            return False
        case rules.PackFile():
            row = await one(db, "SELECT sites FROM packs WHERE name = %s", (name,))
            return rules.pack_kept(site, json.loads(row[0]) if row else None)
        case rules.CredentialsRecord():
            return True
        case rules.SettingsRecord():
            return bool(await one(
                db, "SELECT 1 FROM bucket_settings WHERE name = %s AND value = %s",
                (SETTINGS_RECORD_SETTING, name),
            ))  # fmt: skip
        case rules.LegacySettingsRecord(bucket_id=bucket_id):
            exists = await one(db, "SELECT 1 FROM buckets WHERE id = %s", (bucket_id,))
            current = await one(
                db,
                "SELECT 1 FROM bucket_settings WHERE bucket_id = %s AND name = %s",
                (bucket_id, SETTINGS_RECORD_SETTING),
            )
            return rules.legacy_settings_kept(exists is not None, current is not None)
        case rules.VersionRecord() as record:
            row = await one(
                db,
                "SELECT bucket_id, delete_marker FROM versions WHERE version_id = %s",
                (record.version_id,),
            )
            return rules.record_kept(record, (bytes(row[0]), bool(row[1])) if row else None)
        case rules.ShardFile() as file:
            return await _shard_referenced(db, site, file)


async def _shard_referenced(db: Db, site: str, file: rules.ShardFile) -> bool:
    if await one(db, "SELECT 1 FROM uploads WHERE upload_id = %s", (file.owner_id,)):
        return True  # a part of an upload in progress (its parts row may not exist yet)
    row = await one(
        db, "SELECT sites, parts, pack FROM versions WHERE version_id = %s", (file.owner_id,)
    )
    if row is not None:
        return rules.shard_kept(site, file, json.loads(row[0]), _parts(row[1]), row[2] is not None)
    if file.seq != 0:
        return False
    # A part file (decision 0018): its owner is an upload in progress or a committed version.
    owner = await one(db, "SELECT version_id FROM part_files WHERE file_id = %s", (file.owner_id,))
    if owner is None:
        return False
    if await one(db, "SELECT 1 FROM uploads WHERE upload_id = %s", (owner[0],)):
        return True
    row = await one(db, "SELECT sites, parts FROM versions WHERE version_id = %s", (owner[0],))
    return row is not None and rules.part_file_kept(site, file, json.loads(row[0]), _parts(row[1]))


class PostgresGarbage(PostgresConnection):
    """`catalog.garbage.GarbageCatalog` and `ShreddingCatalog`."""

    async def trash_due(self, before: float, limit: int) -> list[TrashedShard]:
        async def read(db: Db) -> list[TrashedShard]:
            found = await rows(
                db,
                "SELECT id, site, shard FROM trash WHERE since < %s ORDER BY id LIMIT %s",
                (before, limit),
            )
            return [TrashedShard(*row) for row in found]

        return await self._read(read)

    async def trash_on(self, site: str, limit: int) -> list[TrashedShard]:
        """Trashed files of one site, grace period or not (evacuation empties a site now)."""

        async def read(db: Db) -> list[TrashedShard]:
            found = await rows(
                db,
                "SELECT id, site, shard FROM trash WHERE site = %s ORDER BY id LIMIT %s",
                (site, limit),
            )
            return [TrashedShard(*row) for row in found]

        return await self._read(read)

    async def forget_trash(self, ids: list[int]) -> None:
        async def write(db: Db) -> None:
            await db.execute("DELETE FROM trash WHERE id = ANY(%s)", (ids,))

        await self._read(write)

    async def unreferenced(self, site: str, names: list[str]) -> list[str]:
        """Which of these files on `site` the catalog does not reference: no committed version
        keeps that shard there, no upload in progress owns it, no pack lives there, and it is
        not already in the trash."""

        async def read(db: Db) -> list[str]:
            return [name for name in names if not await referenced(db, site, name)]

        return await self._read(read)

    async def record_sightings(self, site: str, names: list[str]) -> None:
        """Note files first seen unreferenced now (a later pass removes those still so)."""
        now = self._clock.time()

        async def write(db: Db) -> None:
            await db.execute(
                "INSERT INTO sightings (site, shard, seen) "
                "SELECT %s, unnest(%s::TEXT[]), %s ON CONFLICT (site, shard) DO NOTHING",
                (site, names, now),
            )

        await self._read(write)

    async def sightings(self, site: str) -> dict[str, float]:
        async def read(db: Db) -> dict[str, float]:
            found = await rows(db, "SELECT shard, seen FROM sightings WHERE site = %s", (site,))
            return {row[0]: row[1] for row in found}

        return await self._read(read)

    async def forget_sightings(self, site: str, names: list[str]) -> None:
        async def write(db: Db) -> None:
            await db.execute(
                "DELETE FROM sightings WHERE site = %s AND shard = ANY(%s)", (site, names)
            )

        await self._read(write)

    async def first_locked_version(self, bucket_id: bytes, now: float) -> ObjectVersion | None:
        """A version of the bucket under legal hold or retention at `now`, if there is one."""

        async def read(db: Db) -> ObjectVersion | None:
            row = await one(
                db,
                f"SELECT {VERSION_COLUMNS} FROM versions v WHERE bucket_id = %s "
                "AND (legal_hold OR retain_until > %s) ORDER BY key LIMIT 1",
                (bucket_id, now),
            )
            return version(row) if row else None

        return await self._read(read)

    async def count_bucket(self, bucket_id: bytes) -> tuple[int, int, int]:
        """(versions holding data, their bytes, uploads in progress) of a bucket."""

        async def read(db: Db) -> tuple[int, int, int]:
            row = await one(
                db,
                "SELECT (SELECT count(*) FROM versions WHERE bucket_id = %s "
                "AND NOT delete_marker), (SELECT coalesce(sum(size), 0) FROM versions "
                "WHERE bucket_id = %s AND NOT delete_marker), "
                "(SELECT count(*) FROM uploads WHERE bucket_id = %s)",
                (bucket_id, bucket_id, bucket_id),
            )
            assert row is not None
            return int(row[0]), int(row[1]), int(row[2])

        return await self._read(read)

    async def shred_bucket(self, bucket_id: bytes, pending_sites: list[str]) -> ShredSummary:
        """Forget a bucket and everything in it, its keys included, in one transaction, and
        record it as shredded. Its shard files go to the trash. Raises BucketNotFound,
        ObjectLocked (nothing changed). PostgreSQL keeps dead rows until VACUUM reuses their
        space, and its WAL and replicas have them: `catalog_scrubbed` stays False (the key
        is destroyed on the sites; the catalog's copy is master-wrapped)."""

        async def shred(db: Db) -> ShredSummary:
            row = await one(db, "SELECT name FROM buckets WHERE id = %s FOR UPDATE", (bucket_id,))
            if row is None:
                raise BucketNotFound(bucket_id.hex())
            now = self._clock.time()
            locked = await one(
                db,
                f"SELECT {VERSION_COLUMNS} FROM versions v WHERE bucket_id = %s "
                "AND (legal_hold OR retain_until > %s) LIMIT 1",
                (bucket_id, now),
            )
            if locked is not None:
                rules.check_delete(version(locked), now)
            first = await one(db, "SELECT coalesce(max(id), 0) FROM trash")
            assert first is not None
            ids = [
                (bytes(r[0]), bool(r[1]))
                for r in await rows(
                    db,
                    "SELECT version_id, delete_marker FROM versions WHERE bucket_id = %s "
                    "ORDER BY version_id",
                    (bucket_id,),
                )
            ]
            await db.execute("DELETE FROM objects WHERE bucket_id = %s", (bucket_id,))
            await db.execute(
                "DELETE FROM damaged WHERE version_id IN "
                "(SELECT version_id FROM versions WHERE bucket_id = %s)",
                (bucket_id,),
            )
            for version_id, _ in ids:
                await trash_version(db, version_id, now)
            uploads = [
                r[0]
                for r in await rows(
                    db,
                    "SELECT upload_id FROM uploads WHERE bucket_id = %s ORDER BY upload_id "
                    "FOR UPDATE",
                    (bucket_id,),
                )
            ]
            for upload_id in uploads:
                await drop_upload(db, upload_id, (), now)
            settings = await run(
                db, "DELETE FROM bucket_settings WHERE bucket_id = %s", (bucket_id,)
            )
            retired = await run(
                db, "DELETE FROM bucket_key_generations WHERE bucket_id = %s", (bucket_id,)
            )
            await db.execute("DELETE FROM buckets WHERE id = %s", (bucket_id,))
            await bump_rights(db)
            trashed = await one(db, "SELECT count(*) FROM trash WHERE id > %s", (first[0],))
            assert trashed is not None
            markers = sum(1 for _, marker in ids if marker)
            summary = ShredSummary(
                versions=len(ids) - markers, delete_markers=markers, uploads=len(uploads),
                settings=settings, bucket_keys=retired + 1, trashed_files=int(trashed[0]),
            )  # fmt: skip
            await db.execute(
                "INSERT INTO shredded_buckets (bucket_id, name, shredded, summary, pending_sites) "
                "VALUES (%s, %s, %s, %s, %s)",
                (bucket_id, row[0], now, json.dumps(summary.counts()),
                 json.dumps(sorted(pending_sites))),
            )  # fmt: skip
            return summary

        return await self._transaction(shred)

    async def shredded_buckets(self) -> list[ShreddedBucket]:
        async def read(db: Db) -> list[ShreddedBucket]:
            found = []
            for bucket_id, name, shredded, summary, pending in await rows(
                db,
                "SELECT bucket_id, name, shredded, summary, pending_sites FROM shredded_buckets "
                "ORDER BY shredded",
            ):
                counts = ShredSummary(**json.loads(summary))
                sites = tuple(json.loads(pending))
                found.append(ShreddedBucket(bytes(bucket_id), name, shredded, counts, sites))
            return found

        return await self._read(read)

    async def forget_pending_sites(self, bucket_id: bytes, done: list[str]) -> None:
        """The key record of a shredded bucket is gone from the sites `done`."""

        async def write(db: Db) -> None:
            row = await one(
                db,
                "SELECT pending_sites FROM shredded_buckets WHERE bucket_id = %s FOR UPDATE",
                (bucket_id,),
            )
            if row is not None:
                pending = sorted(set(json.loads(row[0])) - set(done))
                await db.execute(
                    "UPDATE shredded_buckets SET pending_sites = %s WHERE bucket_id = %s",
                    (json.dumps(pending), bucket_id),
                )

        await self._transaction(write)
