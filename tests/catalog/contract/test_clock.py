"""Catalog contract: the time the catalog reads is its clock's. Object Lock retentions, trash
dates, job leases and sightings follow a `ManualClock` that the test moves, not the system's."""

from __future__ import annotations

import pytest
from tests.catalog.contract.builders import HOUR, version
from tests.clocks import ManualClock

from egide.catalog.base import Catalog
from egide.domain import Bucket, ObjectLocked


@pytest.fixture
def clock() -> ManualClock:
    """Overrides the system clock of conftest.py for every test here."""
    return ManualClock()


async def test_a_retention_expired_by_the_clock_can_be_shortened(
    catalog: Catalog, bucket: Bucket, clock: ManualClock
) -> None:
    until = clock.time() + HOUR
    kept = version(bucket, "k", null=False, retention_mode="COMPLIANCE", retain_until=until)
    await catalog.commit_version(kept)
    with pytest.raises(ObjectLocked):
        await catalog.set_lock(bucket.id, "k", kept.version_id, retention=(None, None))
    clock.advance(HOUR + 1)  # the system's time has not moved: only the catalog's clock
    released = await catalog.set_lock(bucket.id, "k", kept.version_id, retention=(None, None))
    assert (released.retention_mode, released.retain_until) == (None, None)


async def test_a_version_retained_until_the_clock_passes_cannot_be_deleted_before(
    catalog: Catalog, bucket: Bucket, clock: ManualClock
) -> None:
    until = clock.time() + 60
    kept = version(bucket, "k", null=False, retention_mode="GOVERNANCE", retain_until=until)
    await catalog.commit_version(kept)
    with pytest.raises(ObjectLocked):
        await catalog.delete_version(bucket.id, "k", kept.version_id)
    clock.advance(61)
    deleted = await catalog.delete_version(bucket.id, "k", kept.version_id)
    assert deleted is not None and deleted.version_id == kept.version_id


async def test_a_null_version_retained_by_the_clock_is_replaced_once_it_expires(
    catalog: Catalog, bucket: Bucket, clock: ManualClock
) -> None:
    held = version(bucket, "k", retention_mode="GOVERNANCE", retain_until=clock.time() + 60)
    await catalog.commit_version(held)
    with pytest.raises(ObjectLocked):
        await catalog.commit_version(version(bucket, "k"))
    clock.advance(61)
    await catalog.commit_version(replacing := version(bucket, "k"))
    current = await catalog.get_object(bucket.id, "k")
    assert current is not None and current.version_id == replacing.version_id


async def test_files_enter_the_trash_at_the_clock_s_time(
    catalog: Catalog, bucket: Bucket, clock: ManualClock
) -> None:
    clock.advance(HOUR)  # an hour ahead of the system's time
    first = version(bucket, "k")
    await catalog.commit_version(first)
    await catalog.commit_version(version(bucket, "k"))  # replaces the null version
    assert await catalog.trash_due(clock.time(), 100) == []  # trashed at this very time
    clock.advance(1)
    due = await catalog.trash_due(clock.time(), 100)
    assert {(t.site, t.shard) for t in due} == set(first.shard_files())


async def test_a_job_lease_runs_out_by_the_clock(catalog: Catalog, clock: ManualClock) -> None:
    job = await catalog.create_job("scrub", {})
    assert job.created == clock.time()
    claimed = await catalog.claim_job(job.id, (), "w1", 60)
    assert claimed is not None and claimed.lease_until == clock.time() + 60
    assert await catalog.claim_job(job.id, (), "w2", 60) is None  # held
    clock.advance(61)
    taken = await catalog.claim_job(job.id, (), "w2", 60)
    assert taken is not None and taken.owner == "w2"


async def test_sightings_are_dated_by_the_clock(catalog: Catalog, clock: ManualClock) -> None:
    await catalog.record_sightings("paris", ["stray-0-0"])
    assert await catalog.sightings("paris") == {"stray-0-0": clock.time()}
