"""Records that belong on every site — bucket key records (egide.engine.keyrecords), delete
marker records (egide.engine.markers) and amendment records (egide.engine.amendments) —
copied onto the sites that lack them.

Such a record is written on the sites of the day: a site added later has none, and evacuating
the old sites (which deletes their copies) would leave nothing for a catalog rebuild to open.
So before an evacuation deletes the leaving site's copies, and in every garbage collection
pass, each record the catalog says should exist is copied byte for byte (no key needed: it is
sealed already) from a site that has it. Where copies differ (a master key rotation a site
missed), the content most sites hold wins. Only records the catalog knows are spread: a key
record a shred missed, or the record of a marker since removed, must not spread back.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field

from egide.catalog.base import Catalog
from egide.domain import (
    AMENDMENT_PREFIX,
    CREDENTIALS_PREFIX,
    MARKER_RECORD_PREFIX,
    SETTINGS_PREFIX,
    marker_record_name,
    parse_credentials_record_name,
    parse_settings_record_name,
)
from egide.engine.amendments import amendment_number
from egide.engine.keyrecords import PREFIX as KEY_RECORD_PREFIX
from egide.engine.keyrecords import record_name as key_record_name
from egide.engine.siterecords import newest_of
from egide.sites.base import Site, SiteError, write_file

log = logging.getLogger("egide.spread")


@dataclass
class Spread:
    """What a spread did: records copied per site, the records on none of the target sites
    even now (no readable copy, or every copy failed), and the sites that could not be
    listed."""

    copied: dict[str, int] = field(default_factory=dict)
    missing: list[str] = field(default_factory=list)
    unreachable: dict[str, str] = field(default_factory=dict)

    def add(self, other: Spread) -> None:
        for site, count in other.copied.items():
            self.copied[site] = self.copied.get(site, 0) + count
        self.missing += other.missing
        self.unreachable.update(other.unreachable)


async def spread_records(
    catalog: Catalog, sites: Mapping[str, Site], *, skip: Collection[str] = ()
) -> Spread:
    """Every bucket key record, delete marker record, newest amendment record of a version,
    newest settings record of a bucket the catalog knows, and the newest credentials record,
    onto every site of `sites` but `skip` that lacks it."""
    buckets_now = await catalog.list_buckets()
    buckets = [key_record_name(bucket.id) for bucket in buckets_now]
    markers = [marker_record_name(*ids) for ids in await catalog.delete_markers()]
    result = await spread(sites, KEY_RECORD_PREFIX, buckets, skip=skip)
    result.add(await spread(sites, MARKER_RECORD_PREFIX, markers, skip=skip))
    newest = newest_of(await _listed(sites, AMENDMENT_PREFIX, result), amendment_number)
    present = await catalog.versions_present(list(newest))
    amendments = [name for version_id, name in newest.items() if version_id in present]
    result.add(await spread(sites, AMENDMENT_PREFIX, amendments, skip=skip))
    listed = await _listed(sites, SETTINGS_PREFIX, result)
    known = {bucket.id for bucket in buckets_now}
    settings = [
        name for bucket_id, name in newest_of(listed, parse_settings_record_name).items()
        if bucket_id in known
    ]  # fmt: skip
    result.add(await spread(sites, SETTINGS_PREFIX, settings, skip=skip))
    listed = await _listed(sites, CREDENTIALS_PREFIX, result)
    credentials = list(newest_of(listed, parse_credentials_record_name).values())
    result.add(await spread(sites, CREDENTIALS_PREFIX, credentials, skip=skip))
    return result


async def _listed(sites: Mapping[str, Site], prefix: str, result: Spread) -> list[str]:
    """Every name with `prefix` on any of `sites`, sorted; unreachable sites noted in `result`."""
    listed: set[str] = set()
    for site_name, site in sites.items():
        try:
            listed.update([name async for name in site.list(prefix)])
        except SiteError as exc:
            result.unreachable[site_name] = str(exc)
    return sorted(listed)


async def spread(
    sites: Mapping[str, Site], prefix: str, names: Collection[str], *, skip: Collection[str] = ()
) -> Spread:
    """Copy each file of `names` (all starting with `prefix`) onto every site but `skip`
    that lacks it."""
    result = Spread()
    present: dict[str, set[str]] = {}
    for site_name, listed in sites.items():
        try:
            present[site_name] = {name async for name in listed.list(prefix)}
        except SiteError as exc:
            result.unreachable[site_name] = str(exc)
    targets = [name for name in present if name not in skip]
    for name in names:
        held = [site for site in targets if name in present[site]]
        lacking = [site for site in targets if name not in present[site]]
        if lacking:
            holders = [site for site, found in present.items() if name in found]
            written = await _copy(sites, name, holders, lacking)
            for site in written:
                result.copied[site] = result.copied.get(site, 0) + 1
            held += written
        if not held:
            result.missing.append(name)
    return result


async def _copy(
    sites: Mapping[str, Site], name: str, holders: list[str], lacking: list[str]
) -> list[str]:
    """Copy `name` from the content most `holders` have onto `lacking`; the sites written."""
    copies: Counter[bytes] = Counter()
    for site in holders:
        try:
            copies[await sites[site].read(name, 0, -1)] += 1
        except SiteError as exc:
            log.warning("%s on %s unreadable: %s", name, site, exc)
    if not copies:
        return []
    data = copies.most_common(1)[0][0]
    written = []
    for site in lacking:
        try:
            await write_file(sites[site], name, data)
        except SiteError as exc:
            log.warning("%s not copied to %s: %s", name, site, exc)
            continue
        written.append(site)
    return written
