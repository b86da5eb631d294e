"""Records that belong on every site — bucket key records (egide.engine.keyrecords) and the
records of decision 0016 (egide.engine.siterecords) — copied onto the sites that lack them.

Such a record is written on the sites of the day: a site added later has none, and evacuating
the old sites (which deletes their copies) would leave nothing for a catalog rebuild to open.
So before an evacuation deletes the leaving site's copies, and in every garbage collection
pass, each record the catalog says should exist is copied byte for byte (no key needed: it is
sealed already) from a site that has it. Where copies differ (a master key rotation a site
missed), the content most sites hold wins. Only records the catalog knows are spread: a key
record a shred missed, or the record of a marker since removed, must not spread back. Records
named before decision 0018 (with their bucket id) are spread under the name they have.
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
    KEY_RECORD_PREFIX,
    MARKER_RECORD_PREFIX,
    SETTINGS_PREFIX,
    SETTINGS_RECORD_SETTING,
    legacy_marker_record_name,
    marker_record_name,
    parse_credentials_record_name,
    parse_settings_record_name,
)
from egide.engine.amendments import amendment_number
from egide.engine.keyrecords import record_name as key_record_name
from egide.engine.siterecords import newest_of, where_listed
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


async def spread_records(
    catalog: Catalog, sites: Mapping[str, Site], *, skip: Collection[str] = ()
) -> Spread:
    """Every bucket key record, delete marker record, newest amendment record of a version,
    newest settings record of a bucket the catalog knows, and the newest credentials record,
    onto every site of `sites` but `skip` that lacks it. Each prefix is listed once."""
    result = Spread()
    buckets = await catalog.list_buckets()
    where, targets = await _listing(sites, KEY_RECORD_PREFIX, skip, result)
    wanted = [key_record_name(bucket.id) for bucket in buckets]
    await _spread(sites, where, wanted, targets, result)
    where, targets = await _listing(sites, MARKER_RECORD_PREFIX, skip, result)
    wanted = [
        _as_listed(where, marker_record_name(ids[1]), legacy_marker_record_name(*ids))
        for ids in await catalog.delete_markers()
    ]
    await _spread(sites, where, wanted, targets, result)
    where, targets = await _listing(sites, AMENDMENT_PREFIX, skip, result)
    newest = newest_of(sorted(where), amendment_number)
    living = await catalog.versions_present(list(newest))
    wanted = [name for version_id, name in newest.items() if version_id in living]
    await _spread(sites, where, wanted, targets, result)
    where, targets = await _listing(sites, SETTINGS_PREFIX, skip, result)
    current = {
        bucket_id: named[SETTINGS_RECORD_SETTING]
        for bucket_id, named in (await catalog.all_bucket_settings()).items()
        if SETTINGS_RECORD_SETTING in named
    }
    known = {bucket.id for bucket in buckets}
    newest = newest_of(sorted(where), parse_settings_record_name)
    wanted = [
        current.get(bucket_id, name) for bucket_id, name in newest.items() if bucket_id in known
    ]
    wanted += [name for bucket_id, name in current.items() if bucket_id not in newest]
    await _spread(sites, where, wanted, targets, result)
    where, targets = await _listing(sites, CREDENTIALS_PREFIX, skip, result)
    wanted = list(newest_of(sorted(where), parse_credentials_record_name).values())
    await _spread(sites, where, wanted, targets, result)
    return result


def _as_listed(where: Mapping[str, list[str]], name: str, legacy: str) -> str:
    """A record's name as the sites hold it: its name of decision 0018, or the one it had
    before if only that is found."""
    return legacy if name not in where and legacy in where else name


async def _listing(
    sites: Mapping[str, Site], prefix: str, skip: Collection[str], result: Spread
) -> tuple[dict[str, list[str]], list[str]]:
    """What `prefix` names on the sites (name → the sites holding it), and the sites to copy
    onto: listed, and not in `skip`. Sites that could not be listed are noted in `result`."""
    unreachable: dict[str, str] = {}
    where = await where_listed(sites, prefix, unreachable)
    result.unreachable.update(unreachable)
    return where, [name for name in sites if name not in skip and name not in unreachable]


async def _spread(
    sites: Mapping[str, Site],
    where: Mapping[str, list[str]],
    names: Collection[str],
    targets: list[str],
    result: Spread,
) -> None:
    """Copy each of `names` onto every one of `targets` that lacks it; `where` is what the
    listing found (name → the sites holding it)."""
    for name in names:
        holders = where.get(name, [])
        held = [site for site in targets if site in holders]
        lacking = [site for site in targets if site not in holders]
        if lacking:
            written = await _copy(sites, name, holders, lacking)
            for site in written:
                result.copied[site] = result.copied.get(site, 0) + 1
            held += written
        if not held:
            result.missing.append(name)


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
