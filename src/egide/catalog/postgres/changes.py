"""The writes several concerns share, inside their caller's transaction: trashing files,
forgetting a version or an upload, committing one version (under its key's lock)."""

from __future__ import annotations

import json

from egide.catalog import rules
from egide.catalog.postgres.connection import Db, lock_keys, one, rows
from egide.catalog.postgres.rows import (
    VERSION_COLUMNS,
    VERSION_INSERT,
    Commit,
    attempt_file,
    version,
    version_row,
)
from egide.domain import BucketNotFound, DomainError, ObjectVersion, WriteCondition


async def trash(db: Db, files: list[tuple[str, str]], since: float) -> None:
    if files:
        async with db.cursor() as cur:
            await cur.executemany(
                "INSERT INTO trash (site, shard, since) VALUES (%s, %s, %s)",
                [(site, shard, since) for site, shard in files],
            )


async def trash_version(db: Db, version_id: bytes, now: float) -> None:
    """Forget a version; its shard files go to the trash (a pack's once none of its
    objects is left)."""
    row = await one(
        db, f"SELECT {VERSION_COLUMNS} FROM versions v WHERE version_id = %s", (version_id,)
    )
    assert row is not None
    gone = version(row)
    await db.execute("DELETE FROM versions WHERE version_id = %s", (version_id,))
    await db.execute("DELETE FROM part_files WHERE version_id = %s", (version_id,))
    if gone.pack is not None:
        await unref_pack(db, gone.pack, now)
        return
    await trash(db, gone.shard_files(), now)


async def unref_pack(db: Db, pack: str, now: float, count: int = 1) -> None:
    """`count` objects of `pack` are gone; with the last one its files go to the trash."""
    row = await one(
        db,
        "UPDATE packs SET live = live - %s WHERE name = %s RETURNING live, sites",
        (count, pack),
    )
    if row is None or row[0] > 0:
        return
    await db.execute("DELETE FROM packs WHERE name = %s", (pack,))
    await trash(db, [(site, pack) for site in json.loads(row[1])], now)


async def commit_one(
    db: Db, new: ObjectVersion, condition: WriteCondition | None, now: float
) -> None:
    """Make `new` the newest version of its key. A null version replaces the key's previous
    null version (whose shards go to the trash); any other version is added. The bucket's row
    is share-locked (it cannot be deleted meanwhile) and the key's lock held (a conditional
    write sees the current version no one else changes before this commits)."""
    if not await one(db, "SELECT 1 FROM buckets WHERE id = %s FOR SHARE", (new.bucket_id,)):
        raise BucketNotFound(new.bucket_id.hex())
    await lock_keys(db, [(new.bucket_id, new.key)])
    if condition is not None:  # the current version is read only when it matters
        row = await one(
            db,
            f"SELECT {VERSION_COLUMNS} FROM objects o JOIN versions v USING (version_id) "
            "WHERE o.bucket_id = %s AND o.key = %s",
            (new.bucket_id, new.key),
        )
        rules.check_write(new, condition, version(row) if row else None)
    previous_null = None
    if new.is_null:
        row = await one(
            db,
            f"SELECT {VERSION_COLUMNS} FROM versions v "
            "WHERE bucket_id = %s AND key = %s AND is_null",
            (new.bucket_id, new.key),
        )
        previous_null = version(row) if row else None
    replaced = rules.replaced_null(new, previous_null, now)
    seq_row = await one(
        db,
        "SELECT coalesce(max(seq), 0) + 1 FROM versions WHERE bucket_id = %s AND key = %s",
        (new.bucket_id, new.key),
    )
    assert seq_row is not None
    await db.execute(VERSION_INSERT, version_row(new, int(seq_row[0])))
    await db.execute(
        "INSERT INTO objects (bucket_id, key, version_id) VALUES (%s, %s, %s) "
        "ON CONFLICT (bucket_id, key) DO UPDATE SET version_id = excluded.version_id",
        (new.bucket_id, new.key, new.version_id),
    )
    if replaced is not None:
        await trash_version(db, replaced.version_id, now)


async def commit_each(db: Db, items: list[Commit], now: float) -> list[DomainError | None]:
    """Commit each version in its own savepoint: one's error does not sink the others. Every
    key's lock is taken first, in order (no deadlock with another batch)."""
    await lock_keys(db, [(v.bucket_id, v.key) for v, _ in items])
    results: list[DomainError | None] = []
    for new, condition in items:
        try:
            async with db.transaction():
                await commit_one(db, new, condition, now)
        except DomainError as exc:
            results.append(exc)
            if new.pack is None:
                # Its shards are written and will never be referenced: collect them.
                await trash(db, new.shard_files(), now)
        else:
            results.append(None)
    return results


async def drop_upload(db: Db, upload_id: bytes, keep: tuple[int, ...], now: float) -> None:
    """Forget an upload; the shards of its parts not in `keep` (seqs) go to the trash."""
    found = await one(db, "SELECT sites FROM uploads WHERE upload_id = %s", (upload_id,))
    assert found is not None
    sites = json.loads(found[0])
    attempts = [
        (seq, pid)
        for seq, pid in await rows(
            db, "SELECT seq, pid FROM parts WHERE upload_id = %s", (upload_id,)
        )
        if seq not in keep
    ]
    await trash(db, [
        (site, attempt_file(upload_id, seq, pid, i))
        for seq, pid in attempts
        for i, site in enumerate(sites)
    ], now)  # fmt: skip
    # The index keeps the kept ones: the version completed from them is their owner now.
    pids = [p for _, p in attempts if p is not None]
    if pids:
        await db.execute("DELETE FROM part_files WHERE file_id = ANY(%s)", (pids,))
    await db.execute("DELETE FROM parts WHERE upload_id = %s", (upload_id,))
    await db.execute("DELETE FROM uploads WHERE upload_id = %s", (upload_id,))
