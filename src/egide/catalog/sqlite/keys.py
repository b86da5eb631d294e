"""Credentials and bucket and data key rotation in SQLite."""

from __future__ import annotations

import sqlite3
from functools import partial

from egide.catalog.sqlite.connection import SQLiteConnection
from egide.catalog.sqlite.rights import bump_rights
from egide.domain import BucketNotFound


class SQLiteKeys(SQLiteConnection):
    """`catalog.keys.CredentialCatalog` and `KeyRotationCatalog`."""

    async def add_credential(self, access_key: str, sealed_secret: bytes) -> None:
        def run(db: sqlite3.Connection) -> None:
            db.execute(
                "INSERT INTO credentials (access_key, sealed_secret, created) VALUES (?, ?, ?)",
                (access_key, sealed_secret, self._clock.time()),
            )
            bump_rights(db)

        await self._call(partial(self._in_transaction, run))

    async def get_credential(self, access_key: str) -> bytes | None:
        def run(db: sqlite3.Connection) -> bytes | None:
            row = db.execute(
                "SELECT sealed_secret FROM credentials WHERE access_key = ?", (access_key,)
            ).fetchone()
            return bytes(row[0]) if row else None

        return self._read(run)

    async def count_credentials(self) -> int:
        return await self._call(
            lambda db: int(db.execute("SELECT count(*) FROM credentials").fetchone()[0])
        )

    async def sealed_credentials(self) -> list[tuple[str, bytes]]:
        """Every access key with its sealed secret (a master key rotation reseals them)."""
        return self._read(
            lambda db: [
                (row[0], bytes(row[1]))
                for row in db.execute(
                    "SELECT access_key, sealed_secret FROM credentials ORDER BY access_key"
                )
            ]
        )

    async def reseal_credentials(self, changes: list[tuple[str, bytes, bytes]]) -> int:
        """Replace sealed secrets, (access key, old, new), where still the old, in one
        transaction; how many changed."""

        def run(db: sqlite3.Connection) -> int:
            changed = sum(
                db.execute(
                    "UPDATE credentials SET sealed_secret = ? "
                    "WHERE access_key = ? AND sealed_secret = ?",
                    (new, access, old),
                ).rowcount
                for access, old, new in changes
            )
            if changed:
                bump_rights(db)
            return changed

        return await self._call(partial(self._in_transaction, run))

    async def retired_bucket_keys(
        self, bucket_id: bytes | None = None
    ) -> list[tuple[bytes, int, bytes]]:
        """(bucket id, generation, master-wrapped key) of the retired keys of one bucket (of
        every bucket without `bucket_id`), newest generation first."""

        def run(db: sqlite3.Connection) -> list[tuple[bytes, int, bytes]]:
            sql = "SELECT bucket_id, generation, wrapped_key FROM bucket_key_generations"
            args: tuple[object, ...] = ()
            if bucket_id is not None:
                sql, args = sql + " WHERE bucket_id = ?", (bucket_id,)
            rows = db.execute(sql + " ORDER BY bucket_id, generation DESC", args)
            return [(bytes(row[0]), int(row[1]), bytes(row[2])) for row in rows]

        return self._read(run)

    async def rewrap_bucket_keys(
        self,
        current: list[tuple[bytes, bytes, bytes]],
        retired: list[tuple[bytes, int, bytes, bytes]],
    ) -> int:
        """Replace master-wrapped bucket keys where still the old ones, in one transaction:
        `current` (bucket id, old, new) and `retired` (bucket id, generation, old, new) keys.
        How many changed."""

        def run(db: sqlite3.Connection) -> int:
            changed = 0
            for bucket_id, old, new in current:
                changed += db.execute(
                    "UPDATE buckets SET wrapped_key = ? WHERE id = ? AND wrapped_key = ?",
                    (new, bucket_id, old),
                ).rowcount
            for bucket_id, generation, old, new in retired:
                changed += db.execute(
                    "UPDATE bucket_key_generations SET wrapped_key = ? "
                    "WHERE bucket_id = ? AND generation = ? AND wrapped_key = ?",
                    (new, bucket_id, generation, old),
                ).rowcount
            return changed

        return await self._call(partial(self._in_transaction, run))

    async def bucket_key_rotation(self, bucket_id: bytes) -> bytes | None:
        """Where this bucket's key rotation stands: the last version or upload id rewrapped
        (b"" at its start); None when no rotation is under way."""

        def run(db: sqlite3.Connection) -> bytes | None:
            row = db.execute("SELECT rewrap_after FROM buckets WHERE id = ?", (bucket_id,))
            found = row.fetchone()
            if found is None:
                raise BucketNotFound(bucket_id.hex())
            return None if found[0] is None else bytes(found[0])

        return self._read(run)

    async def start_bucket_key_rotation(self, bucket_id: bytes, old: bytes, new: bytes) -> bool:
        """Make `new` the bucket's key and retire `old` as its newest generation, if `old` is
        still its key and no rotation is under way (else False); one transaction."""

        def run(db: sqlite3.Connection) -> bool:
            row = db.execute(
                "SELECT wrapped_key, rewrap_after FROM buckets WHERE id = ?", (bucket_id,)
            ).fetchone()
            if row is None:
                raise BucketNotFound(bucket_id.hex())
            if bytes(row[0]) != old or row[1] is not None:
                return False
            generation = db.execute(
                "SELECT coalesce(max(generation), 0) + 1 FROM bucket_key_generations "
                "WHERE bucket_id = ?",
                (bucket_id,),
            ).fetchone()[0]
            db.execute(
                "INSERT INTO bucket_key_generations (bucket_id, generation, wrapped_key, retired) "
                "VALUES (?, ?, ?, ?)",
                (bucket_id, generation, old, self._clock.time()),
            )
            db.execute(
                "UPDATE buckets SET wrapped_key = ?, rewrap_after = ? WHERE id = ?",
                (new, b"", bucket_id),
            )
            return True

        return await self._call(partial(self._in_transaction, run))

    async def wrapped_data_keys(
        self, bucket_id: bytes, after: bytes, limit: int
    ) -> list[tuple[bytes, bytes]]:
        """(id, wrapped data key) of the bucket's versions holding data and uploads in
        progress, in id order after `after`."""

        def run(db: sqlite3.Connection) -> list[tuple[bytes, bytes]]:
            # `+bucket_id`: walk the id index (a stable cursor), not the (bucket, key) one.
            versions = db.execute(
                "SELECT version_id, wrapped_data_key FROM versions WHERE version_id > ? "
                "AND +bucket_id = ? AND delete_marker = 0 ORDER BY version_id LIMIT ?",
                (after, bucket_id, limit),
            ).fetchall()
            uploads = db.execute(
                "SELECT upload_id, wrapped_data_key FROM uploads WHERE upload_id > ? "
                "AND +bucket_id = ? ORDER BY upload_id LIMIT ?",
                (after, bucket_id, limit),
            ).fetchall()
            rows = sorted((bytes(r[0]), bytes(r[1])) for r in [*versions, *uploads])
            return rows[:limit]

        return self._read(run)

    async def rewrap_data_keys(
        self, bucket_id: bytes, changes: list[tuple[bytes, bytes, bytes]], position: bytes | None
    ) -> int:
        """Replace wrapped data keys, (version or upload id, old, new), where still the old,
        and with `position` record how far the bucket's key rotation got; one transaction."""

        def run(db: sqlite3.Connection) -> int:
            changed = 0
            for owner_id, old, new in changes:
                for table, column in (("versions", "version_id"), ("uploads", "upload_id")):
                    changed += db.execute(
                        f"UPDATE {table} SET wrapped_data_key = ? "
                        f"WHERE {column} = ? AND wrapped_data_key = ?",
                        (new, owner_id, old),
                    ).rowcount
            if position is not None:
                db.execute(
                    "UPDATE buckets SET rewrap_after = ? WHERE id = ? AND rewrap_after IS NOT NULL",
                    (position, bucket_id),
                )
            return changed

        return await self._call(partial(self._in_transaction, run))

    async def finish_bucket_key_rotation(self, bucket_id: bytes) -> None:
        await self._call(
            lambda db: db.execute(
                "UPDATE buckets SET rewrap_after = NULL WHERE id = ?", (bucket_id,)
            )
        )
