"""Catalog contract: committing versions (null-version replacement, delete markers, write
conditions decided at commit), reading them back, removing them, Object Lock."""

from __future__ import annotations

import asyncio
import time
from dataclasses import replace

import pytest
from tests.catalog.contract.builders import future, marker, new_bucket, trashed, version

from egide.catalog.base import Catalog
from egide.domain import (
    Bucket,
    BucketNotFound,
    KeyNotFound,
    ObjectLocked,
    ObjectVersion,
    PreconditionFailed,
    WriteCondition,
    new_id,
)


def files(*versions: ObjectVersion) -> set[tuple[str, str]]:
    return {f for v in versions for f in v.shard_files()}


# -- commit and read back -----------------------------------------------------------------------


async def test_a_committed_version_is_current_and_read_back_whole(
    catalog: Catalog, bucket: Bucket
) -> None:
    assert await catalog.get_object(bucket.id, "a.txt") is None
    committed = version(
        bucket, "a.txt", headers={"content-type": "text/plain", "x-amz-meta-é": "😀 ü"},
        retention_mode="GOVERNANCE", retain_until=future(), legal_hold=True,
    )  # fmt: skip
    await catalog.commit_version(committed)
    for found in (
        await catalog.get_object(bucket.id, "a.txt"),
        await catalog.get_version(bucket.id, "a.txt", None),
        await catalog.get_version_by_id(committed.version_id),
    ):
        assert found == committed
        assert found is not None and found.headers == committed.headers
    assert await trashed(catalog) == []


async def test_get_version_by_its_id(catalog: Catalog, bucket: Bucket) -> None:
    first, second = version(bucket, "k", null=False), version(bucket, "k", null=False)
    await catalog.commit_version(first)
    await catalog.commit_version(second)
    assert await catalog.get_version(bucket.id, "k", first.version_id) == first
    assert await catalog.get_version(bucket.id, "k", second.version_id) == second
    assert await catalog.get_version(bucket.id, "k", None) is None  # no null version
    assert await catalog.get_version(bucket.id, "other", first.version_id) is None
    assert await catalog.get_version(bucket.id, "k", new_id()) is None
    assert await catalog.get_version_by_id(new_id()) is None


async def test_the_same_key_in_two_buckets_is_two_objects(catalog: Catalog, bucket: Bucket) -> None:
    other = new_bucket("other")
    await catalog.create_bucket(other)
    mine, theirs = version(bucket, "k"), version(other, "k")
    await catalog.commit_version(mine)
    await catalog.commit_version(theirs)
    assert await catalog.get_object(bucket.id, "k") == mine
    assert await catalog.get_object(other.id, "k") == theirs
    assert await trashed(catalog) == []


async def test_keys_are_exact(catalog: Catalog, bucket: Bucket) -> None:
    """Case, trailing spaces and characters that are wildcards in SQL all count."""
    await catalog.commit_version(version(bucket, "A_b%"))
    for near in ("a_b%", "A_b% ", "AXb%", "A_bX", "A_b"):
        assert await catalog.get_object(bucket.id, near) is None


async def test_a_commit_into_an_unknown_bucket_raises_bucket_not_found(catalog: Catalog) -> None:
    with pytest.raises(BucketNotFound):
        await catalog.commit_version(version(new_bucket(), "k"))


async def test_versions_accumulate_newest_current(catalog: Catalog, bucket: Bucket) -> None:
    versions = [version(bucket, "k", null=False) for _ in range(3)]
    for each in versions:
        await catalog.commit_version(each)
        assert await catalog.get_object(bucket.id, "k") == each
    for each in versions:
        assert await catalog.get_version(bucket.id, "k", each.version_id) == each
    assert await trashed(catalog) == []


async def test_a_null_version_replaces_the_null_one_wherever_it_is(
    catalog: Catalog, bucket: Bucket
) -> None:
    null1 = version(bucket, "k")
    kept = version(bucket, "k", null=False)
    await catalog.commit_version(null1)
    await catalog.commit_version(kept)
    null2 = version(bucket, "k")
    await catalog.commit_version(null2)
    assert await catalog.get_object(bucket.id, "k") == null2
    assert await catalog.get_version(bucket.id, "k", None) == null2
    assert await catalog.get_version(bucket.id, "k", null1.version_id) is None
    assert await catalog.get_version(bucket.id, "k", kept.version_id) == kept
    # Only the replaced null version's files go to the trash.
    assert set(await trashed(catalog)) == files(null1)
    assert len(await trashed(catalog)) == len(files(null1))


