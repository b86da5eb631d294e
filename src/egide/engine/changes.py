"""Changes to what already exists: bucket settings, and a version's tags, retention and legal
hold. Each is one call that does everything the change needs — the catalog row, the record a
catalog rebuild applies (egide.engine.amendments; bucket settings are recorded by the servers'
housekeeping, egide.engine.settingsrecords) and the event — so that no front door (S3, admin
API, CLI, console) can do half of it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from egide.domain import Bucket, ObjectVersion
from egide.engine.amendments import record_amendment
from egide.engine.events import EventKind

if TYPE_CHECKING:
    from egide.engine.store import ObjectStore


async def bucket_setting(store: ObjectStore, bucket: Bucket, name: str) -> str | None:
    """One of a bucket's settings (a document such as its CORS rules), or None if unset."""
    return await store.bucket_settings.get(bucket, name)


async def put_bucket_setting(
    store: ObjectStore, bucket: Bucket, name: str, value: str | None
) -> None:
    """Set one of a bucket's settings, or remove it with None."""
    await store.bucket_settings.put(bucket, name, value)


async def _announce(store: ObjectStore, kind: EventKind, version: ObjectVersion) -> None:
    bucket = await store.buckets.by_id(version.bucket_id)
    store.events.announce(
        kind, bucket.name, key=version.key, version_id=version.version_id, size=version.size,
        etag=version.etag,
    )  # fmt: skip


async def set_version_headers(
    store: ObjectStore, version: ObjectVersion, headers: dict[str, str]
) -> bool:
    """Replace a committed version's headers (its tags change in place). False if a PUT or
    DELETE replaced the version after it was read: the change then took effect just before
    that replacement, and the replaced version's tags are gone with it."""
    if not await store.catalog.update_version_headers(version.version_id, headers):
        return False
    await record_amendment(store.vault, version.version_id)
    await _announce(store, EventKind.OBJECT_TAGS_CHANGED, version)
    return True


async def set_retention(
    store: ObjectStore,
    version: ObjectVersion,
    mode: str | None,
    until: float | None,
    *,
    bypass_governance: bool = False,
) -> None:
    """Change a version's Object Lock retention (None, None removes it); ObjectLocked when
    its current retention forbids the change."""
    await store.catalog.set_lock(
        version.bucket_id, version.key, version.version_id, retention=(mode, until),
        bypass_governance=bypass_governance,
    )  # fmt: skip
    await record_amendment(store.vault, version.version_id)
    await _announce(store, EventKind.OBJECT_LOCK_CHANGED, version)


async def set_legal_hold(store: ObjectStore, version: ObjectVersion, on: bool) -> None:
    await store.catalog.set_lock(version.bucket_id, version.key, version.version_id, legal_hold=on)
    await record_amendment(store.vault, version.version_id)
    await _announce(store, EventKind.OBJECT_LOCK_CHANGED, version)
