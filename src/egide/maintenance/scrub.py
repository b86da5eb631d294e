"""Scrub: read every shard, check every block's CRC32C without the keys, repair what rotted.

A scrub with a `period` spreads one pass over that many seconds, so that a scheduled scrub
(`scrub_period_days`) reads the whole store once a period at an even, low rate; with
`repair` off it only reports and queues the damaged versions for `egide repair`.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator

from egide.domain import Job, ObjectVersion
from egide.inspection.scan import shard_files
from egide.maintenance.damage import inspect
from egide.maintenance.jobs import JobContext, Step, job_kind
from egide.maintenance.repair import Outcome, mend, scan


def _stored(version: ObjectVersion) -> int:
    return sum(shard.estimated_size for shard in shard_files(version))


@job_kind("scrub")
async def scrub_job(ctx: JobContext, job: Job) -> AsyncGenerator[Step, None]:
    """Params: period (seconds over which to spread the pass, 0: as fast as allowed),
    repair (default true: rebuild what is found at once)."""
    period = float(job.params.get("period") or 0)  # type: ignore[arg-type]
    repair = job.params.get("repair", True) is not False

    async def act(version: ObjectVersion) -> Outcome:
        if repair:
            outcome = await mend(ctx, version, deep=True)
        else:
            damage = await inspect(version, ctx.sites, deep=True)
            bad = damage.bad
            if bad:
                reason = damage.shortfall() or "; ".join(bad.values())
                await ctx.catalog.mark_damaged(version.version_id, reason)
            outcome = Outcome("damaged" if bad else "healthy", bad=bad)
        outcome.bytes += _stored(version)  # what the rate limit counts: bytes read
        return outcome

    async for step in scan(ctx, job, act, period=period):
        yield step
