"""What maintenance walks and records: every version by a stable cursor, what a site holds,
shard moves (repair, evacuation, rebalancing), the repair queue and recorded proofs."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from egide.domain import ObjectVersion


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


class InventoryCatalog(Protocol):
    async def versions_after(self, after: bytes | None, limit: int) -> list[ObjectVersion]:
        """Versions holding data, in version id order after `after` (a stable cursor)."""

    async def count_versions(self) -> int: ...

    async def usage(self, bucket_id: bytes | None) -> tuple[int, int]:
        """(bytes, objects) a bucket holds, or every bucket with None: the sizes of its versions
        holding data (noncurrent ones included) and of the parts of its open uploads, and the
        number of those versions (what quotas count: egide.engine.quotas)."""

    async def versions_present(self, version_ids: list[bytes]) -> set[bytes]:
        """Which of these versions (delete markers included) the catalog holds."""

    async def delete_markers(self) -> list[tuple[bytes, bytes]]:
        """(bucket id, version id) of every delete marker: the records the sites should hold."""

    async def site_references(self, site: str) -> dict[str, int]:
        """Counts of versions, uploads, packs and trashed files the catalog keeps on `site`."""

    async def move_shards(
        self,
        version: ObjectVersion,
        sites: tuple[str, ...],
        replaced: list[tuple[str, str]],
        written: list[tuple[str, str]],
    ) -> bool:
        """Point `version` at standalone shard files on `sites`, if it is unchanged; the
        `replaced` (else the `written`) files go to the trash."""


class FindingsCatalog(Protocol):
    """What checks found: versions short of shards (the repair queue), and proof reports."""

    async def mark_damaged(self, version_id: bytes, reason: str) -> None: ...

    async def damaged(self, after: bytes | None, limit: int) -> list[tuple[bytes, str]]: ...

    async def forget_damaged(self, version_ids: list[bytes]) -> None: ...

    async def record_report(self, report: RecordedReport) -> None: ...

    async def last_report(self, kind: str, scope: str) -> RecordedReport | None:
        """The newest report recorded of this kind and scope."""
