"""Rows ⇄ domain values: the same columns and JSON encodings as SQLite's (`sqlite.rows`, whose
pure converters are reused), with PostgreSQL's placeholders."""

from __future__ import annotations

from typing import Any

from egide.catalog.sqlite.rows import (
    _JOB_COLUMNS,
    _UPLOAD_COLUMNS,
    _VERSION_COLUMNS,
    _attempt_file,
    _Commit,
    _job,
    _parts_json,
    _upload,
    _version,
    _version_row,
)
from egide.domain import Job, ObjectVersion, Upload

__all__ = [
    "JOB_COLUMNS",
    "UPLOAD_COLUMNS",
    "VERSION_COLUMNS",
    "VERSION_INSERT",
    "Commit",
    "attempt_file",
    "before_nul",
    "job",
    "parts_json",
    "select_version",
    "upload",
    "version",
    "version_row",
]

VERSION_COLUMNS = _VERSION_COLUMNS
UPLOAD_COLUMNS = _UPLOAD_COLUMNS
JOB_COLUMNS = _JOB_COLUMNS
Commit = _Commit
attempt_file = _attempt_file
parts_json = _parts_json
version_row = _version_row


# The converters read rows by position: a psycopg tuple as a sqlite3.Row.
def version(row: tuple[Any, ...]) -> ObjectVersion:
    return _version(row)  # type: ignore[arg-type]


def upload(row: tuple[Any, ...]) -> Upload:
    return _upload(row)  # type: ignore[arg-type]


def job(row: tuple[Any, ...]) -> Job:
    return _job(row)  # type: ignore[arg-type]


#: A version row as committed and as restored (with `version_row`).
VERSION_INSERT = (
    "INSERT INTO versions (version_id, bucket_id, key, size, etag, last_modified, "
    "wrapped_data_key, k, m, block_size, sites, headers, pack, pack_offset, parts, seq, "
    "is_null, delete_marker, retention_mode, retain_until, legal_hold, padded_size) "
    "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, "
    "%s, %s)"
)


def select_version(
    bucket_id: bytes, key: str, version_id: bytes | None, *, lock: bool = False
) -> tuple[str, tuple[object, ...]]:
    """The query for one version of a key (None: its null version); `lock`: FOR UPDATE."""
    sql = f"SELECT {VERSION_COLUMNS} FROM versions v WHERE bucket_id = %s AND key = %s AND "
    tail = " FOR UPDATE" if lock else ""
    if version_id is None:
        return sql + "is_null" + tail, (bucket_id, key)
    return sql + "version_id = %s" + tail, (bucket_id, key, version_id)


def before_nul(bound: str) -> str | None:
    """PostgreSQL's text holds no NUL, so no key stored has one; a bound that has one (the S3
    API resumes after `key + "\\0"`) is replaced by its part before the first NUL, `c`: a
    stored key sorts after the bound exactly when it sorts after `c`, and is never equal to
    it. None when `bound` has no NUL."""
    return bound[: bound.index("\0")] if "\0" in bound else None
