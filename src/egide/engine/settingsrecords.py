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
import time
from collections.abc import Callable, Mapping, Sequence
from functools import partial
from typing import TYPE_CHECKING

from egide.domain import (
    SETTINGS_PREFIX,
    parse_settings_record_name,
    settings_record_name,
)
from egide.engine.siterecords import open_document, read_newest, seal_document, write_or_wait
from egide.sites.base import Site

if TYPE_CHECKING:
    from egide.engine.store import ObjectStore

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
        name = settings_record_name(bucket.id, number)
        if not await write_or_wait(store, name, sealed, f"settings record of {bucket.name}"):
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

    def opener(name: str, number: int) -> Callable[[bytes], dict[str, str] | None] | None:
        parsed = parse_settings_record_name(name)
        if parsed is None or parsed[0] not in keys:
            return None
        return partial(open_settings, keys[parsed[0]], parsed[0], number)

    return await read_newest(sites, SETTINGS_PREFIX, parse_settings_record_name, opener)
