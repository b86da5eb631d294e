"""What is to be deleted: the trash of shard files, files seen unreferenced on sites (garbage
collection), and crypto-shredded buckets (egide.engine.shred)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Protocol

from egide.domain import ObjectVersion


@dataclass(frozen=True)
class TrashedShard:
    id: int
    site: str
    shard: str


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


class GarbageCatalog(Protocol):
    async def trash_due(self, before: float, limit: int) -> list[TrashedShard]: ...

    async def trash_on(self, site: str, limit: int) -> list[TrashedShard]: ...

    async def forget_trash(self, ids: list[int]) -> None: ...

    async def unreferenced(self, site: str, names: list[str]) -> list[str]: ...

    async def record_sightings(self, site: str, names: list[str]) -> None: ...

    async def sightings(self, site: str) -> dict[str, float]: ...

    async def forget_sightings(self, site: str, names: list[str]) -> None: ...


class ShreddingCatalog(Protocol):
    async def first_locked_version(self, bucket_id: bytes, now: float) -> ObjectVersion | None:
        """A version of the bucket under legal hold or retention, if any."""

    async def count_bucket(self, bucket_id: bytes) -> tuple[int, int, int]:
        """(versions holding data, their bytes, uploads in progress)."""

    async def shred_bucket(self, bucket_id: bytes, pending_sites: list[str]) -> ShredSummary:
        """Forget a bucket, its content and keys, leaving no copy of its key in the catalog;
        raises BucketNotFound, ObjectLocked."""

    async def shredded_buckets(self) -> list[ShreddedBucket]: ...

    async def forget_pending_sites(self, bucket_id: bytes, done: list[str]) -> None: ...
