"""Garbage collection: delete files on the sites that no committed version needs.

Crashed writes, aborted uploads and interrupted repairs leave shard files the catalog never
referenced (or no longer does). A pass lists every site; an Égide file the catalog does not
reference is noted with the time it was first seen; one still unreferenced a grace period
later (default a day: longer than any write between its shards and its commit) is checked
once more and deleted. Files whose names are not Égide shard or pack names are never touched,
nor key records and snapshots.

Delete marker, amendment, settings and credentials records (egide.engine.markers,
.amendments, .settingsrecords, .credentialrecords) are Égide files too: one whose marker,
version or bucket is gone (removed, replaced, or never committed) goes the same way, and a
numbered record that a newer one of the same version, bucket or series supersedes goes at
once. Each pass first copies the records onto the sites that lack them (sites added since):
every site then holds what a catalog rebuild needs (egide.maintenance.spread).
"""

from __future__ import annotations

import re
import time
from collections.abc import AsyncGenerator

from egide.domain import Job, parse_credentials_record_name, parse_settings_record_name
from egide.engine.amendments import amendment_number
from egide.engine.placing import retired_sites
from egide.engine.siterecords import superseded_of
from egide.maintenance.jobs import JobContext, Step, job_kind
from egide.maintenance.spread import spread_records
from egide.sites.base import SiteError

DEFAULT_GRACE = 86_400.0
BATCH = 500
_OURS = re.compile(
    r"^(?:[0-9a-f]{32}-\d+-\d+|pack-[0-9a-f]{32}|mark-(?:[0-9a-f]{32}-)?[0-9a-f]{32}"
    r"|amend-(?:[0-9a-f]{32}-)?[0-9a-f]{32}-\d+|bset-[0-9a-f]{32}(?:-\d+)?|creds-\d+)$"
)


@job_kind("gc")
async def gc_job(ctx: JobContext, job: Job) -> AsyncGenerator[Step, None]:
    """Params: grace (seconds a file must stay unreferenced before it is deleted)."""
    grace = float(job.params.get("grace", ctx.options.get("gc_grace", DEFAULT_GRACE)))  # type: ignore[arg-type]
    names = sorted(ctx.sites)
    if not job.cursor:
        spread = await spread_records(ctx.catalog, ctx.sites, skip=await retired_sites(ctx.catalog))
        copied = sum(spread.copied.values())
        note = ", ".join(f"{n} to {site}" for site, n in spread.copied.items()) or "none missing"
        yield Step({"site": names[0]} if names else None, {"records_copied": copied},
                   note=f"records copied: {note}")  # fmt: skip
    start = names.index(str(job.cursor["site"])) if job.cursor else 0
    for site_name in names[start:]:
        site = ctx.sites[site_name]
        try:
            found = [name async for name in site.list() if _OURS.match(name)]
        except SiteError as exc:
            yield Step({"site": site_name}, {"sites_unreachable": 1}, note=f"{site_name}: {exc}")
            continue
        seen = await ctx.catalog.sightings(site_name)
        now = time.time()
        deleted = noted = 0
        # A newer amendment of the same version, settings of the same bucket, or credentials
        # record is there.
        old = {*superseded_of(found, amendment_number),
               *superseded_of(found, parse_settings_record_name),
               *superseded_of(found, parse_credentials_record_name)}  # fmt: skip
        for name in sorted(old):
            await site.delete(name)
            deleted += 1
        found = [name for name in found if name not in old]
        for first in range(0, len(found), BATCH):
            chunk = found[first : first + BATCH]
            orphans = set(await ctx.catalog.unreferenced(site_name, chunk))
            await ctx.catalog.record_sightings(site_name, [n for n in orphans if n not in seen])
            noted += len([n for n in orphans if n not in seen])
            due = [n for n in orphans if n in seen and seen[n] <= now - grace]
            # Asked again just before deleting: a commit may have referenced one meanwhile.
            for name in await ctx.catalog.unreferenced(site_name, due):
                await site.delete(name)  # missing files count as deleted
                deleted += 1
            await ctx.catalog.forget_sightings(
                site_name, [n for n in chunk if n in seen and (n not in orphans or n in due)]
            )
        listed = set(found)
        gone = [n for n in seen if n not in listed]
        await ctx.catalog.forget_sightings(site_name, gone)
        note = f"{site_name}: {len(found)} files, {noted} newly unreferenced, {deleted} deleted"
        yield Step({"site": site_name}, {"items": len(found), "deleted": deleted,
                                         "noted": noted}, note=note)  # fmt: skip
