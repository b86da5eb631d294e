"""What maintenance walks and records, in SQLite."""

from __future__ import annotations

import dataclasses
import json
import sqlite3
from functools import partial

from egide.catalog.inventory import RecordedReport
from egide.catalog.sqlite.changes import _trash, _unref_pack
from egide.catalog.sqlite.connection import SQLiteConnection
from egide.catalog.sqlite.garbage import _referenced
from egide.catalog.sqlite.rows import _VERSION_COLUMNS, _version
from egide.domain import ObjectVersion


class SQLiteInventory(SQLiteConnection):
    """`catalog.inventory.InventoryCatalog` and `FindingsCatalog`."""

    async def versions_after(self, after: bytes | None, limit: int) -> list[ObjectVersion]:
        """Versions holding data (delete markers hold none), in version id order after `after`:
        a cursor that writes and deletes elsewhere in the catalog never shift."""

        def run(db: sqlite3.Connection) -> list[ObjectVersion]:
            rows = db.execute(
                f"SELECT {_VERSION_COLUMNS} FROM versions v WHERE version_id > ? "
                "AND delete_marker = 0 ORDER BY version_id LIMIT ?",
                (after or b"", limit),
            ).fetchall()
            return [_version(row) for row in rows]

        return self._read(run)

    async def count_versions(self) -> int:
        return int(
            self._read(
                lambda db: db.execute(
                    "SELECT count(*) FROM versions WHERE delete_marker = 0"
                ).fetchone()[0]
            )
        )

    async def usage(self, bucket_id: bytes | None) -> tuple[int, int]:
        def run(db: sqlite3.Connection) -> tuple[int, int]:
            where, args = ("AND bucket_id = ?", (bucket_id,)) if bucket_id is not None else ("", ())
            size, count = db.execute(
                f"SELECT coalesce(sum(size), 0), count(*) FROM versions "
                f"WHERE delete_marker = 0 {where}",
                args,
            ).fetchone()
            in_upload = where.replace("bucket_id", "u.bucket_id")
            parts = db.execute(
                "SELECT coalesce(sum(p.size), 0) FROM parts p JOIN uploads u "
                f"ON u.upload_id = p.upload_id WHERE 1 = 1 {in_upload}",
                args,
            ).fetchone()[0]
            return int(size) + int(parts), int(count)

        return self._read(run)

    async def versions_present(self, version_ids: list[bytes]) -> set[bytes]:
        def run(db: sqlite3.Connection) -> set[bytes]:
            found: set[bytes] = set()
            for start in range(0, len(version_ids), 500):
                chunk = version_ids[start : start + 500]
                marks = ",".join("?" * len(chunk))
                found.update(
                    row[0]
                    for row in db.execute(
                        f"SELECT version_id FROM versions WHERE version_id IN ({marks})", chunk
                    )
                )
            return found

        return self._read(run)

    async def delete_markers(self) -> list[tuple[bytes, bytes]]:
        return self._read(
            lambda db: [
                (row[0], row[1])
                for row in db.execute(
                    "SELECT bucket_id, version_id FROM versions WHERE delete_marker = 1"
                )
            ]
        )

    async def site_references(self, site: str) -> dict[str, int]:
        """What the catalog still keeps on `site`: versions with a piece there, uploads in
        progress placed there, packs with a file there, trashed files not yet deleted."""
        escaped = site.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        pattern = f'%"{escaped}"%'

        def run(db: sqlite3.Connection) -> dict[str, int]:
            count = {
                "versions": "SELECT count(*) FROM versions WHERE sites LIKE ? ESCAPE '\\'",
                "uploads": "SELECT count(*) FROM uploads WHERE sites LIKE ? ESCAPE '\\'",
                "packs": "SELECT count(*) FROM packs WHERE sites LIKE ? ESCAPE '\\'",
                "trash": "SELECT count(*) FROM trash WHERE site = ?",
            }
            return {
                name: int(db.execute(sql, (site if name == "trash" else pattern,)).fetchone()[0])
                for name, sql in count.items()
            }

        return self._read(run)

    async def move_shards(
        self,
        version: ObjectVersion,
        sites: tuple[str, ...],
        replaced: list[tuple[str, str]],
        written: list[tuple[str, str]],
    ) -> bool:
        """Point `version` at shards rewritten on `sites` (as standalone files: a packed version
        leaves its pack), if it is still stored as `version` says. Then the `replaced` files
        go to the trash; else the `written` ones do, and False is returned."""

        def run(db: sqlite3.Connection) -> bool:
            changed = db.execute(
                "UPDATE versions SET sites = ?, pack = NULL, pack_offset = 0 "
                "WHERE version_id = ? AND sites = ? AND pack IS ?",
                (json.dumps(sites), version.version_id, json.dumps(version.sites), version.pack),
            ).rowcount
            now = self._clock.time()
            if not changed:
                # Another job may have moved the version to these very files meanwhile (the
                # same choice from the same inputs): only what nothing references is trashed.
                _trash(db, [(site, name) for site, name in written
                            if not _referenced(db, site, name)], now)  # fmt: skip
                return False
            if version.pack is not None:
                _unref_pack(db, version.pack, now)
            # A piece moved back to a site whose old copy still waits in the trash has that
            # very name there: the new, live file must not be deleted with it.
            db.executemany("DELETE FROM trash WHERE site = ? AND shard = ?", written)
            _trash(db, replaced, now)
            return True

        return await self._call(partial(self._in_transaction, run))

    async def mark_damaged(self, version_id: bytes, reason: str) -> None:
        """Queue a version for repair (a read or a scrub found a shard missing or corrupt)."""
        await self._call(
            lambda db: db.execute(
                "INSERT OR IGNORE INTO damaged (version_id, reason, since) VALUES (?, ?, ?)",
                (version_id, reason, self._clock.time()),
            )
        )

    async def damaged(self, after: bytes | None, limit: int) -> list[tuple[bytes, str]]:
        """Queued versions in version id order after `after`, with why they were queued."""
        return self._read(
            lambda db: [
                (row[0], row[1])
                for row in db.execute(
                    "SELECT version_id, reason FROM damaged WHERE version_id > ? "
                    "ORDER BY version_id LIMIT ?",
                    (after or b"", limit),
                )
            ]
        )

    async def forget_damaged(self, version_ids: list[bytes]) -> None:
        await self._call(
            lambda db: db.executemany(
                "DELETE FROM damaged WHERE version_id = ?", [(v,) for v in version_ids]
            )
        )

    async def record_report(self, report: RecordedReport) -> None:
        row = dataclasses.astuple(report)
        await self._call(
            lambda db: db.execute(
                "INSERT INTO reports (kind, scope, created, sha256, content_sha256, summary) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                row,
            )
        )

    async def last_report(self, kind: str, scope: str) -> RecordedReport | None:
        def run(db: sqlite3.Connection) -> RecordedReport | None:
            row = db.execute(
                "SELECT kind, scope, created, sha256, content_sha256, summary FROM reports "
                "WHERE kind = ? AND scope = ? ORDER BY id DESC LIMIT 1",
                (kind, scope),
            ).fetchone()
            return RecordedReport(*row) if row else None

        return await self._call(run)
