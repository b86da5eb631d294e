"""Versioning and Object Lock state of a bucket, and listing every version of its keys.

A bucket's versioning state (never enabled, Enabled, Suspended) and Object Lock configuration
are bucket settings in the catalog. They decide how a new version is committed: a non-null
version beside the others (Enabled) or the key's null version, replacing the previous one;
and which retention it starts with. The catalog enforces locks when a version is removed.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import Any, Literal

from egide.catalog.base import Catalog
from egide.catalog.rules import prefix_end
from egide.domain import ObjectLockNotEnabled, ObjectVersion
from egide.engine.listing import GROWTH, common_prefix, first_size

VERSIONING = "versioning"
OBJECT_LOCK = "object-lock"
Status = Literal["Enabled", "Suspended"]
DAY = 86_400.0

#: Request headers of Object Lock (PutObject, CreateMultipartUpload, CopyObject). They travel
#: in a version's or upload's headers until the commit turns them into the version's lock.
LOCK_MODE = "x-amz-object-lock-mode"
LOCK_UNTIL = "x-amz-object-lock-retain-until-date"
LOCK_HOLD = "x-amz-object-lock-legal-hold"
LOCK_HEADERS = (LOCK_MODE, LOCK_UNTIL, LOCK_HOLD)


@dataclass(frozen=True)
class LockConfiguration:
    """A bucket's Object Lock: always enabled once set, with an optional default retention."""

    mode: str | None = None
    days: int | None = None
    years: int | None = None

    def default_until(self, now: float) -> float | None:
        if self.days is not None:
            return now + self.days * DAY
        if self.years is not None:
            return now + self.years * 365 * DAY
        return None

    def dumps(self) -> str:
        return json.dumps({"mode": self.mode, "days": self.days, "years": self.years})

    @classmethod
    def loads(cls, text: str) -> LockConfiguration:
        data: dict[str, Any] = json.loads(text)
        return cls(data.get("mode"), data.get("days"), data.get("years"))


async def versioning_status(catalog: Catalog, bucket_id: bytes) -> Status | None:
    value = await catalog.get_bucket_setting(bucket_id, VERSIONING)
    return value if value in ("Enabled", "Suspended") else None  # type: ignore[return-value]


async def lock_configuration(catalog: Catalog, bucket_id: bytes) -> LockConfiguration | None:
    value = await catalog.get_bucket_setting(bucket_id, OBJECT_LOCK)
    return LockConfiguration.loads(value) if value is not None else None


async def new_version_fields(
    catalog: Catalog, bucket_id: bytes, headers: dict[str, str]
) -> dict[str, Any]:
    """The versioning and lock fields of a version about to be committed, taking the lock
    request headers (already validated by the API layer) out of `headers`."""
    status = await versioning_status(catalog, bucket_id)
    fields: dict[str, Any] = {"is_null": status != "Enabled"}
    mode, until, hold = (headers.pop(name, None) for name in LOCK_HEADERS)
    lock = await lock_configuration(catalog, bucket_id)
    if lock is None:
        if mode is not None or hold is not None:
            raise ObjectLockNotEnabled("Bucket is missing Object Lock Configuration")
        return fields
    if mode is not None and until is not None:
        fields["retention_mode"], fields["retain_until"] = mode, float(until)
    elif lock.mode is not None:
        fields["retention_mode"] = lock.mode
        fields["retain_until"] = lock.default_until(time.time())
    fields["legal_hold"] = hold == "ON"
    return fields


@dataclass
class VersionListing:
    """One page of ListObjectVersions: (version, is latest) entries and common prefixes."""

    versions: list[tuple[ObjectVersion, bool]] = field(default_factory=list)
    prefixes: list[str] = field(default_factory=list)
    truncated: bool = False
    #: Where the next page resumes: the last key (or common prefix) and version returned.
    next_key: str | None = None
    next_version: ObjectVersion | None = None


_PAGE = 1000
#: A seq above every real one: "from the newest version of the key".
FROM_NEWEST = 2**62


async def list_versions(
    catalog: Catalog,
    bucket_id: bytes,
    *,
    prefix: str = "",
    delimiter: str = "",
    key_marker: str | None = None,
    after_seq: int = 0,
    max_keys: int = 1000,
) -> VersionListing:
    """Up to `max_keys` entries after the position (key_marker, after_seq): with after_seq 0,
    after every version of key_marker; else after its version of that seq."""
    result = VersionListing()
    if max_keys == 0:
        return result
    after: tuple[str, int] | None = (key_marker, after_seq) if key_marker is not None else None
    entries = 0
    size = first_size(delimiter)  # one probe after each skip, growing while rows are listed
    while True:
        want = min(size, _PAGE, max_keys - entries + 1)
        rows = await catalog.list_versions(bucket_id, prefix, after, want)
        for version, latest in rows:
            common = common_prefix(version.key, prefix, delimiter)
            if common is not None and key_marker is not None and common <= key_marker:
                after, size = _past(common), 1  # resuming inside a prefix already returned
                break
            if entries == max_keys:
                result.truncated = True
                return result
            entries += 1
            if common is not None:
                result.prefixes.append(common)
                result.next_key, result.next_version = common, None
                after, size = _past(common), 1
                break
            result.versions.append((version, latest))
            result.next_key, result.next_version = version.key, version
            after = (version.key, version.seq)
        else:
            if len(rows) < want:
                return result
            size *= GROWTH
        if after is None:
            return result


def _past(common: str) -> tuple[str, int] | None:
    """The position after every key under the common prefix (None: nothing sorts after)."""
    end = prefix_end(common)
    return None if end is None else (end, FROM_NEWEST)
