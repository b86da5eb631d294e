"""The job queue: background jobs as the catalog keeps them, and every change of their state
announced (JOB_CHANGED).

Front doors (the admin API, the CLI) queue, list, pause, resume and cancel jobs here; the job
runner (egide.maintenance.jobs) claims, saves and ends them here. Which kinds of jobs exist
is the runner's business: this queue stores any kind it is given.
"""

from __future__ import annotations

import logging

from egide.catalog.base import Catalog
from egide.domain import Job
from egide.engine.events import EventBus, EventKind

log = logging.getLogger("egide.jobs")

#: The states of a job that has not ended (failed jobs can be resumed).
OPEN_STATES = ("queued", "running", "paused", "failed")
#: Who changes a job's state when no request does (the runner, in a server or a command).
RUNNER = "egide:jobs"


class JobError(Exception):
    """A job request that cannot be done (unknown job, wrong state); the message says why."""


class JobQueue:
    """Jobs in the catalog, each change of state announced on `events`."""

    def __init__(self, catalog: Catalog, events: EventBus | None = None) -> None:
        self._catalog = catalog
        #: A command's own queue gets a bus of its own (nobody listens in a command).
        self.events = events if events is not None else EventBus()

    def _announce(self, job: Job, by: str | None = None) -> None:
        self.events.announce(
            EventKind.JOB_CHANGED, "", by=by, job_id=job.id, job_kind=job.kind, detail=job.state
        )

    # -- what front doors ask ------------------------------------------------------------------

    async def submit(self, kind: str, params: dict[str, object]) -> Job:
        """Queue a job of `kind` (checked by the caller against the kinds the runner knows)."""
        job = await self._catalog.create_job(kind, params)
        self._announce(job)
        return job

    async def submit_once(
        self, kind: str, params: dict[str, object], *, by: str | None = None
    ) -> Job | None:
        """Queue a job of `kind` unless one is open already (None then)."""
        job = await self._catalog.create_job_once(kind, params)
        if job is not None:
            self._announce(job, by)
        return job

    async def find(self, job_id: int) -> Job | None:
        return await self._catalog.get_job(job_id)

    async def get(self, job_id: int) -> Job:
        """Job `job_id`; JobError if there is none."""
        job = await self._catalog.get_job(job_id)
        if job is None:
            raise JobError(f"no job {job_id}")
        return job

    async def newest(self, kind: str) -> Job | None:
        return await self._catalog.newest_job(kind)

    async def listed(
        self, states: tuple[str, ...] = OPEN_STATES, limit: int = 100, *, kind: str | None = None
    ) -> list[Job]:
        """The jobs in one of `states` (none given: every job)."""
        return await self._catalog.list_jobs(states, limit, kind=kind)

    async def pause(self, job_id: int) -> Job:
        return await self._change(job_id, "paused", ("queued", "running"))

    async def resume(self, job_id: int) -> Job:
        return await self._change(job_id, "queued", ("paused", "failed"))

    async def cancel(self, job_id: int) -> Job:
        return await self._change(job_id, "cancelled", ("queued", "running", "paused", "failed"))

    async def _change(self, job_id: int, state: str, only_from: tuple[str, ...]) -> Job:
        before = await self._catalog.get_job(job_id)
        if before is None:
            raise JobError(f"no job {job_id}")
        after = await self._catalog.set_job_state(job_id, state, only_from=only_from)
        assert after is not None
        if before.state not in only_from or after.state != state:
            raise JobError(f"job {job_id} is {after.state}: it cannot become {state}")
        log.info("job %d (%s): %s → %s", job_id, after.kind, before.state, state)
        self._announce(after)
        return after

    # -- what the runner does ------------------------------------------------------------------

    async def claim(
        self, job_id: int | None, kinds: tuple[str, ...], owner: str, lease: float
    ) -> Job | None:
        """Take job `job_id` (or any queued one of `kinds`) for `owner`; None if none is."""
        job = await self._catalog.claim_job(job_id, kinds, owner, lease)
        if job is not None:
            self._announce(job, RUNNER)
        return job

    async def save(
        self,
        job_id: int,
        owner: str,
        *,
        cursor: dict[str, object] | None,
        progress: dict[str, int],
        lease: float,
    ) -> str:
        """Save a running job's cursor and counters and renew its lease; the job's state (a
        pause or cancel from elsewhere shows here). Saving changes no state: nothing announced."""
        return await self._catalog.save_job(
            job_id, owner, cursor=cursor, progress=progress, lease=lease
        )

    async def leave(
        self, job_id: int, state: str, owner: str | None, error: str | None = None
    ) -> Job | None:
        """A job running under `owner` becomes `state` (handed back, done, failed); the job as
        it is then (unchanged if it was no longer running under `owner`)."""
        before = await self._catalog.get_job(job_id)
        after = await self._catalog.set_job_state(
            job_id, state, only_from=("running",), owner=owner, error=error
        )
        changed = before is not None and before.state == "running"
        if changed and after is not None and after.state == state:
            self._announce(after, RUNNER)
        return after
