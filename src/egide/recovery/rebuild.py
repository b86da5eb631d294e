"""`egide catalog rebuild`: the catalog recreated from the shards, with the master key alone.

The bucket key records on the sites (egide.engine.keyrecords) give every bucket and its keys;
the shard headers and footers (egide.recovery.shardscan) give every version, its manifest
(sealed under the bucket key) and where each of its pieces actually is. Placement is what was
found, never what the manifest says: repairs and evacuations move shards after the write.

Delete markers come back from their records on the sites (egide.engine.markers), and tag,
retention and legal hold changes made after a write from the version's newest amendment
record (egide.engine.amendments); bucket settings from the bucket's newest settings record
(egide.engine.settingsrecords), else inferred from its versions; access keys from the
credentials record (egide.engine.credentialrecords). Uploads in progress live in the catalog
only, and come back from a snapshot (egide.recovery.snapshots).

The new catalog is always built in a new catalog file (`egide.catalog.open_catalog_file`);
`egide.catalog.install_catalog` swaps it in, keeping the old.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

from egide.catalog import open_catalog_file
from egide.catalog.identities import Identities
from egide.crypto import aead
from egide.crypto.keyring import Keyring
from egide.domain import NO_BUCKET_ID, Bucket, ObjectVersion, Part
from egide.engine.amendments import Amendment, read_amendments
from egide.engine.credentialrecords import Credentials, read_credentials
from egide.engine.keyrecords import PREFIX as KEY_RECORD_PREFIX
from egide.engine.keyrecords import read_key_records
from egide.engine.manifest import COMPLETION_SEQ, Manifest
from egide.engine.markers import read_records
from egide.engine.settingsrecords import read_settings
from egide.engine.siterecords import try_buckets
from egide.engine.versioning import OBJECT_LOCK, VERSIONING, LockConfiguration
from egide.recovery.shardscan import FoundVersion, Progress, Scan, Sighting, scan_sites
from egide.sites.base import Site, SiteError

#: The site named for a piece found nowhere whose manifest names no site either.
LOST_SITE = "lost"


class RebuildError(Exception):
    """The rebuild cannot be done (wrong master key, unreachable site …); the message says why."""


@dataclass(frozen=True)
class BucketKeys:
    bucket: Bucket
    #: Unwrapped bucket key generations, the current first.
    keys: tuple[bytes, ...]
    #: The master-wrapped retired generations, newest first (as the key record lists them):
    #: kept in the new catalog, so the next master key rotation writes them on again.
    retired: tuple[bytes, ...] = ()


@dataclass(frozen=True)
class Placed:
    """Where a version's pieces are: one site per piece index, and its pack if packed."""

    sites: tuple[str, ...]
    pack: str | None
    pack_offset: int
    #: Piece indexes found complete (the others are named by the manifest: repair rebuilds them).
    found: int


@dataclass
class RebuildReport:
    path: str = ""
    buckets: int = 0
    versions: int = 0
    objects: int = 0
    bytes: int = 0
    files: int = 0
    stored_bytes: int = 0
    #: Versions with fewer than k pieces found: not restored.
    unrecoverable: list[dict[str, object]] = field(default_factory=list)
    #: Versions restored with some pieces missing (readable; repair rebuilds the rest).
    degraded: int = 0
    #: Multipart uploads whose parts were found without a completion record: uploads in progress
    #: when the catalog was lost, or objects completed before the record existed. A part
    #: written since decision 0018 names no upload: each such attempt counts once.
    uploads_without_record: int = 0
    #: Delete markers found (their records, egide.engine.markers), counted among `versions`.
    delete_markers: int = 0
    #: Access keys from the credentials record (egide.engine.credentialrecords).
    credentials: int = 0
    #: Buckets whose settings came from their settings record (egide.engine.settingsrecords);
    #: the others' are inferred from their versions.
    recorded_settings: int = 0
    #: Versions whose tags, retention or legal hold changed after the write (their amendment
    #: records, egide.engine.amendments): restored as changed.
    amended: int = 0
    #: Older null versions of a key a newer one replaced (their files await garbage collection).
    replaced_null: int = 0
    #: Versions of buckets without a key record (deleted or crypto-shredded buckets).
    without_bucket: int = 0
    #: Buckets whose name a newer bucket took (deleted, then created again).
    replaced_buckets: int = 0
    problems: list[str] = field(default_factory=list)
    unreachable_sites: dict[str, str] = field(default_factory=dict)
    seconds: float = 0.0

    def as_dict(self) -> dict[str, object]:
        return dict(self.__dict__)


