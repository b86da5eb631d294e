"""Catalog contract: buckets (create, find, list, delete) and their settings and counts."""

from __future__ import annotations

import asyncio

import pytest
from tests.catalog.contract.builders import (
    marker,
    new_bucket,
    part,
    part_files,
    trashed,
    upload,
    version,
)

from egide.catalog.base import Catalog
from egide.domain import Bucket, BucketExists, BucketNotEmpty, BucketNotFound


async def test_a_created_bucket_is_found_by_name_and_by_id(catalog: Catalog) -> None:
    bucket = new_bucket("photos")
    await catalog.create_bucket(bucket)
    assert await catalog.get_bucket("photos") == bucket
    assert await catalog.get_bucket_by_id(bucket.id) == bucket


async def test_an_unknown_bucket_is_none(catalog: Catalog) -> None:
    assert await catalog.get_bucket("nope") is None
    assert await catalog.get_bucket_by_id(new_bucket().id) is None
    assert await catalog.list_buckets() == []


async def test_bucket_names_are_exact(catalog: Catalog) -> None:
    await catalog.create_bucket(new_bucket("photos"))
    for near in ("Photos", "photo", "photos ", "photo_", "photo%"):
        assert await catalog.get_bucket(near) is None


async def test_list_buckets_by_name(catalog: Catalog) -> None:
    created = [new_bucket(name) for name in ("zeta", "alpha", "mid-1", "mid.0")]
    for bucket in created:
        await catalog.create_bucket(bucket)
    listed = await catalog.list_buckets()
    assert [b.name for b in listed] == ["alpha", "mid-1", "mid.0", "zeta"]
    assert sorted(listed, key=lambda b: b.name) == sorted(created, key=lambda b: b.name)


async def test_a_taken_name_raises_bucket_exists(catalog: Catalog) -> None:
    first = new_bucket("photos")
    await catalog.create_bucket(first)
    with pytest.raises(BucketExists):
        await catalog.create_bucket(new_bucket("photos"))
    assert await catalog.list_buckets() == [first]


async def test_racing_creations_of_one_name_one_wins(catalog: Catalog) -> None:
    racers = [new_bucket("photos") for _ in range(6)]
    results = await asyncio.gather(
        *(catalog.create_bucket(b) for b in racers), return_exceptions=True
    )
    assert sum(r is None for r in results) == 1
    assert all(isinstance(r, BucketExists) for r in results if r is not None)
    winner = racers[results.index(None)]
    assert await catalog.list_buckets() == [winner]


async def test_delete_an_empty_bucket(catalog: Catalog, bucket: Bucket) -> None:
    await catalog.delete_bucket("photos")
    assert await catalog.get_bucket("photos") is None
    assert await catalog.get_bucket_by_id(bucket.id) is None
    assert await catalog.list_buckets() == []


async def test_delete_an_unknown_bucket_raises_bucket_not_found(catalog: Catalog) -> None:
    with pytest.raises(BucketNotFound):
        await catalog.delete_bucket("nope")


async def test_any_version_keeps_a_bucket_from_deletion(catalog: Catalog, bucket: Bucket) -> None:
    """Noncurrent versions and delete markers count, as in S3."""
    kept = version(bucket, "old", null=False)
    await catalog.commit_version(kept)
    await catalog.commit_version(marker(bucket, "old"))
    with pytest.raises(BucketNotEmpty):
        await catalog.delete_bucket("photos")
    await catalog.delete_version(bucket.id, "old", kept.version_id)
    with pytest.raises(BucketNotEmpty):  # the delete marker is left
        await catalog.delete_bucket("photos")
    assert await catalog.get_bucket("photos") == bucket


async def test_a_bucket_emptied_of_its_versions_can_go(catalog: Catalog, bucket: Bucket) -> None:
    first, second = version(bucket, "a", null=False), marker(bucket, "a")
    await catalog.commit_version(first)
    await catalog.commit_version(second)
    for each in (first, second):
        assert await catalog.delete_version(bucket.id, "a", each.version_id) == each
    await catalog.delete_bucket("photos")
    assert await catalog.get_bucket("photos") is None


async def test_uploads_in_progress_die_with_their_bucket(catalog: Catalog, bucket: Bucket) -> None:
    """As in S3; the files of their parts go to the trash rather than leak."""
    up = upload(bucket, "movie")
    await catalog.create_upload(up)
    await catalog.commit_part(
        up.upload_id, part(1, await catalog.next_part_seq(up.upload_id)), up.sites
    )
    await catalog.delete_bucket("photos")
    assert await catalog.get_upload(up.upload_id) is None
    assert part_files(up, 1) <= set(await trashed(catalog))


async def test_a_bucket_name_can_be_reused_after_deletion(catalog: Catalog, bucket: Bucket) -> None:
    await catalog.put_bucket_setting(bucket.id, "cors", "<CORSConfiguration/>")
    await catalog.delete_bucket("photos")
    again = new_bucket("photos")
    await catalog.create_bucket(again)
    assert await catalog.get_bucket("photos") == again
    # The settings of the deleted bucket are not inherited by its namesake.
    assert await catalog.get_bucket_setting(again.id, "cors") is None
    assert bucket.id not in await catalog.all_bucket_settings()


