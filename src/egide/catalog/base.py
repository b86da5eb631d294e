"""The catalog interface: buckets, committed object versions, credentials, shards to delete.

A version is visible only once `commit_version` returns: that one transaction makes it current
and moves the shards of the version it replaces to the trash, which is emptied after a grace
period so that readers already streaming the old version finish first.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Protocol

from egide.catalog.backup import CatalogBackup
from egide.domain import Bucket, DomainError, Job, ObjectVersion, Part, Upload, WriteCondition


@dataclass(frozen=True)
class TrashedShard:
    id: int
    site: str
    shard: str


@dataclass(frozen=True)
class RecordedReport:
    """A report recorded by `egide policy check --report`: its file's SHA-256, and that of its
    content without timestamps, which says whether a later check found anything different."""

    kind: str
    scope: str
    created: float
    sha256: str
    content_sha256: str
    summary: str


@dataclass(frozen=True)
class ShredSummary:
    """What crypto-shredding a bucket destroyed in the catalog (`Catalog.shred_bucket`)."""

    versions: int
    delete_markers: int
    uploads: int
    settings: int
    #: Bucket key generations destroyed: the current key and the retired ones.
    bucket_keys: int
    #: Shard and pack files sent to the trash (deleted by the server's next trash pass).
    trashed_files: int
    #: The WAL was checkpointed and truncated: no copy of the freed rows is left in it.
    catalog_scrubbed: bool = False

    def counts(self) -> dict[str, int]:
        return {k: v for k, v in dataclasses.asdict(self).items() if k != "catalog_scrubbed"}


@dataclass(frozen=True)
class ShreddedBucket:
    """A bucket crypto-shredded, and the sites whose copy of its key record is still to
    delete (they were unreachable then)."""

    bucket_id: bytes
    name: str
    shredded: float
    summary: ShredSummary
    pending_sites: tuple[str, ...]


class Catalog(CatalogBackup, Protocol):
    async def create_bucket(self, bucket: Bucket) -> None:
        """Raises BucketExists."""

    async def get_bucket(self, name: str) -> Bucket | None: ...

    async def get_bucket_by_id(self, bucket_id: bytes) -> Bucket | None: ...

    async def list_buckets(self) -> list[Bucket]: ...

    async def delete_bucket(self, name: str) -> None:
        """Raises BucketNotFound or BucketNotEmpty."""

    async def get_object(self, bucket_id: bytes, key: str) -> ObjectVersion | None:
        """The key's newest version, which may be a delete marker."""

    async def get_version(
        self, bucket_id: bytes, key: str, version_id: bytes | None
    ) -> ObjectVersion | None:
        """One version of a key (None: its null version)."""

    async def commit_version(
        self, version: ObjectVersion, condition: WriteCondition | None = None
    ) -> None:
        """Make `version` the key's newest; a null version replaces the previous null one.
        Raises PreconditionFailed or KeyNotFound if `condition` does not hold, ObjectLocked."""

    async def delete_version(
        self,
        bucket_id: bytes,
        key: str,
        version_id: bytes | None,
        *,
        bypass_governance: bool = False,
        expected: bytes | None = None,
    ) -> ObjectVersion | None:
        """Remove one version for good; None if absent. Raises ObjectLocked."""

    async def list_versions(
        self, bucket_id: bytes, prefix: str, after: tuple[str, int] | None, limit: int
    ) -> list[tuple[ObjectVersion, bool]]:
        """(version, is latest), by key then newest first, after the (key, seq) position."""

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
        """Change a version's Object Lock retention or legal hold; raises ObjectLocked."""

    async def list_objects(
        self,
        bucket_id: bytes,
        prefix: str,
        after: str | None,
        limit: int,
        *,
        inclusive: bool = False,
    ) -> list[ObjectVersion]:
        """Current versions (not delete markers) whose key starts with `prefix` and sorts
        after `after` (or at it, with `inclusive`), in key order."""

    async def add_credential(self, access_key: str, sealed_secret: bytes) -> None: ...

    async def get_credential(self, access_key: str) -> bytes | None: ...

    async def count_credentials(self) -> int: ...

    async def commit_pack(
        self,
        name: str,
        sites: list[str],
        versions: list[ObjectVersion],
        conditions: list[WriteCondition | None] | None = None,
    ) -> list[DomainError | None]:
        """Record a pack and commit the versions in it in one transaction; one result per
        version (None, or the error that kept it from being committed)."""

    async def create_upload(self, upload: Upload) -> None: ...

    async def get_upload(self, upload_id: bytes) -> Upload | None: ...

    async def next_part_seq(self, upload_id: bytes) -> int:
        """A part attempt number never handed out before in this upload; raises NoSuchUpload."""

    async def commit_part(self, upload_id: bytes, part: Part, sites: tuple[str, ...]) -> None:
        """Record a part (replacing one of the same number); raises NoSuchUpload."""

    async def list_parts(
        self, upload_id: bytes, after: int = 0, limit: int = 10_000
    ) -> list[Part]: ...

    async def list_uploads(
        self, bucket_id: bytes, prefix: str, after: tuple[str, bytes] | None, limit: int
    ) -> list[Upload]: ...

    async def abort_upload(self, upload_id: bytes) -> None:
        """Raises NoSuchUpload."""

    async def complete_upload(
        self, version: ObjectVersion, condition: WriteCondition | None = None
    ) -> None:
        """Commit the upload as `version` (its parts as given); NoSuchUpload, InvalidPart."""

    async def uploads_before(self, created: float, limit: int) -> list[Upload]: ...

    async def get_bucket_setting(self, bucket_id: bytes, name: str) -> str | None: ...

    async def all_bucket_settings(self) -> dict[bytes, dict[str, str]]:
        """Every bucket's settings (bucket id → name → value); buckets without any are absent."""

    async def put_bucket_setting(self, bucket_id: bytes, name: str, value: str | None) -> None:
        """Set a per-bucket setting (a document such as CORS rules), or remove it with None."""

    async def swap_bucket_setting(
        self, bucket_id: bytes, name: str, expected: str | None, value: str
    ) -> bool:
        """Set a per-bucket setting only if it still holds `expected` (None: unset), in one
        transaction; whether it did (two servers racing: one wins)."""

    async def update_version_headers(self, version_id: bytes, headers: dict[str, str]) -> bool:
        """Replace the stored headers of a committed version (its tags change in place);
        False if the version is gone (replaced or deleted)."""

    async def record_report(self, report: RecordedReport) -> None: ...

    async def last_report(self, kind: str, scope: str) -> RecordedReport | None:
        """The newest report recorded of this kind and scope."""

    async def trash_due(self, before: float, limit: int) -> list[TrashedShard]: ...

    # -- keys: rotation and crypto-shredding (egide.engine.rekey, egide.engine.shred) --------

    async def sealed_credentials(self) -> list[tuple[str, bytes]]: ...

    async def reseal_credentials(self, changes: list[tuple[str, bytes, bytes]]) -> int:
        """(access key, old, new) sealed secrets, replaced where still the old; one transaction."""

    async def retired_bucket_keys(
        self, bucket_id: bytes | None = None
    ) -> list[tuple[bytes, int, bytes]]:
        """(bucket id, generation, master-wrapped key) of retired bucket keys, newest first."""

    async def rewrap_bucket_keys(
        self,
        current: list[tuple[bytes, bytes, bytes]],
        retired: list[tuple[bytes, int, bytes, bytes]],
    ) -> int:
        """Master-wrapped bucket keys replaced where still the old; one transaction."""

    async def bucket_key_rotation(self, bucket_id: bytes) -> bytes | None:
        """The position of the bucket key rotation under way (None: none)."""

    async def start_bucket_key_rotation(self, bucket_id: bytes, old: bytes, new: bytes) -> bool:
        """`new` becomes the bucket's key and `old` is retired, if `old` is still its key."""

    async def wrapped_data_keys(
        self, bucket_id: bytes, after: bytes, limit: int
    ) -> list[tuple[bytes, bytes]]:
        """(version or upload id, wrapped data key) of a bucket, in id order after `after`."""

    async def rewrap_data_keys(
        self, bucket_id: bytes, changes: list[tuple[bytes, bytes, bytes]], position: bytes | None
    ) -> int:
        """Wrapped data keys replaced where still the old, and the rotation's position saved."""

    async def finish_bucket_key_rotation(self, bucket_id: bytes) -> None: ...

    async def first_locked_version(self, bucket_id: bytes, now: float) -> ObjectVersion | None:
        """A version of the bucket under legal hold or retention, if any."""

    async def count_bucket(self, bucket_id: bytes) -> tuple[int, int, int]:
        """(versions holding data, their bytes, uploads in progress)."""

    async def shred_bucket(self, bucket_id: bytes, pending_sites: list[str]) -> ShredSummary:
        """Forget a bucket, its content and keys, leaving no copy of its key in the catalog;
        raises BucketNotFound, ObjectLocked."""

    async def shredded_buckets(self) -> list[ShreddedBucket]: ...

    async def forget_pending_sites(self, bucket_id: bytes, done: list[str]) -> None: ...

    # -- maintenance (egide.maintenance) ---------------------------------------------------

    async def get_version_by_id(self, version_id: bytes) -> ObjectVersion | None: ...

    async def versions_after(self, after: bytes | None, limit: int) -> list[ObjectVersion]:
        """Versions holding data, in version id order after `after` (a stable cursor)."""

    async def count_versions(self) -> int: ...

    async def move_shards(
        self,
        version: ObjectVersion,
        sites: tuple[str, ...],
        replaced: list[tuple[str, str]],
        written: list[tuple[str, str]],
    ) -> bool:
        """Point `version` at standalone shard files on `sites`, if it is unchanged; the
        `replaced` (else the `written`) files go to the trash."""

    async def site_references(self, site: str) -> dict[str, int]:
        """Counts of versions, uploads, packs and trashed files the catalog keeps on `site`."""

    async def versions_present(self, version_ids: list[bytes]) -> set[bytes]:
        """Which of these versions (delete markers included) the catalog holds."""

    async def delete_markers(self) -> list[tuple[bytes, bytes]]:
        """(bucket id, version id) of every delete marker: the records the sites should hold."""

    async def trash_on(self, site: str, limit: int) -> list[TrashedShard]: ...

    async def mark_damaged(self, version_id: bytes, reason: str) -> None: ...

    async def damaged(self, after: bytes | None, limit: int) -> list[tuple[bytes, str]]: ...

    async def forget_damaged(self, version_ids: list[bytes]) -> None: ...

    async def unreferenced(self, site: str, names: list[str]) -> list[str]: ...

    async def record_sightings(self, site: str, names: list[str]) -> None: ...

    async def sightings(self, site: str) -> dict[str, float]: ...

    async def forget_sightings(self, site: str, names: list[str]) -> None: ...

    async def create_job(self, kind: str, params: dict[str, object]) -> Job: ...

    async def create_job_once(self, kind: str, params: dict[str, object]) -> Job | None: ...

    async def get_job(self, job_id: int) -> Job | None: ...

    async def newest_job(self, kind: str) -> Job | None: ...

    async def list_jobs(
        self, states: tuple[str, ...] = (), limit: int = 100, *, kind: str | None = None
    ) -> list[Job]: ...

    async def claim_job(
        self, job_id: int | None, kinds: tuple[str, ...], owner: str, lease: float
    ) -> Job | None: ...

    async def save_job(
        self,
        job_id: int,
        owner: str,
        *,
        cursor: dict[str, object] | None,
        progress: dict[str, int],
        lease: float,
    ) -> str: ...

    async def set_job_state(
        self,
        job_id: int,
        state: str,
        *,
        only_from: tuple[str, ...],
        owner: str | None = None,
        error: str | None = None,
    ) -> Job | None: ...

    async def forget_trash(self, ids: list[int]) -> None: ...

    async def close(self) -> None: ...