async def bucket_keys(sites: Mapping[str, Site], keyring: Keyring) -> dict[bytes, BucketKeys]:
    """Every bucket with a key record on some site, and its keys. RebuildError if records
    exist but none opens under this master key (the wrong key file)."""
    records = await read_key_records(sites, keyring)
    if not records:
        for site in sites.values():
            try:
                async for _ in site.list(KEY_RECORD_PREFIX):
                    raise RebuildError(
                        "the master key opens none of the bucket key records on the sites: "
                        "is it the key file of this installation?"
                    )
            except SiteError:
                continue
    result: dict[bytes, BucketKeys] = {}
    for bucket_id, record in records.items():
        keys = []
        for wrapped in record.wrapped_keys:
            try:
                keys.append(keyring.bucket_key(bucket_id, wrapped))
            except aead.DecryptionError:
                continue
        if keys:
            bucket = Bucket(bucket_id, record.name, record.created, record.wrapped_keys[0])
            result[bucket_id] = BucketKeys(bucket, tuple(keys), record.wrapped_keys[1:])
    return result


@dataclass(frozen=True)
class Recorded:
    """What the records beside the shards hold (decision 0016), for the buckets found."""

    markers: list[ObjectVersion]
    #: Version id → its newest amendment.
    amendments: dict[bytes, Amendment]
    #: Bucket id → (number, settings) of its newest settings record.
    settings: dict[bytes, tuple[int, dict[str, str]]]
    #: The newest credentials record (None if there is none) and its number.
    credentials: Credentials | None
    credentials_number: int


async def read_recorded(
    sites: Mapping[str, Site], keyring: Keyring, keys: Mapping[bytes, BucketKeys],
    report: RebuildReport,
) -> Recorded:  # fmt: skip
    """Every record beside the shards that opens, for the buckets of `keys`; what does not
    open is added to the report's problems."""
    generations = {bucket_id: k.keys for bucket_id, k in keys.items()}
    markers, problems = await read_records(sites, generations)
    report.problems += problems
    amendments, problems = await read_amendments(sites, generations)
    report.problems += problems
    settings, problems = await read_settings(sites, generations)
    report.problems += problems
    credentials, number, problems = await read_credentials(sites, keyring)
    report.problems += problems
    return Recorded(markers, amendments, settings, credentials, number)


def newest_by_name(buckets: Mapping[bytes, BucketKeys]) -> tuple[dict[bytes, BucketKeys], int]:
    """One bucket per name, the newest (a name deleted and created again has two records);
    and how many were left out."""
    by_name: dict[str, BucketKeys] = {}
    for keys in buckets.values():
        known = by_name.get(keys.bucket.name)
        if known is None or keys.bucket.created > known.bucket.created:
            by_name[keys.bucket.name] = keys
    kept = {keys.bucket.id: keys for keys in by_name.values()}
    return kept, len(buckets) - len(kept)


def open_manifest(
    keys: Sequence[bytes], version_id: bytes, sealed: Sequence[bytes]
) -> Manifest | None:
    for data in sealed:
        for key in keys:
            try:
                document = json.loads(aead.unwrap(key, data, b"egide/manifest/" + version_id))
                return Manifest.from_document(document)
            except aead.DecryptionError:
                continue
            except (KeyError, TypeError, ValueError):
                break
    return None


