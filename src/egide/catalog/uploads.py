"""Multipart uploads in progress: their parts, completion into a version, abandonment."""

from __future__ import annotations

from typing import Protocol

from egide.domain import ObjectVersion, Part, Upload, WriteCondition


class UploadCatalog(Protocol):
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
    ) -> list[Upload]:
        """Uploads whose key starts with `prefix`, in (key, creation, id) order, after the
        (key, upload id) marker — which may name an upload aborted or completed since the
        previous page (at least for a day): the page starts right after where it stood."""

    async def abort_upload(self, upload_id: bytes) -> None:
        """Raises NoSuchUpload."""

    async def complete_upload(
        self, version: ObjectVersion, condition: WriteCondition | None = None
    ) -> None:
        """Commit the upload as `version` (its parts as given); NoSuchUpload, InvalidPart."""

    async def uploads_before(self, created: float, limit: int) -> list[Upload]: ...
