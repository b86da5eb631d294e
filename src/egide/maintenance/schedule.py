"""Maintenance in the server: run the jobs queued in the catalog, and queue the scheduled ones.

Every server process runs a JobRunner (the catalog's leases make sure each job has one runner)
and a scheduler that queues: a queue-only repair when reads have found damaged versions, a scrub
once per `scrub_period_days` spread over that period, and a garbage collection every
`gc_interval_hours`. Queuing is idempotent across processes: a kind with a job not yet ended
gets no second one.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable
from typing import TYPE_CHECKING

from egide.catalog.base import Catalog
from egide.clock import SYSTEM_CLOCK, Clock
from egide.config import MaintenanceConfig
from egide.engine.jobs import JobQueue
from egide.maintenance.jobs import JobContext, JobRunner

if TYPE_CHECKING:
    from egide.engine.store import ObjectStore

log = logging.getLogger("egide.schedule")

#: How often the scheduler looks at what is due.
TICK = 30.0
_OPEN = ("queued", "running", "paused")
#: Who queues the scheduled jobs, in their events.
SCHEDULER = "egide:schedule"


def store_context(store: ObjectStore, config: MaintenanceConfig) -> JobContext:
    """The context jobs run in, in a process that has an object store (server, commands)."""

    async def opened() -> ObjectStore:
        return store

    return JobContext(
        store.catalog, store.sites, placer=store.placer, store=opened,
        rate=config.rate_bytes_per_second, lease=config.lease_seconds,
        options={"gc_grace": config.gc_grace_hours * 3600}, queue=store.jobs,
    )  # fmt: skip


async def queue_if_due(
    catalog: Catalog, config: MaintenanceConfig, now: float, queue: JobQueue | None = None
) -> list[str]:
    """Queue the scheduled jobs that are due (in `queue`, by default one over `catalog`); the
    kinds queued. The catalog is read for the versions a read found damaged."""
    queued = []
    jobs = queue if queue is not None else JobQueue(catalog)

    async def last(kind: str) -> float | None:
        job = await jobs.newest(kind)
        return job.created if job is not None else None

    if await catalog.damaged(None, 1) and await _queue(jobs, "repair", {"queue_only": True}):
        queued.append("repair")
    period = config.scrub_period_days * 86_400
    started = await last("scrub")
    due = period and (started is None or started < now - period)
    if due and await _queue(jobs, "scrub", {"period": period}):
        queued.append("scrub")
    every = config.gc_interval_hours * 3600
    started = await last("gc")
    due = every and (started is None or started < now - every)
    if due and await _queue(jobs, "gc", {"grace": config.gc_grace_hours * 3600}):
        queued.append("gc")
    return queued


async def _queue(jobs: JobQueue, kind: str, params: dict[str, object]) -> bool:
    job = await jobs.submit_once(kind, params, by=SCHEDULER)
    if job is not None:
        log.info("queued job %d (%s) %s", job.id, kind, params)
    return job is not None


async def run_maintenance(
    context: JobContext, config: MaintenanceConfig, clock: Clock = SYSTEM_CLOCK
) -> None:
    """The server's maintenance loop: the runner and the scheduler, until cancelled."""
    runner = JobRunner(context)

    async def schedule() -> None:
        while True:
            try:
                await queue_if_due(context.catalog, config, clock.time(), context.jobs)
            except Exception:
                log.exception("scheduling maintenance failed")
            await asyncio.sleep(min(TICK, config.repair_queue_seconds))

    loops: list[Awaitable[None]] = [runner.run_forever(idle=min(5.0, TICK)), schedule()]
    await asyncio.gather(*loops)
