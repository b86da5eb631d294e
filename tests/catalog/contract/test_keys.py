"""Catalog contract: credentials, bucket key rotation (retired generations, rewrapping) and
crypto-shredding a bucket."""

from __future__ import annotations

import asyncio
import time

import pytest
from tests.catalog.contract.builders import (
    future,
    marker,
    new_bucket,
    part,
    part_files,
    trashed,
    upload,
    version,
)

from egide.catalog.base import Catalog, ShredSummary
from egide.domain import Bucket, BucketNotFound, ObjectLocked, new_id

# -- credentials ----------------------------------------------------------------------------------


async def test_credentials_are_added_found_and_counted(catalog: Catalog) -> None:
    assert await catalog.count_credentials() == 0
    assert await catalog.sealed_credentials() == []
    await catalog.add_credential("EGKEY2", b"sealed-2")
    await catalog.add_credential("EGKEY1", b"sealed-1\x00\xff")
    assert await catalog.get_credential("EGKEY1") == b"sealed-1\x00\xff"
    assert await catalog.get_credential("EGKEY2") == b"sealed-2"
    assert await catalog.get_credential("EGKEY3") is None
    assert await catalog.get_credential("egkey1") is None  # access keys are exact
    assert await catalog.count_credentials() == 2
    assert sorted(await catalog.sealed_credentials()) == [
        ("EGKEY1", b"sealed-1\x00\xff"), ("EGKEY2", b"sealed-2"),
    ]  # fmt: skip


async def test_reseal_only_where_still_the_old_secret(catalog: Catalog) -> None:
    await catalog.add_credential("A", b"old-a")
    await catalog.add_credential("B", b"old-b")
    changed = await catalog.reseal_credentials(
        [("A", b"old-a", b"new-a"), ("B", b"stale", b"new-b"), ("C", b"x", b"y")]
    )
    assert changed == 1
    assert sorted(await catalog.sealed_credentials()) == [("A", b"new-a"), ("B", b"old-b")]
    assert await catalog.reseal_credentials([("A", b"old-a", b"again")]) == 0
    assert await catalog.get_credential("A") == b"new-a"
    assert await catalog.count_credentials() == 2


# -- bucket key rotation --------------------------------------------------------------------------


async def test_a_rotation_retires_the_old_key_as_a_generation(
    catalog: Catalog, bucket: Bucket
) -> None:
    assert await catalog.bucket_key_rotation(bucket.id) is None
    assert await catalog.retired_bucket_keys(bucket.id) == []
    assert await catalog.start_bucket_key_rotation(bucket.id, bucket.wrapped_key, b"key-2")
    now = await catalog.get_bucket_by_id(bucket.id)
    assert now is not None and now.wrapped_key == b"key-2"
    assert await catalog.get_bucket("photos") == now
    assert await catalog.retired_bucket_keys(bucket.id) == [(bucket.id, 1, bucket.wrapped_key)]
    assert await catalog.bucket_key_rotation(bucket.id) == b""  # under way, at its start


async def test_one_rotation_at_a_time_and_only_from_the_current_key(
    catalog: Catalog, bucket: Bucket
) -> None:
    assert not await catalog.start_bucket_key_rotation(bucket.id, b"not-its-key", b"key-2")
    assert await catalog.retired_bucket_keys(bucket.id) == []
    assert await catalog.start_bucket_key_rotation(bucket.id, bucket.wrapped_key, b"key-2")
    # Under way: a second one waits for it to finish, even from the right key.
    assert not await catalog.start_bucket_key_rotation(bucket.id, b"key-2", b"key-3")
    await catalog.finish_bucket_key_rotation(bucket.id)
    assert await catalog.bucket_key_rotation(bucket.id) is None
    assert await catalog.start_bucket_key_rotation(bucket.id, b"key-2", b"key-3")
    await catalog.finish_bucket_key_rotation(bucket.id)
    # Newest generation first.
    assert await catalog.retired_bucket_keys(bucket.id) == [
        (bucket.id, 2, b"key-2"),
        (bucket.id, 1, bucket.wrapped_key),
    ]  # fmt: skip
    now = await catalog.get_bucket_by_id(bucket.id)
    assert now is not None and now.wrapped_key == b"key-3"


