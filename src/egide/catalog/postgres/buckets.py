"""Buckets and their settings in PostgreSQL."""

from __future__ import annotations

from psycopg.errors import UniqueViolation

from egide.catalog.postgres.changes import drop_upload
from egide.catalog.postgres.connection import Db, PostgresConnection, one, rows
from egide.catalog.postgres.rights import bump_rights
from egide.domain import Bucket, BucketExists, BucketNotEmpty, BucketNotFound

_COLUMNS = "id, name, created, wrapped_key"


class PostgresBuckets(PostgresConnection):
    """`catalog.buckets.BucketCatalog`."""

    async def create_bucket(self, bucket: Bucket) -> None:
        async def run(db: Db) -> None:
            await db.execute(
                f"INSERT INTO buckets ({_COLUMNS}) VALUES (%s, %s, %s, %s)",
                (bucket.id, bucket.name, bucket.created, bucket.wrapped_key),
            )
            await bump_rights(db)

        try:
            await self._transaction(run)
        except UniqueViolation as exc:
            raise BucketExists(bucket.name) from exc

    async def get_bucket(self, name: str) -> Bucket | None:
        return await self._bucket_where("name", name)

    async def get_bucket_by_id(self, bucket_id: bytes) -> Bucket | None:
        return await self._bucket_where("id", bucket_id)

    async def _bucket_where(self, column: str, value: object) -> Bucket | None:
        async def run(db: Db) -> Bucket | None:
            row = await one(db, f"SELECT {_COLUMNS} FROM buckets WHERE {column} = %s", (value,))
            return Bucket(*row) if row else None

        return await self._read(run)

    async def list_buckets(self) -> list[Bucket]:
        async def run(db: Db) -> list[Bucket]:
            return [
                Bucket(*r) for r in await rows(db, f"SELECT {_COLUMNS} FROM buckets ORDER BY name")
            ]

        return await self._read(run)

    async def delete_bucket(self, name: str) -> None:
        """The bucket's row is locked first: a version committed meanwhile (which share-locks
        it) either committed before (BucketNotEmpty) or finds the bucket gone."""

        async def run(db: Db) -> None:
            row = await one(db, "SELECT id FROM buckets WHERE name = %s FOR UPDATE", (name,))
            if row is None:
                raise BucketNotFound(name)
            # Any version counts, noncurrent ones and delete markers included, as in S3.
            if await one(db, "SELECT 1 FROM versions WHERE bucket_id = %s LIMIT 1", row):
                raise BucketNotEmpty(name)
            # Uploads in progress die with the bucket, as in S3; their parts go to the trash.
            uploads = await rows(
                db,
                "SELECT upload_id FROM uploads WHERE bucket_id = %s ORDER BY upload_id FOR UPDATE",
                row,
            )
            for (upload_id,) in uploads:
                await drop_upload(db, upload_id, (), self._clock.time())
            await db.execute("DELETE FROM bucket_settings WHERE bucket_id = %s", row)
            await db.execute("DELETE FROM buckets WHERE id = %s", row)
            await bump_rights(db)

        await self._transaction(run)

    async def get_bucket_setting(self, bucket_id: bytes, name: str) -> str | None:
        async def run(db: Db) -> str | None:
            row = await one(
                db,
                "SELECT value FROM bucket_settings WHERE bucket_id = %s AND name = %s",
                (bucket_id, name),
            )
            return str(row[0]) if row else None

        return await self._read(run)

    async def all_bucket_settings(self) -> dict[bytes, dict[str, str]]:
        async def run(db: Db) -> dict[bytes, dict[str, str]]:
            found: dict[bytes, dict[str, str]] = {}
            for bucket_id, name, value in await rows(
                db, "SELECT bucket_id, name, value FROM bucket_settings"
            ):
                found.setdefault(bytes(bucket_id), {})[name] = value
            return found

        return await self._read(run)

    async def put_bucket_setting(self, bucket_id: bytes, name: str, value: str | None) -> None:
        """Set a setting, or remove it with None."""

        async def run(db: Db) -> None:
            if value is None:
                await db.execute(
                    "DELETE FROM bucket_settings WHERE bucket_id = %s AND name = %s",
                    (bucket_id, name),
                )
            else:
                await db.execute(
                    "INSERT INTO bucket_settings (bucket_id, name, value) VALUES (%s, %s, %s) "
                    "ON CONFLICT (bucket_id, name) DO UPDATE SET value = excluded.value",
                    (bucket_id, name, value),
                )
            await bump_rights(db)

        await self._transaction(run)

    async def swap_bucket_setting(
        self, bucket_id: bytes, name: str, expected: str | None, value: str
    ) -> bool:
        """One conditional statement: an update where the value is still `expected`, or an
        insert where there is none (a concurrent insert makes it fail: the other won); the
        counter moves in the same transaction only if it changed."""

        async def run(db: Db) -> bool:
            if expected is None:
                row = await one(
                    db,
                    "INSERT INTO bucket_settings (bucket_id, name, value) VALUES (%s, %s, %s) "
                    "ON CONFLICT (bucket_id, name) DO NOTHING RETURNING 1",
                    (bucket_id, name, value),
                )
            else:
                row = await one(
                    db,
                    "UPDATE bucket_settings SET value = %s "
                    "WHERE bucket_id = %s AND name = %s AND value = %s RETURNING 1",
                    (value, bucket_id, name, expected),
                )
            if row is not None:
                await bump_rights(db)
            return row is not None

        return await self._transaction(run)
