"""Engine events: observers see what happened, and can neither slow nor fail a request."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import pytest
from tests.engine.helpers import Env, chunks, make_env, payload

from egide.engine import changes
from egide.engine.events import Event, EventKind, asking
from egide.engine.multipart import CompletedPart
from egide.engine.placing import SETTING as POLICY
from egide.engine.versioning import VERSIONING
from egide.placement import Policy

#: Longest an observer may take to see what was announced before the test fails.
DELIVERY_TIMEOUT = 10.0


class Recorder:
    def __init__(self) -> None:
        self.events: list[Event] = []

    async def __call__(self, event: Event) -> None:
        self.events.append(event)

    async def wait_for(self, count: int) -> list[Event]:
        async def arrived() -> None:
            while len(self.events) < count:
                await asyncio.sleep(0.001)

        await asyncio.wait_for(arrived(), DELIVERY_TIMEOUT)
        return self.events


class Stuck:
    """An observer that never finishes: it holds its first event forever."""

    def __init__(self) -> None:
        self.release = asyncio.Event()
        self.started = 0

    async def __call__(self, event: Event) -> None:
        self.started += 1
        await self.release.wait()


async def failing(event: Event) -> None:
    raise RuntimeError(f"observer broken on {event.kind}")


def test_an_observer_sees_put_tags_delete_and_bucket_events(tmp_path: Path) -> None:
    env = make_env(tmp_path)

    async def scenario() -> None:
        seen = Recorder()
        env.store.events.subscribe(seen)
        token = asking.set("EGTESTKEY")
        try:
            bucket = await env.store.create_bucket("b")
            version = await env.put("b", "report.csv", payload(1000))
            await changes.set_version_headers(
                env.store, version, {**version.headers, "x-amz-tagging": "team=ops"}
            )
            await env.store.delete_object("b", "report.csv")
            await changes.put_bucket_setting(env.store, bucket, VERSIONING, "Enabled")
            await env.put("b", "kept", payload(10))
            marker = await env.store.delete_object("b", "kept")
        finally:
            asking.reset(token)
        events = await seen.wait_for(7)
        assert [e.kind for e in events] == [
            EventKind.BUCKET_CREATED,
            EventKind.OBJECT_CREATED,
            EventKind.OBJECT_TAGS_CHANGED,
            EventKind.OBJECT_REMOVED,
            EventKind.BUCKET_CHANGED,
            EventKind.OBJECT_CREATED,
            EventKind.DELETE_MARKER_CREATED,
        ]
        assert all(e.bucket == "b" and e.principal == "EGTESTKEY" for e in events)
        created = events[1]
        assert (created.key, created.version_id, created.size, created.etag) == (
            "report.csv", version.version_id, 1000, version.etag,
        )  # fmt: skip
        assert events[3].version_id == version.version_id
        assert events[4].detail == VERSIONING
        assert marker is not None and events[6].version_id == marker.version_id

    env.run(scenario)


def test_a_multipart_completion_is_announced(tmp_path: Path) -> None:
    env = make_env(tmp_path)

    async def scenario() -> None:
        seen = Recorder()
        await env.store.create_bucket("b")
        env.store.events.subscribe(seen)
        upload = await env.store.multipart.create("b", "big", {})
        data = payload(1000)
        part = await env.store.multipart.upload_part(upload, 1, chunks(data))
        version = await env.store.multipart.complete(upload, [CompletedPart(1, part.etag, {})])
        [event] = await seen.wait_for(1)
        assert (event.kind, event.key, event.version_id, event.size) == (
            EventKind.OBJECT_CREATED, "big", version.version_id, 1000,
        )  # fmt: skip

    env.run(scenario)


async def _writes(env: Env, count: int) -> None:
    for i in range(count):
        await env.put("b", f"k{i}", payload(100, seed=i))


def test_a_stuck_observer_holds_up_neither_requests_nor_other_observers(tmp_path: Path) -> None:
    env = make_env(tmp_path)

    async def scenario() -> None:
        await env.store.create_bucket("b")
        stuck, seen = Stuck(), Recorder()
        env.store.events.subscribe(stuck)
        env.store.events.subscribe(seen)
        # Every write completes while the stuck observer holds its first event.
        await asyncio.wait_for(_writes(env, 20), 30)
        assert len(await seen.wait_for(20)) == 20
        assert stuck.started == 1
        assert [o.key for o in (await env.store.list_objects("b")).objects] == sorted(
            f"k{i}" for i in range(20)
        )
        await env.store.events.close()

    env.run(scenario)


def test_a_failing_observer_changes_no_answer_and_is_counted(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    env = make_env(tmp_path)

    async def scenario() -> None:
        await env.store.create_bucket("b")
        broken = env.store.events.subscribe(failing, name="broken")
        seen = Recorder()
        env.store.events.subscribe(seen)
        await _writes(env, 5)
        await seen.wait_for(5)
        await asyncio.sleep(0.05)  # the broken observer's task runs its five calls
        assert broken.failed == 5
        assert await env.get("b", "k3") == payload(100, seed=3)

    with caplog.at_level(logging.ERROR, logger="egide.events"):
        env.run(scenario)
    assert "observer broken failed on object-created" in caplog.text


def test_a_full_queue_drops_events_for_that_observer_only_and_says_so(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    env = make_env(tmp_path)

    async def scenario() -> None:
        await env.store.create_bucket("b")
        stuck, seen = Stuck(), Recorder()
        slow = env.store.events.subscribe(stuck, name="slow", capacity=3)
        env.store.events.subscribe(seen)
        await _writes(env, 10)
        assert len(await seen.wait_for(10)) == 10
        # One event held by the stuck call, three queued, the rest dropped.
        assert (stuck.started, slow.waiting, slow.dropped) == (1, 3, 6)
        stuck.release.set()
        await asyncio.sleep(0.05)
        assert slow.waiting == 0
        await env.store.events.close()

    with caplog.at_level(logging.WARNING, logger="egide.events"):
        env.run(scenario)
    assert "observer slow is behind" in caplog.text


def test_an_observer_sees_each_change_of_a_job_s_state(tmp_path: Path) -> None:
    env = make_env(tmp_path)

    async def scenario() -> None:
        seen = Recorder()
        env.store.events.subscribe(seen)
        jobs = env.store.jobs
        token = asking.set("EGADMINKEY")
        try:
            job = await jobs.submit("scrub", {"period": 60})
            await jobs.pause(job.id)
            await jobs.resume(job.id)
        finally:
            asking.reset(token)
        claimed = await jobs.claim(job.id, ("scrub",), "runner-1", 60.0)
        assert claimed is not None
        await jobs.leave(job.id, "done", "runner-1")
        assert await jobs.leave(job.id, "failed", "runner-1") is not None  # not running: no change
        events = await seen.wait_for(5)
        await asyncio.sleep(0.05)  # nothing more arrives
        assert [(e.kind, e.job_id, e.job_kind, e.detail) for e in seen.events] == [
            (EventKind.JOB_CHANGED, job.id, "scrub", state)
            for state in ("queued", "paused", "queued", "running", "done")
        ]
        assert [e.principal for e in events] == ["EGADMINKEY"] * 3 + ["egide:jobs"] * 2
        assert all(e.bucket == "" for e in events)

    env.run(scenario)


def test_a_failing_observer_changes_no_job(tmp_path: Path) -> None:
    env = make_env(tmp_path)

    async def scenario() -> None:
        broken = env.store.events.subscribe(failing, name="broken")
        seen = Recorder()
        env.store.events.subscribe(seen)
        job = await env.store.jobs.submit("gc", {})
        cancelled = await env.store.jobs.cancel(job.id)
        await seen.wait_for(2)
        await asyncio.sleep(0.05)
        assert broken.failed == 2
        assert cancelled.state == "cancelled"
        assert (await env.store.jobs.get(job.id)).state == "cancelled"

    env.run(scenario)


def test_an_added_key_is_announced_without_its_secret(tmp_path: Path) -> None:
    env = make_env(tmp_path)

    async def scenario() -> None:
        seen = Recorder()
        env.store.events.subscribe(seen)
        env.store.events.subscribe(failing, name="broken")
        token = asking.set("EGADMINKEY")
        try:
            await env.store.credentials.add("EGNEWACCESSKEY000001", "the-secret-never-shown")
        finally:
            asking.reset(token)
        [event] = await seen.wait_for(1)
        assert (event.kind, event.access_key, event.detail, event.principal, event.bucket) == (
            EventKind.CREDENTIALS_CHANGED, "EGNEWACCESSKEY000001", "added", "EGADMINKEY", "",
        )  # fmt: skip
        assert "the-secret-never-shown" not in repr(event)
        assert await env.catalog.get_credential("EGNEWACCESSKEY000001") is not None

    env.run(scenario)


def test_a_policy_change_is_announced_and_applies_at_once(tmp_path: Path) -> None:
    env = make_env(tmp_path)

    async def scenario() -> None:
        bucket = await env.store.create_bucket("b")
        seen = Recorder()
        env.store.events.subscribe(seen)
        assert (await env.store.placer.policy(bucket)).k == 4  # cached from now on
        token = asking.set("EGADMINKEY")
        try:
            await env.store.bucket_settings.set_policy(bucket, Policy(k=3, m=2))
        finally:
            asking.reset(token)
        assert (await env.store.placer.policy(bucket)).k == 3  # this process: at once
        await env.store.bucket_settings.set_policy(bucket, None)
        assert (await env.store.placer.policy(bucket)).k == 4
        events = await seen.wait_for(2)
        assert [(e.kind, e.bucket, e.detail, e.principal) for e in events] == [
            (EventKind.BUCKET_CHANGED, "b", POLICY, "EGADMINKEY"),
            (EventKind.BUCKET_CHANGED, "b", POLICY, None),
        ]

    env.run(scenario)
