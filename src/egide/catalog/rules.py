"""The catalog's rules, the same in every backend: pure functions over domain values.

A backend gathers the facts (the rows it holds) in its own language and asks these functions
what they mean: whether Object Lock lets a retention change or a version go, whether a write's
condition holds, which null version a write replaces, what a job's runner sees, whether a file
on a site is still referenced. None of them reads the time: the caller passes `now` (from its
clock).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from egide.domain import (
    NO_BUCKET,
    ObjectLocked,
    ObjectVersion,
    Part,
    WriteCondition,
    is_settings_record_name,
    parse_amendment_name,
    parse_credentials_record_name,
    parse_marker_record_name,
    parse_settings_record_name,
)


def prefix_end(prefix: str) -> str | None:
    """The smallest string greater than every string starting with `prefix` (None: no bound)."""
    while prefix:
        last = ord(prefix[-1])
        if last < 0x10FFFF:
            following = last + 1 if last + 1 != 0xD800 else 0xE000  # surrogates are no text
            return prefix[:-1] + chr(following)
        prefix = prefix[:-1]
    return None


# -- Object Lock ------------------------------------------------------------------------------


def check_retention_change(
    version: ObjectVersion,
    new: tuple[str | None, float | None],
    bypass_governance: bool,
    now: float,
) -> None:
    """Object Lock's rule: what a retention in force at `now` lets one change (a COMPLIANCE
    retention can only be extended; a GOVERNANCE one weakened only with the bypass)."""
    mode, until = version.retention_mode, version.retain_until
    if until is None or until <= now:
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


def check_delete(version: ObjectVersion, now: float, *, bypass_governance: bool = False) -> None:
    """Raise ObjectLocked while a legal hold or a retention keeps `version` from going."""
    if reason := version.locked(now, bypass_governance=bypass_governance):
        raise ObjectLocked(f"version {version.s3_version_id} of {version.key!r}: {reason}")


def still_expected(expected: bytes | None, current: bytes | None) -> bool:
    """Whether a delete decided on the key's current version `expected` (a lifecycle rule;
    None: no such decision) may go on, the key's current version being `current` now."""
    return expected is None or current == expected


# -- writes -------------------------------------------------------------------------------------


def check_write(
    version: ObjectVersion, condition: WriteCondition | None, current: ObjectVersion | None
) -> None:
    """A conditional write's rule (If-Match, If-None-Match, the version expected): raise
    PreconditionFailed or KeyNotFound unless it holds against the key's newest version."""
    if condition is not None:
        condition.check(version.key, current)


def replaced_null(
    version: ObjectVersion, previous_null: ObjectVersion | None, now: float
) -> ObjectVersion | None:
    """The version that writing `version` replaces for good: a null version replaces the
    key's previous null version (any other version is added); ObjectLocked if it is locked."""
    if not version.is_null or previous_null is None:
        return None
    if reason := previous_null.locked(now):
        raise ObjectLocked(f"the null version of {version.key!r} is locked: {reason}")
    return previous_null


# -- jobs -------------------------------------------------------------------------------------


def job_state_seen(runner: str, stored: tuple[str, str | None] | None) -> str:
    """What a runner saving its job sees, from the job's (state, owner) after the save (None:
    the job is gone): its state, or "taken" when another runner holds it now. Anything but
    "running" tells the runner to stop."""
    if stored is None:
        return "cancelled"
    state, owner = stored
    return state if owner == runner or state != "running" else "taken"


# -- files on sites: still referenced? --------------------------------------------------------
# What a file's name says it is decides which facts tell whether the catalog still needs it.
# A file in the trash is always referenced (it is deleted by the trash pass, not by GC); the
# backend checks that first, then asks `classify_file`.


@dataclass(frozen=True)
class PackFile:
    """A pack of small objects (`pack_kept`)."""

    name: str