async def test_racing_rotations_one_starts(catalog: Catalog, bucket: Bucket) -> None:
    results = await asyncio.gather(
        *(
            catalog.start_bucket_key_rotation(bucket.id, bucket.wrapped_key, f"new-{i}".encode())
            for i in range(6)
        )
    )
    assert sum(results) == 1
    now = await catalog.get_bucket_by_id(bucket.id)
    assert now is not None and now.wrapped_key == f"new-{results.index(True)}".encode()
    assert await catalog.retired_bucket_keys(bucket.id) == [(bucket.id, 1, bucket.wrapped_key)]


async def test_retired_keys_of_every_bucket(catalog: Catalog, bucket: Bucket) -> None:
    other = new_bucket("other")
    await catalog.create_bucket(other)
    await catalog.start_bucket_key_rotation(bucket.id, bucket.wrapped_key, b"b1")
    await catalog.start_bucket_key_rotation(other.id, other.wrapped_key, b"o1")
    await catalog.finish_bucket_key_rotation(other.id)
    await catalog.start_bucket_key_rotation(other.id, b"o1", b"o2")
    assert sorted(await catalog.retired_bucket_keys()) == sorted(
        [(bucket.id, 1, bucket.wrapped_key), (other.id, 1, other.wrapped_key), (other.id, 2, b"o1")]
    )
    assert await catalog.retired_bucket_keys(other.id) == [
        (other.id, 2, b"o1"), (other.id, 1, other.wrapped_key),
    ]  # fmt: skip


async def test_rewrap_bucket_keys_where_still_the_old(catalog: Catalog, bucket: Bucket) -> None:
    """A master key rotation rewraps current and retired bucket keys."""
    other = new_bucket("other")
    await catalog.create_bucket(other)
    await catalog.start_bucket_key_rotation(bucket.id, bucket.wrapped_key, b"current")
    changed = await catalog.rewrap_bucket_keys(
        [(bucket.id, b"current", b"current-rewrapped"), (other.id, b"stale", b"nope")],
        [(bucket.id, 1, bucket.wrapped_key, b"retired-rewrapped"), (bucket.id, 2, b"x", b"y")],
    )
    assert changed == 2
    now = await catalog.get_bucket_by_id(bucket.id)
    assert now is not None and now.wrapped_key == b"current-rewrapped"
    assert await catalog.get_bucket_by_id(other.id) == other
    assert await catalog.retired_bucket_keys(bucket.id) == [(bucket.id, 1, b"retired-rewrapped")]
    assert await catalog.rewrap_bucket_keys([(bucket.id, b"current", b"z")], []) == 0


async def test_wrapped_data_keys_of_versions_and_uploads_in_id_order(
    catalog: Catalog, bucket: Bucket
) -> None:
    other = new_bucket("other")
    await catalog.create_bucket(other)
    versions = [version(bucket, f"k{i}", null=False) for i in range(5)]
    for each in versions:
        await catalog.commit_version(each)
    await catalog.commit_version(marker(bucket, "k0"))  # holds no data key
    await catalog.commit_version(version(other, "elsewhere"))
    up = upload(bucket, "movie")
    await catalog.create_upload(up)
    want = sorted(
        [(v.version_id, v.wrapped_data_key) for v in versions]
        + [(up.upload_id, up.wrapped_data_key)]
    )
    assert await catalog.wrapped_data_keys(bucket.id, b"", 100) == want
    assert await catalog.wrapped_data_keys(bucket.id, b"", 2) == want[:2]
    assert await catalog.wrapped_data_keys(bucket.id, want[2][0], 100) == want[3:]
    assert await catalog.wrapped_data_keys(bucket.id, want[-1][0], 100) == []
    # Pages with the last id as cursor cover every key once.
    seen: list[tuple[bytes, bytes]] = []
    position = b""
    while page := await catalog.wrapped_data_keys(bucket.id, position, 2):
        seen += page
        position = page[-1][0]
    assert seen == want


