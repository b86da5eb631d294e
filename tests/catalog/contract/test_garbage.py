"""Catalog contract: the trash (files to delete after a grace period), packs and their live
counts, shard moves, and which files on a site the catalog still references (garbage
collection deletes the others, so a wrong answer loses data)."""

from __future__ import annotations

import asyncio
import time
from dataclasses import replace

import pytest
from tests.catalog.contract.builders import (
    HOUR,
    SITES,
    completed,
    marker,
    new_bucket,
    packed,
    part,
    part_files,
    trashed,
    upload,
    version,
)

from egide.catalog.base import Catalog
from egide.domain import (
    SETTINGS_RECORD_SETTING,
    Bucket,
    BucketNotFound,
    ObjectVersion,
    PreconditionFailed,
    WriteCondition,
    amendment_name,
    credentials_record_name,
    legacy_amendment_name,
    legacy_marker_record_name,
    legacy_settings_record_name,
    marker_record_name,
    new_id,
    settings_record_name,
    shard_name,
)

PACK_SITES = ["paris", "lyon", "lille", "nantes", "brest", "nice"]


def pack_files(name: str, sites: list[str] = PACK_SITES) -> set[tuple[str, str]]:
    return {(site, name) for site in sites}


async def deleted(catalog: Catalog, v: ObjectVersion) -> None:
    assert await catalog.delete_version(v.bucket_id, v.key, v.version_id) == v


# -- trash ----------------------------------------------------------------------------------


async def test_trash_is_due_after_its_grace_period(catalog: Catalog, bucket: Bucket) -> None:
    gone = version(bucket, "k")
    await catalog.commit_version(gone)
    await deleted(catalog, gone)
    assert await catalog.trash_due(time.time() - HOUR, 100) == []  # trashed just now
    due = await catalog.trash_due(time.time() + 1, 100)
    assert {(t.site, t.shard) for t in due} == set(gone.shard_files())
    assert len({t.id for t in due}) == len(due) == 6
    assert await catalog.trash_due(time.time() + 1, 4) == due[:4]  # oldest first, limited


async def test_forget_trash(catalog: Catalog, bucket: Bucket) -> None:
    gone = version(bucket, "k")
    await catalog.commit_version(gone)
    await deleted(catalog, gone)
    due = await catalog.trash_due(time.time() + 1, 100)
    await catalog.forget_trash([t.id for t in due[:2]])
    assert await catalog.trash_due(time.time() + 1, 100) == due[2:]
    await catalog.forget_trash([due[0].id, 10**9])  # already forgotten, unknown: no error
    await catalog.forget_trash([t.id for t in due[2:]])
    assert await trashed(catalog) == []


async def test_trash_on_one_site_whatever_the_grace(catalog: Catalog, bucket: Bucket) -> None:
    gone = [version(bucket, f"k{i}") for i in range(3)]
    for each in gone:
        await catalog.commit_version(each)
        await deleted(catalog, each)
    on_lyon = await catalog.trash_on("lyon", 100)
    assert {t.shard for t in on_lyon} == {shard_name(v.version_id, 0, 1) for v in gone}
    assert all(t.site == "lyon" for t in on_lyon)
    assert len(await catalog.trash_on("lyon", 2)) == 2
    assert await catalog.trash_on("nowhere", 100) == []


# -- packs --------------------------------------------------------------------------------------


async def test_a_pack_is_trashed_with_its_last_object(catalog: Catalog, bucket: Bucket) -> None:
    versions = [packed(bucket, f"k{i}", "pack-1", i * 100) for i in range(3)]
    assert await catalog.commit_pack("pack-1", PACK_SITES, versions) == [None, None, None]
    for each in versions:
        assert await catalog.get_object(bucket.id, each.key) == each
    await deleted(catalog, versions[0])
    await catalog.commit_version(version(bucket, "k1"))  # replaced by an unpacked version
    assert await trashed(catalog) == []
    await deleted(catalog, versions[2])
    assert set(await trashed(catalog)) == pack_files("pack-1")


async def test_a_pack_version_replaced_in_its_own_batch(catalog: Catalog, bucket: Bucket) -> None:
    """Two PUTs of one key in one pack: the first is replaced at once, the pack lives on."""
    first, second = packed(bucket, "k", "pack-1", 0), packed(bucket, "k", "pack-1", 100)
    assert await catalog.commit_pack("pack-1", PACK_SITES, [first, second]) == [None, None]
    assert await catalog.get_object(bucket.id, "k") == second
    assert await trashed(catalog) == []
    await deleted(catalog, second)
    assert set(await trashed(catalog)) == pack_files("pack-1")


