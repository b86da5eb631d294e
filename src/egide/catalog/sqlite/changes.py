"""The writes several concerns share, inside their caller's transaction: trashing files,
forgetting a version or an upload, committing one version."""

from __future__ import annotations

import json
import sqlite3

from egide.catalog import rules
from egide.catalog.sqlite.rows import (
    _VERSION_COLUMNS,
    _VERSION_INSERT,
    _attempt_file,
    _Commit,
    _version,
    _version_row,
)
from egide.domain import BucketNotFound, DomainError, ObjectVersion, WriteCondition


def _trash(db: sqlite3.Connection, files: list[tuple[str, str]], since: float) -> None:
    db.executemany(
        "INSERT INTO trash (site, shard, since) VALUES (?, ?, ?)",
        [(site, shard, since) for site, shard in files],
    )


def _trash_version(db: sqlite3.Connection, version_id: bytes, now: float) -> None:
    """Forget a version; its shard files go to the trash (a pack's once none of its
    objects is left)."""
    row = db.execute(
        f"SELECT {_VERSION_COLUMNS} FROM versions v WHERE version_id = ?", (version_id,)
    ).fetchone()
    version = _version(row)
    db.execute("DELETE FROM versions WHERE version_id = ?", (version_id,))
    db.execute("DELETE FROM part_files WHERE version_id = ?", (version_id,))
    if version.pack is not None:
        _unref_pack(db, version.pack, now)
        return
    _trash(db, version.shard_files(), now)


def _unref_pack(db: sqlite3.Connection, pack: str, now: float, count: int = 1) -> None:
    """`count` objects of `pack` are gone; with the last one its files go to the trash."""
    db.execute("UPDATE packs SET live = live - ? WHERE name = ?", (count, pack))
    row = db.execute("SELECT live, sites FROM packs WHERE name = ?", (pack,)).fetchone()
    if row is None or row[0] > 0:
        return
    db.execute("DELETE FROM packs WHERE name = ?", (pack,))
    _trash(db, [(site, pack) for site in json.loads(row[1])], now)


def _commit_one(
    db: sqlite3.Connection, version: ObjectVersion, condition: WriteCondition | None, now: float
) -> None:
    """Make `version` the newest version of its key. A null version replaces the key's
    previous null version (whose shards go to the trash); any other version is added."""
    if not db.execute("SELECT 1 FROM buckets WHERE id = ?", (version.bucket_id,)).fetchone():
        raise BucketNotFound(version.bucket_id.hex())
    if condition is not None:  # the current version is read only when it matters
        row = db.execute(
            f"SELECT {_VERSION_COLUMNS} FROM objects o JOIN versions v USING (version_id) "
            "WHERE o.bucket_id = ? AND o.key = ?",
            (version.bucket_id, version.key),
        ).fetchone()
        rules.check_write(version, condition, _version(row) if row else None)
    previous_null = None
    if version.is_null:
        row = db.execute(
            f"SELECT {_VERSION_COLUMNS} FROM versions v "
            "WHERE bucket_id = ? AND key = ? AND is_null = 1",
            (version.bucket_id, version.key),
        ).fetchone()
        previous_null = _version(row) if row else None
    replaced = rules.replaced_null(version, previous_null, now)
    seq = db.execute(
        "SELECT coalesce(max(seq), 0) + 1 FROM versions WHERE bucket_id = ? AND key = ?",
        (version.bucket_id, version.key),
    ).fetchone()[0]
    db.execute(_VERSION_INSERT, _version_row(version, seq))
    db.execute(
        "INSERT OR REPLACE INTO objects (bucket_id, key, version_id) VALUES (?, ?, ?)",
        (version.bucket_id, version.key, version.version_id),
    )
    if replaced is not None:
        _trash_version(db, replaced.version_id, now)


def _commit_each(
    db: sqlite3.Connection, items: list[_Commit], now: float
) -> list[DomainError | None]:
    results: list[DomainError | None] = []
    for version, condition in items:
        db.execute("SAVEPOINT one")
        try:
            _commit_one(db, version, condition, now)
        except DomainError as exc:
            db.execute("ROLLBACK TO one")
            results.append(exc)
            if version.pack is None:
                # Its shards are written and will never be referenced: collect them.
                _trash(db, version.shard_files(), now)
        else:
            results.append(None)
        db.execute("RELEASE one")
    return results


def _drop_upload(
    db: sqlite3.Connection, upload_id: bytes, keep: tuple[int, ...], now: float
) -> None:
    """Forget an upload; the shards of its parts not in `keep` (seqs) go to the trash."""
    sites = json.loads(
        db.execute("SELECT sites FROM uploads WHERE upload_id = ?", (upload_id,)).fetchone()[0]
    )
    attempts = [
        (seq, pid)
        for seq, pid in db.execute("SELECT seq, pid FROM parts WHERE upload_id = ?", (upload_id,))
        if seq not in keep
    ]
    _trash(db, [
        (site, _attempt_file(upload_id, seq, pid, i))
        for seq, pid in attempts
        for i, site in enumerate(sites)
    ], now)  # fmt: skip
    # The index keeps the kept ones: the version completed from them is their owner now.
    db.executemany("DELETE FROM part_files WHERE file_id = ?", [(p,) for _, p in attempts])
    db.execute("DELETE FROM parts WHERE upload_id = ?", (upload_id,))
    db.execute("DELETE FROM uploads WHERE upload_id = ?", (upload_id,))
