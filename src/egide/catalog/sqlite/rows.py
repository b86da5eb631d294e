"""Rows ⇄ domain values: the columns read, and how JSON columns hold tuples and parts."""

from __future__ import annotations

import json
import sqlite3

from egide.domain import Job, ObjectVersion, Part, Upload, WriteCondition, shard_name

#: A version to commit and the condition its writer set (conditional writes).
_Commit = tuple[ObjectVersion, WriteCondition | None]


_VERSION_COLUMNS = (
    "v.bucket_id, v.key, v.version_id, v.size, v.etag, v.last_modified, v.wrapped_data_key, "
    "v.k, v.m, v.block_size, v.sites, v.headers, v.pack, v.pack_offset, v.parts, v.is_null, "
    "v.delete_marker, v.retention_mode, v.retain_until, v.legal_hold, v.seq, v.padded_size"
)


#: A version row as committed and as restored from a backup (with `_version_row`).
_VERSION_INSERT = (
    "INSERT INTO versions (version_id, bucket_id, key, size, etag, last_modified, "
    "wrapped_data_key, k, m, block_size, sites, headers, pack, pack_offset, parts, seq, "
    "is_null, delete_marker, retention_mode, retain_until, legal_hold, padded_size) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)


_UPLOAD_COLUMNS = (
    "upload_id, bucket_id, key, created, wrapped_data_key, k, m, block_size, sites, headers"
)


def _parts_json(parts: tuple[Part, ...]) -> str | None:
    if not parts:
        return None
    return json.dumps([p.fields() for p in parts])


def _version_row(version: ObjectVersion, seq: int) -> tuple[object, ...]:
    """The values of `_VERSION_INSERT` for `version`, `seq`-th of its key."""
    return (
        version.version_id, version.bucket_id, version.key, version.size, version.etag,
        version.last_modified, version.wrapped_data_key, version.k, version.m,
        version.block_size, json.dumps(version.sites), json.dumps(version.headers), version.pack,
        version.pack_offset, _parts_json(version.parts), seq, version.is_null,
        version.delete_marker, version.retention_mode, version.retain_until, version.legal_hold,
        version.padded_size,
    )  # fmt: skip


def _parts(text: str | None) -> tuple[Part, ...]:
    return tuple(Part.from_fields(fields) for fields in json.loads(text)) if text else ()


def _attempt_file(upload_id: bytes, seq: int, pid: bytes | None, index: int) -> str:
    """The file of shard `index` of a part attempt, named by its id (0018) or its seq."""
    return shard_name(pid, 0, index) if pid else shard_name(upload_id, seq, index)


def _version(row: sqlite3.Row) -> ObjectVersion:
    return ObjectVersion(
        bucket_id=row[0], key=row[1], version_id=row[2], size=row[3], etag=row[4],
        last_modified=row[5], wrapped_data_key=row[6], k=row[7], m=row[8], block_size=row[9],
        sites=tuple(json.loads(row[10])), headers=json.loads(row[11]), pack=row[12],
        pack_offset=row[13], parts=_parts(row[14]), is_null=bool(row[15]),
        delete_marker=bool(row[16]), retention_mode=row[17], retain_until=row[18],
        legal_hold=bool(row[19]), seq=row[20], padded_size=row[21],
    )  # fmt: skip


_JOB_COLUMNS = (
    "id, kind, params, state, cursor, progress, created, updated, owner, lease_until, error"
)


def _job(row: sqlite3.Row) -> Job:
    return Job(
        id=row[0], kind=row[1], params=json.loads(row[2]), state=row[3],
        cursor=json.loads(row[4]) if row[4] else None, progress=json.loads(row[5]),
        created=row[6], updated=row[7], owner=row[8], lease_until=row[9], error=row[10],
    )  # fmt: skip


def _upload(row: sqlite3.Row) -> Upload:
    return Upload(
        upload_id=row[0], bucket_id=row[1], key=row[2], created=row[3],
        wrapped_data_key=row[4], k=row[5], m=row[6], block_size=row[7],
        sites=tuple(json.loads(row[8])), headers=json.loads(row[9]),
    )  # fmt: skip


def _select_version(
    bucket_id: bytes, key: str, version_id: bytes | None
) -> tuple[str, tuple[object, ...]]:
    """The query for one version of a key (None: its null version)."""
    sql = f"SELECT {_VERSION_COLUMNS} FROM versions v WHERE bucket_id = ? AND key = ? AND "
    if version_id is None:
        return sql + "is_null = 1", (bucket_id, key)
    return sql + "version_id = ?", (bucket_id, key, version_id)
