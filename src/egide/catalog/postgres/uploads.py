"""Multipart uploads in PostgreSQL. A part commit, an abort and a completion lock the upload's
row first: they take turns, so a completion sees exactly the parts it names or fails."""

from __future__ import annotations

import json
from typing import Any

from egide.catalog.postgres.changes import commit_one, drop_upload, trash
from egide.catalog.postgres.connection import Db, PostgresConnection, lock_keys, one, rows
from egide.catalog.postgres.rows import UPLOAD_COLUMNS, attempt_file, before_nul, upload
from egide.catalog.rules import prefix_end
from egide.domain import InvalidPart, NoSuchUpload, ObjectVersion, Part, Upload, WriteCondition

#: How long an ended upload's creation time is kept for paging (`list_uploads`' marker).
ENDED_KEPT = 86_400.0


async def _remember_ended(db: Db, upload_id: bytes, now: float) -> None:
    """Keep the creation time of an upload being aborted or completed, so that a listing whose
    marker it is goes on right after it; forget those kept longer than ENDED_KEPT."""
    await db.execute("DELETE FROM ended_uploads WHERE ended < %s", (now - ENDED_KEPT,))
    await db.execute(
        "INSERT INTO ended_uploads (upload_id, created, ended) "
        "SELECT upload_id, created, %s FROM uploads WHERE upload_id = %s "
        "ON CONFLICT (upload_id) DO UPDATE SET created = excluded.created, ended = excluded.ended",
        (now, upload_id),
    )


async def _lock_upload(db: Db, upload_id: bytes) -> bool:
    found = await one(db, "SELECT 1 FROM uploads WHERE upload_id = %s FOR UPDATE", (upload_id,))
    return found is not None


