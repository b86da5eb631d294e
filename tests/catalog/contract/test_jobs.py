"""Catalog contract: maintenance jobs, their states, leases and cursors.

A lease that has run out is made with a negative lease time (it ended before it was given), so
no test waits for a clock.
"""

from __future__ import annotations

import asyncio
import time

from egide.catalog.base import Catalog
from egide.domain import JOB_STATES

#: Long enough to outlast any test.
LEASE = 600.0
#: A lease already over when granted: its runner counts as dead.
LAPSED = -1.0


async def test_a_created_job_is_queued(catalog: Catalog) -> None:
    before = time.time()
    params: dict[str, object] = {"site": "paris", "depth": 2, "all": True, "ids": ["a", "é"]}
    job = await catalog.create_job("scrub", params)
    assert (job.kind, job.params, job.state) == ("scrub", params, "queued")
    assert (job.cursor, job.progress, job.owner, job.lease_until, job.error) == (
        None, {}, None, None, None,
    )  # fmt: skip
    assert before - 1 <= job.created <= job.updated <= time.time() + 1
    assert not job.final
    assert await catalog.get_job(job.id) == job
    assert await catalog.get_job(job.id + 1000) is None


async def test_job_ids_are_distinct(catalog: Catalog) -> None:
    jobs = await asyncio.gather(*(catalog.create_job("scrub", {"n": i}) for i in range(10)))
    assert len({job.id for job in jobs}) == 10
    for job in jobs:
        assert await catalog.get_job(job.id) == job


async def test_create_job_once_while_none_of_its_kind_is_open(catalog: Catalog) -> None:
    first = await catalog.create_job_once("gc", {})
    assert first is not None and first.state == "queued"
    assert await catalog.create_job_once("gc", {}) is None
    assert await catalog.create_job_once("scrub", {}) is not None  # another kind
    for state in ("running", "paused"):
        await catalog.set_job_state(first.id, state, only_from=("queued", "running"))
        assert await catalog.create_job_once("gc", {}) is None, state
    for state in ("done", "failed", "cancelled"):
        await catalog.set_job_state(first.id, state, only_from=JOB_STATES)
        again = await catalog.create_job_once("gc", {"after": state})
        assert again is not None and again.params == {"after": state}
        await catalog.set_job_state(again.id, "done", only_from=("queued",))


async def test_racing_create_job_once_creates_one(catalog: Catalog) -> None:
    results = await asyncio.gather(*(catalog.create_job_once("gc", {}) for _ in range(8)))
    created = [job for job in results if job is not None]
    assert len(created) == 1
    assert await catalog.list_jobs(kind="gc") == created


async def test_newest_job_of_a_kind_whatever_its_state(catalog: Catalog) -> None:
    assert await catalog.newest_job("scrub") is None
    older = await catalog.create_job("scrub", {"n": 1})
    newer = await catalog.create_job("scrub", {"n": 2})
    await catalog.create_job("gc", {})
    assert await catalog.newest_job("scrub") == newer
    done = await catalog.set_job_state(newer.id, "done", only_from=("queued",))
    assert await catalog.newest_job("scrub") == done
    assert older != done


async def test_list_jobs_newest_first_by_state_and_kind(catalog: Catalog) -> None:
    a = await catalog.create_job("scrub", {})
    b = await catalog.create_job("gc", {})
    c = await catalog.create_job("scrub", {})
    failed = await catalog.set_job_state(b.id, "failed", only_from=("queued",), error="boom")
    assert failed is not None
    assert await catalog.list_jobs() == [c, failed, a]
    assert await catalog.list_jobs(limit=2) == [c, failed]
    assert await catalog.list_jobs(("queued",)) == [c, a]
    assert await catalog.list_jobs(("failed", "done")) == [failed]
    assert await catalog.list_jobs(kind="scrub") == [c, a]
    assert await catalog.list_jobs(("failed",), kind="scrub") == []
    assert await catalog.list_jobs(kind="repair") == []


# -- claims and leases -------------------------------------------------------------------------