async def test_refused_pack_versions_hold_no_reference(catalog: Catalog, bucket: Bucket) -> None:
    existing = version(bucket, "taken")
    await catalog.commit_version(existing)
    free, taken = packed(bucket, "free", "pack-1", 0), packed(bucket, "taken", "pack-1", 100)
    create_only = WriteCondition(if_none_match="*")
    results = await catalog.commit_pack("pack-1", PACK_SITES, [free, taken], [None, create_only])
    assert results[0] is None and isinstance(results[1], PreconditionFailed)
    assert await catalog.get_object(bucket.id, "taken") == existing
    assert await trashed(catalog) == []  # the pack holds `free`; `taken` owns no file of its own
    await deleted(catalog, free)
    assert set(await trashed(catalog)) == pack_files("pack-1")


async def test_a_pack_whose_every_version_is_refused_is_trashed(
    catalog: Catalog, bucket: Bucket
) -> None:
    await catalog.commit_version(version(bucket, "k"))
    lost = packed(bucket, "k", "pack-1", 0)
    nowhere = packed(new_bucket("gone"), "k", "pack-1", 100)
    results = await catalog.commit_pack(
        "pack-1", PACK_SITES[:3], [lost, nowhere], [WriteCondition(if_none_match="*"), None]
    )
    assert isinstance(results[0], PreconditionFailed)
    assert isinstance(results[1], BucketNotFound)
    assert set(await trashed(catalog)) == pack_files("pack-1", PACK_SITES[:3])


async def test_pack_versions_are_read_back_with_their_place(
    catalog: Catalog, bucket: Bucket
) -> None:
    inside = packed(bucket, "k", "pack-1", 4096)
    await catalog.commit_pack("pack-1", PACK_SITES, [inside])
    found = await catalog.get_object(bucket.id, "k")
    assert found == inside
    assert found is not None and (found.pack, found.pack_offset) == ("pack-1", 4096)


# -- move_shards ---------------------------------------------------------------------------------


async def test_move_shards_of_an_unchanged_version(catalog: Catalog, bucket: Bucket) -> None:
    moved = version(bucket, "k")
    await catalog.commit_version(moved)
    sites = ("paris", "lyon", "lille", "nantes", "brest", "elsewhere")
    old = [("nice", shard_name(moved.version_id, 0, 5))]
    new = [("elsewhere", shard_name(moved.version_id, 0, 5))]
    assert await catalog.move_shards(moved, sites, old, new)
    found = await catalog.get_object(bucket.id, "k")
    assert found is not None and found.sites == sites
    assert set(await trashed(catalog)) == set(old)
    assert await catalog.unreferenced("elsewhere", [new[0][1]]) == []


async def test_move_shards_of_a_changed_version_trashes_what_was_written(
    catalog: Catalog, bucket: Bucket
) -> None:
    moved = version(bucket, "k")
    await catalog.commit_version(moved)
    stale = replace(moved, sites=("x", "y", "z", "u", "v", "w"))  # not the version as stored
    written = [("elsewhere", shard_name(moved.version_id, 0, 5))]
    assert not await catalog.move_shards(stale, SITES, [], written)
    assert await catalog.get_object(bucket.id, "k") == moved
    assert set(await trashed(catalog)) == set(written)


async def test_a_packed_version_moved_out_leaves_its_pack(catalog: Catalog, bucket: Bucket) -> None:
    inside, other = packed(bucket, "a", "pack-1", 0), packed(bucket, "b", "pack-1", 100)
    await catalog.commit_pack("pack-1", PACK_SITES, [inside, other])
    written = [(site, shard_name(inside.version_id, 0, i)) for i, site in enumerate(SITES)]
    assert await catalog.move_shards(inside, SITES, [], written)
    found = await catalog.get_object(bucket.id, "a")
    assert found is not None and (found.pack, found.sites) == (None, SITES)
    assert await catalog.unreferenced("paris", [shard_name(inside.version_id, 0, 0)]) == []
    assert await trashed(catalog) == []
    await deleted(catalog, other)  # its last object gone, the pack goes
    assert set(await trashed(catalog)) == pack_files("pack-1")