async def test_a_null_delete_marker_replaces_the_null_version(
    catalog: Catalog, bucket: Bucket
) -> None:
    null = version(bucket, "k")
    await catalog.commit_version(null)
    hide = marker(bucket, "k", null=True)
    await catalog.commit_version(hide)
    assert await catalog.get_object(bucket.id, "k") == hide
    assert await catalog.get_version(bucket.id, "k", None) == hide
    assert set(await trashed(catalog)) == files(null)
    # And a null version replaces the null marker, which had no files.
    again = version(bucket, "k")
    await catalog.commit_version(again)
    assert await catalog.get_object(bucket.id, "k") == again
    assert set(await trashed(catalog)) == files(null)


async def test_a_delete_marker_is_the_current_version(catalog: Catalog, bucket: Bucket) -> None:
    data = version(bucket, "k", null=False)
    await catalog.commit_version(data)
    hide = marker(bucket, "k")
    await catalog.commit_version(hide)
    current = await catalog.get_object(bucket.id, "k")
    assert current == hide
    assert current is not None and current.delete_marker
    assert await catalog.get_version(bucket.id, "k", data.version_id) == data
    assert await trashed(catalog) == []


# -- write conditions ---------------------------------------------------------------------------


async def test_if_none_match_star_writes_only_a_new_key(catalog: Catalog, bucket: Bucket) -> None:
    create_only = WriteCondition(if_none_match="*")
    first = version(bucket, "k")
    await catalog.commit_version(first, create_only)
    refused = version(bucket, "k")
    with pytest.raises(PreconditionFailed):
        await catalog.commit_version(refused, create_only)
    assert await catalog.get_object(bucket.id, "k") == first
    # The refused version's files were written already: they go to the trash, not leak.
    assert set(await trashed(catalog)) == files(refused)


async def test_if_none_match_an_etag(catalog: Catalog, bucket: Bucket) -> None:
    first = version(bucket, "k", etag='"one"')
    await catalog.commit_version(first)
    with pytest.raises(PreconditionFailed):
        await catalog.commit_version(version(bucket, "k"), WriteCondition(if_none_match='"one"'))
    second = version(bucket, "k")
    await catalog.commit_version(second, WriteCondition(if_none_match='"two"'))
    assert await catalog.get_object(bucket.id, "k") == second


async def test_if_match(catalog: Catalog, bucket: Bucket) -> None:
    with pytest.raises(KeyNotFound):
        await catalog.commit_version(version(bucket, "k"), WriteCondition(if_match="*"))
    first = version(bucket, "k", etag='"one"')
    await catalog.commit_version(first)
    with pytest.raises(PreconditionFailed):
        await catalog.commit_version(version(bucket, "k"), WriteCondition(if_match='"two"'))
    second = version(bucket, "k", etag='"two"')
    await catalog.commit_version(second, WriteCondition(if_match='"one"'))
    third = version(bucket, "k")
    await catalog.commit_version(third, WriteCondition(if_match="*"))
    assert await catalog.get_object(bucket.id, "k") == third


async def test_a_delete_marker_counts_as_no_object_for_conditions(
    catalog: Catalog, bucket: Bucket
) -> None:
    await catalog.commit_version(version(bucket, "k", null=False, etag='"one"'))
    await catalog.commit_version(marker(bucket, "k"))
    with pytest.raises(KeyNotFound):
        await catalog.commit_version(version(bucket, "k"), WriteCondition(if_match='"one"'))
    created = version(bucket, "k", null=False)
    await catalog.commit_version(created, WriteCondition(if_none_match="*"))
    assert await catalog.get_object(bucket.id, "k") == created


async def test_if_version_holds_while_the_newest_is_unchanged(
    catalog: Catalog, bucket: Bucket
) -> None:
    first = version(bucket, "k", null=False, etag='"same"')
    await catalog.commit_version(first)
    with pytest.raises(PreconditionFailed):  # a key without versions has no such newest
        await catalog.commit_version(
            version(bucket, "other"), WriteCondition(if_version=first.version_id)
        )
    # A newer write of the same bytes (same ETag) still changes the newest version.
    same_bytes = version(bucket, "k", null=False, etag='"same"')
    await catalog.commit_version(same_bytes)
    with pytest.raises(PreconditionFailed):
        await catalog.commit_version(
            marker(bucket, "k"), WriteCondition(if_version=first.version_id)
        )
    hide = marker(bucket, "k")
    await catalog.commit_version(hide, WriteCondition(if_version=same_bytes.version_id))
    assert await catalog.get_object(bucket.id, "k") == hide
    # A delete marker is a newest version too, by its id.
    await catalog.commit_version(version(bucket, "k"), WriteCondition(if_version=hide.version_id))


