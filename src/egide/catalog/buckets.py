"""Buckets and their settings (versioning, CORS, lifecycle, tags, Object Lock, policy …)."""

from __future__ import annotations

from typing import Protocol

from egide.domain import Bucket


class BucketCatalog(Protocol):
    async def create_bucket(self, bucket: Bucket) -> None:
        """Raises BucketExists."""

    async def get_bucket(self, name: str) -> Bucket | None: ...

    async def get_bucket_by_id(self, bucket_id: bytes) -> Bucket | None: ...

    async def list_buckets(self) -> list[Bucket]: ...

    async def delete_bucket(self, name: str) -> None:
        """Raises BucketNotFound or BucketNotEmpty."""

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