@dataclass(frozen=True)
class CredentialsRecord:
    """The credentials record: always kept (a newer one supersedes it in place)."""


@dataclass(frozen=True)
class SettingsRecord:
    """A bucket's settings record (decision 0018): kept while it is a bucket's current one."""

    name: str


@dataclass(frozen=True)
class LegacySettingsRecord:
    """A settings record from before decision 0018 (`legacy_settings_kept`)."""

    bucket_id: bytes


@dataclass(frozen=True)
class VersionRecord:
    """A version's amendment or a delete marker's record (`record_kept`); the bucket id is
    NO_BUCKET in the names of decision 0018."""

    bucket_id: bytes
    version_id: bytes
    marker: bool


@dataclass(frozen=True)
class ShardFile:
    """`<id>-<seq>-<index>`: a piece of a version, of an upload's part attempt, or of a part
    file named by its own id (decision 0018; seq 0)."""

    owner_id: bytes
    seq: int
    index: int


SiteFile = (
    PackFile | CredentialsRecord | SettingsRecord | LegacySettingsRecord | VersionRecord | ShardFile
)


def classify_file(name: str) -> SiteFile | None:
    """What a file on a site is, by its name; None: not a file of Égide's that the catalog
    accounts for (garbage collection only looks at Égide's files)."""
    if name.startswith("pack-"):
        return PackFile(name)
    if parse_credentials_record_name(name):
        return CredentialsRecord()
    if is_settings_record_name(name):
        return SettingsRecord(name)
    if settings := parse_settings_record_name(name):
        return LegacySettingsRecord(settings[0])
    if amendment := parse_amendment_name(name):
        return VersionRecord(amendment[0], amendment[1], marker=False)
    if marker := parse_marker_record_name(name):
        return VersionRecord(marker[0], marker[1], marker=True)
    fields = name.split("-")
    if len(fields) != 3 or not all(fields):
        return None
    try:
        return ShardFile(bytes.fromhex(fields[0]), int(fields[1]), int(fields[2]))
    except ValueError:
        return None


def pack_kept(site: str, pack_sites: Sequence[str] | None) -> bool:
    """A pack file is kept on the sites of a pack the catalog still has (None: it has not)."""
    return pack_sites is not None and site in pack_sites


def legacy_settings_kept(bucket_exists: bool, has_current_record: bool) -> bool:
    """A settings record from before decision 0018 is kept until the bucket has a newer one."""
    return bucket_exists and not has_current_record


def record_kept(record: VersionRecord, stored: tuple[bytes, bool] | None) -> bool:
    """A version's record is kept while the version is: `stored` is the (bucket id, is a
    delete marker) of the version with its id (None: no such version)."""
    if stored is None:
        return False
    bucket_id, is_marker = stored
    if record.bucket_id != NO_BUCKET and record.bucket_id != bucket_id:
        return False
    return is_marker or not record.marker


def _on_site(site: str, sites: Sequence[str], index: int) -> bool:
    return 0 <= index < len(sites) and sites[index] == site


def shard_kept(
    site: str, file: ShardFile, sites: Sequence[str], parts: tuple[Part, ...], packed: bool
) -> bool:
    """A committed version (not an upload) with `file.owner_id` as its id, placed on `sites`:
    whether it still has this piece on `site`. A packed version has no files of its own; a
    completed multipart version keeps the attempts named by its seq (0: its completion
    record)."""
    if packed:
        return False
    seqs = {0, *(part.seq for part in parts if not part.pid)}
    return file.seq in seqs and _on_site(site, sites, file.index)


def part_file_kept(
    site: str, file: ShardFile, sites: Sequence[str], parts: tuple[Part, ...]
) -> bool:
    """A part file named by its own id (decision 0018), whose owner is a committed version on
    `sites` with these parts: whether the version still has this piece on `site`."""
    kept = any(part.pid == file.owner_id for part in parts)
    return kept and _on_site(site, sites, file.index)