class PostgresUploads(PostgresConnection):
    """`catalog.uploads.UploadCatalog`."""

    async def create_upload(self, upload: Upload) -> None:
        async def write(db: Db) -> None:
            await db.execute(
                f"INSERT INTO uploads ({UPLOAD_COLUMNS}) "
                "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
                (
                    upload.upload_id, upload.bucket_id, upload.key, upload.created,
                    upload.wrapped_data_key, upload.k, upload.m, upload.block_size,
                    json.dumps(upload.sites), json.dumps(upload.headers),
                ),
            )  # fmt: skip

        await self._read(write)

    async def get_upload(self, upload_id: bytes) -> Upload | None:
        async def read(db: Db) -> Upload | None:
            row = await one(
                db, f"SELECT {UPLOAD_COLUMNS} FROM uploads WHERE upload_id = %s", (upload_id,)
            )
            return upload(row) if row else None

        return await self._read(read)

    async def next_part_seq(self, upload_id: bytes) -> int:
        """A part attempt number never handed out before in this upload (one statement)."""

        async def write(db: Db) -> tuple[Any, ...] | None:
            return await one(
                db,
                "UPDATE uploads SET next_seq = next_seq + 1 WHERE upload_id = %s "
                "RETURNING next_seq - 1",
                (upload_id,),
            )

        row = await self._read(write)
        if row is None:
            raise NoSuchUpload(upload_id.hex())
        return int(row[0])

    async def commit_part(self, upload_id: bytes, part: Part, sites: tuple[str, ...]) -> None:
        """Record an uploaded part, replacing (and trashing) an earlier one of that number.
        If the upload is gone meanwhile, the part's shards go to the trash and NoSuchUpload
        is raised."""

        async def write(db: Db) -> bool:
            files = [(site, part.file(upload_id, i)) for i, site in enumerate(sites)]
            if not await _lock_upload(db, upload_id):
                await trash(db, files, self._clock.time())  # committed, then NoSuchUpload
                return False
            old = await one(
                db,
                "SELECT seq, pid FROM parts WHERE upload_id = %s AND number = %s",
                (upload_id, part.number),
            )
            if old is not None:
                await trash(db, [
                    (site, attempt_file(upload_id, old[0], old[1], i))
                    for i, site in enumerate(sites)
                ], self._clock.time())  # fmt: skip
                await db.execute("DELETE FROM part_files WHERE file_id = %s", (old[1],))
            await db.execute(
                "INSERT INTO parts (upload_id, number, seq, size, etag, last_modified, "
                "checksums, padded_size, pid) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s) "
                "ON CONFLICT (upload_id, number) DO UPDATE SET seq = excluded.seq, "
                "size = excluded.size, etag = excluded.etag, "
                "last_modified = excluded.last_modified, checksums = excluded.checksums, "
                "padded_size = excluded.padded_size, pid = excluded.pid",
                (
                    upload_id, part.number, part.seq, part.size, part.etag, part.last_modified,
                    json.dumps(part.checksums), part.padded_size, part.pid or None,
                ),
            )  # fmt: skip
            if part.pid:
                await db.execute(
                    "INSERT INTO part_files (file_id, version_id) VALUES (%s, %s) "
                    "ON CONFLICT (file_id) DO UPDATE SET version_id = excluded.version_id",
                    (part.pid, upload_id),
                )
            return True

        if not await self._transaction(write):
            raise NoSuchUpload(upload_id.hex())

    async def list_parts(self, upload_id: bytes, after: int = 0, limit: int = 10_000) -> list[Part]:
        async def read(db: Db) -> list[Part]:
            found = await rows(
                db,
                "SELECT number, seq, size, etag, last_modified, checksums, pid, padded_size "
                "FROM parts WHERE upload_id = %s AND number > %s ORDER BY number LIMIT %s",
                (upload_id, after, limit),
            )
            return [
                Part(row[0], row[1], row[2], row[3], row[4], json.loads(row[5]), row[6] or b"",
                     row[7])
                for row in found
            ]  # fmt: skip

        return await self._read(read)

    async def list_uploads(
        self, bucket_id: bytes, prefix: str, after: tuple[str, bytes] | None, limit: int
    ) -> list[Upload]:
        """Uploads whose key starts with `prefix`, in (key, creation) order, after the
        (key, upload id) marker — also when the marker's upload has ended since."""

        if before_nul(prefix) is not None:
            return []  # no key holds a NUL

        async def read(db: Db) -> list[Upload]:
            sql = f"SELECT {UPLOAD_COLUMNS} FROM uploads WHERE bucket_id = %s AND key >= %s"
            args: list[object] = [bucket_id, prefix]
            if (end := prefix_end(prefix)) is not None:
                sql += " AND key < %s"
                args.append(end)
            if after is not None and (cut := before_nul(after[0])) is not None:
                sql += " AND key > %s"  # after every upload of a key no upload has
                args.append(cut)
            elif after is not None:
                key, upload_id = after
                sql += (
                    " AND (key > %s OR (key = %s AND (created, upload_id) > (coalesce("
                    "(SELECT created FROM uploads WHERE upload_id = %s), "
                    "(SELECT created FROM ended_uploads WHERE upload_id = %s)), %s)))"
                )
                args += [key, key, upload_id, upload_id, upload_id]
            sql += " ORDER BY key, created, upload_id LIMIT %s"
            args.append(limit)
            return [upload(row) for row in await rows(db, sql, args)]

        return await self._read(read)

    async def abort_upload(self, upload_id: bytes) -> None:
        async def write(db: Db) -> None:
            if not await _lock_upload(db, upload_id):
                raise NoSuchUpload(upload_id.hex())
            now = self._clock.time()
            await _remember_ended(db, upload_id, now)
            await drop_upload(db, upload_id, (), now)

        await self._transaction(write)

    async def complete_upload(
        self, version: ObjectVersion, condition: WriteCondition | None = None
    ) -> None:
        """Make the upload `version.version_id` the current version of its key, from exactly
        `version.parts`, in one transaction. Raises NoSuchUpload if it is gone, InvalidPart if
        a part was replaced since the caller read it."""

        async def write(db: Db) -> None:
            upload_id = version.version_id
            # Locks in the order every writer takes them: bucket, key, then the upload.
            await one(db, "SELECT 1 FROM buckets WHERE id = %s FOR SHARE", (version.bucket_id,))
            await lock_keys(db, [(version.bucket_id, version.key)])
            if not await _lock_upload(db, upload_id):
                raise NoSuchUpload(upload_id.hex())
            stored = dict(
                await rows(db, "SELECT number, seq FROM parts WHERE upload_id = %s", (upload_id,))
            )
            for part in version.parts:
                if stored.get(part.number) != part.seq:
                    raise InvalidPart(f"part {part.number} changed during completion")
            now = self._clock.time()
            await _remember_ended(db, upload_id, now)
            await drop_upload(db, upload_id, tuple(p.seq for p in version.parts), now)
            await commit_one(db, version, condition, now)

        await self._transaction(write)

    async def uploads_before(self, created: float, limit: int) -> list[Upload]:
        """Uploads started before `created` (to abort abandoned ones)."""

        async def read(db: Db) -> list[Upload]:
            found = await rows(
                db,
                f"SELECT {UPLOAD_COLUMNS} FROM uploads WHERE created < %s "
                "ORDER BY created LIMIT %s",
                (created, limit),
            )
            return [upload(row) for row in found]

        return await self._read(read)