async def test_rewrap_data_keys_and_the_rotation_position(catalog: Catalog, bucket: Bucket) -> None:
    data = version(bucket, "k", null=False)
    await catalog.commit_version(data)
    up = upload(bucket, "movie")
    await catalog.create_upload(up)
    assert await catalog.start_bucket_key_rotation(bucket.id, bucket.wrapped_key, b"key-2")
    changed = await catalog.rewrap_data_keys(
        bucket.id,
        [
            (data.version_id, data.wrapped_data_key, b"dk-2"),
            (up.upload_id, up.wrapped_data_key, b"uk-2"),
            (new_id(), b"old", b"new"),
        ],
        up.upload_id,
    )
    assert changed == 2
    assert await catalog.bucket_key_rotation(bucket.id) == up.upload_id
    found = await catalog.get_version_by_id(data.version_id)
    assert found is not None and found.wrapped_data_key == b"dk-2"
    started = await catalog.get_upload(up.upload_id)
    assert started is not None and started.wrapped_data_key == b"uk-2"
    # Where the key is no longer the old one (rewrapped meanwhile), nothing changes.
    assert (
        await catalog.rewrap_data_keys(
            bucket.id, [(data.version_id, data.wrapped_data_key, b"dk-3")], None
        )
        == 0
    )
    assert await catalog.bucket_key_rotation(bucket.id) == up.upload_id  # None: not moved
    await catalog.finish_bucket_key_rotation(bucket.id)
    assert await catalog.bucket_key_rotation(bucket.id) is None


# -- crypto-shredding ---------------------------------------------------------------------------


async def test_shredding_forgets_a_bucket_its_content_and_keys(
    catalog: Catalog, bucket: Bucket
) -> None:
    other = new_bucket("other")
    await catalog.create_bucket(other)
    kept = version(other, "k")
    await catalog.commit_version(kept)
    versions = [version(bucket, "a", null=False), version(bucket, "a", null=False),
                version(bucket, "b")]  # fmt: skip
    for each in versions:
        await catalog.commit_version(each)
    await catalog.commit_version(marker(bucket, "b"))
    up = upload(bucket, "movie")
    await catalog.create_upload(up)
    seq = await catalog.next_part_seq(up.upload_id)
    await catalog.commit_part(up.upload_id, part(1, seq), up.sites)
    await catalog.put_bucket_setting(bucket.id, "versioning", "Enabled")
    await catalog.put_bucket_setting(bucket.id, "cors", "rules")
    await catalog.start_bucket_key_rotation(bucket.id, bucket.wrapped_key, b"key-2")
    await catalog.finish_bucket_key_rotation(bucket.id)
    before = time.time()

    summary = await catalog.shred_bucket(bucket.id, ["paris", "lille"])

    files = {f for v in versions for f in v.shard_files()} | part_files(up, seq)
    assert set(await trashed(catalog)) == files
    expected = ShredSummary(versions=3, delete_markers=1, uploads=1, settings=2,
                            bucket_keys=2, trashed_files=len(files))  # fmt: skip
    assert summary.counts() == expected.counts()
    assert await catalog.get_bucket("photos") is None
    assert await catalog.get_bucket_by_id(bucket.id) is None
    assert await catalog.list_buckets() == [other]
    assert await catalog.retired_bucket_keys(bucket.id) == []
    assert await catalog.get_upload(up.upload_id) is None
    assert await catalog.versions_present([v.version_id for v in versions]) == set()
    assert await catalog.delete_markers() == []
    assert bucket.id not in await catalog.all_bucket_settings()
    assert await catalog.get_object(other.id, "k") == kept
    [shredded] = await catalog.shredded_buckets()
    assert (shredded.bucket_id, shredded.name) == (bucket.id, "photos")
    assert before - 1 <= shredded.shredded <= time.time() + 1
    assert shredded.summary.counts() == expected.counts()
    assert shredded.pending_sites == ("lille", "paris")
    # The name is free again.
    await catalog.create_bucket(new_bucket("photos"))