async def test_a_file_moved_back_is_taken_out_of_the_trash(
    catalog: Catalog, bucket: Bucket
) -> None:
    """Its old copy waits in the trash under the same name: the live file must not go."""
    moved = version(bucket, "k")
    await catalog.commit_version(moved)
    name = shard_name(moved.version_id, 0, 5)
    away = (*SITES[:5], "elsewhere")
    assert await catalog.move_shards(moved, away, [("nice", name)], [("elsewhere", name)])
    assert ("nice", name) in await trashed(catalog)
    back = await catalog.get_object(bucket.id, "k")
    assert back is not None
    assert await catalog.move_shards(back, SITES, [("elsewhere", name)], [("nice", name)])
    assert ("nice", name) not in await trashed(catalog)
    assert ("elsewhere", name) in await trashed(catalog)


# -- references ----------------------------------------------------------------------------------


async def test_site_references_count_what_lives_on_a_site(catalog: Catalog, bucket: Bucket) -> None:
    assert await catalog.site_references("paris") == {
        "versions": 0, "uploads": 0, "packs": 0, "trash": 0,
    }  # fmt: skip
    await catalog.commit_version(version(bucket, "a", sites=("paris", "lyon", "paris_2")))
    await catalog.commit_version(version(bucket, "b", sites=("lyon", "parisX2", "nice")))
    await catalog.create_upload(upload(bucket, "u", sites=("paris", "lyon")))
    await catalog.commit_pack("pack-1", ["paris", "nice"], [packed(bucket, "p", "pack-1", 0)])
    gone = version(bucket, "g", sites=("paris", "brest"))
    await catalog.commit_version(gone)
    await deleted(catalog, gone)
    assert await catalog.site_references("paris") == {
        "versions": 2, "uploads": 1, "packs": 1, "trash": 1,
    }  # fmt: skip  # "a" and the packed version
    # Names are exact: no prefix, no wildcard.
    assert await catalog.site_references("paris_2") == {
        "versions": 1, "uploads": 0, "packs": 0, "trash": 0,
    }  # fmt: skip
    assert await catalog.site_references("par") == {
        "versions": 0, "uploads": 0, "packs": 0, "trash": 0,
    }  # fmt: skip
    assert (await catalog.site_references("paris%"))["versions"] == 0


async def test_a_live_version_references_its_shards_on_their_sites(
    catalog: Catalog, bucket: Bucket
) -> None:
    live = version(bucket, "k")
    await catalog.commit_version(live)
    mine = [shard_name(live.version_id, 0, i) for i in range(6)]
    assert await catalog.unreferenced("paris", mine) == mine[1:]  # only piece 0 is there
    assert await catalog.unreferenced("lyon", [mine[1]]) == []
    extra = [shard_name(live.version_id, 0, 6), shard_name(live.version_id, 1, 0)]
    assert await catalog.unreferenced("paris", extra) == extra  # no such piece, no such part
    stray = [shard_name(new_id(), 0, 0), "notes.txt", "a-b", "zz-0-0", "pack-unknown"]
    assert await catalog.unreferenced("paris", stray) == stray


async def test_trashed_files_are_still_referenced(catalog: Catalog, bucket: Bucket) -> None:
    """They are deleted by the trash pass after the grace period, not by garbage collection."""
    gone = version(bucket, "k")
    await catalog.commit_version(gone)
    await deleted(catalog, gone)
    name = shard_name(gone.version_id, 0, 0)
    assert await catalog.unreferenced("paris", [name]) == []
    await catalog.forget_trash([t.id for t in await catalog.trash_due(time.time() + 1, 100)])
    assert await catalog.unreferenced("paris", [name]) == [name]


async def test_uploads_in_progress_reference_their_part_files(
    catalog: Catalog, bucket: Bucket
) -> None:
    up = upload(bucket, "movie")
    await catalog.create_upload(up)
    seq = await catalog.next_part_seq(up.upload_id)
    # Written, not yet recorded: a part's files exist before its row.
    names = [name for _, name in sorted(part_files(up, seq))]
    assert await catalog.unreferenced("paris", names) == []
    await catalog.commit_part(up.upload_id, part(1, seq), up.sites)
    await catalog.abort_upload(up.upload_id)
    await catalog.forget_trash([t.id for t in await catalog.trash_due(time.time() + 1, 100)])
    assert sorted(await catalog.unreferenced("paris", names)) == sorted(names)


