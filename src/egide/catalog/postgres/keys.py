"""Credentials and bucket and data key rotation in PostgreSQL. Each rewrap is a conditional
update (where still the old key): two rotations racing change each key once."""

from __future__ import annotations

from egide.catalog.postgres.connection import Db, PostgresConnection, one, rows, run
from egide.catalog.postgres.rights import bump_rights
from egide.domain import BucketNotFound


class PostgresKeys(PostgresConnection):
    """`catalog.keys.CredentialCatalog` and `KeyRotationCatalog`."""

    async def add_credential(self, access_key: str, sealed_secret: bytes) -> None:
        async def write(db: Db) -> None:
            await db.execute(
                "INSERT INTO credentials (access_key, sealed_secret, created) VALUES (%s, %s, %s)",
                (access_key, sealed_secret, self._clock.time()),
            )
            await bump_rights(db)

        await self._transaction(write)

    async def get_credential(self, access_key: str) -> bytes | None:
        async def read(db: Db) -> bytes | None:
            row = await one(
                db, "SELECT sealed_secret FROM credentials WHERE access_key = %s", (access_key,)
            )
            return bytes(row[0]) if row else None

        return await self._read(read)

    async def count_credentials(self) -> int:
        async def read(db: Db) -> int:
            row = await one(db, "SELECT count(*) FROM credentials")
            return int(row[0]) if row else 0

        return await self._read(read)

    async def sealed_credentials(self) -> list[tuple[str, bytes]]:
        """Every access key with its sealed secret (a master key rotation reseals them)."""

        async def read(db: Db) -> list[tuple[str, bytes]]:
            found = await rows(
                db, "SELECT access_key, sealed_secret FROM credentials ORDER BY access_key"
            )
            return [(str(row[0]), bytes(row[1])) for row in found]

        return await self._read(read)

    async def reseal_credentials(self, changes: list[tuple[str, bytes, bytes]]) -> int:
        """Replace sealed secrets, (access key, old, new), where still the old, in one
        transaction; how many changed."""

        async def write(db: Db) -> int:
            changed = 0
            for access, old, new in sorted(changes):
                changed += await run(
                    db,
                    "UPDATE credentials SET sealed_secret = %s "
                    "WHERE access_key = %s AND sealed_secret = %s",
                    (new, access, old),
                )
            if changed:
                await bump_rights(db)
            return changed

        return await self._transaction(write)

    async def retired_bucket_keys(
        self, bucket_id: bytes | None = None
    ) -> list[tuple[bytes, int, bytes]]:
        """(bucket id, generation, master-wrapped key) of the retired keys of one bucket (of
        every bucket without `bucket_id`), newest generation first."""

        async def read(db: Db) -> list[tuple[bytes, int, bytes]]:
            sql = "SELECT bucket_id, generation, wrapped_key FROM bucket_key_generations"
            args: tuple[object, ...] = ()
            if bucket_id is not None:
                sql, args = sql + " WHERE bucket_id = %s", (bucket_id,)
            found = await rows(db, sql + " ORDER BY bucket_id, generation DESC", args)
            return [(bytes(row[0]), int(row[1]), bytes(row[2])) for row in found]

        return await self._read(read)

    async def rewrap_bucket_keys(
        self,
        current: list[tuple[bytes, bytes, bytes]],
        retired: list[tuple[bytes, int, bytes, bytes]],
    ) -> int:
        """Replace master-wrapped bucket keys where still the old ones, in one transaction:
        `current` (bucket id, old, new) and `retired` (bucket id, generation, old, new) keys.
        How many changed."""

        async def write(db: Db) -> int:
            changed = 0
            for bucket_id, old, new in sorted(current):
                changed += await run(
                    db,
                    "UPDATE buckets SET wrapped_key = %s WHERE id = %s AND wrapped_key = %s",
                    (new, bucket_id, old),
                )
            for bucket_id, generation, old, new in sorted(retired):
                changed += await run(
                    db,
                    "UPDATE bucket_key_generations SET wrapped_key = %s "
                    "WHERE bucket_id = %s AND generation = %s AND wrapped_key = %s",
                    (new, bucket_id, generation, old),
                )
            return changed

        return await self._transaction(write)

    async def bucket_key_rotation(self, bucket_id: bytes) -> bytes | None:
        """Where this bucket's key rotation stands: the last version or upload id rewrapped
        (b"" at its start); None when no rotation is under way."""

        async def read(db: Db) -> bytes | None:
            found = await one(db, "SELECT rewrap_after FROM buckets WHERE id = %s", (bucket_id,))
            if found is None:
                raise BucketNotFound(bucket_id.hex())
            return None if found[0] is None else bytes(found[0])

        return await self._read(read)

    async def start_bucket_key_rotation(self, bucket_id: bytes, old: bytes, new: bytes) -> bool:
        """Make `new` the bucket's key and retire `old` as its newest generation, if `old` is
        still its key and no rotation is under way (else False); the bucket's row locked."""

        async def write(db: Db) -> bool:
            row = await one(
                db,
                "SELECT wrapped_key, rewrap_after FROM buckets WHERE id = %s FOR UPDATE",
                (bucket_id,),
            )
            if row is None:
                raise BucketNotFound(bucket_id.hex())
            if bytes(row[0]) != old or row[1] is not None:
                return False
            await db.execute(
                "INSERT INTO bucket_key_generations (bucket_id, generation, wrapped_key, retired) "
                "SELECT %s, coalesce(max(generation), 0) + 1, %s, %s "
                "FROM bucket_key_generations WHERE bucket_id = %s",
                (bucket_id, old, self._clock.time(), bucket_id),
            )
            await db.execute(
                "UPDATE buckets SET wrapped_key = %s, rewrap_after = %s WHERE id = %s",
                (new, b"", bucket_id),
            )
            return True

        return await self._transaction(write)

    async def wrapped_data_keys(
        self, bucket_id: bytes, after: bytes, limit: int
    ) -> list[tuple[bytes, bytes]]:
        """(id, wrapped data key) of the bucket's versions holding data and uploads in
        progress, in id order after `after`."""

        async def read(db: Db) -> list[tuple[bytes, bytes]]:
            versions = await rows(
                db,
                "SELECT version_id, wrapped_data_key FROM versions WHERE version_id > %s "
                "AND bucket_id = %s AND NOT delete_marker ORDER BY version_id LIMIT %s",
                (after, bucket_id, limit),
            )
            uploads = await rows(
                db,
                "SELECT upload_id, wrapped_data_key FROM uploads WHERE upload_id > %s "
                "AND bucket_id = %s ORDER BY upload_id LIMIT %s",
                (after, bucket_id, limit),
            )
            found = sorted((bytes(r[0]), bytes(r[1])) for r in [*versions, *uploads])
            return found[:limit]

        return await self._read(read)

    async def rewrap_data_keys(
        self, bucket_id: bytes, changes: list[tuple[bytes, bytes, bytes]], position: bytes | None
    ) -> int:
        """Replace wrapped data keys, (version or upload id, old, new), where still the old,
        and with `position` record how far the bucket's key rotation got; one transaction."""

        async def write(db: Db) -> int:
            changed = 0
            for owner_id, old, new in sorted(changes):
                for table, column in (("versions", "version_id"), ("uploads", "upload_id")):
                    changed += await run(
                        db,
                        f"UPDATE {table} SET wrapped_data_key = %s "
                        f"WHERE {column} = %s AND wrapped_data_key = %s",
                        (new, owner_id, old),
                    )
            if position is not None:
                await db.execute(
                    "UPDATE buckets SET rewrap_after = %s "
                    "WHERE id = %s AND rewrap_after IS NOT NULL",
                    (position, bucket_id),
                )
            return changed

        return await self._transaction(write)

    async def finish_bucket_key_rotation(self, bucket_id: bytes) -> None:
        async def write(db: Db) -> None:
            await db.execute("UPDATE buckets SET rewrap_after = NULL WHERE id = %s", (bucket_id,))

        await self._read(write)