async def test_shredded_buckets_forget_their_pending_sites(
    catalog: Catalog, bucket: Bucket
) -> None:
    assert await catalog.shredded_buckets() == []
    await catalog.shred_bucket(bucket.id, ["paris", "lyon", "lille"])
    await catalog.forget_pending_sites(bucket.id, ["lyon", "nowhere"])
    [shredded] = await catalog.shredded_buckets()
    assert shredded.pending_sites == ("lille", "paris")
    await catalog.forget_pending_sites(bucket.id, ["lille", "paris"])
    [shredded] = await catalog.shredded_buckets()
    assert shredded.pending_sites == ()
    await catalog.forget_pending_sites(new_id(), ["paris"])  # unknown: nothing to do


async def test_shredding_an_unknown_bucket_raises_bucket_not_found(catalog: Catalog) -> None:
    with pytest.raises(BucketNotFound):
        await catalog.shred_bucket(new_id(), [])
    assert await catalog.shredded_buckets() == []


@pytest.mark.parametrize("lock", ["legal_hold", "retention"])
async def test_a_locked_version_keeps_its_bucket_from_shredding(
    catalog: Catalog, bucket: Bucket, lock: str
) -> None:
    locked = version(bucket, "k", null=False, legal_hold=True) if lock == "legal_hold" else (
        version(bucket, "k", null=False, retention_mode="GOVERNANCE", retain_until=future())
    )  # fmt: skip
    free = version(bucket, "free")
    await catalog.commit_version(free)
    await catalog.commit_version(locked)
    await catalog.put_bucket_setting(bucket.id, "versioning", "Enabled")
    with pytest.raises(ObjectLocked):
        await catalog.shred_bucket(bucket.id, ["paris"])
    # Nothing changed.
    assert await catalog.get_bucket("photos") == bucket
    assert await catalog.get_object(bucket.id, "free") == free
    assert await catalog.get_object(bucket.id, "k") == locked
    assert await catalog.get_bucket_setting(bucket.id, "versioning") == "Enabled"
    assert await catalog.shredded_buckets() == []
    assert await trashed(catalog) == []


async def test_a_shredded_bucket_leaves_nothing_in_the_repair_queue(
    catalog: Catalog, bucket: Bucket
) -> None:
    other = new_bucket("other")
    await catalog.create_bucket(other)
    broken, elsewhere = version(bucket, "k"), version(other, "k")
    await catalog.commit_version(broken)
    await catalog.commit_version(elsewhere)
    await catalog.mark_damaged(broken.version_id, "shard missing")
    await catalog.mark_damaged(elsewhere.version_id, "shard missing")
    await catalog.shred_bucket(bucket.id, [])
    assert await catalog.damaged(None, 10) == [(elsewhere.version_id, "shard missing")]


async def test_the_position_is_saved_only_while_a_rotation_is_under_way(
    catalog: Catalog, bucket: Bucket
) -> None:
    """A late batch of a finished rotation must not make it look under way again."""
    assert await catalog.rewrap_data_keys(bucket.id, [], b"\x80" * 16) == 0
    assert await catalog.bucket_key_rotation(bucket.id) is None
    await catalog.start_bucket_key_rotation(bucket.id, bucket.wrapped_key, b"key-2")
    await catalog.rewrap_data_keys(bucket.id, [], b"\x10" * 16)  # a batch with nothing to do
    assert await catalog.bucket_key_rotation(bucket.id) == b"\x10" * 16
    await catalog.finish_bucket_key_rotation(bucket.id)
    await catalog.rewrap_data_keys(bucket.id, [], b"\x20" * 16)
    assert await catalog.bucket_key_rotation(bucket.id) is None
