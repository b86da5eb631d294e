"""Small records written on every site beside the shards: delete markers
(egide.engine.markers) and later changes to a version (egide.engine.amendments), which no
shard carries but a catalog rebuild needs.

Each is written on every site that takes new data (not retired by an evacuation, not down):
any one copy is enough for a rebuild, and garbage collection and evacuations copy them onto
sites that lack one (egide.maintenance.spread).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING

from egide.domain import SitesUnavailable
from egide.sites.base import ShardMissing, Site, write_file

if TYPE_CHECKING:
    from egide.engine.store import ObjectStore

log = logging.getLogger("egide.records")


async def writable_sites(store: ObjectStore) -> dict[str, Site]:
    """The sites a new record goes to: neither retired nor down."""
    skip = set(await store.placer.retired()) | set(store.health.unavailable())
    return {name: site for name, site in store.sites.items() if name not in skip}


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


async def remove_everywhere(sites: Mapping[str, Site], name: str) -> None:
    """Best effort (garbage collection removes what is left)."""
    for site_name, site in sites.items():
        try:
            await site.delete(name)
        except ShardMissing:
            pass
        except Exception as exc:  # best effort, logged
            log.warning("%s on %s not removed: %s", name, site_name, exc)
