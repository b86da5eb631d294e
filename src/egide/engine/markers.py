"""Delete marker records: every delete marker, sealed under its bucket key, on every site.

A delete marker has no data and so no shard: without a record of its own, a catalog rebuilt
from the sites would bring a deleted key back as current. So a marker is committed like a
version: first a small record `mark-<version id>` on every site that takes new data (any one
copy is enough for a rebuild; providers see a random id and a sealed blob, nothing that names or
groups a bucket: a rebuild finds the bucket by the key that opens it, decision 0018),
then the catalog row. A refused commit removes its records; a record whose marker is gone
(deleted by version id, replaced as the null version, expired by lifecycle, crash before the
commit) is removed by garbage collection, and evacuations and garbage collection copy records
onto the sites that lack one (egide.maintenance.spread).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from functools import partial

from egide.domain import (
    MARKER_RECORD_PREFIX,
    NO_BUCKET,
    Bucket,
    ObjectVersion,
    WriteCondition,
    marker_record_name,
    parse_marker_record_name,
)
from egide.engine.siterecords import (
    open_document,
    open_in_any,
    read_newest,
    remove_everywhere,
    seal_document,
    write_everywhere,
)
from egide.engine.vault import Vault
from egide.sites.base import Site

_CONTEXT = b"egide/delete-marker/"


def seal(bucket_key: bytes, marker: ObjectVersion) -> bytes:
    document = {"key": marker.key, "created": marker.last_modified, "is_null": marker.is_null}
    return seal_document(bucket_key, document, _CONTEXT + marker.bucket_id + marker.version_id)


def open_record(
    keys: Sequence[bytes], bucket_id: bytes, version_id: bytes, sealed: bytes
) -> ObjectVersion | None:
    """The marker a record holds, or None if none of the bucket's keys opens it."""
    document = open_document(keys, sealed, _CONTEXT + bucket_id + version_id)
    try:
        return None if document is None else marker_version(
            bucket_id, version_id, str(document["key"]), float(document["created"]),
            is_null=bool(document["is_null"]),
        )  # fmt: skip
    except (KeyError, TypeError, ValueError):
        return None


def marker_version(
    bucket_id: bytes, version_id: bytes, key: str, created: float, *, is_null: bool
) -> ObjectVersion:
    """The catalog's form of a delete marker: a version with no data, no sites."""
    return ObjectVersion(
        bucket_id=bucket_id, key=key, version_id=version_id, size=0, etag="",
        last_modified=created, wrapped_data_key=b"", k=0, m=0, block_size=0, sites=(),
        delete_marker=True, is_null=is_null,
    )  # fmt: skip


async def commit_marker(
    vault: Vault,
    bucket: Bucket,
    marker: ObjectVersion,
    condition: WriteCondition | None = None,
) -> None:
    """Record `marker` on the sites, then commit it; whatever the catalog raises (a failed
    condition, a locked null version), the records written are removed first."""
    name = marker_record_name(marker.version_id)
    data = seal(vault.buckets.key(bucket), marker)
    await write_everywhere(
        await vault.writable_sites(), name, data, f"delete marker record of {marker.key}"
    )
    try:
        await vault.catalog.commit_version(marker, condition)
    except Exception:
        await remove_everywhere(vault.sites, name)
        raise


def _marker_id(name: str) -> tuple[bytes, int] | None:
    """A marker record is its marker's only one (egide.engine.siterecords.Numbered)."""
    ids = parse_marker_record_name(name)
    return (ids[1], 0) if ids else None


def _open_unnamed(
    keys: Mapping[bytes, Sequence[bytes]], order: list[bytes], version_id: bytes, sealed: bytes
) -> ObjectVersion | None:
    """A record whose name has no bucket: the bucket whose key opens it is its bucket."""

    def opens(generations: Sequence[bytes], bucket_id: bytes, data: bytes) -> ObjectVersion | None:
        return open_record(generations, bucket_id, version_id, data)

    return open_in_any(keys, sealed, opens, order)


async def read_records(
    sites: Mapping[str, Site], keys: Mapping[bytes, Sequence[bytes]]
) -> tuple[list[ObjectVersion], list[str]]:
    """Every delete marker recorded on any site, for the buckets of `keys` (bucket id → its
    key generations); and the problems met (records no key opens). One copy of each is read."""

    order = list(keys)  # tried busiest first (siterecords.open_in_any)

    def opener(name: str, _: int) -> Callable[[bytes], ObjectVersion | None] | None:
        ids = parse_marker_record_name(name)
        if ids is not None and ids[0] == NO_BUCKET:
            return partial(_open_unnamed, keys, order, ids[1])
        if ids is None or ids[0] not in keys:
            return None  # of a bucket gone (deleted or shredded)
        return partial(open_record, keys[ids[0]], *ids)

    found, problems = await read_newest(sites, MARKER_RECORD_PREFIX, _marker_id, opener)
    return [marker for _, marker in found.values()], problems