def place(
    found: FoundVersion, k: int, m: int, parts: Sequence[tuple[int, int]], named: Sequence[str]
) -> Placed:
    """The placement of a version from its sightings. `parts` are the (seq, size) of its
    part attempts ([(0, size)] for a simple object); `named` its sites as last recorded
    (manifest or snapshot), used for pieces found nowhere. A piece counts where every part of
    it is found complete; of two copies, prefer a site no other piece uses, then the copy
    that moved away from `named` (a repair or an evacuation put it there)."""

    def usable(sighting: Sighting) -> bool:
        return sighting.complete and (sighting.header.k, sighting.header.m) == (k, m)

    candidates: list[tuple[str | None, int, dict[int, set[str]]]] = []
    standalone: dict[tuple[int, int], set[str]] = {}
    packed: dict[tuple[str, int], dict[int, set[str]]] = {}
    sizes = dict(parts)
    for s in found.sightings:
        if not usable(s) or sizes.get(s.header.part) != s.size:
            continue
        if s.pack is None:
            standalone.setdefault((s.header.index, s.header.part), set()).add(s.site)
        elif len(parts) == 1 and s.header.part == 0:
            packed.setdefault((s.pack, s.offset), {}).setdefault(s.header.index, set()).add(s.site)
    whole: dict[int, set[str]] = {}
    for index in range(k + m):
        held = [standalone.get((index, seq), set()) for seq, _ in parts]
        common = set.intersection(*held) if held else set()
        if common:
            whole[index] = common
    candidates.append((None, 0, whole))
    candidates += [(pack, offset, pieces) for (pack, offset), pieces in sorted(packed.items())]
    pack, offset, pieces = max(candidates, key=lambda c: len(c[2]))  # first wins a tie
    chosen: list[str] = []
    for index in range(k + m):
        default = named[index] if index < len(named) else LOST_SITE
        options = pieces.get(index)
        if not options:
            chosen.append(default)
            continue
        chosen.append(min(options, key=lambda site: (site in chosen, site == default, site)))
    return Placed(tuple(chosen), pack, offset, len(pieces))


def bucket_of(
    version_id: bytes,
    found: FoundVersion,
    keys: Mapping[bytes, BucketKeys],
    order: list[bytes] | None = None,
) -> bytes | None:
    """The bucket of a version: the one its clear headers name or, where they name none
    (decision 0018), the one whose key opens its manifest (a tag check per bucket tried, in
    `order`, busiest first: siterecords.try_buckets); None if none does (a part file, whose
    manifest is its version's, or a bucket gone)."""
    if found.bucket_id != NO_BUCKET_ID:
        return found.bucket_id
    sealed = found.manifests.get(COMPLETION_SEQ, [])

    def opens(bucket: BucketKeys, bucket_id: bytes, data: list[bytes]) -> bytes | None:
        return bucket_id if open_manifest(bucket.keys, version_id, data) else None

    return try_buckets(order if order is not None else list(keys), keys, sealed, opens)


def adopt_parts(
    scan: Scan, found: FoundVersion, parts: Sequence[Part], adopted: set[bytes] | None = None
) -> FoundVersion:
    """`found` with the sightings of its part files named by ids of their own (decision
    0018), which the scan found apart (each under its id, as part 0), as the part attempts
    its parts list says they are; their ids are added to `adopted`."""
    extra: list[Sighting] = []
    for part in parts:
        named = scan.versions.get(part.pid) if part.pid else None
        if named is None:
            continue
        extra += [replace(s, header=replace(s.header, part=part.seq)) for s in named.sightings]
        if adopted is not None:
            adopted.add(part.pid)
    if not extra:
        return found
    return FoundVersion(found.bucket_id, [*found.sightings, *extra], found.manifests)


