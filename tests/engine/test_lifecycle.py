"""Lifecycle passes over a real store and catalog (src/egide/engine/lifecycle.py), with a fake
clock: each action, the filters, Object Lock, writes racing a pass, paging, and a pass
interrupted half-way."""

from __future__ import annotations

import time
from typing import Any

import pytest
from tests.engine.helpers import Env

from egide.domain import (
    CurrentIsDeleteMarker,
    KeyNotFound,
    ObjectVersion,
    WriteCondition,
    marker_record_name,
)
from egide.engine import lifecycle
from egide.engine.lifecycle import LifecycleReport, apply_lifecycle, save_rules
from egide.engine.lifecyclerules import LifecycleFilter, LifecycleRule
from egide.engine.versioning import VERSIONING

DAY = 86_400.0
LATER = 3 * DAY  # far enough for a one-day rule, whatever the hour


async def setup(env: Env, *rules: LifecycleRule, versioning: str | None = None) -> bytes:
    bucket = await env.store.create_bucket("b")
    await save_rules(env.store, bucket, rules)
    if versioning is not None:
        await env.catalog.put_bucket_setting(bucket.id, VERSIONING, versioning)
    return bucket.id


async def versions(env: Env, bucket_id: bytes, prefix: str = "") -> list[tuple[str, bool, bool]]:
    """(key, delete marker, latest) of every version, by key, newest first."""
    rows = await env.catalog.list_versions(bucket_id, prefix, None, 10_000)
    return [(v.key, v.delete_marker, latest) for v, latest in rows]


def expire(days: int = 1, prefix: str | None = None, **fields: Any) -> LifecycleRule:
    return LifecycleRule("expire", True, LifecycleFilter(prefix=prefix), expiration_days=days,
                         **fields)  # fmt: skip


def noncurrent(days: int = 1, newer: int | None = None, **fields: Any) -> LifecycleRule:
    return LifecycleRule("noncurrent", True, noncurrent_days=days,
                         newer_noncurrent_versions=newer, **fields)  # fmt: skip


def test_unversioned_objects_expire_after_their_days(env: Env) -> None:
    async def scenario() -> None:
        bucket_id = await setup(env, expire(1, prefix="logs/"))
        for key in ("logs/a", "logs/b", "keep/c"):
            await env.put("b", key, key.encode())
        start = time.time()
        assert (await apply_lifecycle(env.store, start)).actions == 0  # not due yet
        report = await apply_lifecycle(env.store, start + LATER)
        assert report == LifecycleReport(expired=2)
        for key in ("logs/a", "logs/b"):
            with pytest.raises(KeyNotFound):
                await env.store.head_object("b", key)
        assert await env.get("b", "keep/c") == b"keep/c"
        assert await versions(env, bucket_id) == [("keep/c", False, True)]
        # Idempotent: the next pass finds nothing left to do.
        assert (await apply_lifecycle(env.store, start + LATER)).actions == 0
        await env.store.empty_trash()  # the shards of the expired objects go too

    env.run(scenario)


def test_a_day_is_counted_to_the_next_midnight(env: Env) -> None:
    async def scenario() -> None:
        await setup(env, expire(2))
        version = await env.put("b", "k", b"x")
        # With a one-second "day": created at t, due at ceil(t + 2).
        deadline = float(int(version.last_modified + 2) + 1)
        assert (await apply_lifecycle(env.store, deadline - 0.01, day=1.0)).actions == 0
        assert (await apply_lifecycle(env.store, deadline, day=1.0)).expired == 1

    env.run(scenario)


def test_expiration_date(env: Env) -> None:
    async def scenario() -> None:
        past = LifecycleRule("past", True, LifecycleFilter(prefix="past/"), expiration_date=0.0)
        future = LifecycleRule(
            "future", True, LifecycleFilter(prefix="future/"), expiration_date=4e9
        )
        bucket_id = await setup(env, past, future)
        await env.put("b", "past/a", b"a")
        await env.put("b", "future/b", b"b")
        assert (await apply_lifecycle(env.store, time.time())).expired == 1
        assert await versions(env, bucket_id) == [("future/b", False, True)]

    env.run(scenario)


