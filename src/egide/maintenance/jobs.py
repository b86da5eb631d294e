"""Jobs: resumable background work whose state lives in the catalog, behind the engine's job
queue (egide.engine.jobs), which announces every change of a job's state.

A job is a kind (repair, scrub …), parameters, and a cursor. Its code is an async generator of
`Step`s; after each step the runner saves the cursor and the counters in the catalog, renews its
lease, logs what the step did, and spends the step's bytes against the job's rate limit. A
runner that dies (crash, SIGKILL) leaves its job "running" under a lease: once the lease runs
out, or at once if the runner's process is known dead on this host, any runner takes it over
and the job's code starts again from the last saved cursor. Steps must be safe to repeat.
"""

from __future__ import annotations

import asyncio
import importlib
import logging
import os
import socket
from collections.abc import AsyncGenerator, Awaitable, Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from egide.catalog.base import Catalog
from egide.clock import SYSTEM_CLOCK, Clock
from egide.domain import Job
from egide.engine.jobs import OPEN_STATES as OPEN_STATES  # the queue's, used with the runner
from egide.engine.jobs import JobError as JobError
from egide.engine.jobs import JobQueue
from egide.sites.base import Site

if TYPE_CHECKING:
    from egide.engine.placing import Placer
    from egide.engine.store import ObjectStore

log = logging.getLogger("egide.jobs")

#: Seconds a runner holds a job without renewing; a runner renews every third of it.
DEFAULT_LEASE = 60.0
#: Jobs a server process runs side by side.
MAX_AT_ONCE = 3


@dataclass(frozen=True)
class Step:
    """What one step of a job did, and where the job stands after it."""

    cursor: dict[str, object] | None
    #: Counters to add to the job's progress: "items" (versions looked at), "bytes" (of object
    #: data moved or read) and any the job names ("rebuilt", "corrupt" …).
    counts: Mapping[str, int] = field(default_factory=dict)
    #: The job's total of items, when known (for progress bars).
    total: int | None = None
    #: A log line for this step's action, if it acted.
    note: str | None = None


@dataclass
class JobContext:
    """What jobs act on. `store` opens the object service (keys included) for the jobs that
    need plaintext, export and import; the others work on shards without the keys."""

    catalog: Catalog
    sites: Mapping[str, Site]
    #: Bucket policies and site profiles, for the jobs that choose where shards go.
    placer: Placer | None = None
    store: Callable[[], Awaitable[ObjectStore]] | None = None
    #: Default rate limit in bytes per second (0: none), when a job's params set none.
    rate: int = 0
    lease: float = DEFAULT_LEASE
    #: Extra knobs some jobs read (garbage collection's grace period …).
    options: dict[str, object] = field(default_factory=dict)
    #: Where the runner keeps its jobs' state: the store's queue in a server (its events reach
    #: the server's observers); by default a queue of its own over `catalog`.
    queue: JobQueue | None = None

    @property
    def jobs(self) -> JobQueue:
        if self.queue is None:
            self.queue = JobQueue(self.catalog)
        return self.queue


JobCode = Callable[[JobContext, Job], AsyncGenerator[Step, None]]
_KINDS: dict[str, JobCode] = {}
#: The modules that define the kinds of jobs any runner may take (imported on first use, so
#: that a server's runner knows them). Export and import are left out on purpose: they need
#: the other side's credentials, which only their command holds (never the catalog), so only
#: that command registers and runs them.
KIND_MODULES = (
    "egide.maintenance.repair",
    "egide.maintenance.scrub",
    "egide.maintenance.evacuate",
    "egide.maintenance.gc",
)


def kinds() -> dict[str, JobCode]:
    """Every kind of job, by name."""
    for module in KIND_MODULES:
        importlib.import_module(module)
    return _KINDS


def job_kind(name: str) -> Callable[[JobCode], JobCode]:
    """Register the code of a kind of job."""

    def register(code: JobCode) -> JobCode:
        _KINDS[name] = code
        return code

    return register


def job_dict(job: Job) -> dict[str, Any]:
    """A job as the CLI's --json and the admin API show it."""
    return {
        "id": job.id, "kind": job.kind, "state": job.state, "params": job.params,
        "progress": job.progress, "cursor": job.cursor, "created": job.created,
        "updated": job.updated, "owner": job.owner, "error": job.error,
    }  # fmt: skip


class Throttle:
    """A rate limit in bytes per second over a job's steps (a token bucket one second deep)."""

    def __init__(self, rate: int, clock: Clock = SYSTEM_CLOCK) -> None:
        self.rate = rate
        self._clock = clock
        self._start = clock.monotonic()
        self._spent = 0.0

    async def spend(self, count: int) -> None:
        if self.rate <= 0 or count <= 0:
            return
        now = self._clock.monotonic()
        # Idle time earns at most one second of credit: a burst after a pause stays short.
        self._spent = max(self._spent, (now - self._start - 1.0) * self.rate)
        self._spent += count
        ahead = self._spent / self.rate - (now - self._start)
        if ahead > 0:
            await self._clock.sleep(ahead)


def owner_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{os.urandom(3).hex()}"