async def test_a_completed_object_references_its_parts_and_completion_record(
    catalog: Catalog, bucket: Bucket
) -> None:
    up = upload(bucket, "movie")
    await catalog.create_upload(up)
    seqs = [await catalog.next_part_seq(up.upload_id) for _ in range(3)]
    await catalog.commit_part(up.upload_id, part(1, seqs[0]), up.sites)
    await catalog.commit_part(up.upload_id, part(1, seqs[1]), up.sites)  # replaces seqs[0]
    await catalog.commit_part(up.upload_id, part(2, seqs[2]), up.sites)
    await catalog.complete_upload(completed(up, [part(1, seqs[1]), part(2, seqs[2])]))
    await catalog.forget_trash([t.id for t in await catalog.trash_due(time.time() + 1, 100)])
    kept = [shard_name(up.upload_id, seq, 0) for seq in (0, seqs[1], seqs[2])]
    assert await catalog.unreferenced(up.sites[0], kept) == []
    dropped = shard_name(up.upload_id, seqs[0], 0)
    assert await catalog.unreferenced(up.sites[0], [dropped]) == [dropped]


async def test_a_pack_is_referenced_on_its_sites_while_it_lives(
    catalog: Catalog, bucket: Bucket
) -> None:
    inside = packed(bucket, "k", "pack-1", 0)
    await catalog.commit_pack("pack-1", ["paris", "lyon"], [inside])
    assert await catalog.unreferenced("paris", ["pack-1", "pack-2"]) == ["pack-2"]
    assert await catalog.unreferenced("nice", ["pack-1"]) == ["pack-1"]
    # The packed version's own shard names are not files of its own.
    own = shard_name(inside.version_id, 0, 0)
    assert await catalog.unreferenced("paris", [own]) == [own]
    await deleted(catalog, inside)
    assert await catalog.unreferenced("paris", ["pack-1"]) == []  # in the trash
    await catalog.forget_trash([t.id for t in await catalog.trash_due(time.time() + 1, 100)])
    assert await catalog.unreferenced("paris", ["pack-1"]) == ["pack-1"]


async def test_site_records_are_referenced_while_what_they_describe_lives(
    catalog: Catalog, bucket: Bucket
) -> None:
    """Bucket settings, amendments, delete markers and credentials records (decisions 0016
    and 0018): a bucket's settings record is the one its setting names."""
    data, hide = version(bucket, "k", null=False), marker(bucket, "k")
    await catalog.commit_version(data)
    await catalog.commit_version(hide)
    current = settings_record_name(new_id())
    await catalog.put_bucket_setting(bucket.id, SETTINGS_RECORD_SETTING, current)
    live = [
        credentials_record_name(1), credentials_record_name(7), current,
        amendment_name(data.version_id, 2), marker_record_name(hide.version_id),
    ]  # fmt: skip
    assert await catalog.unreferenced("paris", live) == []
    dead = [
        settings_record_name(new_id()), amendment_name(new_id(), 1),
        marker_record_name(data.version_id),  # a version, not a marker
    ]  # fmt: skip
    assert await catalog.unreferenced("paris", dead) == dead
    await catalog.delete_version(bucket.id, "k", hide.version_id)
    await catalog.delete_version(bucket.id, "k", data.version_id)
    await catalog.delete_bucket("photos")
    gone = live[2:]
    assert await catalog.unreferenced("paris", gone) == gone


async def test_site_records_named_before_decision_0018_are_referenced_as_before(
    catalog: Catalog, bucket: Bucket
) -> None:
    """Records named with their bucket id: a settings record until the bucket has one of the
    new kind, an amendment or marker record while its version lives in that bucket."""
    data, hide = version(bucket, "k", null=False), marker(bucket, "k")
    await catalog.commit_version(data)
    await catalog.commit_version(hide)
    live = [
        legacy_settings_record_name(bucket.id, 3),
        legacy_amendment_name(bucket.id, data.version_id, 2),
        legacy_marker_record_name(bucket.id, hide.version_id),
    ]
    assert await catalog.unreferenced("paris", live) == []
    other = new_id()
    dead = [
        legacy_settings_record_name(other, 1), legacy_amendment_name(other, data.version_id, 1),
        legacy_amendment_name(bucket.id, new_id(), 1),
        legacy_marker_record_name(bucket.id, data.version_id),
        legacy_marker_record_name(other, hide.version_id),
    ]  # fmt: skip
    assert await catalog.unreferenced("paris", dead) == dead
    # A settings record of the new kind supersedes the old one.
    await catalog.put_bucket_setting(
        bucket.id, SETTINGS_RECORD_SETTING, settings_record_name(new_id())
    )
    assert await catalog.unreferenced("paris", live[:1]) == live[:1]
    await catalog.delete_version(bucket.id, "k", hide.version_id)
    await catalog.delete_version(bucket.id, "k", data.version_id)
    assert await catalog.unreferenced("paris", live[1:]) == live[1:]