def test_tag_and_size_filters(env: Env) -> None:
    async def scenario() -> None:
        both = LifecycleFilter("d/", (("team", "x"), ("tmp", "")), 10, conjunction=True)
        rules = (
            LifecycleRule("and", True, both, expiration_days=1),
            LifecycleRule("small", True, LifecycleFilter(size_less_than=3), expiration_days=1),
            LifecycleRule("disabled", False, LifecycleFilter(), expiration_days=1),
        )
        bucket_id = await setup(env, *rules)
        tagged = {"x-amz-tagging": "team=x&tmp="}
        await env.put("b", "d/big-tagged", b"x" * 20, headers=dict(tagged))
        await env.put("b", "d/small-tagged", b"x" * 5, headers=dict(tagged))
        await env.put("b", "d/big-other-tag", b"x" * 20, headers={"x-amz-tagging": "team=y"})
        await env.put("b", "e/big-tagged", b"x" * 20, headers=dict(tagged))
        await env.put("b", "e/tiny", b"xy")
        report = await apply_lifecycle(env.store, time.time() + LATER)
        assert report.expired == 2
        assert [key for key, _, _ in await versions(env, bucket_id)] == [
            "d/big-other-tag",
            "d/small-tagged",
            "e/big-tagged",
        ]

    env.run(scenario)


def test_versioned_bucket_gets_a_delete_marker(env: Env) -> None:
    async def scenario() -> None:
        bucket_id = await setup(env, expire(1), versioning="Enabled")
        await env.put("b", "k", b"v1")
        report = await apply_lifecycle(env.store, time.time() + LATER)
        assert report == LifecycleReport(delete_markers_added=1)
        with pytest.raises(CurrentIsDeleteMarker):
            await env.store.head_object("b", "k")
        assert await versions(env, bucket_id) == [("k", True, True), ("k", False, False)]
        marker = await env.catalog.get_object(bucket_id, "k")
        assert marker is not None  # recorded on the sites like a DeleteObject marker
        name = marker_record_name(marker.version_id)
        assert all([await site.size(name) for site in env.sites])
        # A marker over a version is not "expired": it stays, and no second one is added.
        assert (await apply_lifecycle(env.store, time.time() + 2 * LATER)).actions == 0

    env.run(scenario)


def test_suspended_bucket_gets_a_null_marker_replacing_the_null_version(env: Env) -> None:
    async def scenario() -> None:
        bucket_id = await setup(env, expire(1), versioning="Suspended")
        await env.put("b", "k", b"null version")
        assert (await apply_lifecycle(env.store, time.time() + LATER)).delete_markers_added == 1
        (marker, latest), *rest = await env.catalog.list_versions(bucket_id, "", None, 10)
        assert marker.delete_marker and marker.is_null and latest and not rest

    env.run(scenario)


def test_noncurrent_versions_expire_keeping_the_newest(env: Env) -> None:
    async def scenario() -> None:
        bucket_id = await setup(env, noncurrent(1, newer=2), versioning="Enabled")
        for i in range(6):
            await env.put("b", "k", f"v{i}".encode())
        start = time.time()
        assert (await apply_lifecycle(env.store, start)).actions == 0
        report = await apply_lifecycle(env.store, start + LATER)
        assert report == LifecycleReport(noncurrent_removed=3)  # v0..v2; v3, v4 kept
        rows = await env.catalog.list_versions(bucket_id, "", None, 10)
        assert [await env.read(v) for v, _ in rows] == [b"v5", b"v4", b"v3"]

    env.run(scenario)


