"""The PostgreSQL catalog's schema and its versioned migrations.

Each entry of `MIGRATIONS` upgrades the schema by one version; never edit a released entry,
append a new one. Version 1 is the whole schema of SQLite's twelve steps at once, in
PostgreSQL's types: ids BYTEA, times DOUBLE PRECISION (seconds, as SQLite's REAL), counts
BIGINT, flags BOOLEAN, JSON documents TEXT (read by the same code as SQLite's). Object keys
and names are `COLLATE "C"`: ordered by code point as S3 orders them (and as Python compares
str), whatever the database's default collation.

The version applied is in `schema_version` (one row per step). They are applied at open, in
one transaction under a transaction advisory lock, so that gateways starting together apply
each step once; a database newer than this code is refused.
"""

from __future__ import annotations

import psycopg

from egide.catalog.errors import CatalogOpenError

#: Advisory lock class ids (the two-int form, `pg_advisory_xact_lock(class, id)`), one per use,
#: so that no two uses can take each other's locks.
MIGRATION_LOCK = (0x45474944, 1)  # "EGID", migrations
KEY_LOCK_CLASS = 0x45474944 + 1  # one object key (id: the hash of bucket id and key)
JOB_KIND_LOCK_CLASS = 0x45474944 + 2  # queuing a job of one kind (id: the hash of the kind)


class CatalogTooNew(CatalogOpenError):
    """The database's schema is newer than this Égide knows."""


