"""What `egide export --all-versions` and `egide import --all-versions` share: a bucket's
versions key by key (a key's oldest first, delete markers included), where a resumed job
takes up a key, how many of a key's versions a destination already holds, and Object Lock
fields as the manifest keeps them (docs/export-import.md, "Versions").

A step is one version. The cursor says the last key reached and, while a key is under way, its
version done last (`Cursor.after_version`: the source's id). A version written just before a
SIGKILL, whose step was never saved, is recognised at the destination rather than written
again: the versions of the key that are there already, oldest first, end with the first
versions of the source's history (`done_prefix`).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Sequence
from datetime import datetime
from typing import Any, TypeVar

from egide.domain import ObjectVersion
from egide.engine.store import ObjectStore
from egide.engine.versioning import LOCK_HOLD, LOCK_MODE, LOCK_UNTIL
from egide.transfer.dirlayout import ManifestEntry
from egide.transfer.s3endpoint import LockFields
from egide.transfer.shared import iso8601

PAGE = 1000
S = TypeVar("S")
T = TypeVar("T")
#: A key's versions, oldest first, each with whether it is the key's latest.
History = list[tuple[ObjectVersion, bool]]


async def key_history(store: ObjectStore, bucket: str, key: str) -> History:
    """Every version of `key` in Égide (delete markers included), oldest first."""
    found: History = []
    key_marker: str | None = None
    version_marker: str | None = None
    while True:
        page = await store.list_versions(
            bucket, prefix=key, key_marker=key_marker, version_marker=version_marker,
            max_keys=PAGE,
        )  # fmt: skip
        found += [(version, latest) for version, latest in page.versions if version.key == key]
        past = page.versions and page.versions[-1][0].key != key
        if past or not page.truncated or page.next_version is None:
            return found[::-1]
        key_marker, version_marker = page.next_key, page.next_version.s3_version_id


async def key_histories(
    store: ObjectStore, bucket: str, after: str | None, after_version: str | None
) -> AsyncIterator[tuple[History, int]]:
    """Each key's whole history (oldest first) and the index of its first version still to
    do, in key order from the cursor (`after`, `after_version`) on."""
    if after is not None and after_version is not None:
        history = await key_history(store, bucket, after)
        yield history, resume_index([v.s3_version_id for v, _ in history], after_version)
    key_marker, version_marker = after, None
    group: History = []
    while True:
        page = await store.list_versions(
            bucket, key_marker=key_marker, version_marker=version_marker, max_keys=PAGE
        )
        for version, latest in page.versions:
            if group and group[0][0].key != version.key:
                yield group[::-1], 0
                group = []
            group.append((version, latest))
        if not page.truncated or page.next_key is None or page.next_version is None:
            break
        key_marker, version_marker = page.next_key, page.next_version.s3_version_id
    if group:
        yield group[::-1], 0


def resume_index(version_ids: Sequence[str], after_version: str) -> int:
    """Where a key's history resumes after the version done last. If that version is gone
    (removed from the source meanwhile), the key counts as done: what follows cannot be
    placed, and writing it again could duplicate versions."""
    try:
        return list(version_ids).index(after_version) + 1
    except ValueError:
        return len(version_ids)


def done_prefix(source: Sequence[S], there: Sequence[T], same: Callable[[S, T], bool]) -> int:
    """How many of the source's first versions the destination's last versions already are:
    the largest n with source[:n] matching there[-n:] one by one (0 if none). After a crash
    this finds the version whose write finished but whose step was not saved."""
    for n in range(min(len(source), len(there)), 0, -1):
        if all(same(a, b) for a, b in zip(source[:n], there[len(there) - n :], strict=True)):
            return n
    return 0


def version_fields(version: ObjectVersion, latest: bool) -> dict[str, Any]:
    """The manifest fields that say which version a line is."""
    return {
        "version_id": version.s3_version_id, "is_latest": latest,
        "delete_marker": version.delete_marker, "retention_mode": version.retention_mode,
        "retain_until": None if version.retain_until is None else iso8601(version.retain_until),
        "legal_hold": version.legal_hold,
    }  # fmt: skip


def marker_entry(version: ObjectVersion, latest: bool, **extra: Any) -> ManifestEntry:
    return ManifestEntry(
        key=version.key, size=0, etag="", md5="", sha256="",
        last_modified=iso8601(version.last_modified), **version_fields(version, latest), **extra,
    )  # fmt: skip


def entry_lock(item: ManifestEntry) -> LockFields:
    until = None
    if item.retain_until:
        try:
            until = datetime.fromisoformat(item.retain_until).timestamp()
        except ValueError:
            until = None
    return LockFields(item.retention_mode, until, item.legal_hold)


def version_lock(version: ObjectVersion) -> LockFields:
    return LockFields(version.retention_mode, version.retain_until, version.legal_hold)


def lock_headers(lock: LockFields) -> dict[str, str]:
    """The request headers that give a version being written into Égide its Object Lock
    (egide.engine.versioning.new_version_fields takes them)."""
    headers = {}
    if lock.mode and lock.until is not None:
        headers[LOCK_MODE], headers[LOCK_UNTIL] = lock.mode, repr(lock.until)
    if lock.hold:
        headers[LOCK_HOLD] = "ON"
    return headers


def lock_entry_fields(lock: LockFields) -> dict[str, Any]:
    return {
        "retention_mode": lock.mode, "legal_hold": lock.hold,
        "retain_until": None if lock.until is None else iso8601(lock.until),
    }  # fmt: skip
