"""What maintenance walks and records, in PostgreSQL."""

from __future__ import annotations

import dataclasses
import json

from egide.catalog.inventory import RecordedReport
from egide.catalog.postgres.changes import trash, unref_pack
from egide.catalog.postgres.connection import Db, PostgresConnection, one, rows, run
from egide.catalog.postgres.garbage import referenced
from egide.catalog.postgres.rows import VERSION_COLUMNS, version
from egide.domain import ObjectVersion


class PostgresInventory(PostgresConnection):
    """`catalog.inventory.InventoryCatalog` and `FindingsCatalog`."""

    async def versions_after(self, after: bytes | None, limit: int) -> list[ObjectVersion]:
        """Versions holding data, in version id order after `after` (a keyset cursor)."""

        async def read(db: Db) -> list[ObjectVersion]:
            found = await rows(
                db,
                f"SELECT {VERSION_COLUMNS} FROM versions v WHERE version_id > %s "
                "AND NOT delete_marker ORDER BY version_id LIMIT %s",
                (after or b"", limit),
            )
            return [version(row) for row in found]

        return await self._read(read)

    async def count_versions(self) -> int:
        async def read(db: Db) -> int:
            row = await one(db, "SELECT count(*) FROM versions WHERE NOT delete_marker")
            return int(row[0]) if row else 0

        return await self._read(read)

    async def usage(self, bucket_id: bytes | None) -> tuple[int, int]:
        async def read(db: Db) -> tuple[int, int]:
            where, args = (
                ("AND bucket_id = %s", (bucket_id,)) if bucket_id is not None else ("", ())
            )
            row = await one(
                db,
                f"SELECT coalesce(sum(size), 0), count(*) FROM versions "
                f"WHERE NOT delete_marker {where}",
                args,
            )
            in_upload = where.replace("bucket_id", "u.bucket_id")
            parts = await one(
                db,
                "SELECT coalesce(sum(p.size), 0) FROM parts p JOIN uploads u "
                f"ON u.upload_id = p.upload_id WHERE TRUE {in_upload}",
                args,
            )
            assert row is not None and parts is not None
            return int(row[0]) + int(parts[0]), int(row[1])

        return await self._read(read)

    async def versions_present(self, version_ids: list[bytes]) -> set[bytes]:
        async def read(db: Db) -> set[bytes]:
            found = await rows(
                db, "SELECT version_id FROM versions WHERE version_id = ANY(%s)", (version_ids,)
            )
            return {bytes(row[0]) for row in found}

        return await self._read(read)

    async def delete_markers(self) -> list[tuple[bytes, bytes]]:
        async def read(db: Db) -> list[tuple[bytes, bytes]]:
            found = await rows(db, "SELECT bucket_id, version_id FROM versions WHERE delete_marker")
            return [(bytes(row[0]), bytes(row[1])) for row in found]

        return await self._read(read)

    async def site_references(self, site: str) -> dict[str, int]:
        """What the catalog still keeps on `site`: versions with a piece there, uploads in
        progress placed there, packs with a file there, trashed files not yet deleted."""
        escaped = site.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        pattern = f'%"{escaped}"%'

        async def read(db: Db) -> dict[str, int]:
            row = await one(
                db,
                "SELECT (SELECT count(*) FROM versions WHERE sites LIKE %s ESCAPE '\\'), "
                "(SELECT count(*) FROM uploads WHERE sites LIKE %s ESCAPE '\\'), "
                "(SELECT count(*) FROM packs WHERE sites LIKE %s ESCAPE '\\'), "
                "(SELECT count(*) FROM trash WHERE site = %s)",
                (pattern, pattern, pattern, site),
            )
            assert row is not None
            return dict(zip(("versions", "uploads", "packs", "trash"), map(int, row), strict=True))

        return await self._read(read)

    async def move_shards(
        self,
        version: ObjectVersion,
        sites: tuple[str, ...],
        replaced: list[tuple[str, str]],
        written: list[tuple[str, str]],
    ) -> bool:
        """Point `version` at shards rewritten on `sites` (as standalone files: a packed version
        leaves its pack), if it is still stored as `version` says (one conditional update).
        Then the `replaced` files go to the trash; else the `written` ones do, and False is
        returned."""

        async def write(db: Db) -> bool:
            changed = await run(
                db,
                "UPDATE versions SET sites = %s, pack = NULL, pack_offset = 0 "
                "WHERE version_id = %s AND sites = %s AND pack IS NOT DISTINCT FROM %s",
                (json.dumps(sites), version.version_id, json.dumps(version.sites), version.pack),
            )
            now = self._clock.time()
            if not changed:
                # Another job may have moved the version to these very files meanwhile (the
                # same choice from the same inputs): only what nothing references is trashed.
                await trash(db, [(site, name) for site, name in written
                                 if not await referenced(db, site, name)], now)  # fmt: skip
                return False
            if version.pack is not None:
                await unref_pack(db, version.pack, now)
            # A piece moved back to a site whose old copy still waits in the trash has that
            # very name there: the new, live file must not be deleted with it.
            for site, name in written:
                await db.execute("DELETE FROM trash WHERE site = %s AND shard = %s", (site, name))
            await trash(db, replaced, now)
            return True

        return await self._transaction(write)

    async def mark_damaged(self, version_id: bytes, reason: str) -> None:
        """Queue a version for repair (a read or a scrub found a shard missing or corrupt)."""

        async def write(db: Db) -> None:
            await db.execute(
                "INSERT INTO damaged (version_id, reason, since) VALUES (%s, %s, %s) "
                "ON CONFLICT (version_id) DO NOTHING",
                (version_id, reason, self._clock.time()),
            )

        await self._read(write)

    async def damaged(self, after: bytes | None, limit: int) -> list[tuple[bytes, str]]:
        """Queued versions in version id order after `after`, with why they were queued."""

        async def read(db: Db) -> list[tuple[bytes, str]]:
            found = await rows(
                db,
                "SELECT version_id, reason FROM damaged WHERE version_id > %s "
                "ORDER BY version_id LIMIT %s",
                (after or b"", limit),
            )
            return [(bytes(row[0]), str(row[1])) for row in found]

        return await self._read(read)

    async def forget_damaged(self, version_ids: list[bytes]) -> None:
        async def write(db: Db) -> None:
            await db.execute("DELETE FROM damaged WHERE version_id = ANY(%s)", (version_ids,))

        await self._read(write)

    async def record_report(self, report: RecordedReport) -> None:
        async def write(db: Db) -> None:
            await db.execute(
                "INSERT INTO reports (kind, scope, created, sha256, content_sha256, summary) "
                "VALUES (%s, %s, %s, %s, %s, %s)",
                dataclasses.astuple(report),
            )

        await self._read(write)

    async def last_report(self, kind: str, scope: str) -> RecordedReport | None:
        async def read(db: Db) -> RecordedReport | None:
            row = await one(
                db,
                "SELECT kind, scope, created, sha256, content_sha256, summary FROM reports "
                "WHERE kind = %s AND scope = %s ORDER BY id DESC LIMIT 1",
                (kind, scope),
            )
            return RecordedReport(*row) if row else None

        return await self._read(read)