MIGRATIONS: tuple[str, ...] = (
    """
    CREATE TABLE buckets (
        id BYTEA PRIMARY KEY,
        name TEXT COLLATE "C" NOT NULL UNIQUE,
        created DOUBLE PRECISION NOT NULL,
        wrapped_key BYTEA NOT NULL,
        rewrap_after BYTEA
    );
    CREATE TABLE versions (
        version_id BYTEA PRIMARY KEY,
        bucket_id BYTEA NOT NULL REFERENCES buckets(id),
        key TEXT COLLATE "C" NOT NULL,
        size BIGINT NOT NULL,
        etag TEXT NOT NULL,
        last_modified DOUBLE PRECISION NOT NULL,
        wrapped_data_key BYTEA NOT NULL,
        k INTEGER NOT NULL,
        m INTEGER NOT NULL,
        block_size BIGINT NOT NULL,
        sites TEXT NOT NULL,
        headers TEXT NOT NULL,
        pack TEXT,
        pack_offset BIGINT NOT NULL DEFAULT 0,
        parts TEXT,
        seq BIGINT NOT NULL DEFAULT 1,
        is_null BOOLEAN NOT NULL DEFAULT TRUE,
        delete_marker BOOLEAN NOT NULL DEFAULT FALSE,
        retention_mode TEXT,
        retain_until DOUBLE PRECISION,
        legal_hold BOOLEAN NOT NULL DEFAULT FALSE,
        padded_size BIGINT
    );
    -- Newest first within a key, as version listings read them.
    CREATE INDEX versions_by_key ON versions(bucket_id, key, seq DESC);
    CREATE INDEX versions_pack ON versions(pack) WHERE pack IS NOT NULL;
    CREATE INDEX versions_usage ON versions(bucket_id, delete_marker, size);
    CREATE TABLE objects (
        bucket_id BYTEA NOT NULL,
        key TEXT COLLATE "C" NOT NULL,
        version_id BYTEA NOT NULL REFERENCES versions(version_id),
        PRIMARY KEY (bucket_id, key)
    );
    CREATE TABLE packs (
        name TEXT PRIMARY KEY,
        sites TEXT NOT NULL,
        live BIGINT NOT NULL
    );
    CREATE TABLE trash (
        id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        site TEXT NOT NULL,
        shard TEXT NOT NULL,
        since DOUBLE PRECISION NOT NULL
    );
    CREATE INDEX trash_since ON trash(since);
    CREATE TABLE uploads (
        upload_id BYTEA PRIMARY KEY,
        bucket_id BYTEA NOT NULL REFERENCES buckets(id),
        key TEXT COLLATE "C" NOT NULL,
        created DOUBLE PRECISION NOT NULL,
        wrapped_data_key BYTEA NOT NULL,
        k INTEGER NOT NULL,
        m INTEGER NOT NULL,
        block_size BIGINT NOT NULL,
        sites TEXT NOT NULL,
        headers TEXT NOT NULL,
        next_seq BIGINT NOT NULL DEFAULT 1
    );
    CREATE INDEX uploads_by_key ON uploads(bucket_id, key, created);
    CREATE TABLE parts (
        upload_id BYTEA NOT NULL REFERENCES uploads(upload_id),
        number INTEGER NOT NULL,
        seq BIGINT NOT NULL,
        size BIGINT NOT NULL,
        etag TEXT NOT NULL,
        last_modified DOUBLE PRECISION NOT NULL,
        checksums TEXT NOT NULL,
        padded_size BIGINT,
        pid BYTEA,
        PRIMARY KEY (upload_id, number)
    );
    CREATE TABLE part_files (
        file_id BYTEA PRIMARY KEY,
        version_id BYTEA NOT NULL
    );
    CREATE TABLE ended_uploads (
        upload_id BYTEA PRIMARY KEY,
        created DOUBLE PRECISION NOT NULL,
        ended DOUBLE PRECISION NOT NULL
    );
    CREATE INDEX ended_uploads_by_end ON ended_uploads(ended);
    CREATE TABLE bucket_settings (
        bucket_id BYTEA NOT NULL REFERENCES buckets(id),
        name TEXT COLLATE "C" NOT NULL,
        value TEXT NOT NULL,
        PRIMARY KEY (bucket_id, name)
    );
    CREATE TABLE account_settings (
        name TEXT COLLATE "C" PRIMARY KEY,
        value TEXT NOT NULL
    );
    CREATE TABLE reports (
        id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        kind TEXT NOT NULL,
        scope TEXT NOT NULL,
        created DOUBLE PRECISION NOT NULL,
        sha256 TEXT NOT NULL,
        content_sha256 TEXT NOT NULL,
        summary TEXT NOT NULL
    );
    CREATE INDEX reports_by_scope ON reports(kind, scope, id);
    CREATE TABLE jobs (
        id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        kind TEXT NOT NULL,
        params TEXT NOT NULL,
        state TEXT NOT NULL,
        cursor TEXT,
        progress TEXT NOT NULL,
        created DOUBLE PRECISION NOT NULL,
        updated DOUBLE PRECISION NOT NULL,
        owner TEXT,
        lease_until DOUBLE PRECISION,
        error TEXT
    );
    CREATE INDEX jobs_by_state ON jobs(state, id);
    CREATE TABLE damaged (
        version_id BYTEA PRIMARY KEY,
        reason TEXT NOT NULL,
        since DOUBLE PRECISION NOT NULL
    );
    CREATE TABLE sightings (
        site TEXT NOT NULL,
        shard TEXT NOT NULL,
        seen DOUBLE PRECISION NOT NULL,
        PRIMARY KEY (site, shard)
    );
    CREATE TABLE bucket_key_generations (
        bucket_id BYTEA NOT NULL REFERENCES buckets(id),
        generation INTEGER NOT NULL,
        wrapped_key BYTEA NOT NULL,
        retired DOUBLE PRECISION NOT NULL,
        PRIMARY KEY (bucket_id, generation)
    );
    CREATE TABLE shredded_buckets (
        bucket_id BYTEA PRIMARY KEY,
        name TEXT NOT NULL,
        shredded DOUBLE PRECISION NOT NULL,
        summary TEXT NOT NULL,
        pending_sites TEXT NOT NULL
    );
    CREATE TABLE account (
        only_one INTEGER PRIMARY KEY CHECK (only_one = 1),
        account_id TEXT NOT NULL,
        created DOUBLE PRECISION NOT NULL
    );
    INSERT INTO account (only_one, account_id, created) VALUES (
        1, lpad(floor(random() * 1000000000000)::BIGINT::TEXT, 12, '0'),
        extract(epoch FROM clock_timestamp())
    );
    CREATE TABLE users (
        name TEXT COLLATE "C" PRIMARY KEY,
        user_id TEXT NOT NULL UNIQUE,
        created DOUBLE PRECISION NOT NULL
    );
    INSERT INTO users (name, user_id, created)
        SELECT 'admin', 'AIDA' || upper(substr(md5(random()::TEXT), 1, 16)), created
        FROM account;
    CREATE TABLE groups (
        name TEXT COLLATE "C" PRIMARY KEY,
        group_id TEXT NOT NULL UNIQUE,
        created DOUBLE PRECISION NOT NULL
    );
    CREATE TABLE group_members (
        group_name TEXT COLLATE "C" NOT NULL REFERENCES groups(name),
        user_name TEXT COLLATE "C" NOT NULL REFERENCES users(name),
        PRIMARY KEY (group_name, user_name)
    );
    CREATE INDEX group_members_by_user ON group_members(user_name);
    CREATE TABLE credentials (
        access_key TEXT COLLATE "C" PRIMARY KEY,
        sealed_secret BYTEA NOT NULL,
        created DOUBLE PRECISION NOT NULL,
        user_name TEXT COLLATE "C" NOT NULL DEFAULT 'admin',
        status TEXT NOT NULL DEFAULT 'Active',
        expires DOUBLE PRECISION
    );
    CREATE INDEX credentials_by_user ON credentials(user_name, created);
    CREATE TABLE identity_policies (
        kind TEXT NOT NULL,
        name TEXT COLLATE "C" NOT NULL,
        policy_name TEXT COLLATE "C" NOT NULL,
        document TEXT NOT NULL,
        PRIMARY KEY (kind, name, policy_name)
    );
    CREATE TABLE roles (
        name TEXT COLLATE "C" PRIMARY KEY,
        role_id TEXT NOT NULL UNIQUE,
        created DOUBLE PRECISION NOT NULL,
        trust_policy TEXT NOT NULL,
        max_session INTEGER NOT NULL
    );
    """,
    # 2: the rights-change counter (docs/decisions/0035-rights-counter.md): one row, bumped in
    # the transaction of every change of buckets, their settings, identities, roles and
    # account settings.
    """
    CREATE TABLE rights (
        id INTEGER PRIMARY KEY CHECK (id = 1),
        version BIGINT NOT NULL
    );
    INSERT INTO rights (id, version) VALUES (1, 0);
    """,
    # 3: Iceberg namespaces and tables (docs/decisions/0040-iceberg-rest-catalog.md): a
    # warehouse is a bucket's name; a namespace's levels are joined by U+001F; a table's
    # current metadata location is what a commit swaps.
    """
    CREATE TABLE iceberg_namespaces (
        warehouse TEXT COLLATE "C" NOT NULL,
        namespace TEXT COLLATE "C" NOT NULL,
        parent TEXT COLLATE "C" NOT NULL,
        properties TEXT NOT NULL,
        PRIMARY KEY (warehouse, namespace)
    );
    CREATE INDEX iceberg_namespaces_by_parent ON iceberg_namespaces(warehouse, parent);
    CREATE TABLE iceberg_tables (
        warehouse TEXT COLLATE "C" NOT NULL,
        namespace TEXT COLLATE "C" NOT NULL,
        name TEXT COLLATE "C" NOT NULL,
        metadata_location TEXT NOT NULL,
        PRIMARY KEY (warehouse, namespace, name)
    );
    """,
)


