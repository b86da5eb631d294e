"""The catalog interface: buckets, committed object versions, credentials, shards to delete.

A version is visible only once `commit_version` returns: that one transaction makes it current
and moves the shards of the version it replaces to the trash, which is emptied after a grace
period so that readers already streaming the old version finish first.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

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


class Catalog(Protocol):
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

    async def put_bucket_setting(self, bucket_id: bytes, name: str, value: str | None) -> None:
        """Set a per-bucket setting (a document such as CORS rules), or remove it with None."""

    async def update_version_headers(self, version_id: bytes, headers: dict[str, str]) -> bool:
        """Replace the stored headers of a committed version (its tags change in place);
        False if the version is gone (replaced or deleted)."""

    async def record_report(self, report: RecordedReport) -> None: ...

    async def last_report(self, kind: str, scope: str) -> RecordedReport | None:
        """The newest report recorded of this kind and scope."""

    async def trash_due(self, before: float, limit: int) -> list[TrashedShard]: ...

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

    async def mark_damaged(self, version_id: bytes, reason: str) -> None: ...

    async def damaged(self, after: bytes | None, limit: int) -> list[tuple[bytes, str]]: ...

    async def forget_damaged(self, version_ids: list[bytes]) -> None: ...

    async def unreferenced(self, site: str, names: list[str]) -> list[str]: ...

    async def record_sightings(self, site: str, names: list[str]) -> None: ...

    async def sightings(self, site: str) -> dict[str, float]: ...

    async def forget_sightings(self, site: str, names: list[str]) -> None: ...

    async def create_job(self, kind: str, params: dict[str, object]) -> Job: ...

    async def get_job(self, job_id: int) -> Job | None: ...

    async def list_jobs(self, states: tuple[str, ...] = (), limit: int = 100) -> list[Job]: ...

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