def test_noncurrent_days_count_from_the_successor(env: Env) -> None:
    async def scenario() -> None:
        bucket_id = await setup(env, noncurrent(2), versioning="Enabled")
        await env.put("b", "k", b"old")
        successor = await env.put("b", "k", b"new")
        deadline = float(int(successor.last_modified + 2) + 1)
        assert (await apply_lifecycle(env.store, deadline - 0.01, day=1.0)).actions == 0
        assert (await apply_lifecycle(env.store, deadline, day=1.0)).noncurrent_removed == 1
        assert await versions(env, bucket_id) == [("k", False, True)]

    env.run(scenario)


def test_expired_object_delete_markers(env: Env) -> None:
    async def scenario() -> None:
        markers = LifecycleRule(
            "markers", True, noncurrent_days=1, expired_object_delete_marker=True
        )
        bucket_id = await setup(env, markers, versioning="Enabled")
        await env.put("b", "alone", b"x")
        await env.store.delete_object("b", "alone")  # marker over one version
        await env.put("b", "live", b"y")
        await env.store.delete_object("b", "live")
        await env.put("b", "live", b"z")  # a marker that is noncurrent: not "expired"
        # One pass removes the noncurrent version, then the marker left alone.
        report = await apply_lifecycle(env.store, time.time() + LATER)
        assert report.noncurrent_removed == 3 and report.delete_markers_removed == 1
        assert await versions(env, bucket_id) == [("live", False, True)]

    env.run(scenario)


def test_an_expiration_in_days_also_removes_old_lone_markers(env: Env) -> None:
    async def scenario() -> None:
        bucket_id = await setup(env, expire(2), versioning="Enabled")
        version = await env.put("b", "k", b"x")
        await env.store.delete_object("b", "k")
        await env.store.delete_object("b", "k", version.s3_version_id)
        assert (await apply_lifecycle(env.store, time.time() + DAY)).actions == 0  # too young
        assert (await apply_lifecycle(env.store, time.time() + LATER)).delete_markers_removed == 1
        assert await versions(env, bucket_id) == []

    env.run(scenario)


def test_locked_versions_are_kept_and_counted(env: Env) -> None:
    async def scenario() -> None:
        bucket_id = await setup(env, noncurrent(1), versioning="Enabled")
        held = await env.put("b", "held", b"1")
        await env.put("b", "held", b"2")
        await env.catalog.set_lock(bucket_id, "held", held.version_id, legal_hold=True)
        retained = await env.put("b", "retained", b"1")
        await env.put("b", "retained", b"2")
        until = time.time() + 10 * LATER
        await env.catalog.set_lock(
            bucket_id, "retained", retained.version_id, retention=("COMPLIANCE", until)
        )
        report = await apply_lifecycle(env.store, time.time() + LATER)
        assert report == LifecycleReport(locked=2)
        assert len(await versions(env, bucket_id)) == 4

    env.run(scenario)


def test_a_locked_null_version_is_not_replaced_by_a_null_marker(env: Env) -> None:
    async def scenario() -> None:
        bucket_id = await setup(env, expire(1), versioning="Suspended")
        await env.put("b", "k", b"x")
        await env.catalog.set_lock(bucket_id, "k", None, legal_hold=True)
        assert await apply_lifecycle(env.store, time.time() + LATER) == LifecycleReport(locked=1)
        assert await env.get("b", "k") == b"x"

    env.run(scenario)


def test_multipart_uploads_are_aborted_after_their_days(env: Env) -> None:
    async def scenario() -> None:
        rule = LifecycleRule("uploads", True, LifecycleFilter(prefix="up/"), abort_upload_days=1)
        bucket_id = await setup(env, rule)
        for key in ("up/a", "up/a", "up/b", "other/c"):
            await env.store.multipart.create("b", key, {})
        start = time.time()
        assert (await apply_lifecycle(env.store, start)).actions == 0
        assert (await apply_lifecycle(env.store, start + LATER)).uploads_aborted == 3
        left = await env.catalog.list_uploads(bucket_id, "", None, 10)
        assert [upload.key for upload in left] == ["other/c"]

    env.run(scenario)


