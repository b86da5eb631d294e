"""`egide catalog restore`: the newest snapshot, brought up to date from the shards.

The snapshot holds everything the catalog knew at its time. The sites then say what changed
since: versions written after it (their shards and manifests are found, as by a rebuild) are
added; versions whose pieces moved (repair, evacuation) are pointed at where they are now;
versions of the snapshot with no piece left anywhere were deleted since (or lost) and are
dropped, and named in the report; delete markers recorded after it are added, and tag,
retention and legal hold changes, bucket settings and credentials recorded after it applied.
What a rebuild cannot see cannot be caught up either: uploads begun after the snapshot are not
in the result, and a version or marker deleted after it whose files are still on the sites (not
yet garbage-collected) comes back (docs/catalog-recovery.md).
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from egide.catalog.sqlite import SQLiteCatalog
from egide.crypto.keyring import Keyring
from egide.domain import ObjectVersion, Part, shard_name
from egide.engine.amendments import Amendment
from egide.recovery.rebuild import (
    PART_FILES_INSERT,
    VERSION_INSERT,
    RebuildError,
    RebuildReport,
    adopt_parts,
    amended,
    bucket_keys,
    bucket_of,
    check_scan,
    newest_by_name,
    order_versions,
    part_file_rows,
    place,
    read_recorded,
    version_from_manifest,
    version_row,
)
from egide.recovery.shardscan import FoundVersion, Progress, scan_sites
from egide.recovery.snapshots import fetch_snapshot
from egide.sites.base import Site

_PAGE = 1000


@dataclass
class RestoreReport(RebuildReport):
    snapshot: str = ""
    snapshot_created: float = 0.0
    #: Versions in the snapshot, and those added from the shards written after it.
    from_snapshot: int = 0
    added: int = 0
    added_buckets: int = 0
    #: Versions whose pieces were found elsewhere than the snapshot said.
    moved: int = 0
    #: Versions of the snapshot with no piece left: deleted after it (or lost). Dropped.
    gone: list[dict[str, object]] = field(default_factory=list)


async def _snapshot_versions(path: Path) -> tuple[list[ObjectVersion], dict[bytes, str]]:
    """The snapshot's versions holding data and its buckets (id → name), read through the
    catalog itself (which also brings an older snapshot's schema up to date)."""
    catalog = SQLiteCatalog(path)
    catalog.open()
    try:
        buckets = {b.id: b.name for b in await catalog.list_buckets()}
        versions: list[ObjectVersion] = []
        after = None
        while page := await catalog.versions_after(after, _PAGE):
            versions += page
            after = page[-1].version_id
        return versions, buckets
    finally:
        await catalog.close()


def _parts(version: ObjectVersion) -> list[tuple[int, int]]:
    return version.laid_out()


async def restore_catalog(
    sites: Mapping[str, Site],
    keyring: Keyring,
    into: Path,
    *,
    name: str | None = None,
    progress: Progress | None = None,
    allow_unreachable: bool = False,
) -> RestoreReport:
    """Restore snapshot `name` (else the newest readable one) into the new file `into`, then
    catch it up with the shards found on the sites (see the module doc)."""
    started = time.monotonic()
    if into.exists():
        raise RebuildError(f"{into} exists: the restore writes a new file only")
    found_keys, _ = newest_by_name(await bucket_keys(sites, keyring))
    info = await fetch_snapshot(sites, keyring, into, name)
    report = RestoreReport(path=str(into), snapshot=info.name, snapshot_created=info.created)
    try:
        known, buckets = await _snapshot_versions(into)
        scan = await scan_sites(sites, progress)
        check_scan(scan, report, allow_unreachable)
    except BaseException:
        into.unlink(missing_ok=True)
        raise
    report.from_snapshot = len(known)
    recorded = await read_recorded(sites, keyring, found_keys, report)
    since = info.created * 1e9  # record numbers are times in nanoseconds
    later = {v: a for v, a in recorded.amendments.items() if a.number > since}
    settings = {b: found for b, found in recorded.settings.items() if found[0] > since}
    updates: list[tuple[str, str | None, int, bytes]] = []
    dropped: list[ObjectVersion] = []
    adopted: set[bytes] = set()
    order = list(found_keys)  # tried busiest first (rebuild.bucket_of)
    for version in known:
        found = scan.versions.get(version.version_id, FoundVersion(version.bucket_id))
        found = adopt_parts(scan, found, version.parts, adopted)
        placed = place(found, version.k, version.m, _parts(version), version.sites)
        ref: dict[str, object] = {
            "bucket": buckets.get(version.bucket_id, "?"),
            "key": version.key,
            "version": version.s3_version_id,
        }
        if placed.found == 0:
            report.gone.append(ref)
            dropped.append(version)
        elif placed.found < version.k:
            report.unrecoverable.append(
                ref | {"pieces_found": placed.found, "pieces_needed": version.k}
            )  # kept: the catalog says it existed; its data cannot be read
        else:
            report.degraded += placed.found < version.k + version.m
            if (placed.sites, placed.pack, placed.pack_offset) != (
                version.sites, version.pack, version.pack_offset
            ):  # fmt: skip
                report.moved += 1
                updates.append(
                    (json.dumps(placed.sites), placed.pack, placed.pack_offset, version.version_id)
                )
    with sqlite3.connect(into, isolation_level=None) as db:
        uploads = {row[0] for row in db.execute("SELECT upload_id FROM uploads")}
        in_snapshot = {v.version_id for v in known} | {
            row[0] for row in db.execute("SELECT version_id FROM versions WHERE delete_marker = 1")
        }
        new: dict[tuple[bytes, str], list[tuple[ObjectVersion, bool]]] = {}
        for version_id, found in scan.versions.items():
            if version_id in in_snapshot or version_id in adopted:
                continue
            bucket_id = bucket_of(version_id, found, found_keys, order)
            if bucket_id is None:
                continue  # a part file no completion record lists (decision 0018)
            keys = found_keys.get(bucket_id)
            if keys is None or (bucket_id not in buckets and keys.bucket.name in buckets.values()):
                report.without_bucket += 1
                continue
            if version_id in uploads and 0 not in found.manifests:
                continue  # an upload still in progress: the snapshot has it
            result = version_from_manifest(version_id, found, keys, report, scan, adopted)
            if result is not None:
                version = amended(result[0], recorded.amendments, report)
                new.setdefault((bucket_id, version.key), []).append((version, result[1]))
        for marker in recorded.markers:
            if marker.version_id in in_snapshot or (
                marker.bucket_id not in buckets
                and found_keys[marker.bucket_id].bucket.name in buckets.values()
            ):
                continue  # known, or of a bucket whose name the snapshot gives another
            new.setdefault((marker.bucket_id, marker.key), []).append((marker, False))
            report.delete_markers += 1
        db.execute("BEGIN")
        db.executemany(
            "UPDATE versions SET sites = ?, pack = ?, pack_offset = ? WHERE version_id = ?",
            updates,
        )
        _amend(db, [v for v in known if v.version_id in later], later, report)
        touched = {(v.bucket_id, v.key) for v in dropped} | set(new)
        _drop(db, [v.version_id for v in dropped])
        for bucket_id in {bucket_id for bucket_id, _ in new} - set(buckets):
            bucket = found_keys[bucket_id].bucket
            db.execute(
                "INSERT INTO buckets (id, name, created, wrapped_key) VALUES (?, ?, ?, ?)",
                (bucket.id, bucket.name, bucket.created, bucket.wrapped_key),
            )
            report.added_buckets += 1
        for (bucket_id, key), versions in new.items():
            _append(db, bucket_id, key, order_versions(versions, report), report)
            done = [v.version_id for v, _ in versions if v.version_id in uploads]
            db.executemany("DELETE FROM parts WHERE upload_id = ?", [(u,) for u in done])
            db.executemany("DELETE FROM uploads WHERE upload_id = ?", [(u,) for u in done])
        for bucket_id, key in touched:
            _point_at_newest(db, bucket_id, key)
        credentials = recorded.credentials
        if credentials is not None and recorded.credentials_number > since:  # changed after it
            known_keys = dict(db.execute("SELECT access_key, created FROM credentials"))
            db.execute("DELETE FROM credentials")
            db.executemany(
                "INSERT INTO credentials (access_key, sealed_secret, created) VALUES (?, ?, ?)",
                [(a, s, known_keys.get(a, time.time())) for a, s in credentials],
            )
            report.credentials = len(credentials)
        present = {row[0] for row in db.execute("SELECT id FROM buckets")}
        for bucket_id, (_, values) in settings.items():  # changed after the snapshot
            if bucket_id in present:
                db.execute("DELETE FROM bucket_settings WHERE bucket_id = ?", (bucket_id,))
                db.executemany(
                    "INSERT INTO bucket_settings (bucket_id, name, value) VALUES (?, ?, ?)",
                    [(bucket_id, name, value) for name, value in values.items()],
                )
                report.recorded_settings += 1
        _recount_packs(db)
        _keep_referenced_out_of_trash(db)
        db.execute("DELETE FROM sightings")  # garbage collection looks again from scratch
        db.execute("COMMIT")
        report.buckets = db.execute("SELECT count(*) FROM buckets").fetchone()[0]
        report.versions, report.bytes = db.execute(
            "SELECT count(*), coalesce(sum(size), 0) FROM versions"
        ).fetchone()
        report.objects = db.execute("SELECT count(*) FROM objects").fetchone()[0]
        db.execute("PRAGMA journal_mode=DELETE")
    db.close()
    report.seconds = time.monotonic() - started
    return report


def _amend(
    db: sqlite3.Connection, versions: list[ObjectVersion], amendments: Mapping[bytes, Amendment],
    report: RestoreReport,
) -> None:  # fmt: skip
    """Apply to versions of the snapshot the changes recorded after it."""
    rows = []
    for version in versions:
        changed = amended(version, amendments, report)
        rows.append((json.dumps(changed.headers), changed.retention_mode, changed.retain_until,
                     changed.legal_hold, version.version_id))  # fmt: skip
    db.executemany(
        "UPDATE versions SET headers = ?, retention_mode = ?, retain_until = ?, legal_hold = ? "
        "WHERE version_id = ?",
        rows,
    )


def _drop(db: sqlite3.Connection, version_ids: list[bytes]) -> None:
    rows = [(v,) for v in version_ids]
    db.executemany("DELETE FROM objects WHERE version_id = ?", rows)
    db.executemany("DELETE FROM damaged WHERE version_id = ?", rows)
    db.executemany("DELETE FROM versions WHERE version_id = ?", rows)
    db.executemany("DELETE FROM part_files WHERE version_id = ?", rows)


def _append(
    db: sqlite3.Connection, bucket_id: bytes, key: str, versions: list[ObjectVersion],
    report: RestoreReport,
) -> None:  # fmt: skip
    """Add versions written after the snapshot after the key's others; a new null version
    replaces the key's null version, as its write did."""
    if any(v.is_null for v in versions):
        replaced = [
            row[0]
            for row in db.execute(
                "SELECT version_id FROM versions WHERE bucket_id = ? AND key = ? AND is_null = 1",
                (bucket_id, key),
            )
        ]
        report.replaced_null += len(replaced)
        _drop(db, replaced)
    (seq,) = db.execute(
        "SELECT coalesce(max(seq), 0) FROM versions WHERE bucket_id = ? AND key = ?",
        (bucket_id, key),
    ).fetchone()
    db.executemany(VERSION_INSERT, [version_row(v, seq + n) for n, v in enumerate(versions, 1)])
    db.executemany(PART_FILES_INSERT, part_file_rows(versions))
    report.added += len(versions)


def _point_at_newest(db: sqlite3.Connection, bucket_id: bytes, key: str) -> None:
    row = db.execute(
        "SELECT version_id FROM versions WHERE bucket_id = ? AND key = ? ORDER BY seq DESC LIMIT 1",
        (bucket_id, key),
    ).fetchone()
    if row is None:
        db.execute("DELETE FROM objects WHERE bucket_id = ? AND key = ?", (bucket_id, key))
    else:
        db.execute(
            "INSERT OR REPLACE INTO objects (bucket_id, key, version_id) VALUES (?, ?, ?)",
            (bucket_id, key, row[0]),
        )


def _recount_packs(db: sqlite3.Connection) -> None:
    """Each pack's live count from the versions now in it; packs with none are forgotten
    (their files are garbage now)."""
    counts: dict[str, tuple[set[str], int]] = {}
    for pack, sites in db.execute("SELECT pack, sites FROM versions WHERE pack IS NOT NULL"):
        held, live = counts.get(pack, (set(), 0))
        counts[pack] = (held | set(json.loads(sites)), live + 1)
    for pack, sites in db.execute("SELECT name, sites FROM packs").fetchall():
        if pack in counts:
            counts[pack] = (counts[pack][0] | set(json.loads(sites)), counts[pack][1])
    db.execute("DELETE FROM packs")
    db.executemany(
        "INSERT INTO packs (name, sites, live) VALUES (?, ?, ?)",
        [(name, json.dumps(sorted(sites)), live) for name, (sites, live) in counts.items()],
    )


def _keep_referenced_out_of_trash(db: sqlite3.Connection) -> None:
    """The snapshot's trash may name files the restored catalog points at again (a piece
    found on the site it had left): those must not be deleted."""
    referenced: set[tuple[str, str]] = set()
    for version_id, sites, pack, parts in db.execute(
        "SELECT version_id, sites, pack, parts FROM versions WHERE delete_marker = 0"
    ):
        names = json.loads(sites)
        if pack is not None:
            referenced.update((site, pack) for site in names)
            continue
        referenced.update((site, shard_name(version_id, 0, i)) for i, site in enumerate(names))
        for part in (Part.from_fields(fields) for fields in json.loads(parts or "[]")):
            referenced.update((site, part.file(version_id, i)) for i, site in enumerate(names))
    doomed = [
        (trash_id,)
        for trash_id, site, shard in db.execute("SELECT id, site, shard FROM trash").fetchall()
        if (site, shard) in referenced
    ]
    db.executemany("DELETE FROM trash WHERE id = ?", doomed)