def migrate(db: psycopg.Connection[tuple[object, ...]], where: str) -> int:
    """Bring the database `db` (not in autocommit) to the current schema in one transaction,
    under the migration lock; the version it is at. `where` names it in errors (no password).
    Raises CatalogTooNew if the database is newer than this code."""
    with db.transaction():
        db.execute("SELECT pg_advisory_xact_lock(%s, %s)", MIGRATION_LOCK)
        db.execute(
            "CREATE TABLE IF NOT EXISTS schema_version ("
            "version INTEGER PRIMARY KEY, applied DOUBLE PRECISION NOT NULL)"
        )
        row = db.execute("SELECT coalesce(max(version), 0) FROM schema_version").fetchone()
        current = int(row[0]) if row else 0  # type: ignore[call-overload]
        if current > len(MIGRATIONS):
            raise CatalogTooNew(
                f"catalog {where} has schema {current}, newer than this Égide "
                f"({len(MIGRATIONS)}): upgrade Égide"
            )
        for number, script in enumerate(MIGRATIONS[current:], start=current + 1):
            db.execute(script.encode())
            db.execute(
                "INSERT INTO schema_version (version, applied) "
                "VALUES (%s, extract(epoch FROM clock_timestamp()))",
                (number,),
            )
    return len(MIGRATIONS)
