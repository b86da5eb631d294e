"""Amendment records: what changed in a version after it was written, on every site.

A shard's manifest holds a version's state at write time. PutObjectTagging,
DeleteObjectTagging, PutObjectRetention and PutObjectLegalHold change it later, in the catalog
only — so a catalog rebuilt from the sites would give back the tags and locks of the write:
a legal hold placed afterwards would be lost, an extended COMPLIANCE retention shortened. So
after each such change the version's whole changeable state (tags, retention, legal hold), as
the catalog holds it then, is sealed under the bucket key into a record
`amend-<bucket id>-<version id>-<number>` on every site that takes new data. The number is the
time in nanoseconds taken after the catalog was read: of two changes racing, the one that read
the later state has the larger number, and a rebuild applies the largest. Garbage collection
deletes the records a larger one supersedes and those of versions gone; evacuations and garbage
collection copy them onto sites that lack one (egide.maintenance.spread).
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from egide.crypto import aead
from egide.domain import (
    AMENDMENT_PREFIX,
    TAGGING_HEADER,
    ObjectVersion,
    amendment_name,
    parse_amendment_name,
)
from egide.engine.siterecords import writable_sites, write_everywhere
from egide.sites.base import Site, SiteError

if TYPE_CHECKING:
    from egide.engine.store import ObjectStore

log = logging.getLogger("egide.amendments")

_CONTEXT = b"egide/amendment/"


@dataclass(frozen=True)
class Amendment:
    """A version's changeable state as a record holds it; `number` orders the records."""

    number: int
    tags: str | None
    retention_mode: str | None
    retain_until: float | None
    legal_hold: bool

    def apply(self, version: ObjectVersion) -> ObjectVersion:
        headers = {k: v for k, v in version.headers.items() if k != TAGGING_HEADER}
        if self.tags:
            headers[TAGGING_HEADER] = self.tags
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
    }
    context = _context(version.bucket_id, version.version_id, number)
    return aead.wrap(bucket_key, json.dumps(document).encode(), context)


def open_amendment(
    keys: Sequence[bytes], bucket_id: bytes, version_id: bytes, number: int, sealed: bytes
) -> Amendment | None:
    """The state a record holds, or None if no key of the bucket opens it."""
    for key in keys:
        try:
            doc = json.loads(aead.unwrap(key, sealed, _context(bucket_id, version_id, number)))
            until = doc["retain_until"]
            return Amendment(
                number, doc["tags"], doc["retention_mode"],
                None if until is None else float(until), bool(doc["legal_hold"]),
            )  # fmt: skip
        except aead.DecryptionError:
            continue
        except (KeyError, TypeError, ValueError):
            return None
    return None


async def record_amendment(store: ObjectStore, version_id: bytes) -> None:
    """Record the current changeable state of `version_id` (just changed in the catalog) on
    the sites; SitesUnavailable if no site took it (the change stands in the catalog: asking
    again records it). A version gone meanwhile needs no record."""
    version = await store.catalog.get_version_by_id(version_id)
    if version is None:
        return
    number = time.time_ns()
    bucket = await store._bucket_by_id(version.bucket_id)
    name = amendment_name(version.bucket_id, version_id, number)
    data = seal(store.bucket_key(bucket), version, number)
    await write_everywhere(
        await writable_sites(store), name, data, f"amendment record of {version.key}"
    )


def newest_names(names: Sequence[str]) -> dict[bytes, str]:
    """Of amendment record names, the newest per version (version id → name)."""
    newest: dict[bytes, tuple[int, str]] = {}
    for name in names:
        parsed = parse_amendment_name(name)
        if parsed is not None:
            _, version_id, number = parsed
            if version_id not in newest or number > newest[version_id][0]:
                newest[version_id] = (number, name)
    return {version_id: name for version_id, (_, name) in newest.items()}


def superseded(names: Sequence[str]) -> list[str]:
    """The amendment record names a newer one of the same version makes useless."""
    keep = set(newest_names(names).values())
    return [name for name in names if parse_amendment_name(name) and name not in keep]


async def read_amendments(
    sites: Mapping[str, Site], keys: Mapping[bytes, Sequence[bytes]]
) -> tuple[dict[bytes, Amendment], list[str]]:
    """The newest readable amendment of every version recorded on any site, for the buckets
    of `keys` (bucket id → its key generations); and the problems met."""
    where: dict[str, list[str]] = {}
    for site_name, site in sites.items():
        try:
            async for name in site.list(AMENDMENT_PREFIX):
                where.setdefault(name, []).append(site_name)
        except SiteError as exc:
            log.warning("cannot list amendment records on %s: %s", site_name, exc)
    by_version: dict[bytes, list[tuple[int, str]]] = {}
    for name in where:
        parsed = parse_amendment_name(name)
        if parsed is not None and parsed[0] in keys:
            by_version.setdefault(parsed[1], []).append((parsed[2], name))
    found: dict[bytes, Amendment] = {}
    problems: list[str] = []
    for version_id, named in by_version.items():
        for number, name in sorted(named, reverse=True):  # the newest that opens
            bucket_id = bytes.fromhex(name.split("-")[1])
            amendment = None
            for site_name in where[name]:
                try:
                    sealed = await sites[site_name].read(name, 0, -1)
                except SiteError:
                    continue
                amendment = open_amendment(keys[bucket_id], bucket_id, version_id, number, sealed)
                if amendment is not None:
                    break
            if amendment is not None:
                found[version_id] = amendment
                break
            problems.append(f"{name}: no copy opens under its bucket's keys")
    return found, problems
