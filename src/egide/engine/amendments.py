"""Amendment records: what changed in a version after it was written, on every site.

A shard's manifest holds a version's state at write time. PutObjectTagging,
DeleteObjectTagging, PutObjectRetention and PutObjectLegalHold change it later, in the catalog
only — so a catalog rebuilt from the sites would give back the tags and locks of the write:
a legal hold placed afterwards would be lost, an extended COMPLIANCE retention shortened. So
after each such change the version's whole changeable state (tags, retention, legal hold), as
the catalog holds it then, is sealed under the bucket key into a record
`amend-<version id>-<number>` on every site that takes new data (no bucket id: decision 0018;
a rebuild finds the bucket by the key that opens it). The number is the
time in nanoseconds taken after the catalog was read: of two changes racing, the one that read
the later state has the larger number, and a rebuild applies the largest. Garbage collection
deletes the records a larger one supersedes and those of versions gone; evacuations and garbage
collection copy them onto sites that lack one (egide.maintenance.spread).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from functools import partial

from egide.domain import (
    ACL_HEADER,
    AMENDMENT_PREFIX,
    NO_BUCKET,
    TAGGING_HEADER,
    ObjectVersion,
    amendment_name,
    parse_amendment_name,
)
from egide.engine.siterecords import (
    open_document,
    open_in_any,
    read_newest,
    seal_document,
    write_everywhere,
)
from egide.engine.vault import Vault
from egide.sites.base import Site

_CONTEXT = b"egide/amendment/"


@dataclass(frozen=True)
class Amendment:
    """A version's changeable state as a record holds it; `number` orders the records."""

    number: int
    tags: str | None
    retention_mode: str | None
    retain_until: float | None
    legal_hold: bool
    #: The version's ACL (its ACL_HEADER; None: private), when the record carries one: records
    #: from before ACLs leave the version's as it was written.
    acl_known: bool = False
    acl: str | None = None

    def apply(self, version: ObjectVersion) -> ObjectVersion:
        headers = {k: v for k, v in version.headers.items() if k != TAGGING_HEADER}
        if self.tags:
            headers[TAGGING_HEADER] = self.tags
        if self.acl_known:
            headers.pop(ACL_HEADER, None)
            if self.acl:
                headers[ACL_HEADER] = self.acl
        return replace(
            version, headers=headers, retention_mode=self.retention_mode,
            retain_until=self.retain_until, legal_hold=self.legal_hold,
        )  # fmt: skip


def _context(bucket_id: bytes, version_id: bytes, number: int) -> bytes:
    return _CONTEXT + bucket_id + version_id + str(number).encode()


def seal(bucket_key: bytes, version: ObjectVersion, number: int) -> bytes:
    document = {
        "tags": version.headers.get(TAGGING_HEADER),
        "retention_mode": version.retention_mode,
        "retain_until": version.retain_until,
        "legal_hold": version.legal_hold,
        "acl": version.headers.get(ACL_HEADER),
    }
    return seal_document(
        bucket_key, document, _context(version.bucket_id, version.version_id, number)
    )


def open_amendment(
    keys: Sequence[bytes], bucket_id: bytes, version_id: bytes, number: int, sealed: bytes
) -> Amendment | None:
    """The state a record holds, or None if no key of the bucket opens it."""
    doc = open_document(keys, sealed, _context(bucket_id, version_id, number))
    try:
        until = None if doc is None else doc["retain_until"]
        return None if doc is None else Amendment(
            number, doc["tags"], doc["retention_mode"],
            None if until is None else float(until), bool(doc["legal_hold"]),
            "acl" in doc, doc.get("acl"),
        )  # fmt: skip
    except (KeyError, TypeError, ValueError):
        return None


async def record_amendment(vault: Vault, version_id: bytes) -> None:
    """Record the current changeable state of `version_id` (just changed in the catalog) on
    the sites; SitesUnavailable if no site took it (the change stands in the catalog: asking
    again records it). A version gone meanwhile needs no record."""
    version = await vault.catalog.get_version_by_id(version_id)
    if version is None:
        return
    number = time.time_ns()
    bucket = await vault.buckets.by_id(version.bucket_id)
    name = amendment_name(version_id, number)
    data = seal(vault.buckets.key(bucket), version, number)
    await write_everywhere(
        await vault.writable_sites(), name, data, f"amendment record of {version.key}"
    )


def amendment_number(name: str) -> tuple[bytes, int] | None:
    """(version id, number) of an amendment record's name (egide.engine.siterecords.Numbered)."""
    parsed = parse_amendment_name(name)
    return (parsed[1], parsed[2]) if parsed else None


def _open_unnamed(
    keys: Mapping[bytes, Sequence[bytes]],
    order: list[bytes],
    version_id: bytes,
    number: int,
    sealed: bytes,
) -> Amendment | None:
    """A record whose name has no bucket: the bucket whose key opens it is its bucket."""

    def opens(generations: Sequence[bytes], bucket_id: bytes, data: bytes) -> Amendment | None:
        return open_amendment(generations, bucket_id, version_id, number, data)

    return open_in_any(keys, sealed, opens, order)


async def read_amendments(
    sites: Mapping[str, Site], keys: Mapping[bytes, Sequence[bytes]]
) -> tuple[dict[bytes, Amendment], list[str]]:
    """The newest readable amendment of every version recorded on any site, for the buckets
    of `keys` (bucket id → its key generations); and the problems met."""

    order = list(keys)  # tried busiest first (siterecords.open_in_any)

    def opener(name: str, number: int) -> Callable[[bytes], Amendment | None] | None:
        parsed = parse_amendment_name(name)
        if parsed is not None and parsed[0] == NO_BUCKET:
            return partial(_open_unnamed, keys, order, parsed[1], number)
        if parsed is None or parsed[0] not in keys:
            return None
        return partial(open_amendment, keys[parsed[0]], parsed[0], parsed[1], number)

    found, problems = await read_newest(sites, AMENDMENT_PREFIX, amendment_number, opener)
    return {version_id: amendment for version_id, (_, amendment) in found.items()}, problems
