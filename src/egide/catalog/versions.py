"""Object versions: committing, reading, deleting, Object Lock and tags, and listing.

A version is visible only once `commit_version` returns: that one transaction makes it current
and moves the shards of the version it replaces to the trash, which is emptied after a grace
period so that readers already streaming the old version finish first.
"""

from __future__ import annotations

from typing import Protocol

from egide.domain import DomainError, ObjectVersion, WriteCondition


class VersionCatalog(Protocol):
    async def get_object(self, bucket_id: bytes, key: str) -> ObjectVersion | None:
        """The key's newest version, which may be a delete marker."""

    async def get_version(
        self, bucket_id: bytes, key: str, version_id: bytes | None
    ) -> ObjectVersion | None:
        """One version of a key (None: its null version)."""

    async def get_version_by_id(self, version_id: bytes) -> ObjectVersion | None: ...

    async def commit_version(
        self, version: ObjectVersion, condition: WriteCondition | None = None
    ) -> None:
        """Make `version` the key's newest; a null version replaces the previous null one.
        Raises PreconditionFailed or KeyNotFound if `condition` does not hold, ObjectLocked."""

    async def commit_pack(
        self,
        name: str,
        sites: list[str],
        versions: list[ObjectVersion],
        conditions: list[WriteCondition | None] | None = None,
    ) -> list[DomainError | None]:
        """Record a pack and commit the versions in it in one transaction; one result per
        version (None, or the error that kept it from being committed)."""

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

    async def update_version_headers(self, version_id: bytes, headers: dict[str, str]) -> bool:
        """Replace the stored headers of a committed version (its tags change in place);
        False if the version is gone (replaced or deleted)."""

    async def list_versions(
        self, bucket_id: bytes, prefix: str, after: tuple[str, int] | None, limit: int
    ) -> list[tuple[ObjectVersion, bool]]:
        """(version, is latest), by key then newest first, after the (key, seq) position."""

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
