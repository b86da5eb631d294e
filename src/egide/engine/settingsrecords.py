"""Bucket settings records: each bucket's settings, sealed under its key, on every site.

Versioning, Object Lock defaults, lifecycle rules, CORS, bucket tags and the placement policy
set on a bucket live in the catalog. Without a copy on the sites, a catalog rebuilt from them
could only guess (versioning from the versions found) — a bucket whose policy kept its shards
in France would then place new ones anywhere, a versioned bucket with no version yet would
overwrite. So the servers keep a record `bset-<bucket id>-<number>` of every bucket's
settings on every site that takes new data: each housekeeping round compares a digest of each
bucket's settings with the digest last recorded (kept as a setting of its own) and writes a
new record, numbered by the time in nanoseconds, where they differ. Settings changed by any
path (S3 calls, `egide policy set` without keys) are recorded within a round; a catalog lost
before that loses the change. A rebuild applies each bucket's newest record; garbage collection
deletes the older ones at once and those of buckets gone after its grace period.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Mapping, Sequence
from functools import partial
from typing import TYPE_CHECKING

from egide.domain import (
    SETTINGS_PREFIX,
    SitesUnavailable,
    parse_settings_record_name,
    settings_record_name,
)
from egide.engine.siterecords import (
    open_any,
    open_document,
    seal_document,
    where_listed,
    writable_sites,
    write_everywhere,
)
from egide.sites.base import Site

if TYPE_CHECKING:
    from egide.engine.store import ObjectStore

log = logging.getLogger("egide.settings")

#: The setting that holds the digest of the settings last recorded (never recorded itself).
RECORDED = "settings-recorded"
_CONTEXT = b"egide/bucket-settings/"


def _context(bucket_id: bytes, number: int) -> bytes:
    return _CONTEXT + bucket_id + str(number).encode()


def digest(settings: Mapping[str, str]) -> str:
    named = {name: value for name, value in settings.items() if name != RECORDED}
    return hashlib.sha256(json.dumps(named, sort_keys=True).encode()).hexdigest()


async def record_settings(store: ObjectStore) -> int:
    """Record the settings of every bucket whose settings changed since last recorded; how many
    were recorded. A bucket no site takes a record of is logged and left for the next round."""
    recorded = 0
    every = await store.catalog.all_bucket_settings()
    for bucket in await store.catalog.list_buckets():
        settings = every.get(bucket.id, {})
        now = digest(settings)
        if settings.get(RECORDED) == now:
            continue
        number = time.time_ns()
        document = {name: value for name, value in settings.items() if name != RECORDED}
        sealed = seal_document(store.bucket_key(bucket), document, _context(bucket.id, number))
        try:
            await write_everywhere(
                await writable_sites(store), settings_record_name(bucket.id, number), sealed,
                f"settings record of bucket {bucket.name}",
            )  # fmt: skip
        except SitesUnavailable as exc:
            log.warning("%s; trying again next round", exc)
            continue
        await store.catalog.put_bucket_setting(bucket.id, RECORDED, now)
        recorded += 1
    return recorded


def open_settings(
    keys: Sequence[bytes], bucket_id: bytes, number: int, sealed: bytes
) -> dict[str, str] | None:
    document = open_document(keys, sealed, _context(bucket_id, number))
    if document is None or not all(isinstance(v, str) for v in document.values()):
        return None
    return {str(name): str(value) for name, value in document.items()}


async def read_settings(
    sites: Mapping[str, Site], keys: Mapping[bytes, Sequence[bytes]]
) -> tuple[dict[bytes, tuple[int, dict[str, str]]], list[str]]:
    """The newest readable settings record of every bucket of `keys` (bucket id → (number,
    settings)); and the problems met."""
    where = await where_listed(sites, SETTINGS_PREFIX)
    by_bucket: dict[bytes, list[tuple[int, str]]] = {}
    for name in where:
        parsed = parse_settings_record_name(name)
        if parsed is not None and parsed[0] in keys:
            by_bucket.setdefault(parsed[0], []).append((parsed[1], name))
    found: dict[bytes, tuple[int, dict[str, str]]] = {}
    problems: list[str] = []
    for bucket_id, named in by_bucket.items():
        for number, name in sorted(named, reverse=True):  # the newest that opens
            opener = partial(open_settings, keys[bucket_id], bucket_id, number)
            settings = await open_any(sites, name, where[name], opener)
            if settings is not None:
                found[bucket_id] = (number, settings)
                break
            problems.append(f"{name}: no copy opens under its bucket's keys")
    return found, problems