async def test_racing_create_only_writers_one_wins(catalog: Catalog, bucket: Bucket) -> None:
    racers = [version(bucket, "k") for _ in range(8)]
    results = await asyncio.gather(
        *(catalog.commit_version(v, WriteCondition(if_none_match="*")) for v in racers),
        return_exceptions=True,
    )
    assert sum(r is None for r in results) == 1
    assert all(isinstance(r, PreconditionFailed) for r in results if r is not None)
    assert await catalog.get_object(bucket.id, "k") == racers[results.index(None)]
    losers = [v for v, r in zip(racers, results, strict=True) if r is not None]
    assert set(await trashed(catalog)) == files(*losers)


async def test_racing_if_match_writers_one_wins(catalog: Catalog, bucket: Bucket) -> None:
    """Each racer read the same ETag; whichever commits first changes it for the others."""
    await catalog.commit_version(version(bucket, "k", null=False, etag='"base"'))
    racers = [version(bucket, "k", null=False) for _ in range(8)]
    results = await asyncio.gather(
        *(catalog.commit_version(v, WriteCondition(if_match='"base"')) for v in racers),
        return_exceptions=True,
    )
    assert sum(r is None for r in results) == 1
    assert all(isinstance(r, PreconditionFailed) for r in results if r is not None)
    assert await catalog.get_object(bucket.id, "k") == racers[results.index(None)]


async def test_unconditional_racers_all_commit_one_is_newest(
    catalog: Catalog, bucket: Bucket
) -> None:
    racers = [version(bucket, "k", null=False) for _ in range(8)]
    await asyncio.gather(*(catalog.commit_version(v) for v in racers))
    current = await catalog.get_object(bucket.id, "k")
    assert current in racers
    for each in racers:
        assert await catalog.get_version(bucket.id, "k", each.version_id) == each


# -- delete_version ---------------------------------------------------------------------------


async def test_delete_version_returns_it_and_trashes_its_files(
    catalog: Catalog, bucket: Bucket
) -> None:
    only = version(bucket, "k")
    await catalog.commit_version(only)
    assert await catalog.delete_version(bucket.id, "k", None) == only
    assert await catalog.get_object(bucket.id, "k") is None
    assert await catalog.get_version_by_id(only.version_id) is None
    assert set(await trashed(catalog)) == files(only)


async def test_delete_an_absent_version_is_none(catalog: Catalog, bucket: Bucket) -> None:
    assert await catalog.delete_version(bucket.id, "k", None) is None
    assert await catalog.delete_version(bucket.id, "k", new_id()) is None
    kept = version(bucket, "k", null=False)
    await catalog.commit_version(kept)
    assert await catalog.delete_version(bucket.id, "k", None) is None  # it has no null version
    assert await catalog.delete_version(bucket.id, "other", kept.version_id) is None
    assert await catalog.get_object(bucket.id, "k") == kept
    assert await trashed(catalog) == []


async def test_deleting_the_newest_makes_the_next_newest_current(
    catalog: Catalog, bucket: Bucket
) -> None:
    older, middle, newer = (version(bucket, "k", null=False) for _ in range(3))
    for each in (older, middle, newer):
        await catalog.commit_version(each)
    assert await catalog.delete_version(bucket.id, "k", middle.version_id) == middle
    assert await catalog.get_object(bucket.id, "k") == newer  # a noncurrent one: no change
    await catalog.delete_version(bucket.id, "k", newer.version_id)
    assert await catalog.get_object(bucket.id, "k") == older
    await catalog.delete_version(bucket.id, "k", older.version_id)
    assert await catalog.get_object(bucket.id, "k") is None
    assert set(await trashed(catalog)) == files(older, middle, newer)


async def test_removing_a_delete_marker_uncovers_the_version(
    catalog: Catalog, bucket: Bucket
) -> None:
    data = version(bucket, "k", null=False)
    hide = marker(bucket, "k")
    await catalog.commit_version(data)
    await catalog.commit_version(hide)
    assert await catalog.delete_version(bucket.id, "k", hide.version_id) == hide
    assert await catalog.get_object(bucket.id, "k") == data
    assert await trashed(catalog) == []


