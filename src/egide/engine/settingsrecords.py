"""Bucket settings records: each bucket's settings, sealed under its key, on every site.

Versioning, Object Lock defaults, lifecycle rules, CORS, bucket tags and the placement policy
set on a bucket live in the catalog. Without a copy on the sites, a catalog rebuilt from them
could only guess (versioning from the versions found) — a bucket whose policy kept its shards
in France would then place new ones anywhere, a versioned bucket with no version yet would
overwrite. So the servers keep a record `bset-<random id>` of every bucket's settings on every
site that takes new data: each housekeeping round compares a digest of each bucket's settings
with the digest last recorded (kept as a setting of its own) and writes a new record, numbered
by the time in nanoseconds, where they differ. The bucket id and the number are sealed inside
and the catalog keeps the name of each bucket's current record (RECORD_NAME), so that names
say nothing a provider could count per bucket (decision 0018); records named
`bset-<bucket id>-<number>` by earlier versions are still read and collected. Settings changed
by any path (S3 calls, `egide policy set` without keys) are recorded within a round; a catalog
lost before that loses the change. A rebuild applies each bucket's newest record; a new record
removes the one it supersedes, and garbage collection those left over and those of buckets
gone, after its grace period.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Mapping, Sequence
from functools import partial

from egide.domain import (
    SETTINGS_PREFIX,
    SETTINGS_RECORD_SETTING,
    is_settings_record_name,
    new_id,
    parse_settings_record_name,
    settings_record_name,
)
from egide.engine.siterecords import (
    open_any,
    open_document,
    open_in_any,
    read_newest,
    remove_everywhere,
    seal_document,
    where_listed,
    write_or_wait,
)
from egide.engine.vault import Vault
from egide.sites.base import Site

#: The setting that holds the digest of the settings last recorded (never recorded itself).
RECORDED = "settings-recorded"
#: The setting that holds the name of the bucket's current settings record (never recorded).
RECORD_NAME = SETTINGS_RECORD_SETTING
_INTERNAL = (RECORDED, RECORD_NAME)
_CONTEXT = b"egide/bucket-settings/"


def _context(bucket_id: bytes, number: int) -> bytes:
    return _CONTEXT + bucket_id + str(number).encode()


def _named_context(bucket_id: bytes, record_id: str) -> bytes:
    return _CONTEXT + bucket_id + b"/" + record_id.encode()


def recorded(settings: Mapping[str, str]) -> dict[str, str]:
    """The settings a record holds: all but the bookkeeping of the records themselves."""
    return {name: value for name, value in settings.items() if name not in _INTERNAL}


def digest(settings: Mapping[str, str]) -> str:
    return hashlib.sha256(json.dumps(recorded(settings), sort_keys=True).encode()).hexdigest()


async def record_settings(vault: Vault) -> int:
    """Record the settings of every bucket whose settings changed since last recorded; how many
    were recorded. A bucket no site takes a record of is logged and left for the next round."""
    count = 0
    every = await vault.catalog.all_bucket_settings()
    for bucket in await vault.catalog.list_buckets():
        settings = every.get(bucket.id, {})
        now = digest(settings)
        if settings.get(RECORDED) == now and RECORD_NAME in settings:
            continue  # (a bucket recorded before decision 0018 is recorded again, once)
        number = time.time_ns()
        name = settings_record_name(new_id())
        document = {"number": number, "settings": recorded(settings)}
        context = _named_context(bucket.id, name)
        sealed = seal_document(vault.buckets.key(bucket), document, context)
        if not await write_or_wait(vault, name, sealed, f"settings record of {bucket.name}"):
            continue
        previous = settings.get(RECORD_NAME)
        if not await vault.catalog.swap_bucket_setting(bucket.id, RECORD_NAME, previous, name):
            await remove_everywhere(vault.sites, name)  # another server recorded them meanwhile
            continue
        await vault.catalog.put_bucket_setting(bucket.id, RECORDED, now)
        if previous is not None:  # superseded: one record a bucket at rest (else GC's)
            await remove_everywhere(vault.sites, previous)
        count += 1
    return count


def open_settings(
    keys: Sequence[bytes], bucket_id: bytes, number: int, sealed: bytes
) -> dict[str, str] | None:
    document = open_document(keys, sealed, _context(bucket_id, number))
    if document is None or not all(isinstance(v, str) for v in document.values()):
        return None
    return {str(name): str(value) for name, value in document.items()}


def open_named_settings(
    keys: Sequence[bytes], bucket_id: bytes, name: str, sealed: bytes
) -> tuple[bytes, int, dict[str, str]] | None:
    """(bucket id, number, settings) of a record of decision 0018 sealed under one of `keys`
    for `bucket_id`; None if it does not open so. Its settings name it as the bucket's
    current record (RECORD_NAME), so that a rebuilt catalog keeps it referenced."""
    document = open_document(keys, sealed, _named_context(bucket_id, name))
    try:
        number, values = int(document["number"]), document["settings"]  # type: ignore[index]
    except (KeyError, TypeError, ValueError):
        return None
    if not isinstance(values, dict) or not all(isinstance(v, str) for v in values.values()):
        return None
    return bucket_id, number, {**{str(n): str(v) for n, v in values.items()}, RECORD_NAME: name}


async def read_settings(
    sites: Mapping[str, Site], keys: Mapping[bytes, Sequence[bytes]]
) -> tuple[dict[bytes, tuple[int, dict[str, str]]], list[str]]:
    """The newest readable settings record of every bucket of `keys` (bucket id → (number,
    settings)); and the problems met. Records of decision 0018 name no bucket: each is opened
    by trying the buckets' keys (a few records a bucket at most, so a few tries each)."""

    def opener(name: str, number: int) -> Callable[[bytes], dict[str, str] | None] | None:
        parsed = parse_settings_record_name(name)
        if parsed is None or parsed[0] not in keys:
            return None
        return partial(open_settings, keys[parsed[0]], parsed[0], number)

    found, problems = await read_newest(sites, SETTINGS_PREFIX, parse_settings_record_name, opener)
    where = await where_listed(sites, SETTINGS_PREFIX)
    for name, holders in where.items():
        if not is_settings_record_name(name):
            continue

        def opens(
            generations: Sequence[bytes], bucket_id: bytes, data: bytes, name: str = name
        ) -> tuple[bytes, int, dict[str, str]] | None:
            return open_named_settings(generations, bucket_id, name, data)

        opened = await open_any(sites, name, holders, partial(open_in_any, keys, opens=opens))
        if opened is None:
            continue  # of a bucket gone (deleted or shredded), or unreadable: as before
        bucket_id, number, settings = opened
        if bucket_id not in found or number > found[bucket_id][0]:
            found[bucket_id] = (number, settings)
    return found, problems