def _dead_here(owner: str | None) -> bool:
    """Whether `owner` was a process of this host that no longer exists."""
    if owner is None:
        return False
    host, _, rest = owner.partition(":")
    pid_text = rest.partition(":")[0]
    if host != socket.gethostname() or not pid_text.isdigit():
        return False
    try:
        os.kill(int(pid_text), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


async def submit(queue: JobQueue, kind: str, params: dict[str, object]) -> Job:
    """Queue a job of a kind the runner knows (JobError names the kinds otherwise)."""
    known = kinds()
    if kind not in known:
        raise JobError(f"no kind of job named {kind!r}; kinds: {', '.join(sorted(known))}")
    return await queue.submit(kind, params)


class JobRunner:
    """Claims jobs from the catalog and runs them, one at a time, in this process."""

    def __init__(
        self, context: JobContext, owner: str | None = None, *, stop_state: str = "queued"
    ) -> None:
        self.context = context
        self.owner = owner or owner_name()
        #: What a job becomes when this process stops under it: queued (a server hands it to
        #: the next runner) or paused (an operator pressed Ctrl-C).
        self.stop_state = stop_state

    async def claim(self, job_id: int | None = None, only: tuple[str, ...] = ()) -> Job | None:
        """Take a job that is queued, or whose runner died; None when there is none."""
        queue = self.context.jobs
        if job_id is not None:
            job = await queue.find(job_id)
            if job is not None and job.state == "running" and _dead_here(job.owner):
                await queue.leave(job_id, "queued", job.owner)
        else:
            for job in await queue.listed(("running",)):
                if _dead_here(job.owner) and (not only or job.kind in only):
                    await queue.leave(job.id, "queued", job.owner)
        return await queue.claim(job_id, only or tuple(kinds()), self.owner, self.context.lease)

    async def run(
        self, job: Job, on_step: Callable[[Job], None] | None = None, *, rate: int | None = None
    ) -> Job:
        """Run a claimed job until it ends, is paused or cancelled; the job as it is then.
        Its rate limit: `rate` if given, else its params' "rate", else the context's."""
        queue, context = self.context.jobs, self.context
        code = kinds().get(job.kind)
        if code is None:
            return await self._end(job, "failed", f"no code for jobs of kind {job.kind!r}")
        if rate is None:
            given = job.params.get("rate")
            rate = int(given) if isinstance(given, int | float) else context.rate
        throttle = Throttle(rate)
        progress = dict(job.progress)
        cursor = job.cursor
        state = "running"
        log.info("job %d (%s) %s", job.id, job.kind,
                 "resumes" if cursor is not None else "starts")  # fmt: skip

        async def heartbeat() -> None:
            nonlocal state
            while state == "running":
                await asyncio.sleep(context.lease / 3)
                try:
                    state = await queue.save(
                        job.id, self.owner, cursor=cursor, progress=progress,
                        lease=context.lease,
                    )  # fmt: skip
                except Exception as exc:  # a busy catalog: the next beat tries again
                    log.warning("job %d (%s): lease not renewed: %s", job.id, job.kind, exc)

        beat = asyncio.ensure_future(heartbeat())
        steps = code(context, job)
        try:
            async for step in steps:
                cursor = step.cursor
                for name, count in step.counts.items():
                    progress[name] = progress.get(name, 0) + count
                if step.total is not None:
                    progress["total"] = step.total
                if step.note:
                    log.info("job %d (%s): %s", job.id, job.kind, step.note)
                saved = await queue.save(
                    job.id, self.owner, cursor=cursor, progress=progress, lease=context.lease
                )
                state = saved if state == "running" else state
                if on_step is not None:
                    on_step(_with(job, state, cursor, progress))
                if state != "running":
                    break
                await throttle.spend(step.counts.get("bytes", 0))
        except asyncio.CancelledError:
            # The process is stopping: hand the job back so the next runner starts at once.
            state = self.stop_state
            await queue.leave(job.id, state, self.owner)
            log.info("job %d (%s) %s: this process stops", job.id, job.kind, state)
            raise
        except Exception as exc:
            log.exception("job %d (%s) failed", job.id, job.kind)
            return await self._end(job, "failed", f"{type(exc).__name__}: {exc}")
        finally:
            state = state if state != "running" else "ending"
            beat.cancel()
            await asyncio.gather(beat, return_exceptions=True)
            await steps.aclose()
        if state != "ending":
            log.info("job %d (%s) stops: %s", job.id, job.kind, state)
            return await queue.find(job.id) or job
        return await self._end(job, "done", None)

    async def _end(self, job: Job, state: str, error: str | None) -> Job:
        ended = await self.context.jobs.leave(job.id, state, self.owner, error)
        assert ended is not None
        log.info("job %d (%s) %s%s", job.id, job.kind, ended.state,
                 f": {error}" if error else "")  # fmt: skip
        return ended

    async def run_forever(self, idle: float = 5.0, at_once: int = MAX_AT_ONCE) -> None:
        """The server's loop: run the runnable jobs, up to `at_once` side by side (a scrub
        spread over a month must not hold up a repair or an evacuation)."""
        running: set[asyncio.Task[Job]] = set()
        try:
            while True:
                try:
                    job = await self.claim() if len(running) < at_once else None
                except Exception:
                    log.exception("job runner failed; trying again")
                    job = None
                if job is not None:
                    task = asyncio.ensure_future(self.run(job))
                    running.add(task)
                    task.add_done_callback(running.discard)
                    continue
                await asyncio.sleep(idle)
        finally:
            for task in list(running):  # each hands its job back (see `run`)
                task.cancel()
            await asyncio.gather(*running, return_exceptions=True)


def _with(job: Job, state: str, cursor: dict[str, object] | None, progress: dict[str, int]) -> Job:
    return replace(job, state=state, cursor=cursor, progress=dict(progress))
