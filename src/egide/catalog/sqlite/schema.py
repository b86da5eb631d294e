"""The SQLite catalog's schema: each migration upgrades it by one version."""

from __future__ import annotations

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
    # 9: identities (docs/decisions/0029-identities.md): the organisation's account, its id
    # drawn once here; users and groups; each access key owned by a user, Active or Inactive,
    # with an optional expiry; identity policies attached to users and groups (JSON kept as
    # given). Every key from before belongs to the user `admin`.
    """
    CREATE TABLE account (
        only_one INTEGER PRIMARY KEY CHECK (only_one = 1),
        account_id TEXT NOT NULL,
        created REAL NOT NULL
    );
    INSERT INTO account (only_one, account_id, created) VALUES (
        1, printf('%012d', abs(random() % 1000000000000)),
        (julianday('now') - 2440587.5) * 86400.0
    );
    CREATE TABLE users (
        name TEXT PRIMARY KEY,
        user_id TEXT NOT NULL UNIQUE,
        created REAL NOT NULL
    );
    INSERT INTO users (name, user_id, created)
        SELECT 'admin', 'AIDA' || upper(hex(randomblob(8))), created FROM account;
    CREATE TABLE groups (
        name TEXT PRIMARY KEY,
        group_id TEXT NOT NULL UNIQUE,
        created REAL NOT NULL
    );
    CREATE TABLE group_members (
        group_name TEXT NOT NULL REFERENCES groups(name),
        user_name TEXT NOT NULL REFERENCES users(name),
        PRIMARY KEY (group_name, user_name)
    ) WITHOUT ROWID;
    CREATE INDEX group_members_by_user ON group_members(user_name);
    ALTER TABLE credentials ADD COLUMN user_name TEXT NOT NULL DEFAULT 'admin';
    ALTER TABLE credentials ADD COLUMN status TEXT NOT NULL DEFAULT 'Active';
    ALTER TABLE credentials ADD COLUMN expires REAL;
    CREATE INDEX credentials_by_user ON credentials(user_name, created);
    CREATE TABLE identity_policies (
        kind TEXT NOT NULL,
        name TEXT NOT NULL,
        policy_name TEXT NOT NULL,
        document TEXT NOT NULL,
        PRIMARY KEY (kind, name, policy_name)
    ) WITHOUT ROWID;
    """,
    # 10: the creation time of uploads aborted or completed in the last day, so that listing
    # uploads after a marker whose upload has ended goes on right after it (ids and times
    # only; SQLiteUploads forgets them after a day).
    """
    CREATE TABLE ended_uploads (
        upload_id BLOB PRIMARY KEY,
        created REAL NOT NULL,
        ended REAL NOT NULL
    );
    CREATE INDEX ended_uploads_by_end ON ended_uploads(ended);
    """,
    # 11: roles assumed through STS (docs/decisions/0032-sts.md):
    # name, unique id (AROA…), trust policy kept as given, longest session in seconds. Their
    # identity policies are rows of identity_policies with kind 'role'.
    """
    CREATE TABLE roles (
        name TEXT PRIMARY KEY,
        role_id TEXT NOT NULL UNIQUE,
        created REAL NOT NULL,
        trust_policy TEXT NOT NULL,
        max_session INTEGER NOT NULL
    );
    """,
    # 12: settings of the account as a whole, by name (its quota: decision
    # 0033), as bucket_settings holds a bucket's; and an index that answers a bucket's usage
    # (what quotas count) without reading the versions' rows.
    """
    CREATE TABLE account_settings (
        name TEXT PRIMARY KEY,
        value TEXT NOT NULL
    ) WITHOUT ROWID;
    CREATE INDEX versions_usage ON versions(bucket_id, delete_marker, size);
    """,
    # 13: the rights-change counter (docs/decisions/0035-rights-counter.md): one row, bumped
    # in the transaction of every change of buckets, their settings, identities, roles and
    # account settings, read by each worker before a request when anything was committed.
    """
    CREATE TABLE rights (
        id INTEGER PRIMARY KEY CHECK (id = 1),
        version INTEGER NOT NULL
    );
    INSERT INTO rights (id, version) VALUES (1, 0);
    """,
    # 14: Iceberg namespaces and tables (docs/decisions/0040-iceberg-rest-catalog.md): a
    # warehouse is a bucket's name; a namespace's levels are joined by U+001F; a table's
    # current metadata location is what a commit swaps.
    """
    CREATE TABLE iceberg_namespaces (
        warehouse TEXT NOT NULL,
        namespace TEXT NOT NULL,
        parent TEXT NOT NULL,
        properties TEXT NOT NULL,
        PRIMARY KEY (warehouse, namespace)
    ) WITHOUT ROWID;
    CREATE INDEX iceberg_namespaces_by_parent ON iceberg_namespaces(warehouse, parent);
    CREATE TABLE iceberg_tables (
        warehouse TEXT NOT NULL,
        namespace TEXT NOT NULL,
        name TEXT NOT NULL,
        metadata_location TEXT NOT NULL,
        PRIMARY KEY (warehouse, namespace, name)
    ) WITHOUT ROWID;
    """,
)
