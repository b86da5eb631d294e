"""Listing from a cursor deep in a bucket is one index probe in the SQLite catalog: the query
seeks to the cursor, it does not scan every key from the prefix up to it (a delimiter listing
skips past each common prefix this way, issue 16).

Cost is counted in SQLite virtual-machine steps through its progress handler, not timed."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from dataclasses import replace
from typing import Any

import pytest
from tests.catalog.test_sqlite import _bucket, _version, catalog, path, run

from egide.catalog.sqlite import SQLiteCatalog
from egide.domain import Bucket

__all__ = ["catalog", "path"]  # fixtures shared with test_sqlite.py

KEYS = [f"k{i:05d}" for i in range(3000)]
#: A seq above every real one (engine.versioning.FROM_NEWEST): from the key's newest version.
FROM_NEWEST = 2**62


@pytest.fixture
def bucket(catalog: SQLiteCatalog) -> Bucket:
    created = _bucket()

    async def fill() -> None:
        await catalog.create_bucket(created)
        await asyncio.gather(
            *(catalog.commit_version(replace(_version(created, k), is_null=False)) for k in KEYS)
        )

    run(fill())
    return created


def steps(catalog: SQLiteCatalog, call: Callable[[], Coroutine[Any, Any, object]]) -> int:
    """SQLite VM steps (in hundreds) the call costs."""
    count = 0

    def tick() -> int:
        nonlocal count
        count += 1
        return 0

    connections = [catalog._db, catalog._reader]  # the writer's thread, and probes' reader
    for db in connections:
        assert db is not None
        db.set_progress_handler(tick, 100)
    try:
        run(call())
    finally:
        for db in connections:
            assert db is not None
            db.set_progress_handler(None, 100)
    return count


@pytest.mark.parametrize("inclusive", [False, True])
def test_a_probe_near_the_end_costs_what_one_near_the_start_does(
    catalog: SQLiteCatalog, bucket: Bucket, inclusive: bool
) -> None:
    def probe(after: str) -> Callable[[], Coroutine[Any, Any, object]]:
        return lambda: catalog.list_objects(bucket.id, "", after, 1, inclusive=inclusive)

    near_start, near_end = steps(catalog, probe(KEYS[10])), steps(catalog, probe(KEYS[-10]))
    assert near_end <= 2 * near_start + 2, (near_start, near_end)


def test_a_version_probe_near_the_end_costs_what_one_near_the_start_does(
    catalog: SQLiteCatalog, bucket: Bucket
) -> None:
    def probe(after: str) -> Callable[[], Coroutine[Any, Any, object]]:
        return lambda: catalog.list_versions(bucket.id, "", (after, FROM_NEWEST), 1)

    near_start, near_end = steps(catalog, probe(KEYS[10])), steps(catalog, probe(KEYS[-10]))
    assert near_end <= 2 * near_start + 2, (near_start, near_end)


def test_probes_inside_a_prefix_still_list_the_right_keys(
    catalog: SQLiteCatalog, bucket: Bucket
) -> None:
    """The cursor and the prefix both bound the seek: whichever is further wins."""
    listed = run(catalog.list_objects(bucket.id, "k01", "k00500", 2))
    assert [v.key for v in listed] == ["k01000", "k01001"]
    listed = run(catalog.list_objects(bucket.id, "k01", "k01500", 2, inclusive=True))
    assert [v.key for v in listed] == ["k01500", "k01501"]
    listed = run(catalog.list_objects(bucket.id, "k01", "k01999", 2))
    assert listed == []
    versions = run(catalog.list_versions(bucket.id, "k01", ("k00500", FROM_NEWEST), 2))
    assert [v.key for v, _ in versions] == ["k01000", "k01001"]
    versions = run(catalog.list_versions(bucket.id, "k01", ("k01500", FROM_NEWEST), 1))
    assert [v.key for v, _ in versions] == ["k01500"]
    versions = run(catalog.list_versions(bucket.id, "k01", ("k01500", 0), 1))
    assert [v.key for v, _ in versions] == ["k01501"]