# -- sightings ----------------------------------------------------------------------------------


async def test_sightings_keep_the_first_time_a_file_was_seen(catalog: Catalog) -> None:
    before = time.time()
    await catalog.record_sightings("paris", ["x-0-0", "y-0-0"])
    first = await catalog.sightings("paris")
    assert set(first) == {"x-0-0", "y-0-0"}
    assert all(before - 1 <= seen <= time.time() + 1 for seen in first.values())
    await catalog.record_sightings("paris", ["x-0-0", "z-0-0"])
    again = await catalog.sightings("paris")
    assert again["x-0-0"] == first["x-0-0"]
    assert set(again) == {"x-0-0", "y-0-0", "z-0-0"}
    assert await catalog.sightings("lyon") == {}
    await catalog.record_sightings("lyon", ["x-0-0"])
    await catalog.forget_sightings("paris", ["x-0-0", "unknown"])
    assert set(await catalog.sightings("paris")) == {"y-0-0", "z-0-0"}
    assert set(await catalog.sightings("lyon")) == {"x-0-0"}


@pytest.mark.parametrize("count", [0, 1200])
async def test_unreferenced_answers_for_many_names(
    catalog: Catalog, bucket: Bucket, count: int
) -> None:
    names = [shard_name(new_id(), 0, 0) for _ in range(count)]
    assert await catalog.unreferenced("paris", names) == names


async def test_move_shards_of_a_deleted_version_moves_nothing(
    catalog: Catalog, bucket: Bucket
) -> None:
    gone = version(bucket, "k")
    await catalog.commit_version(gone)
    await deleted(catalog, gone)
    await catalog.forget_trash([t.id for t in await catalog.trash_due(time.time() + 1, 100)])
    written = [("elsewhere", shard_name(gone.version_id, 0, 5))]
    assert not await catalog.move_shards(gone, SITES, [], written)
    assert set(await trashed(catalog)) == set(written)
    assert await catalog.get_version_by_id(gone.version_id) is None


async def test_a_pack_shared_by_two_buckets_outlives_one_of_them(
    catalog: Catalog, bucket: Bucket
) -> None:
    other = new_bucket("other")
    await catalog.create_bucket(other)
    mine, theirs = packed(bucket, "k", "pack-1", 0), packed(other, "k", "pack-1", 100)
    assert await catalog.commit_pack("pack-1", PACK_SITES, [mine, theirs]) == [None, None]
    summary = await catalog.shred_bucket(bucket.id, [])
    assert summary.trashed_files == 0
    assert await trashed(catalog) == []
    assert await catalog.unreferenced("paris", ["pack-1"]) == []
    await deleted(catalog, theirs)
    assert set(await trashed(catalog)) == pack_files("pack-1")


async def test_a_pack_racing_a_create_only_put_one_wins(catalog: Catalog, bucket: Bucket) -> None:
    create_only = WriteCondition(if_none_match="*")
    inside, put = packed(bucket, "k", "pack-1", 0), version(bucket, "k")
    results = await asyncio.gather(
        catalog.commit_pack("pack-1", PACK_SITES, [inside], [create_only]),
        catalog.commit_version(put, create_only),
        return_exceptions=True,
    )
    assert isinstance(results[0], list)
    [packed_result] = results[0]
    outcomes = [packed_result, results[1]]
    assert sum(r is None for r in outcomes) == 1
    assert all(isinstance(r, PreconditionFailed) for r in outcomes if r is not None)
    if packed_result is None:
        assert await catalog.get_object(bucket.id, "k") == inside
        assert set(await trashed(catalog)) == set(put.shard_files())
    else:
        assert await catalog.get_object(bucket.id, "k") == put
        assert set(await trashed(catalog)) == pack_files("pack-1")
