"""The SQLite catalog: WAL, synchronous=FULL, versioned migrations, one writer thread.

Every call runs on a single dedicated thread holding the one connection, so the event loop never
blocks on SQLite and transactions never interleave.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import sqlite3
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from pathlib import Path
from typing import TypeVar

from egide.catalog.base import RecordedReport, ShreddedBucket, ShredSummary, TrashedShard
from egide.catalog.sqlite_backup import SQLiteBackup
from egide.domain import (
    SETTINGS_RECORD_SETTING,
    Bucket,
    BucketExists,
    BucketNotEmpty,
    BucketNotFound,
    DomainError,
    InvalidPart,
    Job,
    KeyNotFound,
    NoSuchUpload,
    ObjectLocked,
    ObjectVersion,
    Part,
    Upload,
    WriteCondition,
    is_settings_record_name,
    parse_amendment_name,
    parse_credentials_record_name,
    parse_marker_record_name,
    parse_settings_record_name,
    shard_name,
)
from egide.owner_only import owner_only_file, tighten

T = TypeVar("T")
#: A version to commit and the condition its writer set (conditional writes).
_Commit = tuple[ObjectVersion, WriteCondition | None]

# Each entry upgrades the schema by one version; never edit a released entry, append a new one.
MIGRATIONS: tuple[str, ...] = (
    """
    CREATE TABLE buckets (
        id BLOB PRIMARY KEY,
        name TEXT NOT NULL UNIQUE,
        created REAL NOT NULL,
        wrapped_key BLOB NOT NULL
    );
    CREATE TABLE versions (
        version_id BLOB PRIMARY KEY,
        bucket_id BLOB NOT NULL REFERENCES buckets(id),
        key TEXT NOT NULL,
        size INTEGER NOT NULL,
        etag TEXT NOT NULL,
        last_modified REAL NOT NULL,
        wrapped_data_key BLOB NOT NULL,
        k INTEGER NOT NULL,
        m INTEGER NOT NULL,
        block_size INTEGER NOT NULL,
        sites TEXT NOT NULL,
        headers TEXT NOT NULL
    );
    CREATE TABLE objects (
        bucket_id BLOB NOT NULL,
        key TEXT NOT NULL,
        version_id BLOB NOT NULL REFERENCES versions(version_id),
        PRIMARY KEY (bucket_id, key)
    ) WITHOUT ROWID;
    CREATE TABLE credentials (
        access_key TEXT PRIMARY KEY,
        sealed_secret BLOB NOT NULL,
        created REAL NOT NULL
    );
    CREATE TABLE trash (
        id INTEGER PRIMARY KEY,
        site TEXT NOT NULL,
        shard TEXT NOT NULL,
        since REAL NOT NULL
    );
    CREATE INDEX trash_since ON trash(since);
    """,
    # 2: small objects packed together (one file per site for many objects).
    """
    ALTER TABLE versions ADD COLUMN pack TEXT;
    ALTER TABLE versions ADD COLUMN pack_offset INTEGER NOT NULL DEFAULT 0;
    CREATE INDEX versions_pack ON versions(pack) WHERE pack IS NOT NULL;
    CREATE TABLE packs (
        name TEXT PRIMARY KEY,
        sites TEXT NOT NULL,
        live INTEGER NOT NULL
    );
    """,
    # 3: multipart uploads, and per-bucket settings (CORS, tagging, versioning …).
    """
    ALTER TABLE versions ADD COLUMN parts TEXT;
    CREATE TABLE uploads (
        upload_id BLOB PRIMARY KEY,
        bucket_id BLOB NOT NULL REFERENCES buckets(id),
        key TEXT NOT NULL,
        created REAL NOT NULL,
        wrapped_data_key BLOB NOT NULL,
        k INTEGER NOT NULL,
        m INTEGER NOT NULL,
        block_size INTEGER NOT NULL,
        sites TEXT NOT NULL,
        headers TEXT NOT NULL,
        next_seq INTEGER NOT NULL DEFAULT 1
    );
    CREATE INDEX uploads_by_key ON uploads(bucket_id, key, created);
    CREATE TABLE parts (
        upload_id BLOB NOT NULL REFERENCES uploads(upload_id),
        number INTEGER NOT NULL,
        seq INTEGER NOT NULL,
        size INTEGER NOT NULL,
        etag TEXT NOT NULL,
        last_modified REAL NOT NULL,
        checksums TEXT NOT NULL,
        PRIMARY KEY (upload_id, number)
    ) WITHOUT ROWID;
    CREATE TABLE bucket_settings (
        bucket_id BLOB NOT NULL REFERENCES buckets(id),
        name TEXT NOT NULL,
        value TEXT NOT NULL,
        PRIMARY KEY (bucket_id, name)
    ) WITHOUT ROWID;
    """,
    # 4: versioning (every version of a key, null versions, delete markers) and Object Lock.
    # `objects` keeps pointing at each key's newest version, which may be a delete marker.
    """
    ALTER TABLE versions ADD COLUMN seq INTEGER NOT NULL DEFAULT 1;
    ALTER TABLE versions ADD COLUMN is_null INTEGER NOT NULL DEFAULT 1;
    ALTER TABLE versions ADD COLUMN delete_marker INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE versions ADD COLUMN retention_mode TEXT;
    ALTER TABLE versions ADD COLUMN retain_until REAL;
    ALTER TABLE versions ADD COLUMN legal_hold INTEGER NOT NULL DEFAULT 0;
    CREATE INDEX versions_by_key ON versions(bucket_id, key, seq);
    """,
    # 5: proofs written by `egide policy check --report`: each report's digests and time.
    """
    CREATE TABLE reports (
        id INTEGER PRIMARY KEY,
        kind TEXT NOT NULL,
        scope TEXT NOT NULL,
        created REAL NOT NULL,
        sha256 TEXT NOT NULL,
        content_sha256 TEXT NOT NULL,
        summary TEXT NOT NULL
    );
    CREATE INDEX reports_by_scope ON reports(kind, scope, id);
    """,
    # 6: maintenance: jobs that resume after a crash, versions found short of shards (the
    # repair queue), and files seen on sites that nothing references (garbage collection).
    """
    CREATE TABLE jobs (
        id INTEGER PRIMARY KEY,
        kind TEXT NOT NULL,
        params TEXT NOT NULL,
        state TEXT NOT NULL,
        cursor TEXT,
        progress TEXT NOT NULL,
        created REAL NOT NULL,
        updated REAL NOT NULL,
        owner TEXT,
        lease_until REAL,
        error TEXT
    );
    CREATE INDEX jobs_by_state ON jobs(state, id);
    CREATE TABLE damaged (
        version_id BLOB PRIMARY KEY,
        reason TEXT NOT NULL,
        since REAL NOT NULL
    ) WITHOUT ROWID;
    CREATE TABLE sightings (
        site TEXT NOT NULL,
        shard TEXT NOT NULL,
        seen REAL NOT NULL,
        PRIMARY KEY (site, shard)
    ) WITHOUT ROWID;
    """,
    # 7: keys (docs/decisions/0013-key-rotation.md): the retired generations of each bucket key
    # (shard footers sealed under them still need them), the position of a bucket key rotation
    # under way (NULL: none), and the buckets crypto-shredded (what was destroyed, and the sites
    # whose copy of the key record is still to delete).
    """
    CREATE TABLE bucket_key_generations (
        bucket_id BLOB NOT NULL REFERENCES buckets(id),
        generation INTEGER NOT NULL,
        wrapped_key BLOB NOT NULL,
        retired REAL NOT NULL,
        PRIMARY KEY (bucket_id, generation)
    ) WITHOUT ROWID;
    ALTER TABLE buckets ADD COLUMN rewrap_after BLOB;
    CREATE TABLE shredded_buckets (
        bucket_id BLOB PRIMARY KEY,
        name TEXT NOT NULL,
        shredded REAL NOT NULL,
        summary TEXT NOT NULL,
        pending_sites TEXT NOT NULL
    ) WITHOUT ROWID;
    """,
    # 8: size padding (docs/decisions/0017-size-padding.md): the plaintext bytes a version's
    # (or an upload part's) blocks hold, padding included; NULL: its size (no padding).
    # A completed multipart version keeps it per part, in `versions.parts`.
    # And opaque part file names (docs/decisions/0018-opaque-names.md): each part attempt's
    # random file id, and the version (or upload: the same id) each such id belongs to, so
    # that garbage collection can tell from a file name alone whether it is referenced.
    """
    ALTER TABLE versions ADD COLUMN padded_size INTEGER;
    ALTER TABLE parts ADD COLUMN padded_size INTEGER;
    ALTER TABLE parts ADD COLUMN pid BLOB;
    CREATE TABLE part_files (
        file_id BLOB PRIMARY KEY,
        version_id BLOB NOT NULL
    ) WITHOUT ROWID;
    """,
)

_VERSION_COLUMNS = (
    "v.bucket_id, v.key, v.version_id, v.size, v.etag, v.last_modified, v.wrapped_data_key, "
    "v.k, v.m, v.block_size, v.sites, v.headers, v.pack, v.pack_offset, v.parts, v.is_null, "
    "v.delete_marker, v.retention_mode, v.retain_until, v.legal_hold, v.seq, v.padded_size"
)
_UPLOAD_COLUMNS = (
    "upload_id, bucket_id, key, created, wrapped_data_key, k, m, block_size, sites, headers"
)


def _parts_json(parts: tuple[Part, ...]) -> str | None:
    if not parts:
        return None
    return json.dumps([p.fields() for p in parts])


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


def _referenced(db: sqlite3.Connection, site: str, name: str) -> bool:
    """Whether the catalog still needs file `name` on `site` (see `unreferenced`)."""
    if db.execute(
        "SELECT 1 FROM trash WHERE site = ? AND shard = ? LIMIT 1", (site, name)
    ).fetchone():
        return True
    if name.startswith("pack-"):
        row = db.execute("SELECT sites FROM packs WHERE name = ?", (name,)).fetchone()
        return row is not None and site in json.loads(row[0])
    if parse_credentials_record_name(name):  # the credentials: older ones are superseded
        return True
    if is_settings_record_name(name):  # a bucket's current settings record: on every site
        return bool(db.execute(
            "SELECT 1 FROM bucket_settings WHERE name = ? AND value = ?",
            (SETTINGS_RECORD_SETTING, name),
        ).fetchone())  # fmt: skip
    if settings := parse_settings_record_name(name):  # before 0018: until a newer one exists
        return bool(db.execute(
            "SELECT 1 FROM buckets WHERE id = ? AND NOT EXISTS (SELECT 1 FROM bucket_settings "
            "WHERE bucket_id = ? AND name = ?)",
            (settings[0], settings[0], SETTINGS_RECORD_SETTING),
        ).fetchone())  # fmt: skip
    # Records of decision 0018 name no bucket (NO_BUCKET): the version id alone decides.
    if amendment := parse_amendment_name(name):  # a version's later changes: on every site
        return bool(db.execute(
            "SELECT 1 FROM versions WHERE version_id = ? AND (? = x'' OR bucket_id = ?)",
            (amendment[1], amendment[0], amendment[0]),
        ).fetchone())  # fmt: skip
    if marker := parse_marker_record_name(name):  # a delete marker's record: on every site
        return bool(db.execute(
            "SELECT 1 FROM versions WHERE version_id = ? AND (? = x'' OR bucket_id = ?) "
            "AND delete_marker = 1", (marker[1], marker[0], marker[0]),
        ).fetchone())  # fmt: skip
    fields = name.split("-")
    if len(fields) != 3 or not all(fields):
        return False  # not an Égide shard name (the GC job only looks at Égide's files)
    try:
        version_id, seq, index = bytes.fromhex(fields[0]), int(fields[1]), int(fields[2])
    except ValueError:
        return False
    if db.execute("SELECT 1 FROM uploads WHERE upload_id = ?", (version_id,)).fetchone():
        return True  # a part of an upload in progress (its parts row may not exist yet)
    row = db.execute(
        "SELECT sites, parts, pack FROM versions WHERE version_id = ?", (version_id,)
    ).fetchone()
    if row is None and seq == 0:
        return _part_file_referenced(db, site, version_id, index)
    if row is None or row[2] is not None:
        return False
    sites = json.loads(row[0])
    seqs = {0, *(part.seq for part in _parts(row[1]) if not part.pid)}  # 0: completion record
    return seq in seqs and 0 <= index < len(sites) and sites[index] == site


def _part_file_referenced(db: sqlite3.Connection, site: str, file_id: bytes, index: int) -> bool:
    """Whether `<file_id>-0-<index>` on `site` is a part file (decision 0018) that an upload
    in progress or a committed version still has there."""
    owner = db.execute("SELECT version_id FROM part_files WHERE file_id = ?", (file_id,)).fetchone()
    if owner is None:
        return False
    if db.execute("SELECT 1 FROM uploads WHERE upload_id = ?", (owner[0],)).fetchone():
        return True
    row = db.execute(
        "SELECT sites, parts FROM versions WHERE version_id = ?", (owner[0],)
    ).fetchone()
    if row is None:
        return False
    sites = json.loads(row[0])
    kept = any(part.pid == file_id for part in _parts(row[1]))
    return kept and 0 <= index < len(sites) and sites[index] == site


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


def _check_retention_change(
    version: ObjectVersion, new: tuple[str | None, float | None], bypass_governance: bool
) -> None:
    """Object Lock's rule: what a retention in force lets one change."""
    mode, until = version.retention_mode, version.retain_until
    if until is None or until <= time.time():
        return  # none in force
    new_mode, new_until = new
    # Any change of mode needs the bypass too (GOVERNANCE to COMPLIANCE included, as S3).
    weaker = new_until is None or new_until < until or new_mode != mode
    if not weaker:
        return
    if mode == "COMPLIANCE":
        raise ObjectLocked(
            f"version {version.s3_version_id} of {version.key!r} is retained in COMPLIANCE "
            "mode: its retention can only be extended"
        )
    if not bypass_governance:
        raise ObjectLocked(
            f"version {version.s3_version_id} of {version.key!r} is retained in GOVERNANCE "
            "mode: shortening or removing it needs x-amz-bypass-governance-retention"
        )


