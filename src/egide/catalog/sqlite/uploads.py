"""Multipart uploads in SQLite."""

from __future__ import annotations

import json
import sqlite3

from egide.catalog.rules import prefix_end
from egide.catalog.sqlite.changes import _commit_one, _drop_upload, _trash
from egide.catalog.sqlite.connection import SQLiteConnection
from egide.catalog.sqlite.rows import _UPLOAD_COLUMNS, _attempt_file, _upload
from egide.domain import InvalidPart, NoSuchUpload, ObjectVersion, Part, Upload, WriteCondition

#: How long an ended upload's creation time is kept for paging (`list_uploads`' marker).
ENDED_KEPT = 86_400.0


def _remember_ended(db: sqlite3.Connection, upload_id: bytes, now: float) -> None:
    """Keep the creation time of an upload being aborted or completed, so that a listing whose
    marker it is goes on right after it (a client that aborts each page's uploads); forget
    those kept longer than ENDED_KEPT. Only ids and times: no name is kept."""
    db.execute("DELETE FROM ended_uploads WHERE ended < ?", (now - ENDED_KEPT,))
    db.execute(
        "INSERT OR REPLACE INTO ended_uploads (upload_id, created, ended) "
        "SELECT upload_id, created, ? FROM uploads WHERE upload_id = ?",
        (now, upload_id),
    )


