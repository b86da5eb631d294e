"""Evacuate a site: move every piece off it, empty it, prove it; and rebalance after a policy
change. Both are repair's path (egide.maintenance.repair.mend) with sites to leave.

While an evacuation is queued, running, paused, failed (to be resumed) or done, new versions
avoid the site (the placer reads `retired_sites`); after it the site can be removed from the
configuration with `egide site remove`. The proof at the end: the catalog references nothing
on the site (no version, upload, pack or trashed file) and a listing of the site shows no
file left.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncGenerator
from dataclasses import replace

from egide.domain import SITE_RECORD_PREFIXES, Job, ObjectVersion
from egide.engine.placing import retired_sites
from egide.maintenance.jobs import JobContext, Step, job_kind
from egide.maintenance.repair import mend, scan
from egide.maintenance.spread import spread_records
from egide.sites.base import SiteError

log = logging.getLogger("egide.evacuate")

#: Passes over the catalog before giving up on pieces that keep arriving on the site
#: (multipart uploads placed there before the evacuation started, completing meanwhile).
MAX_PASSES = 3
#: Seconds to wait after a pass before looking again: longer than the servers take to see a
#: site retired (egide.engine.placing.RETIRED_CACHE_SECONDS) and to finish a small write.
SETTLE = 5.0


class EvacuationIncomplete(Exception):
    """The site still holds something the catalog needs; the message says what."""


@job_kind("evacuate")
async def evacuate_job(ctx: JobContext, job: Job) -> AsyncGenerator[Step, None]:
    """Params: site. Phases: move (every version with a piece there), sweep (delete the
    site's trashed and unreferenced files), proof."""
    site = str(job.params["site"])
    settle = float(ctx.options.get("evacuate_settle", SETTLE))  # type: ignore[arg-type]
    cursor = dict(job.cursor or {"phase": "move", "pass": 1})
    while cursor["phase"] != "done":
        passes = int(cursor.get("pass", 1))  # type: ignore[call-overload]
        if cursor["phase"] == "move":

            def there(version: ObjectVersion) -> bool:
                return site in version.sites

            act = lambda v: mend(ctx, v, leaving={site})  # noqa: E731
            async for step in scan(ctx, job, act, pick=there):
                yield Step({**cursor, **(step.cursor or {})}, step.counts, step.total, step.note)
            # Writes placed before every server saw the site retired may still commit.
            await asyncio.sleep(settle)
            left = await ctx.catalog.site_references(site)
            if left["versions"] and passes < MAX_PASSES:
                cursor, job = {"phase": "move", "pass": passes + 1}, _restart(job)
                yield Step(cursor, note=f"{left['versions']} versions still on {site}: again")
                continue
            _check_moved(site, left)
            cursor = {"phase": "sweep", "pass": passes}
            yield Step(cursor)
        if cursor["phase"] in ("sweep", "proof"):  # a resumed proof sweeps again first
            await _keep_records(ctx, site)
            removed = await _sweep(ctx, site)
            yield Step({"phase": "proof", "pass": passes}, {"deleted_files": removed},
                       note=f"{removed} files deleted on {site}")  # fmt: skip
        left = await ctx.catalog.site_references(site)
        if left["versions"] and passes < MAX_PASSES:  # a late write landed there
            cursor, job = {"phase": "move", "pass": passes + 1}, _restart(job)
            continue
        proof = await prove_empty(ctx, site)
        cursor = {"phase": "done", "proof": proof}
        yield Step(cursor, note=f"{site} is empty: {proof}")


def _check_moved(site: str, left: dict[str, int]) -> None:
    if left["uploads"]:
        raise EvacuationIncomplete(
            f"{left['uploads']} multipart uploads in progress have parts on {site}: "
            "complete or abort them, then resume this job"
        )
    if left["versions"]:
        raise EvacuationIncomplete(
            f"{left['versions']} versions keep pieces on {site} (no site the policy "
            "allows could take them; see the log): add a site or change the policy, "
            "then resume this job"
        )


def _restart(job: Job) -> Job:
    return replace(job, cursor=None, progress={**job.progress, "items": 0})


async def _keep_records(ctx: JobContext, site: str) -> None:
    """Before the site's copies are deleted: every record kept on every site (decision 0016)
    is on every site that stays (sites added later have none yet), or the evacuation stops."""
    skip = {site, *await retired_sites(ctx.catalog)}
    spread = await spread_records(ctx.catalog, ctx.sites, skip=skip)
    for name, count in spread.copied.items():
        log.info("copied %d records kept on every site to %s", count, name)
    if spread.missing:
        raise EvacuationIncomplete(
            f"{len(spread.missing)} records kept on every site (such as {spread.missing[0]}) "
            f"could be written on no site that stays (unreachable: "
            f"{spread.unreachable or 'none'}); a catalog rebuild needs them: bring a site "
            "back, then resume this job"
        )


async def _sweep(ctx: JobContext, site: str) -> int:
    """Delete the site's trashed files now (no grace: the site is leaving), then every file
    left on it that the catalog does not reference (snapshots, leftovers) and the records kept
    on every site (copies of them stay on the other sites). A site
    that cannot be reached (a dead provider) keeps its files: the catalog forgets them."""
    target = ctx.sites.get(site)
    removed = 0
    while batch := await ctx.catalog.trash_on(site, 500):
        for item in batch:
            if target is not None:
                try:
                    await target.delete(item.shard)  # missing files count as deleted
                except SiteError as exc:
                    log.warning("%s unreachable, %s left on it: %s", site, item.shard, exc)
            removed += 1
        await ctx.catalog.forget_trash([item.id for item in batch])
    if target is None:
        return removed
    try:
        names = [name async for name in target.list()]
        for start in range(0, len(names), 500):
            chunk = names[start : start + 500]
            # Records kept on every site: the others hold copies (spread above).
            records = [name for name in chunk if name.startswith(SITE_RECORD_PREFIXES)]
            unreferenced = await ctx.catalog.unreferenced(site, chunk)
            for name in dict.fromkeys([*records, *unreferenced]):
                await target.delete(name)  # missing files count as deleted
                removed += 1
    except SiteError as exc:
        log.warning("cannot empty %s (unreachable): %s", site, exc)
    return removed


async def prove_empty(ctx: JobContext, site: str) -> dict[str, object]:
    """The proof an evacuation ends with; EvacuationIncomplete if anything is left. A site
    that cannot be listed (gone for good) is proven empty on the catalog's side only, and the
    proof says so."""
    references = await ctx.catalog.site_references(site)
    target = ctx.sites.get(site)
    listed: list[str] | None = None
    if target is not None:
        try:
            listed = [name async for name in target.list()]
        except SiteError as exc:
            log.warning("cannot list %s to prove it empty: %s", site, exc)
    if any(references.values()) or listed:
        raise EvacuationIncomplete(
            f"{site} is not empty: catalog references {references}, files left {(listed or [])[:5]}"
        )
    return {"catalog_references": references,
            "files_listed": len(listed) if listed is not None else None,
            "site_reachable": listed is not None}  # fmt: skip


@job_kind("rebalance")
async def rebalance_job(ctx: JobContext, job: Job) -> AsyncGenerator[Step, None]:
    """Move pieces so every version obeys its bucket's current policy. Params: bucket
    (a bucket name: only its versions)."""
    only: bytes | None = None
    if job.params.get("bucket"):
        bucket = await ctx.catalog.get_bucket(str(job.params["bucket"]))
        if bucket is None:
            raise EvacuationIncomplete(f"no bucket {job.params['bucket']}")
        only = bucket.id

    def chosen(version: ObjectVersion) -> bool:
        return only is None or version.bucket_id == only

    async for step in scan(ctx, job, lambda v: mend(ctx, v, rebalance=True), pick=chosen):
        yield step