# -- settings --------------------------------------------------------------------------------


async def test_a_setting_is_set_read_replaced_and_removed(catalog: Catalog, bucket: Bucket) -> None:
    assert await catalog.get_bucket_setting(bucket.id, "cors") is None
    await catalog.put_bucket_setting(bucket.id, "cors", "<CORSConfiguration>é</CORSConfiguration>")
    assert await catalog.get_bucket_setting(bucket.id, "cors") == (
        "<CORSConfiguration>é</CORSConfiguration>"
    )
    await catalog.put_bucket_setting(bucket.id, "cors", "second")
    assert await catalog.get_bucket_setting(bucket.id, "cors") == "second"
    await catalog.put_bucket_setting(bucket.id, "cors", None)
    assert await catalog.get_bucket_setting(bucket.id, "cors") is None
    await catalog.put_bucket_setting(bucket.id, "cors", None)  # removing nothing is no error
    assert await catalog.all_bucket_settings() == {}


async def test_an_empty_setting_is_kept_apart_from_none(catalog: Catalog, bucket: Bucket) -> None:
    await catalog.put_bucket_setting(bucket.id, "tagging", "")
    assert await catalog.get_bucket_setting(bucket.id, "tagging") == ""


async def test_all_bucket_settings_by_bucket_then_name(catalog: Catalog, bucket: Bucket) -> None:
    other, bare = new_bucket("other"), new_bucket("bare")
    await catalog.create_bucket(other)
    await catalog.create_bucket(bare)
    await catalog.put_bucket_setting(bucket.id, "versioning", "Enabled")
    await catalog.put_bucket_setting(bucket.id, "cors", "rules")
    await catalog.put_bucket_setting(other.id, "versioning", "Suspended")
    assert await catalog.all_bucket_settings() == {
        bucket.id: {"versioning": "Enabled", "cors": "rules"},
        other.id: {"versioning": "Suspended"},
    }  # a bucket without settings is absent
    assert await catalog.get_bucket_setting(other.id, "cors") is None


# -- counts and locks --------------------------------------------------------------------------


async def test_count_bucket_counts_versions_with_data_and_uploads(
    catalog: Catalog, bucket: Bucket
) -> None:
    assert await catalog.count_bucket(bucket.id) == (0, 0, 0)
    other = new_bucket("other")
    await catalog.create_bucket(other)
    await catalog.commit_version(version(bucket, "a", null=False, size=100))
    await catalog.commit_version(version(bucket, "a", null=False, size=20))
    await catalog.commit_version(marker(bucket, "a"))  # holds no data
    await catalog.commit_version(version(bucket, "b", size=3))
    await catalog.commit_version(version(other, "elsewhere", size=1000))
    await catalog.create_upload(upload(bucket, "movie"))
    assert await catalog.count_bucket(bucket.id) == (3, 123, 1)
    assert await catalog.count_bucket(other.id) == (1, 1000, 0)


async def test_first_locked_version_finds_a_hold_or_a_retention_in_force(
    catalog: Catalog, bucket: Bucket
) -> None:
    now = 1_800_000_000.0
    await catalog.commit_version(version(bucket, "free", null=False))
    await catalog.commit_version(
        version(bucket, "expired", null=False, retention_mode="COMPLIANCE", retain_until=now - 1)
    )
    assert await catalog.first_locked_version(bucket.id, now) is None
    retained = version(
        bucket, "retained", null=False, retention_mode="GOVERNANCE", retain_until=now + 1
    )
    await catalog.commit_version(retained)
    assert await catalog.first_locked_version(bucket.id, now) == retained
    assert await catalog.first_locked_version(bucket.id, now + 2) is None
    held = version(bucket, "held", null=False, legal_hold=True)
    await catalog.commit_version(held)
    assert await catalog.first_locked_version(bucket.id, now + 2) == held
    assert await catalog.first_locked_version(bucket.id, now) in (held, retained)
    # Only its own bucket's versions count.
    other = new_bucket("other")
    await catalog.create_bucket(other)
    assert await catalog.first_locked_version(other.id, now) is None


async def test_a_bucket_deleted_while_a_version_commits_is_never_left_holding_it(
    catalog: Catalog, bucket: Bucket
) -> None:
    """Either the bucket goes and the commit finds no bucket, or the commit lands first and
    the bucket is not empty: never a version in a bucket that is gone."""
    for attempt in range(5):
        name = f"race-{attempt}"
        raced = new_bucket(name)
        await catalog.create_bucket(raced)
        committed = version(raced, "k")
        commit, delete = await asyncio.gather(
            catalog.commit_version(committed), catalog.delete_bucket(name), return_exceptions=True
        )
        if commit is None:
            assert isinstance(delete, BucketNotEmpty)
            assert await catalog.get_object(raced.id, "k") == committed
        else:
            assert isinstance(commit, BucketNotFound) and delete is None
            assert await catalog.get_version_by_id(committed.version_id) is None
            assert set(committed.shard_files()) <= set(await trashed(catalog))