def version_from_manifest(
    version_id: bytes,
    found: FoundVersion,
    keys: BucketKeys,
    report: RebuildReport,
    scan: Scan | None = None,
    adopted: set[bytes] | None = None,
) -> tuple[ObjectVersion, bool] | None:
    """The version the sightings and manifest of `version_id` describe (with whether the
    manifest predates is_null), or None (reported) when it cannot be restored. With `scan`,
    the part files its completion record names by their own ids are adopted (adopt_parts)."""
    if COMPLETION_SEQ not in found.manifests:
        if found.manifests:
            report.uploads_without_record += 1
        return None
    manifest = open_manifest(keys.keys, version_id, found.manifests[COMPLETION_SEQ])
    if manifest is None or manifest.part_number is not None:
        report.problems.append(f"version {version_id.hex()}: no manifest opens")
        return None
    if scan is not None:
        found = adopt_parts(scan, found, manifest.parts, adopted)
    first = next(s for s in found.sightings if s.header.part == COMPLETION_SEQ)
    k, m, block_size = first.header.k, first.header.m, first.header.block_size
    parts = [(p.seq, p.stored_size) for p in manifest.parts] or [(0, manifest.stored_size)]
    placed = place(found, k, m, parts, manifest.sites)
    if placed.found < k:
        report.unrecoverable.append({
            "bucket": keys.bucket.name, "key": manifest.key, "version": version_id.hex(),
            "pieces_found": placed.found, "pieces_needed": k,
        })  # fmt: skip
        return None
    if placed.found < k + m:
        report.degraded += 1
    wrapped = rewrap_data_key(keys.keys, version_id, manifest.wrapped_data_key)
    if wrapped is None:
        report.problems.append(f"version {version_id.hex()}: its data key does not open")
        return None
    version = ObjectVersion(
        bucket_id=keys.bucket.id, key=manifest.key, version_id=version_id, size=manifest.size,
        etag=manifest.etag, last_modified=manifest.created, wrapped_data_key=wrapped, k=k, m=m,
        block_size=block_size, sites=placed.sites, headers=manifest.headers, pack=placed.pack,
        pack_offset=placed.pack_offset, parts=manifest.parts, is_null=bool(manifest.is_null),
        retention_mode=manifest.retention_mode, retain_until=manifest.retain_until,
        legal_hold=manifest.legal_hold, padded_size=manifest.padded_size,
    )  # fmt: skip
    return version, manifest.is_null is None


def amended(
    version: ObjectVersion, amendments: Mapping[bytes, Amendment], report: RebuildReport
) -> ObjectVersion:
    """`version` with the changes made after its write (its newest amendment record)."""
    amendment = amendments.get(version.version_id)
    if amendment is None:
        return version
    report.amended += 1
    return amendment.apply(version)


def rewrap_data_key(keys: Sequence[bytes], version_id: bytes, wrapped: bytes) -> bytes | None:
    """The data key wrapped under the current bucket key (the manifest's wrapping may be
    under an older generation); None if no generation opens it."""
    context = b"egide/data-key/" + version_id
    for generation, key in enumerate(keys):
        try:
            data_key = aead.unwrap(key, wrapped, context)
        except aead.DecryptionError:
            continue
        return wrapped if generation == 0 else aead.wrap(keys[0], data_key, context)
    return None


def order_versions(
    versions: list[tuple[ObjectVersion, bool]], report: RebuildReport
) -> list[ObjectVersion]:
    """A key's versions oldest first (by creation), keeping one null version: the newest.
    A manifest that predates is_null counts as null when it is its key's only version."""
    versions.sort(key=lambda pair: (pair[0].last_modified, pair[0].version_id))
    kept: list[ObjectVersion] = []
    seen_null = False
    for version, legacy in reversed(versions):
        is_null = len(versions) == 1 if legacy else version.is_null
        if is_null and seen_null:
            report.replaced_null += 1
            continue
        seen_null = seen_null or is_null
        kept.append(version if version.is_null == is_null else replace(version, is_null=is_null))
    kept.reverse()
    return kept


def inferred_settings(versions: Sequence[ObjectVersion]) -> dict[str, str]:
    """What a bucket's versions say of its settings: versioning was on if any version is not
    null (Enabled if the newest is not, else Suspended); Object Lock if any version was
    written under a lock (without a default retention: that is not in the shards)."""
    settings: dict[str, str] = {}
    if not versions:
        return settings
    newest = max(versions, key=lambda v: (v.last_modified, v.version_id))
    if any(not v.is_null for v in versions):
        settings[VERSIONING] = "Suspended" if newest.is_null else "Enabled"
    if any(v.retention_mode or v.legal_hold for v in versions):
        settings[OBJECT_LOCK] = LockConfiguration().dumps()
        settings[VERSIONING] = "Enabled"
    return settings