async def test_claim_takes_the_oldest_queued_job_of_the_kinds(catalog: Catalog) -> None:
    assert await catalog.claim_job(None, (), "w1", LEASE) is None
    scrub = await catalog.create_job("scrub", {})
    gc = await catalog.create_job("gc", {})
    before = time.time()
    claimed = await catalog.claim_job(None, ("gc", "repair"), "w1", LEASE)
    assert claimed is not None and claimed.id == gc.id
    assert (claimed.state, claimed.owner) == ("running", "w1")
    assert claimed.lease_until is not None
    assert before + LEASE - 1 <= claimed.lease_until <= time.time() + LEASE + 1
    assert await catalog.get_job(gc.id) == claimed
    assert await catalog.claim_job(None, ("gc",), "w2", LEASE) is None  # held
    other = await catalog.claim_job(None, (), "w2", LEASE)  # any kind
    assert other is not None and (other.id, other.owner) == (scrub.id, "w2")


async def test_claim_a_given_job(catalog: Catalog) -> None:
    first = await catalog.create_job("scrub", {})
    second = await catalog.create_job("scrub", {})
    assert await catalog.claim_job(second.id, ("gc",), "w1", LEASE) is None  # not of the kinds
    claimed = await catalog.claim_job(second.id, ("scrub",), "w1", LEASE)
    assert claimed is not None and claimed.id == second.id
    assert await catalog.claim_job(second.id, (), "w2", LEASE) is None
    assert await catalog.claim_job(first.id + second.id + 1000, (), "w1", LEASE) is None


async def test_only_queued_or_lapsed_jobs_are_claimed(catalog: Catalog) -> None:
    for state in ("paused", "cancelled", "done", "failed"):
        job = await catalog.create_job("scrub", {})
        await catalog.set_job_state(job.id, state, only_from=("queued",))
        assert await catalog.claim_job(job.id, (), "w1", LEASE) is None, state
    assert await catalog.claim_job(None, (), "w1", LEASE) is None


async def test_a_lapsed_lease_lets_another_runner_take_the_job(catalog: Catalog) -> None:
    """Its runner died: the job resumes elsewhere from the cursor it saved."""
    job = await catalog.create_job("scrub", {})
    assert await catalog.claim_job(job.id, (), "dead", LEASE) is not None
    cursor: dict[str, object] = {"after": "0a0b"}
    assert await catalog.save_job(
        job.id, "dead", cursor=cursor, progress={"n": 5}, lease=LAPSED
    ) == ("running")
    taken = await catalog.claim_job(None, ("scrub",), "alive", LEASE)
    assert taken is not None and taken.owner == "alive"
    assert (taken.cursor, taken.progress) == (cursor, {"n": 5})
    # The old runner, back, learns it lost the job, and its save changes nothing.
    late = await catalog.save_job(job.id, "dead", cursor={"after": "ff"}, progress={"n": 9},
                                  lease=LEASE)  # fmt: skip
    assert late == "taken"
    now = await catalog.get_job(job.id)
    assert now is not None and (now.owner, now.cursor, now.progress) == ("alive", cursor, {"n": 5})


async def test_racing_claims_of_one_job_one_wins(catalog: Catalog) -> None:
    job = await catalog.create_job("scrub", {})
    results = await asyncio.gather(
        *(catalog.claim_job(None, ("scrub",), f"w{i}", LEASE) for i in range(8))
    )
    won = [r for r in results if r is not None]
    assert len(won) == 1 and won[0].id == job.id
    stored = await catalog.get_job(job.id)
    assert stored is not None and stored.owner == won[0].owner


# -- save_job and states ---------------------------------------------------------------------