async def test_delete_with_expected_only_while_it_is_current(
    catalog: Catalog, bucket: Bucket
) -> None:
    """A lifecycle rule decided on `expected`; a newer write since then keeps the key."""
    first = version(bucket, "k")
    await catalog.commit_version(first)
    assert await catalog.delete_version(bucket.id, "k", None, expected=new_id()) is None
    assert await catalog.get_object(bucket.id, "k") == first
    newer = version(bucket, "k", null=False)
    await catalog.commit_version(newer)
    # `first` is no longer the current version: kept.
    assert await catalog.delete_version(bucket.id, "k", None, expected=first.version_id) is None
    assert await catalog.get_version(bucket.id, "k", None) == first
    assert (
        await catalog.delete_version(bucket.id, "k", newer.version_id, expected=newer.version_id)
        == newer
    )
    assert await catalog.delete_version(bucket.id, "k", None, expected=first.version_id) == first
    assert await catalog.get_object(bucket.id, "k") is None


# -- Object Lock ------------------------------------------------------------------------------


async def test_a_legal_hold_refuses_deletion_even_with_bypass(
    catalog: Catalog, bucket: Bucket
) -> None:
    held = version(bucket, "k", null=False, legal_hold=True)
    await catalog.commit_version(held)
    for bypass in (False, True):
        with pytest.raises(ObjectLocked):
            await catalog.delete_version(bucket.id, "k", held.version_id, bypass_governance=bypass)
    assert await catalog.get_object(bucket.id, "k") == held
    released = await catalog.set_lock(bucket.id, "k", held.version_id, legal_hold=False)
    assert not released.legal_hold
    assert await catalog.delete_version(bucket.id, "k", held.version_id) == released


async def test_compliance_refuses_deletion_even_with_bypass(
    catalog: Catalog, bucket: Bucket
) -> None:
    kept = version(bucket, "k", null=False, retention_mode="COMPLIANCE", retain_until=future())
    await catalog.commit_version(kept)
    for bypass in (False, True):
        with pytest.raises(ObjectLocked):
            await catalog.delete_version(bucket.id, "k", kept.version_id, bypass_governance=bypass)
    assert await catalog.get_object(bucket.id, "k") == kept
    assert await trashed(catalog) == []


async def test_governance_refuses_deletion_without_bypass(catalog: Catalog, bucket: Bucket) -> None:
    kept = version(bucket, "k", null=False, retention_mode="GOVERNANCE", retain_until=future())
    await catalog.commit_version(kept)
    with pytest.raises(ObjectLocked):
        await catalog.delete_version(bucket.id, "k", kept.version_id)
    assert (
        await catalog.delete_version(bucket.id, "k", kept.version_id, bypass_governance=True)
        == kept
    )


async def test_an_expired_retention_protects_nothing(catalog: Catalog, bucket: Bucket) -> None:
    past = time.time() - 1
    old = version(bucket, "k", null=False, retention_mode="COMPLIANCE", retain_until=past)
    await catalog.commit_version(old)
    assert await catalog.delete_version(bucket.id, "k", old.version_id) == old


async def test_a_locked_null_version_is_not_replaced(catalog: Catalog, bucket: Bucket) -> None:
    locked = version(bucket, "k", retention_mode="COMPLIANCE", retain_until=future())
    await catalog.commit_version(locked)
    refused = version(bucket, "k")
    with pytest.raises(ObjectLocked):
        await catalog.commit_version(refused)
    with pytest.raises(ObjectLocked):
        await catalog.commit_version(marker(bucket, "k", null=True))
    assert await catalog.get_object(bucket.id, "k") == locked
    assert set(await trashed(catalog)) == files(refused)
    # A non-null version is added beside it.
    beside = version(bucket, "k", null=False)
    await catalog.commit_version(beside)
    assert await catalog.get_version(bucket.id, "k", None) == locked


