"""Small records written on every site beside the shards: delete markers
(egide.engine.markers), later changes to a version (egide.engine.amendments), bucket settings
(egide.engine.settingsrecords) and credentials (egide.engine.credentialrecords), which no
shard carries but a catalog rebuild needs (docs/decisions/0016-records-beside-the-shards.md).

Each is written on every site that takes new data (not retired by an evacuation, not down):
any one copy is enough for a rebuild, and garbage collection and evacuations copy them onto
sites that lack one (egide.maintenance.spread).
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

from egide.crypto import aead
from egide.domain import SitesUnavailable
from egide.engine.vault import Vault
from egide.sites.base import ShardMissing, Site, SiteError, write_file

log = logging.getLogger("egide.records")
T = TypeVar("T")
K = TypeVar("K")
S = TypeVar("S")
#: A numbered record's name → (the id of what it records, its number), or None for other names.
Numbered = Callable[[str], tuple[bytes, int] | None]


async def write_everywhere(sites: Mapping[str, Site], name: str, data: bytes, what: str) -> None:
    """Write file `name` on every one of `sites`; SitesUnavailable if none took it."""
    results = await asyncio.gather(
        *(write_file(site, name, data) for site in sites.values()), return_exceptions=True
    )
    failed = []
    for site_name, result in zip(sites, results, strict=True):
        if isinstance(result, Exception):
            log.warning("%s not written on %s: %s", what, site_name, result)
            failed.append(site_name)
        elif isinstance(result, BaseException):
            raise result
    if len(failed) == len(sites):
        raise SitesUnavailable(f"no site took the {what}", tuple(failed))


async def write_or_wait(vault: Vault, name: str, data: bytes, what: str) -> bool:
    """Write a record that the servers keep up to date (settings, credentials) on the
    writable sites; False, logged, if no site took it: the next round tries again."""
    try:
        await write_everywhere(await vault.writable_sites(), name, data, what)
    except SitesUnavailable as exc:
        log.warning("%s; trying again next round", exc)
        return False
    return True


async def remove_everywhere(sites: Mapping[str, Site], name: str) -> None:
    """Best effort (garbage collection removes what is left)."""
    for site_name, site in sites.items():
        try:
            await site.delete(name)
        except ShardMissing:
            pass
        except Exception as exc:  # best effort, logged
            log.warning("%s on %s not removed: %s", name, site_name, exc)


async def where_listed(
    sites: Mapping[str, Site], prefix: str, unreachable: dict[str, str] | None = None
) -> dict[str, list[str]]:
    """Each file named with `prefix` on any site, and the sites holding it. A site that
    cannot be listed is passed over, with a warning, and named in `unreachable` if given."""
    where: dict[str, list[str]] = {}
    for site_name, site in sites.items():
        try:
            names = [name async for name in site.list(prefix)]
        except SiteError as exc:
            log.warning("cannot list the %s records on %s: %s", prefix, site_name, exc)
            if unreachable is not None:
                unreachable[site_name] = str(exc)
            continue
        for name in names:
            where.setdefault(name, []).append(site_name)
    return where


async def open_any(
    sites: Mapping[str, Site], name: str, holders: list[str], opener: Callable[[bytes], T | None]
) -> T | None:
    """What `opener` makes of the first copy of `name` that reads and opens, or None."""
    for site_name in holders:
        try:
            sealed = await sites[site_name].read(name, 0, -1)
        except SiteError:
            continue
        opened = opener(sealed)
        if opened is not None:
            return opened
    return None


def seal_document(bucket_key: bytes, document: dict[str, Any], context: bytes) -> bytes:
    return aead.wrap(bucket_key, json.dumps(document).encode(), context)


def open_document(keys: Sequence[bytes], sealed: bytes, context: bytes) -> dict[str, Any] | None:
    """The JSON object sealed under one of `keys` (a bucket's key generations) for `context`,
    or None when none opens it or it is no JSON object."""
    for key in keys:
        try:
            document = json.loads(aead.unwrap(key, sealed, context))
        except aead.DecryptionError:
            continue
        except ValueError:
            return None
        return document if isinstance(document, dict) else None
    return None


def open_in_any(
    keys: Mapping[bytes, Sequence[bytes]],
    sealed: bytes,
    opens: Callable[..., T | None],
    order: list[bytes] | None = None,
) -> T | None:
    """What `opens(bucket key generations, bucket id, sealed)` makes of a record whose name
    does not say its bucket (decision 0018): each bucket of `keys` is tried in turn (an AEAD
    tag check each), the first that opens wins; None if none does. `order` (the ids of
    `keys`), if given, is the order tried, and the bucket that opens moves to its front:
    records are mostly of a few busy buckets, which are then tried first."""
    return try_buckets(order if order is not None else list(keys), keys, sealed, opens)


def try_buckets(
    order: list[bytes],
    keys: Mapping[bytes, K],
    sealed: S,
    opens: Callable[[K, bytes, S], T | None],
) -> T | None:
    """`opens(keys[id], id, sealed)` for each id of `order` until one is not None, which
    moves to the front of `order` (move-to-front: the busiest buckets are tried first)."""
    for position, bucket_id in enumerate(order):
        opened = opens(keys[bucket_id], bucket_id, sealed)
        if opened is not None:
            if position:
                order.insert(0, order.pop(position))
            return opened
    return None


def newest_of(names: Sequence[str], numbered: Numbered) -> dict[bytes, str]:
    """Of numbered record names, the newest for each id (id → name)."""
    newest: dict[bytes, tuple[int, str]] = {}
    for name in names:
        parsed = numbered(name)
        if parsed is not None and (parsed[0] not in newest or parsed[1] > newest[parsed[0]][0]):
            newest[parsed[0]] = (parsed[1], name)
    return {of: name for of, (_, name) in newest.items()}


def superseded_of(names: Sequence[str], numbered: Numbered) -> list[str]:
    """The numbered record names that a newer one of the same id makes useless."""
    keep = set(newest_of(names, numbered).values())
    return [name for name in names if numbered(name) is not None and name not in keep]


async def read_newest(
    sites: Mapping[str, Site],
    prefix: str,
    numbered: Numbered,
    opener: Callable[[str, int], Callable[[bytes], T | None] | None],
) -> tuple[dict[bytes, tuple[int, T]], list[str]]:
    """For each id, its newest record (among the names with `prefix`) that opens: id →
    (number, what it holds); and the problems met. `opener(name, number)` gives the function
    that opens that record, or None to pass the record over (of a bucket gone)."""
    where = await where_listed(sites, prefix)
    by_id: dict[bytes, list[tuple[int, str]]] = {}
    for name in where:
        parsed = numbered(name)
        if parsed is not None:
            by_id.setdefault(parsed[0], []).append((parsed[1], name))
    found: dict[bytes, tuple[int, T]] = {}
    problems: list[str] = []
    for of, named in by_id.items():
        for number, name in sorted(named, reverse=True):  # the newest that opens
            opens = opener(name, number)
            if opens is None:
                break
            value = await open_any(sites, name, where[name], opens)
            if value is not None:
                found[of] = (number, value)
                break
            problems.append(f"{name}: no copy opens under the keys at hand")
    return found, problems