async def test_save_job_keeps_the_cursor_and_renews_the_lease(catalog: Catalog) -> None:
    job = await catalog.create_job("scrub", {})
    claimed = await catalog.claim_job(job.id, (), "w1", 10.0)
    assert claimed is not None and claimed.lease_until is not None
    cursor: dict[str, object] = {"after": "00ff", "pass": 2, "sites": ["paris"]}
    state = await catalog.save_job(job.id, "w1", cursor=cursor, progress={"checked": 7},
                                   lease=LEASE)  # fmt: skip
    assert state == "running"
    saved = await catalog.get_job(job.id)
    assert saved is not None
    assert (saved.cursor, saved.progress, saved.owner) == (cursor, {"checked": 7}, "w1")
    assert saved.lease_until is not None and saved.lease_until > claimed.lease_until
    assert saved.updated >= claimed.updated
    # A cursor may be cleared again.
    await catalog.save_job(job.id, "w1", cursor=None, progress={"checked": 8}, lease=LEASE)
    cleared = await catalog.get_job(job.id)
    assert cleared is not None and cleared.cursor is None


async def test_a_runner_learns_of_a_pause_and_its_last_step_is_kept(catalog: Catalog) -> None:
    job = await catalog.create_job("scrub", {})
    await catalog.claim_job(job.id, (), "w1", LEASE)
    paused = await catalog.set_job_state(job.id, "paused", only_from=("queued", "running"))
    assert paused is not None and paused.state == "paused"
    assert (paused.owner, paused.lease_until) == (None, None)  # released
    state = await catalog.save_job(job.id, "w1", cursor={"at": 3}, progress={"n": 3},
                                   lease=LEASE)  # fmt: skip
    assert state == "paused"
    kept = await catalog.get_job(job.id)
    assert kept is not None and (kept.state, kept.cursor, kept.progress) == (
        "paused", {"at": 3}, {"n": 3},
    )  # fmt: skip
    # Resumed: queued again, claimed with its cursor.
    await catalog.set_job_state(job.id, "queued", only_from=("paused",))
    again = await catalog.claim_job(job.id, (), "w2", LEASE)
    assert again is not None and again.cursor == {"at": 3}


async def test_a_runner_learns_of_a_cancel(catalog: Catalog) -> None:
    job = await catalog.create_job("scrub", {})
    await catalog.claim_job(job.id, (), "w1", LEASE)
    await catalog.set_job_state(job.id, "cancelled", only_from=("queued", "running", "paused"))
    state = await catalog.save_job(job.id, "w1", cursor=None, progress={}, lease=LEASE)
    assert state == "cancelled"
    cancelled = await catalog.get_job(job.id)
    assert cancelled is not None and cancelled.final


async def test_set_job_state_only_from_the_given_states(catalog: Catalog) -> None:
    job = await catalog.create_job("scrub", {})
    unchanged = await catalog.set_job_state(job.id, "done", only_from=("running",))
    assert unchanged == job
    assert await catalog.set_job_state(job.id + 1000, "done", only_from=JOB_STATES) is None


async def test_set_job_state_for_its_owner_only(catalog: Catalog) -> None:
    job = await catalog.create_job("scrub", {})
    await catalog.claim_job(job.id, (), "w1", LEASE)
    held = await catalog.set_job_state(job.id, "done", only_from=("running",), owner="w2")
    assert held is not None and (held.state, held.owner) == ("running", "w1")
    failed = await catalog.set_job_state(
        job.id, "failed", only_from=("running",), owner="w1", error="site paris: timeout"
    )
    assert failed is not None
    assert (failed.state, failed.error, failed.owner, failed.lease_until) == (
        "failed", "site paris: timeout", None, None,
    )  # fmt: skip
    assert failed.final
    assert await catalog.list_jobs(("failed",)) == [failed]


async def test_a_given_job_whose_lease_lapsed_is_taken_over(catalog: Catalog) -> None:
    job = await catalog.create_job("repair", {})
    await catalog.claim_job(job.id, (), "dead", LAPSED)
    taken = await catalog.claim_job(job.id, ("repair",), "alive", LEASE)
    assert taken is not None and (taken.state, taken.owner) == ("running", "alive")
    assert await catalog.save_job(job.id, "dead", cursor=None, progress={}, lease=LEASE) == "taken"
    assert await catalog.save_job(job.id, "alive", cursor=None, progress={}, lease=LEASE) == (
        "running"
    )