async def test_set_lock_changes_and_returns_the_version(catalog: Catalog, bucket: Bucket) -> None:
    plain = version(bucket, "k")
    await catalog.commit_version(plain)
    until = future()
    locked = await catalog.set_lock(bucket.id, "k", None, retention=("GOVERNANCE", until))
    assert (locked.version_id, locked.retention_mode, locked.retain_until) == (
        plain.version_id, "GOVERNANCE", until,
    )  # fmt: skip
    held = await catalog.set_lock(bucket.id, "k", plain.version_id, legal_hold=True)
    assert held.legal_hold and held.retention_mode == "GOVERNANCE"
    assert await catalog.get_version(bucket.id, "k", None) == held
    assert await catalog.get_version(bucket.id, "k", None) == replace(
        plain, retention_mode="GOVERNANCE", retain_until=until, legal_hold=True
    )


async def test_set_lock_on_an_absent_version_raises_key_not_found(
    catalog: Catalog, bucket: Bucket
) -> None:
    with pytest.raises(KeyNotFound):
        await catalog.set_lock(bucket.id, "k", None, legal_hold=True)
    await catalog.commit_version(version(bucket, "k", null=False))
    with pytest.raises(KeyNotFound):
        await catalog.set_lock(bucket.id, "k", new_id(), legal_hold=True)


async def test_compliance_can_only_be_extended(catalog: Catalog, bucket: Bucket) -> None:
    until = future()
    kept = version(bucket, "k", retention_mode="COMPLIANCE", retain_until=until)
    await catalog.commit_version(kept)
    for weaker in (("COMPLIANCE", until - 60), (None, None), ("GOVERNANCE", until + 60)):
        for bypass in (False, True):
            with pytest.raises(ObjectLocked):
                await catalog.set_lock(
                    bucket.id, "k", None, retention=weaker, bypass_governance=bypass
                )
    assert await catalog.get_object(bucket.id, "k") == kept
    longer = await catalog.set_lock(bucket.id, "k", None, retention=("COMPLIANCE", until + 60))
    assert longer.retain_until == until + 60
    # A legal hold is separate from the retention: it may be set and released.
    held = await catalog.set_lock(bucket.id, "k", None, legal_hold=True)
    assert held.legal_hold
    assert not (await catalog.set_lock(bucket.id, "k", None, legal_hold=False)).legal_hold


async def test_governance_is_weakened_only_with_bypass(catalog: Catalog, bucket: Bucket) -> None:
    until = future()
    await catalog.commit_version(
        version(bucket, "k", retention_mode="GOVERNANCE", retain_until=until)
    )
    for weaker in (("GOVERNANCE", until - 60), (None, None), ("COMPLIANCE", until + 60)):
        with pytest.raises(ObjectLocked):
            await catalog.set_lock(bucket.id, "k", None, retention=weaker)
    longer = await catalog.set_lock(bucket.id, "k", None, retention=("GOVERNANCE", until + 60))
    assert longer.retain_until == until + 60
    shorter = await catalog.set_lock(
        bucket.id, "k", None, retention=("GOVERNANCE", until - 60), bypass_governance=True
    )
    assert shorter.retain_until == until - 60
    removed = await catalog.set_lock(
        bucket.id, "k", None, retention=(None, None), bypass_governance=True
    )
    assert (removed.retention_mode, removed.retain_until) == (None, None)
    assert await catalog.delete_version(bucket.id, "k", None) == removed


async def test_an_expired_retention_may_be_changed_freely(catalog: Catalog, bucket: Bucket) -> None:
    await catalog.commit_version(
        version(bucket, "k", retention_mode="COMPLIANCE", retain_until=time.time() - 1)
    )
    cleared = await catalog.set_lock(bucket.id, "k", None, retention=(None, None))
    assert cleared.retain_until is None


# -- headers, markers, presence ----------------------------------------------------------------


async def test_update_version_headers_in_place(catalog: Catalog, bucket: Bucket) -> None:
    first, second = version(bucket, "k", null=False), version(bucket, "k", null=False)
    await catalog.commit_version(first)
    await catalog.commit_version(second)
    tagged = {"content-type": "text/plain", "x-amz-tagging": "a=%C3%A9&b=2"}
    assert await catalog.update_version_headers(first.version_id, tagged)
    assert await catalog.get_version(bucket.id, "k", first.version_id) == replace(
        first, headers=tagged
    )
    assert await catalog.get_object(bucket.id, "k") == second  # still the current one
    assert await catalog.update_version_headers(first.version_id, {})
    found = await catalog.get_version_by_id(first.version_id)
    assert found is not None and found.headers == {}


async def test_update_headers_of_a_gone_version_is_false(catalog: Catalog, bucket: Bucket) -> None:
    replaced = version(bucket, "k")
    await catalog.commit_version(replaced)
    await catalog.commit_version(version(bucket, "k"))
    assert not await catalog.update_version_headers(replaced.version_id, {"x": "y"})
    assert not await catalog.update_version_headers(new_id(), {"x": "y"})


