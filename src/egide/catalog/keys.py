"""Keys the catalog holds sealed: S3 credentials, and bucket and data keys with their rotation
(egide.engine.rekey, docs/decisions/0013-key-rotation.md)."""

from __future__ import annotations

from typing import Protocol


class CredentialCatalog(Protocol):
    async def add_credential(self, access_key: str, sealed_secret: bytes) -> None: ...

    async def get_credential(self, access_key: str) -> bytes | None: ...

    async def count_credentials(self) -> int: ...

    async def sealed_credentials(self) -> list[tuple[str, bytes]]: ...

    async def reseal_credentials(self, changes: list[tuple[str, bytes, bytes]]) -> int:
        """(access key, old, new) sealed secrets, replaced where still the old; one transaction."""


class KeyRotationCatalog(Protocol):
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
