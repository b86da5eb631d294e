"""Buckets and their settings in SQLite."""

from __future__ import annotations

import sqlite3
from functools import partial

from egide.catalog.sqlite.changes import _drop_upload
from egide.catalog.sqlite.connection import SQLiteConnection
from egide.catalog.sqlite.rights import bump_rights
from egide.domain import Bucket, BucketExists, BucketNotEmpty, BucketNotFound


class SQLiteBuckets(SQLiteConnection):
    """`catalog.buckets.BucketCatalog`."""

    async def create_bucket(self, bucket: Bucket) -> None:
        def run(db: sqlite3.Connection) -> None:
            try:
                db.execute(
                    "INSERT INTO buckets (id, name, created, wrapped_key) VALUES (?, ?, ?, ?)",
                    (bucket.id, bucket.name, bucket.created, bucket.wrapped_key),
                )
            except sqlite3.IntegrityError as exc:
                raise BucketExists(bucket.name) from exc
            bump_rights(db)

        await self._call(partial(self._in_transaction, run))

    async def get_bucket(self, name: str) -> Bucket | None:
        return self._bucket_where("name", name)

    async def get_bucket_by_id(self, bucket_id: bytes) -> Bucket | None:
        return self._bucket_where("id", bucket_id)

    def _bucket_where(self, column: str, value: object) -> Bucket | None:
        def run(db: sqlite3.Connection) -> Bucket | None:
            row = db.execute(
                f"SELECT id, name, created, wrapped_key FROM buckets WHERE {column} = ?", (value,)
            ).fetchone()
            return Bucket(*row) if row else None

        return self._read(run)

    async def list_buckets(self) -> list[Bucket]:
        def run(db: sqlite3.Connection) -> list[Bucket]:
            rows = db.execute("SELECT id, name, created, wrapped_key FROM buckets ORDER BY name")
            return [Bucket(*row) for row in rows]

        return await self._call(run)

    async def delete_bucket(self, name: str) -> None:
        def run(db: sqlite3.Connection) -> None:
            with db:
                db.execute("BEGIN IMMEDIATE")
                row = db.execute("SELECT id FROM buckets WHERE name = ?", (name,)).fetchone()
                if row is None:
                    raise BucketNotFound(name)
                # Any version counts, noncurrent ones and delete markers included, as in S3.
                if db.execute("SELECT 1 FROM versions WHERE bucket_id = ? LIMIT 1", row).fetchone():
                    raise BucketNotEmpty(name)
                # Uploads in progress die with the bucket, as in S3; their parts go to the trash.
                for (upload_id,) in db.execute(
                    "SELECT upload_id FROM uploads WHERE bucket_id = ?", row
                ).fetchall():
                    _drop_upload(db, upload_id, (), self._clock.time())
                db.execute("DELETE FROM bucket_settings WHERE bucket_id = ?", row)
                db.execute("DELETE FROM buckets WHERE id = ?", row)
                bump_rights(db)

        await self._call(run)

    async def get_bucket_setting(self, bucket_id: bytes, name: str) -> str | None:
        def run(db: sqlite3.Connection) -> str | None:
            row = db.execute(
                "SELECT value FROM bucket_settings WHERE bucket_id = ? AND name = ?",
                (bucket_id, name),
            ).fetchone()
            return str(row[0]) if row else None

        return self._read(run)

    async def all_bucket_settings(self) -> dict[bytes, dict[str, str]]:
        def run(db: sqlite3.Connection) -> dict[bytes, dict[str, str]]:
            found: dict[bytes, dict[str, str]] = {}
            for bucket_id, name, value in db.execute(
                "SELECT bucket_id, name, value FROM bucket_settings"
            ):
                found.setdefault(bucket_id, {})[name] = value
            return found

        return self._read(run)

    async def put_bucket_setting(self, bucket_id: bytes, name: str, value: str | None) -> None:
        """Set a setting, or remove it with None."""

        def run(db: sqlite3.Connection) -> None:
            if value is None:
                db.execute(
                    "DELETE FROM bucket_settings WHERE bucket_id = ? AND name = ?",
                    (bucket_id, name),
                )
            else:
                db.execute(
                    "INSERT OR REPLACE INTO bucket_settings (bucket_id, name, value) "
                    "VALUES (?, ?, ?)",
                    (bucket_id, name, value),
                )
            bump_rights(db)

        await self._call(partial(self._in_transaction, run))

    async def swap_bucket_setting(
        self, bucket_id: bytes, name: str, expected: str | None, value: str
    ) -> bool:
        def run(db: sqlite3.Connection) -> bool:
            with db:
                db.execute("BEGIN IMMEDIATE")
                row = db.execute(
                    "SELECT value FROM bucket_settings WHERE bucket_id = ? AND name = ?",
                    (bucket_id, name),
                ).fetchone()
                if (row[0] if row else None) != expected:
                    return False
                db.execute(
                    "INSERT OR REPLACE INTO bucket_settings (bucket_id, name, value) "
                    "VALUES (?, ?, ?)",
                    (bucket_id, name, value),
                )
                bump_rights(db)
                return True

        return await self._call(run)