async def test_versions_present_and_delete_markers(catalog: Catalog, bucket: Bucket) -> None:
    other = new_bucket("other")
    await catalog.create_bucket(other)
    data, hide, there = version(bucket, "k", null=False), marker(bucket, "k"), marker(other, "o")
    for each in (data, hide, there):
        await catalog.commit_version(each)
    gone = version(bucket, "gone")
    await catalog.commit_version(gone)
    await catalog.delete_version(bucket.id, "gone", None)
    ids = [data.version_id, hide.version_id, there.version_id, gone.version_id, new_id()]
    assert await catalog.versions_present(ids) == {
        data.version_id, hide.version_id, there.version_id,
    }  # fmt: skip
    assert await catalog.versions_present([]) == set()
    assert sorted(await catalog.delete_markers()) == sorted(
        [(bucket.id, hide.version_id), (other.id, there.version_id)]
    )


async def test_versions_present_answers_for_many_ids(catalog: Catalog, bucket: Bucket) -> None:
    committed = [version(bucket, f"k{i}") for i in range(30)]
    for each in committed:
        await catalog.commit_version(each)
    asked = [new_id() for _ in range(1500)] + [v.version_id for v in committed]
    assert await catalog.versions_present(asked) == {v.version_id for v in committed}


# -- keys as S3 has them, and races with lifecycle decisions -----------------------------------


async def test_keys_are_not_normalised(catalog: Catalog, bucket: Bucket) -> None:
    """ "é" composed and "e" + combining accent are two keys to S3."""
    composed, decomposed = version(bucket, "caf\u00e9"), version(bucket, "cafe\u0301")
    await catalog.commit_version(composed)
    await catalog.commit_version(decomposed)
    assert await catalog.get_object(bucket.id, "caf\u00e9") == composed
    assert await catalog.get_object(bucket.id, "cafe\u0301") == decomposed
    listed = await catalog.list_objects(bucket.id, "caf", None, 10)
    assert [v.key for v in listed] == ["cafe\u0301", "caf\u00e9"]
    assert await trashed(catalog) == []


async def test_the_longest_key_s3_allows(catalog: Catalog, bucket: Bucket) -> None:
    """1,024 bytes of UTF-8, here in 4-byte characters."""
    key = "😀" * 256
    assert len(key.encode()) == 1024
    long = version(bucket, key)
    await catalog.commit_version(long)
    assert await catalog.get_object(bucket.id, key) == long
    assert await catalog.list_objects(bucket.id, "😀" * 255, None, 10) == [long]


async def test_a_marker_decided_on_a_version_never_hides_a_newer_write(
    catalog: Catalog, bucket: Bucket
) -> None:
    """A lifecycle expiration (marker on condition of the version it saw) racing a PUT."""
    seen = version(bucket, "k", null=False)
    await catalog.commit_version(seen)
    fresh, hide = version(bucket, "k", null=False), marker(bucket, "k")
    results = await asyncio.gather(
        catalog.commit_version(fresh),
        catalog.commit_version(hide, WriteCondition(if_version=seen.version_id)),
        return_exceptions=True,
    )
    assert results[0] is None
    assert results[1] is None or isinstance(results[1], PreconditionFailed)
    assert await catalog.get_object(bucket.id, "k") == fresh


async def test_an_expiration_decided_on_a_version_never_removes_a_newer_write(
    catalog: Catalog, bucket: Bucket
) -> None:
    """delete_version(expected=…) racing a PUT that replaces the null version."""
    seen = version(bucket, "k")
    await catalog.commit_version(seen)
    fresh = version(bucket, "k")
    results = await asyncio.gather(
        catalog.commit_version(fresh),
        catalog.delete_version(bucket.id, "k", None, expected=seen.version_id),
    )
    assert results[1] in (seen, None)
    assert await catalog.get_object(bucket.id, "k") == fresh
    assert set(await trashed(catalog)) == files(seen)


async def test_many_keys_committed_at_once_all_land(catalog: Catalog, bucket: Bucket) -> None:
    committed = [version(bucket, f"k{i:03}") for i in range(60)]
    await asyncio.gather(*(catalog.commit_version(v) for v in committed))
    assert await catalog.list_objects(bucket.id, "", None, 100) == committed
