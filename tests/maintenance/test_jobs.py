"""The job runner: state in the catalog, pause/resume/cancel, crash takeover, rate limit."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import AsyncGenerator
from pathlib import Path
from typing import Any

import pytest
from tests.clocks import ManualClock
from tests.engine.helpers import make_env
from tests.maintenance.helpers import context

from egide.domain import Job
from egide.maintenance.jobs import (
    JobContext,
    JobError,
    JobRunner,
    Step,
    Throttle,
    job_kind,
    submit,
)

#: What the counting job saw, per job id: the numbers it processed (a repeat shows twice).
SEEN: dict[int, list[int]] = {}


@pytest.fixture(autouse=True)
def _forget_seen() -> None:
    SEEN.clear()  # job ids start at 1 in every test's catalog


@job_kind("test-count")
async def count_job(ctx: JobContext, job: Job) -> AsyncGenerator[Step, None]:
    """Counts to params["to"], one number a step, sleeping params["sleep"] between."""
    start = int(job.cursor["next"]) if job.cursor else 0  # type: ignore[call-overload]
    for n in range(start, int(job.params["to"])):  # type: ignore[call-overload]
        SEEN.setdefault(job.id, []).append(n)
        await asyncio.sleep(float(job.params.get("sleep", 0)))  # type: ignore[arg-type]
        yield Step({"next": n + 1}, {"items": 1, "bytes": int(job.params.get("bytes", 0))},  # type: ignore[call-overload]
                   total=int(job.params["to"]))  # type: ignore[call-overload]  # fmt: skip


def test_a_job_runs_to_the_end_and_keeps_its_progress(tmp_path: Path) -> None:
    env = make_env(tmp_path)

    async def scenario() -> None:
        job = await submit(env.store.jobs, "test-count", {"to": 5})
        runner = JobRunner(context(env))
        claimed = await runner.claim(job.id)
        assert claimed is not None and claimed.state == "running"
        done = await runner.run(claimed)
        assert done.state == "done"
        assert done.progress == {"items": 5, "bytes": 0, "total": 5}
        assert SEEN[job.id] == [0, 1, 2, 3, 4]
        assert await runner.claim(job.id) is None  # a finished job is not run again

    env.run(scenario)


def test_pause_resume_and_cancel(tmp_path: Path) -> None:
    env = make_env(tmp_path)

    async def scenario() -> None:
        job = await submit(env.store.jobs, "test-count", {"to": 50, "sleep": 0.01})
        runner = JobRunner(context(env))
        claimed = await runner.claim(job.id)
        assert claimed is not None
        running = asyncio.ensure_future(runner.run(claimed))
        await asyncio.sleep(0.1)
        await env.store.jobs.pause(job.id)
        paused = await running
        assert paused.state == "paused"
        stopped_at = len(SEEN[job.id])
        assert 0 < stopped_at < 50
        with pytest.raises(JobError, match="cannot become paused"):
            await env.store.jobs.pause(job.id)
        await env.store.jobs.resume(job.id)
        again = await runner.claim(job.id)
        assert again is not None and again.cursor == {"next": stopped_at}
        done = await runner.run(again)
        assert done.state == "done"
        assert SEEN[job.id] == list(range(50))  # nothing done twice, nothing skipped
        assert done.progress["items"] == 50
        other = await submit(env.store.jobs, "test-count", {"to": 3})
        assert (await env.store.jobs.cancel(other.id)).state == "cancelled"
        assert await runner.claim(other.id) is None
        with pytest.raises(JobError, match="no job 999"):
            await env.store.jobs.cancel(999)

    env.run(scenario)


def test_a_dead_runner_s_job_is_taken_over_where_it_stopped(tmp_path: Path) -> None:
    env = make_env(tmp_path)

    async def scenario() -> None:
        job = await submit(env.store.jobs, "test-count", {"to": 6})
        first = JobRunner(context(env), owner="elsewhere:1:aa")
        claimed = await first.claim(job.id)
        assert claimed is not None
        steps = count_job(context(env), claimed)
        for _ in range(3):  # three steps saved, then the process dies
            step = await steps.__anext__()
            await env.catalog.save_job(job.id, first.owner, cursor=step.cursor,
                                       progress={"items": 1}, lease=0.2)  # fmt: skip
        await steps.aclose()
        second = JobRunner(context(env))
        assert await second.claim(job.id) is None  # the lease still holds
        await asyncio.sleep(0.3)
        taken = await second.claim(job.id)
        assert taken is not None and taken.cursor == {"next": 3}
        assert (await second.run(taken)).state == "done"
        assert SEEN[job.id] == [0, 1, 2, 3, 4, 5]
        # The first runner, if it came back, finds its job taken and stops.
        saved = await env.catalog.save_job(job.id, first.owner, cursor=None, progress={},
                                           lease=1)  # fmt: skip
        assert saved == "done"

    env.run(scenario)


def test_unknown_kinds_are_refused(tmp_path: Path) -> None:
    env = make_env(tmp_path)

    async def scenario() -> None:
        with pytest.raises(JobError, match="no kind of job named 'nope'"):
            await submit(env.store.jobs, "nope", {})

    env.run(scenario)


def test_the_throttle_holds_a_rate() -> None:
    async def scenario() -> float:
        clock = ManualClock()
        throttle = Throttle(10_000_000, clock)
        started = clock.monotonic()
        for _ in range(30):
            await throttle.spend(1_000_000)  # 30 MB at 10 MB/s: about 2 s beyond the burst
        return clock.monotonic() - started

    elapsed = asyncio.run(scenario())
    assert 1.8 <= elapsed <= 3.5


def test_a_server_runs_jobs_side_by_side_and_hands_them_back_when_it_stops(
    tmp_path: Path,
) -> None:
    env = make_env(tmp_path)

    async def scenario() -> None:
        slow = await submit(env.store.jobs, "test-count", {"to": 100, "sleep": 0.05})
        runner = JobRunner(context(env))
        loop = asyncio.ensure_future(runner.run_forever(idle=0.05))
        await asyncio.sleep(0.3)
        fast = await submit(env.store.jobs, "test-count", {"to": 3})
        deadline = time.monotonic() + 5
        while (await env.catalog.get_job(fast.id)).state != "done":  # type: ignore[union-attr]
            assert time.monotonic() < deadline, "the second job waited for the first"
            await asyncio.sleep(0.05)
        assert (await env.catalog.get_job(slow.id)).state == "running"  # type: ignore[union-attr]
        loop.cancel()
        with pytest.raises(asyncio.CancelledError):
            await loop
        handed = await env.catalog.get_job(slow.id)
        assert handed is not None and handed.state == "queued" and handed.owner is None
        assert handed.cursor is not None and 0 < int(handed.cursor["next"]) < 100  # type: ignore[call-overload]

    env.run(scenario)


def test_a_failed_lease_renewal_does_not_end_the_run(tmp_path: Path) -> None:
    """The catalog busy once (another process writing for longer than the busy timeout):
    the heartbeat tries again at its next beat, the job still ends done."""
    env = make_env(tmp_path)

    async def scenario() -> None:
        ctx = context(env)
        ctx.lease = 0.3
        job = await submit(env.store.jobs, "test-count", {"to": 4, "sleep": 0.2})
        runner = JobRunner(ctx)
        claimed = await runner.claim(job.id)
        assert claimed is not None
        real, failures = env.catalog.save_job, []

        async def busy_once(*args: Any, **kwargs: Any) -> str:
            if not failures:
                failures.append(1)
                raise sqlite3.OperationalError("database is locked")
            return await real(*args, **kwargs)

        env.catalog.save_job = busy_once  # type: ignore[method-assign]
        done = await runner.run(claimed)
        assert failures and done.state == "done"
        assert SEEN[job.id] == [0, 1, 2, 3]

    env.run(scenario)