def test_a_version_written_after_evaluation_is_never_removed(env: Env) -> None:
    async def scenario() -> None:
        await setup(env, expire(1))
        await env.put("b", "k", b"old")
        delete_version = env.catalog.delete_version

        async def racing(*args: Any, **kwargs: Any) -> ObjectVersion | None:
            await env.put("b", "k", b"written meanwhile")  # replaces the null version
            return await delete_version(*args, **kwargs)

        env.catalog.delete_version = racing  # type: ignore[method-assign]
        report = await apply_lifecycle(env.store, time.time() + LATER)
        assert report == LifecycleReport(changed=1)
        assert await env.get("b", "k") == b"written meanwhile"

    env.run(scenario)


def test_a_delete_marker_never_hides_a_version_written_after_evaluation(env: Env) -> None:
    async def scenario() -> None:
        bucket_id = await setup(env, expire(1), versioning="Enabled")
        await env.put("b", "k", b"same bytes")
        commit_version = env.catalog.commit_version

        async def racing(version: ObjectVersion, condition: WriteCondition | None = None) -> None:
            # The same bytes, so the same ETag: only the version id tells them apart.
            await env.put("b", "k", b"same bytes")
            await commit_version(version, condition)

        env.catalog.commit_version = racing  # type: ignore[method-assign]
        report = await apply_lifecycle(env.store, time.time() + LATER)
        assert report == LifecycleReport(changed=1)
        assert await env.get("b", "k") == b"same bytes"
        assert await versions(env, bucket_id) == [("k", False, True), ("k", False, False)]

    env.run(scenario)


def test_keys_are_read_in_pages(env: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(lifecycle, "PAGE", 3)

    async def scenario() -> None:
        bucket_id = await setup(env, noncurrent(1), versioning="Enabled")
        for i in range(7):
            for n in range(3):
                await env.put("b", f"k{i}", f"{i}-{n}".encode())
        report = await apply_lifecycle(env.store, time.time() + LATER)
        assert report == LifecycleReport(noncurrent_removed=14)
        assert await versions(env, bucket_id) == [(f"k{i}", False, True) for i in range(7)]

    env.run(scenario)


def test_uploads_are_read_in_pages(env: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(lifecycle, "PAGE", 2)

    async def scenario() -> None:
        rule = LifecycleRule("uploads", True, LifecycleFilter(prefix=""), abort_upload_days=1)
        bucket_id = await setup(env, rule)
        for i in range(7):
            await env.store.multipart.create("b", f"k{i % 3}", {})
        assert (await apply_lifecycle(env.store, time.time() + LATER)).uploads_aborted == 7
        assert await env.catalog.list_uploads(bucket_id, "", None, 10) == []

    env.run(scenario)


class Crash(Exception):
    pass


def test_an_interrupted_pass_loses_nothing_and_the_next_one_finishes(env: Env) -> None:
    async def scenario() -> None:
        bucket_id = await setup(env, expire(1))
        for i in range(6):
            await env.put("b", f"k{i}", b"x")
        delete_version = env.catalog.delete_version
        calls = 0

        async def crashing(*args: Any, **kwargs: Any) -> ObjectVersion | None:
            nonlocal calls
            calls += 1
            if calls == 4:
                raise Crash  # the process dies here
            return await delete_version(*args, **kwargs)

        env.catalog.delete_version = crashing  # type: ignore[method-assign]
        with pytest.raises(Crash):
            await apply_lifecycle(env.store, time.time() + LATER)
        assert len(await versions(env, bucket_id)) == 3  # three removed, for good
        env.catalog.delete_version = delete_version  # type: ignore[method-assign]
        assert (await apply_lifecycle(env.store, time.time() + LATER)).expired == 3
        assert await versions(env, bucket_id) == []

    env.run(scenario)
