"""The catalog interface: buckets, committed object versions, credentials, shards to delete.

A version is visible only once `commit_version` returns: that one transaction makes it current
and moves the shards of the version it replaces to the trash, which is emptied after a grace
period so that readers already streaming the old version finish first.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from egide.domain import Bucket, DomainError, ObjectVersion, Part, Upload


@dataclass(frozen=True)
class TrashedShard:
    id: int
    site: str
    shard: str


class Catalog(Protocol):
    async def create_bucket(self, bucket: Bucket) -> None:
        """Raises BucketExists."""

    async def get_bucket(self, name: str) -> Bucket | None: ...

    async def get_bucket_by_id(self, bucket_id: bytes) -> Bucket | None: ...

    async def list_buckets(self) -> list[Bucket]: ...

    async def delete_bucket(self, name: str) -> None:
        """Raises BucketNotFound or BucketNotEmpty."""

    async def get_object(self, bucket_id: bytes, key: str) -> ObjectVersion | None: ...

    async def commit_version(self, version: ObjectVersion) -> None: ...

    async def delete_object(self, bucket_id: bytes, key: str) -> bool:
        """Remove the current version; False if there was none."""

    async def list_objects(
        self,
        bucket_id: bytes,
        prefix: str,
        after: str | None,
        limit: int,
        *,
        inclusive: bool = False,
    ) -> list[ObjectVersion]:
        """Current versions whose key starts with `prefix` and sorts after `after` (or at it,
        with `inclusive`), in key order."""

    async def add_credential(self, access_key: str, sealed_secret: bytes) -> None: ...

    async def get_credential(self, access_key: str) -> bytes | None: ...

    async def count_credentials(self) -> int: ...

    async def commit_pack(
        self, name: str, sites: list[str], versions: list[ObjectVersion]
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

    async def complete_upload(self, version: ObjectVersion) -> None:
        """Commit the upload as `version` (its parts as given); NoSuchUpload, InvalidPart."""

    async def uploads_before(self, created: float, limit: int) -> list[Upload]: ...

    async def get_bucket_setting(self, bucket_id: bytes, name: str) -> str | None: ...

    async def put_bucket_setting(self, bucket_id: bytes, name: str, value: str | None) -> None:
        """Set a per-bucket setting (a document such as CORS rules), or remove it with None."""

    async def update_version_headers(self, version_id: bytes, headers: dict[str, str]) -> bool:
        """Replace the stored headers of a committed version (its tags change in place);
        False if the version is gone (replaced or deleted)."""

    async def trash_due(self, before: float, limit: int) -> list[TrashedShard]: ...

    async def forget_trash(self, ids: list[int]) -> None: ...

    async def close(self) -> None: ...