class SQLiteUploads(SQLiteConnection):
    """`catalog.uploads.UploadCatalog`."""

    async def create_upload(self, upload: Upload) -> None:
        def run(db: sqlite3.Connection) -> None:
            db.execute(
                f"INSERT INTO uploads ({_UPLOAD_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    upload.upload_id, upload.bucket_id, upload.key, upload.created,
                    upload.wrapped_data_key, upload.k, upload.m, upload.block_size,
                    json.dumps(upload.sites), json.dumps(upload.headers),
                ),
            )  # fmt: skip

        await self._call(run)

    async def get_upload(self, upload_id: bytes) -> Upload | None:
        def run(db: sqlite3.Connection) -> Upload | None:
            row = db.execute(
                f"SELECT {_UPLOAD_COLUMNS} FROM uploads WHERE upload_id = ?", (upload_id,)
            ).fetchone()
            return _upload(row) if row else None

        return self._read(run)

    async def next_part_seq(self, upload_id: bytes) -> int:
        """A part attempt number never handed out before in this upload."""

        def run(db: sqlite3.Connection) -> int:
            with db:
                row = db.execute(
                    "UPDATE uploads SET next_seq = next_seq + 1 WHERE upload_id = ? "
                    "RETURNING next_seq - 1",
                    (upload_id,),
                ).fetchone()
            if row is None:
                raise NoSuchUpload(upload_id.hex())
            return int(row[0])

        return await self._call(run)

    async def commit_part(self, upload_id: bytes, part: Part, sites: tuple[str, ...]) -> None:
        """Record an uploaded part, replacing (and trashing) an earlier one of that number.
        If the upload is gone meanwhile, the part's shards go to the trash and NoSuchUpload
        is raised."""

        def run(db: sqlite3.Connection) -> bool:
            files = [(site, part.file(upload_id, i)) for i, site in enumerate(sites)]
            with db:
                db.execute("BEGIN IMMEDIATE")
                if not db.execute(
                    "SELECT 1 FROM uploads WHERE upload_id = ?", (upload_id,)
                ).fetchone():
                    _trash(db, files, self._clock.time())  # committed, then NoSuchUpload is raised
                    return False
                old = db.execute(
                    "SELECT seq, pid FROM parts WHERE upload_id = ? AND number = ?",
                    (upload_id, part.number),
                ).fetchone()
                if old is not None:
                    _trash(db, [
                        (site, _attempt_file(upload_id, old[0], old[1], i))
                        for i, site in enumerate(sites)
                    ], self._clock.time())  # fmt: skip
                    db.execute("DELETE FROM part_files WHERE file_id = ?", (old[1],))
                db.execute(
                    "INSERT OR REPLACE INTO parts (upload_id, number, seq, size, etag, "
                    "last_modified, checksums, padded_size, pid) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        upload_id, part.number, part.seq, part.size, part.etag,
                        part.last_modified, json.dumps(part.checksums), part.padded_size,
                        part.pid or None,
                    ),
                )  # fmt: skip
                if part.pid:
                    db.execute(
                        "INSERT OR REPLACE INTO part_files (file_id, version_id) VALUES (?, ?)",
                        (part.pid, upload_id),
                    )
            return True

        if not await self._call(run):
            raise NoSuchUpload(upload_id.hex())

    async def list_parts(self, upload_id: bytes, after: int = 0, limit: int = 10_000) -> list[Part]:
        def run(db: sqlite3.Connection) -> list[Part]:
            rows = db.execute(
                "SELECT number, seq, size, etag, last_modified, checksums, pid, padded_size "
                "FROM parts "
                "WHERE upload_id = ? AND number > ? ORDER BY number LIMIT ?",
                (upload_id, after, limit),
            )
            return [
                Part(row[0], row[1], row[2], row[3], row[4], json.loads(row[5]), row[6] or b"",
                     row[7])
                for row in rows
            ]  # fmt: skip

        return await self._call(run)

    async def list_uploads(
        self, bucket_id: bytes, prefix: str, after: tuple[str, bytes] | None, limit: int
    ) -> list[Upload]:
        """Uploads whose key starts with `prefix`, in (key, creation) order, after the
        (key, upload id) marker — also when the marker's upload has ended since (aborted or
        completed within `ENDED_KEPT` seconds: its creation time is kept that long)."""

        def run(db: sqlite3.Connection) -> list[Upload]:
            sql = f"SELECT {_UPLOAD_COLUMNS} FROM uploads WHERE bucket_id = ? AND key >= ?"
            args: list[object] = [bucket_id, prefix]
            if (end := prefix_end(prefix)) is not None:
                sql += " AND key < ?"
                args.append(end)
            if after is not None:
                key, upload_id = after
                sql += (
                    " AND (key > ? OR (key = ? AND (created, upload_id) > (coalesce("
                    "(SELECT created FROM uploads WHERE upload_id = ?), "
                    "(SELECT created FROM ended_uploads WHERE upload_id = ?)), ?)))"
                )
                args += [key, key, upload_id, upload_id, upload_id]
            sql += " ORDER BY key, created, upload_id LIMIT ?"
            args.append(limit)
            return [_upload(row) for row in db.execute(sql, args)]

        return await self._call(run)

    async def abort_upload(self, upload_id: bytes) -> None:
        def run(db: sqlite3.Connection) -> None:
            with db:
                db.execute("BEGIN IMMEDIATE")
                if not db.execute(
                    "SELECT 1 FROM uploads WHERE upload_id = ?", (upload_id,)
                ).fetchone():
                    raise NoSuchUpload(upload_id.hex())
                now = self._clock.time()
                _remember_ended(db, upload_id, now)
                _drop_upload(db, upload_id, (), now)

        await self._call(run)

    async def complete_upload(
        self, version: ObjectVersion, condition: WriteCondition | None = None
    ) -> None:
        """Make the upload `version.version_id` the current version of its key, from exactly
        `version.parts`, in one transaction. Raises NoSuchUpload if it is gone, InvalidPart if
        a part was replaced since the caller read it."""

        def run(db: sqlite3.Connection) -> None:
            upload_id = version.version_id
            with db:
                db.execute("BEGIN IMMEDIATE")
                if not db.execute(
                    "SELECT 1 FROM uploads WHERE upload_id = ?", (upload_id,)
                ).fetchone():
                    raise NoSuchUpload(upload_id.hex())
                stored = dict(
                    db.execute("SELECT number, seq FROM parts WHERE upload_id = ?", (upload_id,))
                )
                for part in version.parts:
                    if stored.get(part.number) != part.seq:
                        raise InvalidPart(f"part {part.number} changed during completion")
                now = self._clock.time()
                _remember_ended(db, upload_id, now)
                _drop_upload(db, upload_id, tuple(p.seq for p in version.parts), now)
                _commit_one(db, version, condition, now)

        await self._call(run)

    async def uploads_before(self, created: float, limit: int) -> list[Upload]:
        """Uploads started before `created` (to abort abandoned ones)."""

        def run(db: sqlite3.Connection) -> list[Upload]:
            rows = db.execute(
                f"SELECT {_UPLOAD_COLUMNS} FROM uploads WHERE created < ? ORDER BY created LIMIT ?",
                (created, limit),
            )
            return [_upload(row) for row in rows]

        return await self._call(run)
