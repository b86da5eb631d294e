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

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from egide.catalog import RecoverableCatalog, open_catalog_file
from egide.catalog.backup import CatalogRepair
from egide.crypto.keyring import Keyring
from egide.domain import ObjectVersion
from egide.recovery.rebuild import (
    RebuildError,
    RebuildReport,
    adopt_parts,
    amended,
    bucket_keys,
    bucket_of,
    check_scan,
    newest_by_name,
    order_versions,
    place,
    read_recorded,
    version_from_manifest,
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


async def _snapshot_versions(
    catalog: RecoverableCatalog,
) -> tuple[list[ObjectVersion], dict[bytes, str]]:
    """The snapshot's versions holding data and its buckets (id → name), read through the
    catalog itself (opening it brought an older snapshot's schema up to date)."""
    buckets = {b.id: b.name for b in await catalog.list_buckets()}
    versions: list[ObjectVersion] = []
    after = None
    while page := await catalog.versions_after(after, _PAGE):
        versions += page
        after = page[-1].version_id
    return versions, buckets


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
    catalog: RecoverableCatalog | None = None
    try:
        catalog = open_catalog_file(into)
        known, buckets = await _snapshot_versions(catalog)
        scan = await scan_sites(sites, progress)
        check_scan(scan, report, allow_unreachable)
    except BaseException:
        if catalog is not None:
            await catalog.close()
        into.unlink(missing_ok=True)
        raise
    report.from_snapshot = len(known)
    recorded = await read_recorded(sites, keyring, found_keys, report)
    since = info.created * 1e9  # record numbers are times in nanoseconds
    later = {v: a for v, a in recorded.amendments.items() if a.number > since}
    settings = {b: found for b, found in recorded.settings.items() if found[0] > since}
    moves: list[tuple[bytes, tuple[str, ...], str | None, int]] = []
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
                moves.append((version.version_id, placed.sites, placed.pack, placed.pack_offset))

    def catch_up(repair: CatalogRepair) -> None:
        """Everything recorded on the sites after the snapshot, in one transaction."""
        uploads = repair.uploads_in_progress()
        in_snapshot = {v.version_id for v in known} | repair.delete_marker_ids()
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
        repair.relocate_versions(moves)
        repair.amend_versions([amended(v, later, report) for v in known if v.version_id in later])
        touched = {(v.bucket_id, v.key) for v in dropped} | set(new)
        repair.drop_versions([v.version_id for v in dropped])
        for bucket_id in {bucket_id for bucket_id, _ in new} - set(buckets):
            repair.add_bucket(found_keys[bucket_id].bucket)
            report.added_buckets += 1
        for (bucket_id, key), versions in new.items():
            _append(repair, bucket_id, key, order_versions(versions, report), report)
            repair.forget_uploads([v.version_id for v, _ in versions if v.version_id in uploads])
        for bucket_id, key in touched:
            repair.point_at_newest(bucket_id, key)
        credentials = recorded.credentials
        if credentials is not None and recorded.credentials_number > since:  # changed after it
            repair.replace_credentials(credentials, time.time())
            report.credentials = len(credentials.keys)
        report.recorded_settings += repair.replace_bucket_settings(
            {bucket_id: values for bucket_id, (_, values) in settings.items()}
        )  # changed after the snapshot
        repair.recount_packs()
        repair.keep_referenced_out_of_trash()
        repair.forget_sightings()  # garbage collection looks again from scratch
        report.buckets, report.versions, report.bytes, report.objects = repair.totals()

    try:
        await catalog.repair(catch_up)
    finally:
        await catalog.close_as_file()
    report.seconds = time.monotonic() - started
    return report


def _append(
    repair: CatalogRepair, bucket_id: bytes, key: str, versions: list[ObjectVersion],
    report: RestoreReport,
) -> None:  # fmt: skip
    """Add versions written after the snapshot after the key's others; a new null version
    replaces the key's null version, as its write did."""
    if any(v.is_null for v in versions):
        replaced = repair.null_versions(bucket_id, key)
        report.replaced_null += len(replaced)
        repair.drop_versions(replaced)
    repair.append_versions(bucket_id, key, versions)
    report.added += len(versions)