async def rebuild_catalog(
    sites: Mapping[str, Site],
    keyring: Keyring,
    into: Path,
    *,
    progress: Progress | None = None,
    allow_unreachable: bool = False,
) -> RebuildReport:
    """Rebuild the whole catalog from the sites into the new file `into` (which must not
    exist). RebuildError on a wrong master key, or a site that cannot be listed (unless
    `allow_unreachable`: its pieces then count as missing)."""
    started = time.monotonic()
    if into.exists():
        raise RebuildError(f"{into} exists: the rebuild writes a new file only")
    found_keys, replaced = newest_by_name(await bucket_keys(sites, keyring))
    scan = await scan_sites(sites, progress)
    report = RebuildReport(path=str(into), replaced_buckets=replaced)
    check_scan(scan, report, allow_unreachable)
    by_key: dict[tuple[bytes, str], list[tuple[ObjectVersion, bool]]] = {}
    adopted: set[bytes] = set()
    unplaced: list[bytes] = []
    order = list(found_keys)
    for version_id, found in scan.versions.items():
        bucket_id = bucket_of(version_id, found, found_keys, order)
        if bucket_id is None:
            unplaced.append(version_id)
            continue
        keys = found_keys.get(bucket_id)
        if keys is None:
            report.without_bucket += 1
            continue
        result = version_from_manifest(version_id, found, keys, report, scan, adopted)
        if result is not None:
            by_key.setdefault((bucket_id, result[0].key), []).append(result)
    # Files named by ids of their own that no completion record lists: part attempts of
    # uploads in progress (not restored, as before), or of a bucket gone.
    report.uploads_without_record += len([v for v in unplaced if v not in adopted])
    recorded = await read_recorded(sites, keyring, found_keys, report)
    for where, found_versions in by_key.items():
        by_key[where] = [
            (amended(v, recorded.amendments, report), old) for v, old in found_versions
        ]
    report.delete_markers = len(recorded.markers)
    for marker in recorded.markers:
        by_key.setdefault((marker.bucket_id, marker.key), []).append((marker, False))
    ordered = {where: order_versions(versions, report) for where, versions in by_key.items()}
    per_bucket: dict[bytes, list[ObjectVersion]] = {}
    for (bucket_id, _), versions in ordered.items():
        per_bucket.setdefault(bucket_id, []).extend(versions)
    settings = {b: inferred_settings(versions) for b, versions in per_bucket.items()}
    report.recorded_settings = len(recorded.settings)
    settings.update({bucket_id: values for bucket_id, (_, values) in recorded.settings.items()})
    retired = {bucket_id: k.retired for bucket_id, k in found_keys.items()}
    identities = recorded.credentials or Identities(None, (), (), ())
    report.credentials = len(identities.keys)
    catalog = open_catalog_file(into)  # a new, empty catalog of the current schema
    try:
        await catalog.fill(
            [k.bucket for k in found_keys.values()], ordered, settings, retired, identities
        )
    finally:
        await catalog.close_as_file()
    report.buckets = len(found_keys)
    report.objects = len(ordered)
    report.versions = sum(len(v) for v in ordered.values())
    report.bytes = sum(v.size for versions in ordered.values() for v in versions)
    report.seconds = time.monotonic() - started
    return report


def check_scan(scan: Scan, report: RebuildReport, allow_unreachable: bool) -> None:
    report.files, report.stored_bytes = scan.files, scan.bytes
    report.problems += scan.problems
    report.unreachable_sites = dict(scan.unreachable)
    if scan.unreachable and not allow_unreachable:
        named = "; ".join(f"{site}: {why}" for site, why in scan.unreachable.items())
        raise RebuildError(
            f"cannot list every site ({named}); bring it back, or accept that its pieces "
            "count as missing (--allow-unreachable)"
        )