def _trash(db: sqlite3.Connection, files: list[tuple[str, str]]) -> None:
    since = time.time()
    db.executemany(
        "INSERT INTO trash (site, shard, since) VALUES (?, ?, ?)",
        [(site, shard, since) for site, shard in files],
    )


def _closing(fn: Callable[[sqlite3.Connection], T], db: sqlite3.Connection) -> T:
    """Run `fn` on the writer thread. A cursor it returns (`lambda db: db.execute(…)`) is
    closed here: finalised later by the garbage collector on another thread, it would touch
    the connection while this thread uses it (SQLite: "bad parameter or other API misuse")."""
    result = fn(db)
    if isinstance(result, sqlite3.Cursor):
        result.close()
        return None  # type: ignore[return-value]
    return result


def prefix_end(prefix: str) -> str | None:
    """The smallest string greater than every string starting with `prefix` (None: no bound)."""
    while prefix:
        last = ord(prefix[-1])
        if last < 0x10FFFF:
            following = last + 1 if last + 1 != 0xD800 else 0xE000  # surrogates are no text
            return prefix[:-1] + chr(following)
        prefix = prefix[:-1]
    return None


class SQLiteCatalog(SQLiteBackup):
    """Writes go through one thread and are group-committed: every version waiting while a
    transaction runs is committed in the next one, so many PUTs share one fsync. Point reads
    use a read-only connection on the caller's thread: an indexed lookup in WAL mode takes
    microseconds, less than a hand-off to a thread."""

    def __init__(self, path: Path) -> None:
        self._path = path
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="egide-catalog")
        self._db: sqlite3.Connection | None = None
        self._reader: sqlite3.Connection | None = None
        self._commits: list[tuple[_Commit, asyncio.Future[None]]] = []
        #: The task committing waiting versions, while there is one.
        self._committer: asyncio.Future[None] | None = None

    # -- plumbing ---------------------------------------------------------------------------

    @property
    def path(self) -> Path:
        """The database file (catalog snapshots copy it)."""
        return self._path

    def open(self) -> None:
        """Open (creating if needed) and migrate; called once, before serving."""
        self._thread.submit(self._open).result()

    def _open(self) -> None:
        # Names, metadata and tags are in clear here; the -wal and -shm files SQLite creates
        # take the database file's mode, so creating it 0600 first covers all three.
        owner_only_file(self._path)
        for suffix in ("-wal", "-shm"):
            tighten(self._path.with_name(self._path.name + suffix))
        db = sqlite3.connect(self._path, isolation_level=None, check_same_thread=False)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=FULL")
        db.execute("PRAGMA foreign_keys=ON")
        db.execute("PRAGMA busy_timeout=10000")
        current = db.execute("PRAGMA user_version").fetchone()[0]
        if current > len(MIGRATIONS):
            db.close()
            raise RuntimeError(
                f"catalog {self._path} has schema {current}, newer than this Égide "
                f"({len(MIGRATIONS)}): upgrade Égide"
            )
        for number, script in enumerate(MIGRATIONS[current:], start=current + 1):
            db.executescript(f"BEGIN; {script}; PRAGMA user_version={number}; COMMIT;")
        self._db = db
        reader = sqlite3.connect(self._path, isolation_level=None, check_same_thread=False)
        reader.execute("PRAGMA query_only=1")
        self._reader = reader

    def _read(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        assert self._reader is not None, "catalog not opened"
        return fn(self._reader)

    async def _call(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        db = self._db
        assert db is not None, "catalog not opened"
        return await asyncio.get_running_loop().run_in_executor(self._thread, _closing, fn, db)

    async def close(self) -> None:
        if self._db is not None:
            await self._call(lambda db: db.close())
            self._db = None
        if self._reader is not None:
            self._reader.close()
            self._reader = None
        self._thread.shutdown()

    # -- buckets ----------------------------------------------------------------------------

    async def create_bucket(self, bucket: Bucket) -> None:
        def run(db: sqlite3.Connection) -> None:
            try:
                db.execute(
                    "INSERT INTO buckets (id, name, created, wrapped_key) VALUES (?, ?, ?, ?)",
                    (bucket.id, bucket.name, bucket.created, bucket.wrapped_key),
                )
            except sqlite3.IntegrityError as exc:
                raise BucketExists(bucket.name) from exc

        await self._call(run)

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
                    self._drop_upload(db, upload_id, keep=())
                db.execute("DELETE FROM bucket_settings WHERE bucket_id = ?", row)
                db.execute("DELETE FROM buckets WHERE id = ?", row)

        await self._call(run)

    # -- objects ----------------------------------------------------------------------------

    async def get_object(self, bucket_id: bytes, key: str) -> ObjectVersion | None:
        def run(db: sqlite3.Connection) -> ObjectVersion | None:
            row = db.execute(
                f"SELECT {_VERSION_COLUMNS} FROM objects o JOIN versions v USING (version_id) "
                "WHERE o.bucket_id = ? AND o.key = ?",
                (bucket_id, key),
            ).fetchone()
            return _version(row) if row else None

        return self._read(run)

    @staticmethod
    def _trash_version(db: sqlite3.Connection, version_id: bytes) -> None:
        """Forget a version; its shard files go to the trash (a pack's once none of its
        objects is left)."""
        row = db.execute(
            f"SELECT {_VERSION_COLUMNS} FROM versions v WHERE version_id = ?", (version_id,)
        ).fetchone()
        version = _version(row)
        db.execute("DELETE FROM versions WHERE version_id = ?", (version_id,))
        db.execute("DELETE FROM part_files WHERE version_id = ?", (version_id,))
        if version.pack is not None:
            SQLiteCatalog._unref_pack(db, version.pack)
            return
        _trash(db, version.shard_files())

    @staticmethod
    def _unref_pack(db: sqlite3.Connection, pack: str, count: int = 1) -> None:
        """`count` objects of `pack` are gone; with the last one its files go to the trash."""
        db.execute("UPDATE packs SET live = live - ? WHERE name = ?", (count, pack))
        row = db.execute("SELECT live, sites FROM packs WHERE name = ?", (pack,)).fetchone()
        if row is None or row[0] > 0:
            return
        db.execute("DELETE FROM packs WHERE name = ?", (pack,))
        _trash(db, [(site, pack) for site in json.loads(row[1])])

    async def commit_pack(
        self,
        name: str,
        sites: list[str],
        versions: list[ObjectVersion],
        conditions: list[WriteCondition | None] | None = None,
    ) -> list[DomainError | None]:
        """Record a written pack and commit the versions it holds, in one transaction; the
        pack keeps one reference per live version."""
        items = list(zip(versions, conditions or [None] * len(versions), strict=True))

        def run(db: sqlite3.Connection) -> list[DomainError | None]:
            with db:
                db.execute("BEGIN IMMEDIATE")
                # Count every version first: one of them may replace another of the same pack
                # (two PUTs of one key in one batch), which takes its reference away at once.
                db.execute(
                    "INSERT INTO packs (name, sites, live) VALUES (?, ?, ?)",
                    (name, json.dumps(sorted(sites)), len(versions)),
                )
                results = self._commit_each(db, items)
                if failed := sum(1 for error in results if error is not None):
                    self._unref_pack(db, name, failed)
            return results

        return await self._call(run)

    @staticmethod
    def _commit_one(
        db: sqlite3.Connection, version: ObjectVersion, condition: WriteCondition | None = None
    ) -> None:
        """Make `version` the newest version of its key. A null version replaces the key's
        previous null version (whose shards go to the trash); any other version is added."""
        if not db.execute("SELECT 1 FROM buckets WHERE id = ?", (version.bucket_id,)).fetchone():
            raise BucketNotFound(version.bucket_id.hex())
        if condition is not None:
            row = db.execute(
                f"SELECT {_VERSION_COLUMNS} FROM objects o JOIN versions v USING (version_id) "
                "WHERE o.bucket_id = ? AND o.key = ?",
                (version.bucket_id, version.key),
            ).fetchone()
            condition.check(version.key, _version(row) if row else None)
        replaced = None
        if version.is_null:
            row = db.execute(
                f"SELECT {_VERSION_COLUMNS} FROM versions v "
                "WHERE bucket_id = ? AND key = ? AND is_null = 1",
                (version.bucket_id, version.key),
            ).fetchone()
            if row is not None:
                replaced = _version(row)
                if reason := replaced.locked(time.time()):
                    raise ObjectLocked(f"the null version of {version.key!r} is locked: {reason}")
        seq = db.execute(
            "SELECT coalesce(max(seq), 0) + 1 FROM versions WHERE bucket_id = ? AND key = ?",
            (version.bucket_id, version.key),
        ).fetchone()[0]
        db.execute(
            "INSERT INTO versions (version_id, bucket_id, key, size, etag, last_modified, "
            "wrapped_data_key, k, m, block_size, sites, headers, pack, pack_offset, parts, "
            "seq, is_null, delete_marker, retention_mode, retain_until, legal_hold, "
            "padded_size) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, "
            "?)",
            (
                version.version_id, version.bucket_id, version.key, version.size,
                version.etag, version.last_modified, version.wrapped_data_key, version.k,
                version.m, version.block_size, json.dumps(version.sites),
                json.dumps(version.headers), version.pack, version.pack_offset,
                _parts_json(version.parts), seq, version.is_null, version.delete_marker,
                version.retention_mode, version.retain_until, version.legal_hold,
                version.padded_size,
            ),
        )  # fmt: skip
        db.execute(
            "INSERT OR REPLACE INTO objects (bucket_id, key, version_id) VALUES (?, ?, ?)",
            (version.bucket_id, version.key, version.version_id),
        )
        if replaced is not None:
            SQLiteCatalog._trash_version(db, replaced.version_id)

    @staticmethod
    def _commit_batch(db: sqlite3.Connection, items: list[_Commit]) -> list[DomainError | None]:
        """Commit in order, in one transaction; one version's error does not sink the rest."""
        with db:
            db.execute("BEGIN IMMEDIATE")
            return SQLiteCatalog._commit_each(db, items)

    @staticmethod
    def _commit_each(db: sqlite3.Connection, items: list[_Commit]) -> list[DomainError | None]:
        results: list[DomainError | None] = []
        for version, condition in items:
            db.execute("SAVEPOINT one")
            try:
                SQLiteCatalog._commit_one(db, version, condition)
            except DomainError as exc:
                db.execute("ROLLBACK TO one")
                results.append(exc)
                if version.pack is None:
                    # Its shards are written and will never be referenced: collect them.
                    _trash(db, version.shard_files())
            else:
                results.append(None)
            db.execute("RELEASE one")
        return results

    async def commit_version(
        self, version: ObjectVersion, condition: WriteCondition | None = None
    ) -> None:
        future = asyncio.get_running_loop().create_future()
        self._commits.append(((version, condition), future))
        if self._committer is None:
            self._committer = asyncio.ensure_future(self._commit_waiting())
        await future

    async def _commit_waiting(self) -> None:
        try:
            while self._commits:
                batch, self._commits = self._commits, []
                items = [item for item, _ in batch]
                try:
                    results = await self._call(partial(self._commit_batch, items=items))
                except Exception as exc:
                    for _, future in batch:
                        if not future.done():  # a waiter cancelled (client gone) is skipped
                            future.set_exception(exc)
                    continue
                for (_, future), error in zip(batch, results, strict=True):
                    if future.done():  # cancelled: its version is committed all the same
                        continue
                    if error is None:
                        future.set_result(None)
                    else:
                        future.set_exception(error)
        finally:
            self._committer = None

    async def get_version(
        self, bucket_id: bytes, key: str, version_id: bytes | None
    ) -> ObjectVersion | None:
        def run(db: sqlite3.Connection) -> ObjectVersion | None:
            row = db.execute(*_select_version(bucket_id, key, version_id)).fetchone()
            return _version(row) if row else None

        return self._read(run)

    async def delete_version(
        self,
        bucket_id: bytes,
        key: str,
        version_id: bytes | None,
        *,
        bypass_governance: bool = False,
        expected: bytes | None = None,
    ) -> ObjectVersion | None:
        """Remove one version for good (None: the null version); the next newest becomes
        current. Returns it, or None if there was no such version (or, with `expected`, if
        the key's current version is no longer `expected`: a lifecycle rule decided on it).
        Raises ObjectLocked while Object Lock protects it."""

        def run(db: sqlite3.Connection) -> ObjectVersion | None:
            with db:
                db.execute("BEGIN IMMEDIATE")
                row = db.execute(*_select_version(bucket_id, key, version_id)).fetchone()
                if row is None:
                    return None
                version = _version(row)
                current = db.execute(
                    "SELECT version_id FROM objects WHERE bucket_id = ? AND key = ?",
                    (bucket_id, key),
                ).fetchone()
                if expected is not None and (current is None or current[0] != expected):
                    return None
                if reason := version.locked(time.time(), bypass_governance=bypass_governance):
                    raise ObjectLocked(f"version {version.s3_version_id} of {key!r}: {reason}")
                if current is not None and current[0] == version.version_id:
                    # The pointer moves first: it references the row about to go.
                    newest = db.execute(
                        "SELECT version_id FROM versions WHERE bucket_id = ? AND key = ? "
                        "AND version_id != ? ORDER BY seq DESC LIMIT 1",
                        (bucket_id, key, version.version_id),
                    ).fetchone()
                    if newest is None:
                        db.execute(
                            "DELETE FROM objects WHERE bucket_id = ? AND key = ?", (bucket_id, key)
                        )
                    else:
                        db.execute(
                            "UPDATE objects SET version_id = ? WHERE bucket_id = ? AND key = ?",
                            (newest[0], bucket_id, key),
                        )
                self._trash_version(db, version.version_id)
                return version

        return await self._call(run)

    async def list_versions(
        self, bucket_id: bytes, prefix: str, after: tuple[str, int] | None, limit: int
    ) -> list[tuple[ObjectVersion, bool]]:
        """(version, is it the key's newest) for keys starting with `prefix`, by key and then
        newest first, after the (key, seq) position `after` (seq 0: after every version of
        the key; a seq above every real one: from the key's newest)."""

        def run(db: sqlite3.Connection) -> list[tuple[ObjectVersion, bool]]:
            sql = (
                f"SELECT {_VERSION_COLUMNS}, o.version_id IS NOT NULL FROM versions v "
                "LEFT JOIN objects o ON o.bucket_id = v.bucket_id AND o.key = v.key "
                "AND o.version_id = v.version_id WHERE v.bucket_id = ? AND v.key >= ?"
            )
            args: list[object] = [bucket_id, prefix]
            if (end := prefix_end(prefix)) is not None:
                sql += " AND v.key < ?"
                args.append(end)
            if after is not None:
                sql += " AND (v.key > ? OR (v.key = ? AND v.seq < ?))"
                args += [after[0], after[0], after[1]]
            sql += " ORDER BY v.key, v.seq DESC LIMIT ?"
            args.append(limit)
            return [(_version(row), bool(row[-1])) for row in db.execute(sql, args)]

        return await self._call(run)

    async def list_objects(
        self,
        bucket_id: bytes,
        prefix: str,
        after: str | None,
        limit: int,
        *,
        inclusive: bool = False,
    ) -> list[ObjectVersion]:
        def run(db: sqlite3.Connection) -> list[ObjectVersion]:
            sql = (
                f"SELECT {_VERSION_COLUMNS} FROM objects o JOIN versions v USING (version_id) "
                "WHERE o.bucket_id = ? AND o.key >= ? AND v.delete_marker = 0"
            )
            args: list[object] = [bucket_id, prefix]
            if (end := prefix_end(prefix)) is not None:
                sql += " AND o.key < ?"
                args.append(end)
            if after is not None:
                sql += " AND o.key >= ?" if inclusive else " AND o.key > ?"
                args.append(after)
            sql += " ORDER BY o.key LIMIT ?"
            args.append(limit)
            return [_version(row) for row in db.execute(sql, args)]

        return await self._call(run)

    # -- multipart uploads ------------------------------------------------------------------

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
                    _trash(db, files)  # committed, then NoSuchUpload is raised
                    return False
                old = db.execute(
                    "SELECT seq, pid FROM parts WHERE upload_id = ? AND number = ?",
                    (upload_id, part.number),
                ).fetchone()
                if old is not None:
                    _trash(db, [
                        (site, _attempt_file(upload_id, old[0], old[1], i))
                        for i, site in enumerate(sites)
                    ])  # fmt: skip
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
        (key, upload id) marker."""

        def run(db: sqlite3.Connection) -> list[Upload]:
            sql = f"SELECT {_UPLOAD_COLUMNS} FROM uploads WHERE bucket_id = ? AND key >= ?"
            args: list[object] = [bucket_id, prefix]
            if (end := prefix_end(prefix)) is not None:
                sql += " AND key < ?"
                args.append(end)
            if after is not None:
                key, upload_id = after
                sql += (
                    " AND (key > ? OR (key = ? AND (created, upload_id) > "
                    "(SELECT created, upload_id FROM uploads WHERE upload_id = ?)))"
                )
                args += [key, key, upload_id]
            sql += " ORDER BY key, created, upload_id LIMIT ?"
            args.append(limit)
            return [_upload(row) for row in db.execute(sql, args)]

        return await self._call(run)

    @staticmethod
    def _drop_upload(db: sqlite3.Connection, upload_id: bytes, keep: tuple[int, ...]) -> None:
        """Forget an upload; the shards of its parts not in `keep` (seqs) go to the trash."""
        sites = json.loads(
            db.execute("SELECT sites FROM uploads WHERE upload_id = ?", (upload_id,)).fetchone()[0]
        )
        attempts = [
            (seq, pid)
            for seq, pid in db.execute(
                "SELECT seq, pid FROM parts WHERE upload_id = ?", (upload_id,)
            )
            if seq not in keep
        ]
        _trash(db, [
            (site, _attempt_file(upload_id, seq, pid, i))
            for seq, pid in attempts
            for i, site in enumerate(sites)
        ])  # fmt: skip
        # The index keeps the kept ones: the version completed from them is their owner now.
        db.executemany("DELETE FROM part_files WHERE file_id = ?", [(p,) for _, p in attempts])
        db.execute("DELETE FROM parts WHERE upload_id = ?", (upload_id,))
        db.execute("DELETE FROM uploads WHERE upload_id = ?", (upload_id,))

    async def abort_upload(self, upload_id: bytes) -> None:
        def run(db: sqlite3.Connection) -> None:
            with db:
                db.execute("BEGIN IMMEDIATE")
                if not db.execute(
                    "SELECT 1 FROM uploads WHERE upload_id = ?", (upload_id,)
                ).fetchone():
                    raise NoSuchUpload(upload_id.hex())
                self._drop_upload(db, upload_id, keep=())

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
                self._drop_upload(db, upload_id, keep=tuple(p.seq for p in version.parts))
                self._commit_one(db, version, condition)

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

    # -- bucket settings --------------------------------------------------------------------

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
            with db:
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

        await self._call(run)

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
                return True

        return await self._call(run)

    # -- tagging ----------------------------------------------------------------------------

    async def update_version_headers(self, version_id: bytes, headers: dict[str, str]) -> bool:
        """Replace a version's headers; False if the version is gone."""

        def run(db: sqlite3.Connection) -> bool:
            cursor = db.execute(
                "UPDATE versions SET headers = ? WHERE version_id = ?",
                (json.dumps(headers), version_id),
            )
            return cursor.rowcount > 0

        return await self._call(run)

    async def set_lock(
        self,
        bucket_id: bytes,
        key: str,
        version_id: bytes | None,
        *,
        retention: tuple[str | None, float | None] | None = None,
        legal_hold: bool | None = None,
        bypass_governance: bool = False,
    ) -> ObjectVersion:
        """Change a version's retention (mode, until; (None, None) removes it) or legal hold.
        An active COMPLIANCE retention can only be extended; an active GOVERNANCE one can be
        shortened, weakened or removed only with `bypass_governance`. Raises NoSuchVersion
        via KeyNotFound, ObjectLocked."""

        def run(db: sqlite3.Connection) -> ObjectVersion:
            with db:
                db.execute("BEGIN IMMEDIATE")
                row = db.execute(*_select_version(bucket_id, key, version_id)).fetchone()
                if row is None:
                    raise KeyNotFound(key)
                version = _version(row)
                if retention is not None:
                    _check_retention_change(version, retention, bypass_governance)
                    mode, until = retention
                    db.execute(
                        "UPDATE versions SET retention_mode = ?, retain_until = ? "
                        "WHERE version_id = ?",
                        (mode, until, version.version_id),
                    )
                if legal_hold is not None:
                    db.execute(
                        "UPDATE versions SET legal_hold = ? WHERE version_id = ?",
                        (legal_hold, version.version_id),
                    )
                return _version(db.execute(*_select_version(bucket_id, key, version_id)).fetchone())

        return await self._call(run)

    # -- credentials ------------------------------------------------------------------------

    async def add_credential(self, access_key: str, sealed_secret: bytes) -> None:
        await self._call(
            lambda db: db.execute(
                "INSERT INTO credentials (access_key, sealed_secret, created) VALUES (?, ?, ?)",
                (access_key, sealed_secret, time.time()),
            )
        )

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

    # -- keys: rotation and crypto-shredding (egide.engine.rekey, egide.engine.shred) --------

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
            return sum(
                db.execute(
                    "UPDATE credentials SET sealed_secret = ? "
                    "WHERE access_key = ? AND sealed_secret = ?",
                    (new, access, old),
                ).rowcount
                for access, old, new in changes
            )

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
                (bucket_id, generation, old, time.time()),
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

    async def first_locked_version(self, bucket_id: bytes, now: float) -> ObjectVersion | None:
        """A version of the bucket under legal hold or retention at `now`, if there is one."""

        def run(db: sqlite3.Connection) -> ObjectVersion | None:
            row = db.execute(
                f"SELECT {_VERSION_COLUMNS} FROM versions v WHERE bucket_id = ? "
                "AND (legal_hold = 1 OR retain_until > ?) ORDER BY key LIMIT 1",
                (bucket_id, now),
            ).fetchone()
            return _version(row) if row else None

        return self._read(run)

    async def count_bucket(self, bucket_id: bytes) -> tuple[int, int, int]:
        """(versions holding data, their bytes, uploads in progress) of a bucket."""

        def run(db: sqlite3.Connection) -> tuple[int, int, int]:
            versions, size = db.execute(
                "SELECT count(*), coalesce(sum(size), 0) FROM versions "
                "WHERE bucket_id = ? AND delete_marker = 0",
                (bucket_id,),
            ).fetchone()
            uploads = db.execute(
                "SELECT count(*) FROM uploads WHERE bucket_id = ?", (bucket_id,)
            ).fetchone()[0]
            return int(versions), int(size), int(uploads)

        return self._read(run)

    async def shred_bucket(self, bucket_id: bytes, pending_sites: list[str]) -> ShredSummary:
        """Forget a bucket and everything in it, its keys included, in one transaction, and
        record it as shredded (`pending_sites`: where its key record is still to delete). Its
        shard files go to the trash. Raises BucketNotFound, ObjectLocked (nothing changed).
        SQLite's secure_delete zeroes the freed rows and the WAL is checkpointed, so that the
        catalog file keeps no copy of the wrapped bucket key."""

        def shred(db: sqlite3.Connection) -> ShredSummary:
            row = db.execute("SELECT name FROM buckets WHERE id = ?", (bucket_id,)).fetchone()
            if row is None:
                raise BucketNotFound(bucket_id.hex())
            locked = db.execute(
                f"SELECT {_VERSION_COLUMNS} FROM versions v WHERE bucket_id = ? "
                "AND (legal_hold = 1 OR retain_until > ?) LIMIT 1",
                (bucket_id, time.time()),
            ).fetchone()
            if locked is not None:
                version = _version(locked)
                raise ObjectLocked(
                    f"version {version.s3_version_id} of {version.key!r}: "
                    f"{version.locked(time.time())}"
                )
            first_trash = db.execute("SELECT coalesce(max(id), 0) FROM trash").fetchone()[0]
            ids = [
                (bytes(r[0]), bool(r[1]))
                for r in db.execute(
                    "SELECT version_id, delete_marker FROM versions WHERE bucket_id = ?",
                    (bucket_id,),
                )
            ]
            db.execute("DELETE FROM objects WHERE bucket_id = ?", (bucket_id,))
            db.execute(
                "DELETE FROM damaged WHERE version_id IN "
                "(SELECT version_id FROM versions WHERE bucket_id = ?)",
                (bucket_id,),
            )
            for version_id, _ in ids:
                self._trash_version(db, version_id)
            uploads = [
                r[0]
                for r in db.execute(
                    "SELECT upload_id FROM uploads WHERE bucket_id = ?", (bucket_id,)
                ).fetchall()
            ]
            for upload_id in uploads:
                self._drop_upload(db, upload_id, keep=())
            settings = db.execute(
                "DELETE FROM bucket_settings WHERE bucket_id = ?", (bucket_id,)
            ).rowcount
            retired = db.execute(
                "DELETE FROM bucket_key_generations WHERE bucket_id = ?", (bucket_id,)
            ).rowcount
            db.execute("DELETE FROM buckets WHERE id = ?", (bucket_id,))
            trashed = db.execute(
                "SELECT count(*) FROM trash WHERE id > ?", (first_trash,)
            ).fetchone()[0]
            markers = sum(1 for _, marker in ids if marker)
            summary = ShredSummary(
                versions=len(ids) - markers, delete_markers=markers, uploads=len(uploads),
                settings=settings, bucket_keys=retired + 1, trashed_files=trashed,
            )  # fmt: skip
            db.execute(
                "INSERT INTO shredded_buckets (bucket_id, name, shredded, summary, pending_sites) "
                "VALUES (?, ?, ?, ?, ?)",
                (bucket_id, row[0], time.time(), json.dumps(summary.counts()),
                 json.dumps(sorted(pending_sites))),
            )  # fmt: skip
            return summary

        def run(db: sqlite3.Connection) -> ShredSummary:
            secure = db.execute("PRAGMA secure_delete").fetchone()[0]
            db.execute("PRAGMA secure_delete=ON")
            try:
                summary = self._in_transaction(shred, db)
            finally:
                db.execute(f"PRAGMA secure_delete={int(secure)}")
            busy = db.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()[0]
            return dataclasses.replace(summary, catalog_scrubbed=busy == 0)

        return await self._call(run)

    async def shredded_buckets(self) -> list[ShreddedBucket]:
        def run(db: sqlite3.Connection) -> list[ShreddedBucket]:
            rows = db.execute(
                "SELECT bucket_id, name, shredded, summary, pending_sites FROM shredded_buckets "
                "ORDER BY shredded"
            )
            found = []
            for bucket_id, name, shredded, summary, pending in rows:
                counts = ShredSummary(**json.loads(summary))
                sites = tuple(json.loads(pending))
                found.append(ShreddedBucket(bytes(bucket_id), name, shredded, counts, sites))
            return found

        return self._read(run)

    async def forget_pending_sites(self, bucket_id: bytes, done: list[str]) -> None:
        """The key record of a shredded bucket is gone from the sites `done`."""

        def run(db: sqlite3.Connection) -> None:
            row = db.execute(
                "SELECT pending_sites FROM shredded_buckets WHERE bucket_id = ?", (bucket_id,)
            ).fetchone()
            if row is not None:
                pending = sorted(set(json.loads(row[0])) - set(done))
                db.execute(
                    "UPDATE shredded_buckets SET pending_sites = ? WHERE bucket_id = ?",
                    (json.dumps(pending), bucket_id),
                )

        await self._call(partial(self._in_transaction, run))

    # -- reports ----------------------------------------------------------------------------

    async def record_report(self, report: RecordedReport) -> None:
        row = dataclasses.astuple(report)
        await self._call(
            lambda db: db.execute(
                "INSERT INTO reports (kind, scope, created, sha256, content_sha256, summary) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                row,
            )
        )

    async def last_report(self, kind: str, scope: str) -> RecordedReport | None:
        def run(db: sqlite3.Connection) -> RecordedReport | None:
            row = db.execute(
                "SELECT kind, scope, created, sha256, content_sha256, summary FROM reports "
                "WHERE kind = ? AND scope = ? ORDER BY id DESC LIMIT 1",
                (kind, scope),
            ).fetchone()
            return RecordedReport(*row) if row else None

        return await self._call(run)

    # -- maintenance: versions by id, shard moves --------------------------------------------

    async def get_version_by_id(self, version_id: bytes) -> ObjectVersion | None:
        def run(db: sqlite3.Connection) -> ObjectVersion | None:
            row = db.execute(
                f"SELECT {_VERSION_COLUMNS} FROM versions v WHERE version_id = ?", (version_id,)
            ).fetchone()
            return _version(row) if row else None

        return self._read(run)

    async def versions_after(self, after: bytes | None, limit: int) -> list[ObjectVersion]:
        """Versions holding data (delete markers hold none), in version id order after `after`:
        a cursor that writes and deletes elsewhere in the catalog never shift."""

        def run(db: sqlite3.Connection) -> list[ObjectVersion]:
            rows = db.execute(
                f"SELECT {_VERSION_COLUMNS} FROM versions v WHERE version_id > ? "
                "AND delete_marker = 0 ORDER BY version_id LIMIT ?",
                (after or b"", limit),
            ).fetchall()
            return [_version(row) for row in rows]

        return self._read(run)

    async def count_versions(self) -> int:
        return int(
            self._read(
                lambda db: db.execute(
                    "SELECT count(*) FROM versions WHERE delete_marker = 0"
                ).fetchone()[0]
            )
        )

    async def move_shards(
        self,
        version: ObjectVersion,
        sites: tuple[str, ...],
        replaced: list[tuple[str, str]],
        written: list[tuple[str, str]],
    ) -> bool:
        """Point `version` at shards rewritten on `sites` (as standalone files: a packed version
        leaves its pack), if it is still stored as `version` says. Then the `replaced` files
        go to the trash; else the `written` ones do, and False is returned."""

        def run(db: sqlite3.Connection) -> bool:
            changed = db.execute(
                "UPDATE versions SET sites = ?, pack = NULL, pack_offset = 0 "
                "WHERE version_id = ? AND sites = ? AND pack IS ?",
                (json.dumps(sites), version.version_id, json.dumps(version.sites), version.pack),
            ).rowcount
            if not changed:
                # Another job may have moved the version to these very files meanwhile (the
                # same choice from the same inputs): only what nothing references is trashed.
                _trash(db, [(site, name) for site, name in written
                            if not _referenced(db, site, name)])  # fmt: skip
                return False
            if version.pack is not None:
                self._unref_pack(db, version.pack)
            # A piece moved back to a site whose old copy still waits in the trash has that
            # very name there: the new, live file must not be deleted with it.
            db.executemany("DELETE FROM trash WHERE site = ? AND shard = ?", written)
            _trash(db, replaced)
            return True

        return await self._call(partial(self._in_transaction, run))

    @staticmethod
    def _in_transaction(fn: Callable[[sqlite3.Connection], T], db: sqlite3.Connection) -> T:
        db.execute("BEGIN IMMEDIATE")
        try:
            result = fn(db)
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")
        return result

    async def versions_present(self, version_ids: list[bytes]) -> set[bytes]:
        def run(db: sqlite3.Connection) -> set[bytes]:
            found: set[bytes] = set()
            for start in range(0, len(version_ids), 500):
                chunk = version_ids[start : start + 500]
                marks = ",".join("?" * len(chunk))
                found.update(
                    row[0]
                    for row in db.execute(
                        f"SELECT version_id FROM versions WHERE version_id IN ({marks})", chunk
                    )
                )
            return found

        return self._read(run)

    async def delete_markers(self) -> list[tuple[bytes, bytes]]:
        return self._read(
            lambda db: [
                (row[0], row[1])
                for row in db.execute(
                    "SELECT bucket_id, version_id FROM versions WHERE delete_marker = 1"
                )
            ]
        )

    async def site_references(self, site: str) -> dict[str, int]:
        """What the catalog still keeps on `site`: versions with a piece there, uploads in
        progress placed there, packs with a file there, trashed files not yet deleted."""
        escaped = site.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        pattern = f'%"{escaped}"%'

        def run(db: sqlite3.Connection) -> dict[str, int]:
            count = {
                "versions": "SELECT count(*) FROM versions WHERE sites LIKE ? ESCAPE '\\'",
                "uploads": "SELECT count(*) FROM uploads WHERE sites LIKE ? ESCAPE '\\'",
                "packs": "SELECT count(*) FROM packs WHERE sites LIKE ? ESCAPE '\\'",
                "trash": "SELECT count(*) FROM trash WHERE site = ?",
            }
            return {
                name: int(db.execute(sql, (site if name == "trash" else pattern,)).fetchone()[0])
                for name, sql in count.items()
            }

        return self._read(run)

    async def trash_on(self, site: str, limit: int) -> list[TrashedShard]:
        """Trashed files of one site, grace period or not (evacuation empties a site now)."""
        return self._read(
            lambda db: [
                TrashedShard(*row)
                for row in db.execute(
                    "SELECT id, site, shard FROM trash WHERE site = ? ORDER BY id LIMIT ?",
                    (site, limit),
                )
            ]
        )

    # -- maintenance: the repair queue ---------------------------------------------------------

    async def mark_damaged(self, version_id: bytes, reason: str) -> None:
        """Queue a version for repair (a read or a scrub found a shard missing or corrupt)."""
        await self._call(
            lambda db: db.execute(
                "INSERT OR IGNORE INTO damaged (version_id, reason, since) VALUES (?, ?, ?)",
                (version_id, reason, time.time()),
            )
        )

    async def damaged(self, after: bytes | None, limit: int) -> list[tuple[bytes, str]]:
        """Queued versions in version id order after `after`, with why they were queued."""
        return self._read(
            lambda db: [
                (row[0], row[1])
                for row in db.execute(
                    "SELECT version_id, reason FROM damaged WHERE version_id > ? "
                    "ORDER BY version_id LIMIT ?",
                    (after or b"", limit),
                )
            ]
        )

    async def forget_damaged(self, version_ids: list[bytes]) -> None:
        await self._call(
            lambda db: db.executemany(
                "DELETE FROM damaged WHERE version_id = ?", [(v,) for v in version_ids]
            )
        )

    # -- maintenance: garbage collection ---------------------------------------------------------

    async def unreferenced(self, site: str, names: list[str]) -> list[str]:
        """Which of these files on `site` the catalog does not reference: no committed version
        keeps that shard there, no upload in progress owns it, no pack lives there, and it is
        not already in the trash."""

        def run(db: sqlite3.Connection) -> list[str]:
            return [name for name in names if not _referenced(db, site, name)]

        return self._read(run)

    async def record_sightings(self, site: str, names: list[str]) -> None:
        """Note files first seen unreferenced now (a later pass removes those still so)."""
        now = time.time()
        await self._call(
            lambda db: db.executemany(
                "INSERT OR IGNORE INTO sightings (site, shard, seen) VALUES (?, ?, ?)",
                [(site, name, now) for name in names],
            )
        )

    async def sightings(self, site: str) -> dict[str, float]:
        return self._read(
            lambda db: {
                row[0]: row[1]
                for row in db.execute("SELECT shard, seen FROM sightings WHERE site = ?", (site,))
            }
        )

    async def forget_sightings(self, site: str, names: list[str]) -> None:
        await self._call(
            lambda db: db.executemany(
                "DELETE FROM sightings WHERE site = ? AND shard = ?", [(site, n) for n in names]
            )
        )

    # -- maintenance: jobs ---------------------------------------------------------------------

    async def create_job(self, kind: str, params: dict[str, object]) -> Job:
        job = await self._create_job(kind, params, unless_open=False)
        assert job is not None
        return job

    async def create_job_once(self, kind: str, params: dict[str, object]) -> Job | None:
        """A new queued job, unless one of its kind is queued, running or paused (None then):
        scheduled jobs are queued by every server process, and must exist once."""
        return await self._create_job(kind, params, unless_open=True)

    async def _create_job(
        self, kind: str, params: dict[str, object], *, unless_open: bool
    ) -> Job | None:

        def run(db: sqlite3.Connection) -> int | None:
            now = time.time()
            if (
                unless_open
                and db.execute(
                    "SELECT 1 FROM jobs "
                    "WHERE kind = ? AND state IN ('queued', 'running', 'paused')",
                    (kind,),
                ).fetchone()
            ):
                return None
            cursor = db.execute(
                "INSERT INTO jobs (kind, params, state, progress, created, updated) "
                "VALUES (?, ?, 'queued', '{}', ?, ?)",
                (kind, json.dumps(params), now, now),
            )
            return int(cursor.lastrowid or 0)

        created = await self._call(partial(self._in_transaction, run))
        return await self.get_job(created) if created is not None else None

    async def get_job(self, job_id: int) -> Job | None:
        def run(db: sqlite3.Connection) -> Job | None:
            row = db.execute(f"SELECT {_JOB_COLUMNS} FROM jobs WHERE id = ?", (job_id,)).fetchone()
            return _job(row) if row else None

        return self._read(run)

    async def newest_job(self, kind: str) -> Job | None:
        """The most recently created job of a kind, whatever its state."""

        def run(db: sqlite3.Connection) -> Job | None:
            row = db.execute(
                f"SELECT {_JOB_COLUMNS} FROM jobs WHERE kind = ? ORDER BY id DESC LIMIT 1",
                (kind,),
            ).fetchone()
            return _job(row) if row else None

        return self._read(run)

    async def list_jobs(
        self, states: tuple[str, ...] = (), limit: int = 100, *, kind: str | None = None
    ) -> list[Job]:
        """The newest jobs first, of these states (all without), of one kind if given."""

        def run(db: sqlite3.Connection) -> list[Job]:
            clauses: list[str] = []
            args: list[object] = list(states)
            if states:
                clauses.append(f"state IN ({','.join('?' * len(states))})")
            if kind is not None:
                clauses.append("kind = ?")
                args.append(kind)
            where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
            rows = db.execute(
                f"SELECT {_JOB_COLUMNS} FROM jobs {where} ORDER BY id DESC LIMIT ?",
                (*args, limit),
            ).fetchall()
            return [_job(row) for row in rows]

        return self._read(run)

    async def claim_job(
        self, job_id: int | None, kinds: tuple[str, ...], owner: str, lease: float
    ) -> Job | None:
        """Take a job to run: this one (or the oldest of `kinds`) if it is queued, or running
        under a lease that expired (its runner died). None if there is none to take."""

        def run(db: sqlite3.Connection) -> int | None:
            now = time.time()
            where = "(state = 'queued' OR (state = 'running' AND lease_until < ?))"
            args: list[object] = [now]
            if job_id is not None:
                where += " AND id = ?"
                args.append(job_id)
            if kinds:
                where += f" AND kind IN ({','.join('?' * len(kinds))})"
                args += kinds
            row = db.execute(f"SELECT id FROM jobs WHERE {where} ORDER BY id LIMIT 1", args)
            found = row.fetchone()
            if found is None:
                return None
            db.execute(
                "UPDATE jobs SET state = 'running', owner = ?, lease_until = ?, updated = ? "
                "WHERE id = ?",
                (owner, now + lease, now, found[0]),
            )
            return int(found[0])

        claimed = await self._call(partial(self._in_transaction, run))
        return await self.get_job(claimed) if claimed is not None else None

    async def save_job(
        self,
        job_id: int,
        owner: str,
        *,
        cursor: dict[str, object] | None,
        progress: dict[str, int],
        lease: float,
    ) -> str:
        """Record a running job's position and renew its lease; the job's state now (a runner
        that sees anything but "running" stops: paused, cancelled, or taken by another)."""

        def run(db: sqlite3.Connection) -> str:
            now = time.time()
            db.execute(
                "UPDATE jobs SET cursor = ?, progress = ?, lease_until = ?, updated = ? "
                "WHERE id = ? AND state = 'running' AND owner = ?",
                (json.dumps(cursor), json.dumps(progress), now + lease, now, job_id, owner),
            )
            # A step finished just after a pause or cancel request: its work is done, so its
            # position is kept (nothing else can have run the job since: it was not queued).
            db.execute(
                "UPDATE jobs SET cursor = ?, progress = ?, updated = ? "
                "WHERE id = ? AND state IN ('paused', 'cancelled') AND owner IS NULL",
                (json.dumps(cursor), json.dumps(progress), now, job_id),
            )
            row = db.execute("SELECT state, owner FROM jobs WHERE id = ?", (job_id,)).fetchone()
            if row is None:
                return "cancelled"
            return str(row[0]) if row[1] == owner or row[0] != "running" else "taken"

        return await self._call(run)

    async def set_job_state(
        self,
        job_id: int,
        state: str,
        *,
        only_from: tuple[str, ...],
        owner: str | None = None,
        error: str | None = None,
    ) -> Job | None:
        """Move a job to `state` if it is in one of `only_from` (and held by `owner`, if
        given); the job as it is afterwards, None if there is no such job."""

        def run(db: sqlite3.Connection) -> None:
            where = f"id = ? AND state IN ({','.join('?' * len(only_from))})"
            args: list[object] = [job_id, *only_from]
            if owner is not None:
                where += " AND owner = ?"
                args.append(owner)
            release = state != "running"
            db.execute(
                "UPDATE jobs SET state = ?, error = coalesce(?, error), updated = ?"
                + (", owner = NULL, lease_until = NULL" if release else "")
                + f" WHERE {where}",
                (state, error, time.time(), *args),
            )

        await self._call(run)
        return await self.get_job(job_id)

    # -- trash ------------------------------------------------------------------------------

    async def trash_due(self, before: float, limit: int) -> list[TrashedShard]:
        def run(db: sqlite3.Connection) -> list[TrashedShard]:
            rows = db.execute(
                "SELECT id, site, shard FROM trash WHERE since < ? ORDER BY id LIMIT ?",
                (before, limit),
            )
            return [TrashedShard(*row) for row in rows]

        return await self._call(run)

    async def forget_trash(self, ids: list[int]) -> None:
        await self._call(
            lambda db: db.executemany("DELETE FROM trash WHERE id = ?", [(i,) for i in ids])
        )
