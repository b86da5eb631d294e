"""Catalog contract: multipart uploads, their parts and attempts, completion and abort."""

from __future__ import annotations

import asyncio
from dataclasses import replace

import pytest
from tests.catalog.contract.builders import (
    completed,
    future,
    new_bucket,
    part,
    part_files,
    trashed,
    upload,
    version,
)

from egide.catalog.base import Catalog
from egide.domain import (
    Bucket,
    InvalidPart,
    NoSuchUpload,
    ObjectLocked,
    Part,
    PreconditionFailed,
    Upload,
    WriteCondition,
    new_id,
)


async def started(
    catalog: Catalog, bucket: Bucket, key: str = "movie", created: float = 1_700_000_000.0
) -> Upload:
    up = upload(bucket, key, created=created)
    await catalog.create_upload(up)
    return up


async def uploaded(catalog: Catalog, up: Upload, number: int, size: int = 5 << 20) -> Part:
    """Upload one attempt of part `number`: a fresh seq, then the part recorded."""
    done = part(number, await catalog.next_part_seq(up.upload_id), size=size)
    await catalog.commit_part(up.upload_id, done, up.sites)
    return done


async def test_an_upload_is_read_back_whole(catalog: Catalog, bucket: Bucket) -> None:
    up = await started(catalog, bucket, "dir/é 😀")
    assert await catalog.get_upload(up.upload_id) == up
    assert await catalog.get_upload(new_id()) is None


async def test_part_seqs_are_never_handed_out_twice(catalog: Catalog, bucket: Bucket) -> None:
    """Seq names a part attempt's files and enters its nonces; 0 is the completion record's."""
    up, other = await started(catalog, bucket), await started(catalog, bucket)
    serial = [await catalog.next_part_seq(up.upload_id) for _ in range(5)]
    racing = await asyncio.gather(*(catalog.next_part_seq(up.upload_id) for _ in range(20)))
    seqs = serial + list(racing)
    assert len(set(seqs)) == len(seqs)
    assert all(seq >= 1 for seq in seqs)
    assert await catalog.next_part_seq(other.upload_id) >= 1  # each upload has its own


async def test_next_part_seq_of_an_unknown_upload_raises_no_such_upload(
    catalog: Catalog, bucket: Bucket
) -> None:
    with pytest.raises(NoSuchUpload):
        await catalog.next_part_seq(new_id())
    up = await started(catalog, bucket)
    await catalog.abort_upload(up.upload_id)
    with pytest.raises(NoSuchUpload):
        await catalog.next_part_seq(up.upload_id)


async def test_parts_are_listed_by_number(catalog: Catalog, bucket: Bucket) -> None:
    up = await started(catalog, bucket)
    parts = {n: await uploaded(catalog, up, n, size=n) for n in (3, 1, 10, 2)}
    assert await catalog.list_parts(up.upload_id) == [parts[n] for n in (1, 2, 3, 10)]
    assert await catalog.list_parts(up.upload_id, after=2) == [parts[3], parts[10]]
    assert await catalog.list_parts(up.upload_id, after=0, limit=2) == [parts[1], parts[2]]
    assert await catalog.list_parts(up.upload_id, after=10) == []
    assert await catalog.list_parts(new_id()) == []
    assert await trashed(catalog) == []


async def test_a_part_uploaded_again_replaces_the_attempt(catalog: Catalog, bucket: Bucket) -> None:
    up = await started(catalog, bucket)
    first = await uploaded(catalog, up, 1)
    second = await uploaded(catalog, up, 1, size=7)
    assert await catalog.list_parts(up.upload_id) == [second]
    assert set(await trashed(catalog)) == part_files(up, first.seq)


async def test_a_part_for_a_gone_upload_raises_and_its_files_are_trashed(
    catalog: Catalog, bucket: Bucket
) -> None:
    up = await started(catalog, bucket)
    seq = await catalog.next_part_seq(up.upload_id)
    await catalog.abort_upload(up.upload_id)  # meanwhile
    with pytest.raises(NoSuchUpload):
        await catalog.commit_part(up.upload_id, part(1, seq), up.sites)
    assert part_files(up, seq) <= set(await trashed(catalog))
    assert await catalog.list_parts(up.upload_id) == []


async def test_abort_forgets_the_upload_and_trashes_its_parts(
    catalog: Catalog, bucket: Bucket
) -> None:
    up = await started(catalog, bucket)
    parts = [await uploaded(catalog, up, n) for n in (1, 2)]
    await catalog.abort_upload(up.upload_id)
    assert await catalog.get_upload(up.upload_id) is None
    assert await catalog.list_parts(up.upload_id) == []
    assert await catalog.list_uploads(bucket.id, "", None, 10) == []
    assert set(await trashed(catalog)) == part_files(up, parts[0].seq) | part_files(
        up, parts[1].seq
    )
    with pytest.raises(NoSuchUpload):
        await catalog.abort_upload(up.upload_id)
    with pytest.raises(NoSuchUpload):
        await catalog.abort_upload(new_id())


# -- list_uploads, uploads_before ---------------------------------------------------------------


async def test_uploads_by_key_then_creation(catalog: Catalog, bucket: Bucket) -> None:
    late_b = await started(catalog, bucket, "b", created=30.0)
    early_b = await started(catalog, bucket, "b", created=10.0)
    a = await started(catalog, bucket, "a", created=20.0)
    accent = await started(catalog, bucket, "é", created=1.0)
    upper = await started(catalog, bucket, "B", created=40.0)
    assert await catalog.list_uploads(bucket.id, "", None, 10) == [
        upper, a, early_b, late_b, accent,
    ]  # fmt: skip
    assert await catalog.list_uploads(bucket.id, "b", None, 10) == [early_b, late_b]
    assert await catalog.list_uploads(bucket.id, "", None, 2) == [upper, a]


async def test_uploads_after_a_key_and_upload_marker(catalog: Catalog, bucket: Bucket) -> None:
    first = await started(catalog, bucket, "k", created=1.0)
    second = await started(catalog, bucket, "k", created=2.0)
    third = await started(catalog, bucket, "k", created=3.0)
    later = await started(catalog, bucket, "l", created=0.5)
    after_first = await catalog.list_uploads(bucket.id, "", ("k", first.upload_id), 10)
    assert after_first == [second, third, later]
    assert await catalog.list_uploads(bucket.id, "", ("k", third.upload_id), 10) == [later]
    assert await catalog.list_uploads(bucket.id, "", ("k", second.upload_id), 1) == [third]
    # Paging with the last upload seen as the marker covers every upload once.
    seen: list[Upload] = []
    marker: tuple[str, bytes] | None = None
    while page := await catalog.list_uploads(bucket.id, "", marker, 1):
        seen += page
        marker = (page[-1].key, page[-1].upload_id)
    assert seen == [first, second, third, later]


async def test_uploads_after_every_upload_of_a_key(catalog: Catalog, bucket: Bucket) -> None:
    """A key-marker without an upload-id-marker: the S3 API resumes after (key + NUL, b""),
    the smallest position after every upload of the key."""
    await started(catalog, bucket, "k", created=1.0)
    longer = await started(catalog, bucket, "k0", created=0.5)
    later = await started(catalog, bucket, "l", created=0.5)
    assert await catalog.list_uploads(bucket.id, "", ("k\0", b""), 10) == [longer, later]


async def test_uploads_listing_is_literal_and_scoped(catalog: Catalog, bucket: Bucket) -> None:
    other = new_bucket("other")
    await catalog.create_bucket(other)
    mine = await started(catalog, bucket, "a_b")
    await started(catalog, bucket, "axb")
    await started(catalog, other, "a_b")
    assert await catalog.list_uploads(bucket.id, "a_", None, 10) == [mine]
    assert await catalog.list_uploads(bucket.id, "%", None, 10) == []


async def test_uploads_before_a_time_oldest_first(catalog: Catalog, bucket: Bucket) -> None:
    other = new_bucket("other")
    await catalog.create_bucket(other)
    old = await started(catalog, bucket, "z", created=100.0)
    older = await started(catalog, other, "a", created=50.0)
    await started(catalog, bucket, "new", created=200.0)
    assert await catalog.uploads_before(150.0, 10) == [older, old]
    assert await catalog.uploads_before(150.0, 1) == [older]
    assert await catalog.uploads_before(100.0, 10) == [older]  # strictly before
    assert await catalog.uploads_before(10.0, 10) == []


# -- complete_upload ---------------------------------------------------------------------------


async def test_completion_commits_the_version_and_forgets_the_upload(
    catalog: Catalog, bucket: Bucket
) -> None:
    up = await started(catalog, bucket)
    parts = [await uploaded(catalog, up, n) for n in (1, 2, 3)]
    done = completed(up, parts)
    await catalog.complete_upload(done)
    assert await catalog.get_object(bucket.id, "movie") == done
    found = await catalog.get_version_by_id(up.upload_id)
    assert found is not None and found.parts == tuple(parts)
    assert await catalog.get_upload(up.upload_id) is None
    assert await catalog.list_uploads(bucket.id, "", None, 10) == []
    assert await trashed(catalog) == []  # every part is kept


async def test_parts_left_out_of_the_completion_go_to_the_trash(
    catalog: Catalog, bucket: Bucket
) -> None:
    up = await started(catalog, bucket)
    one, two, three = [await uploaded(catalog, up, n) for n in (1, 2, 3)]
    await catalog.complete_upload(completed(up, [one, three]))
    assert set(await trashed(catalog)) == part_files(up, two.seq)


async def test_completing_a_gone_upload_raises_no_such_upload(
    catalog: Catalog, bucket: Bucket
) -> None:
    up = await started(catalog, bucket)
    parts = [await uploaded(catalog, up, 1)]
    await catalog.complete_upload(completed(up, parts))
    with pytest.raises(NoSuchUpload):  # completed already
        await catalog.complete_upload(completed(up, parts))
    aborted = await started(catalog, bucket)
    await catalog.abort_upload(aborted.upload_id)
    with pytest.raises(NoSuchUpload):
        await catalog.complete_upload(completed(aborted, []))


async def test_a_part_replaced_since_it_was_read_raises_invalid_part(
    catalog: Catalog, bucket: Bucket
) -> None:
    up = await started(catalog, bucket)
    read = await uploaded(catalog, up, 1)
    await uploaded(catalog, up, 1)  # uploaded again meanwhile
    with pytest.raises(InvalidPart):
        await catalog.complete_upload(completed(up, [read]))
    with pytest.raises(InvalidPart):  # never uploaded
        await catalog.complete_upload(completed(up, [part(2, 99)]))
    assert await catalog.get_upload(up.upload_id) == up
    assert await catalog.get_object(bucket.id, "movie") is None


async def test_a_refused_completion_leaves_the_upload_as_it_was(
    catalog: Catalog, bucket: Bucket
) -> None:
    existing = version(bucket, "movie")
    await catalog.commit_version(existing)
    up = await started(catalog, bucket)
    parts = [await uploaded(catalog, up, 1)]
    with pytest.raises(PreconditionFailed):
        await catalog.complete_upload(completed(up, parts), WriteCondition(if_none_match="*"))
    assert await catalog.get_object(bucket.id, "movie") == existing
    assert await catalog.get_upload(up.upload_id) == up
    assert await catalog.list_parts(up.upload_id) == parts
    assert await trashed(catalog) == []
    done = completed(up, parts)
    await catalog.complete_upload(done, WriteCondition(if_match=existing.etag))
    assert await catalog.get_object(bucket.id, "movie") == done
    assert set(await trashed(catalog)) == set(existing.shard_files())  # the null it replaced


async def test_a_completion_does_not_replace_a_locked_null_version(
    catalog: Catalog, bucket: Bucket
) -> None:
    locked = version(bucket, "movie", legal_hold=True)
    await catalog.commit_version(locked)
    up = await started(catalog, bucket)
    parts = [await uploaded(catalog, up, 1)]
    with pytest.raises(ObjectLocked):
        await catalog.complete_upload(completed(up, parts))
    assert await catalog.get_object(bucket.id, "movie") == locked
    assert await catalog.get_upload(up.upload_id) == up
    versioned = completed(up, parts, is_null=False, retention_mode="GOVERNANCE",
                          retain_until=future())  # fmt: skip
    await catalog.complete_upload(versioned)
    assert await catalog.get_object(bucket.id, "movie") == versioned


async def test_racing_completions_of_one_upload_one_wins(catalog: Catalog, bucket: Bucket) -> None:
    up = await started(catalog, bucket)
    parts = [await uploaded(catalog, up, 1)]
    attempts = [completed(up, parts, etag=f'"try-{i}"') for i in range(4)]
    results = await asyncio.gather(
        *(catalog.complete_upload(v) for v in attempts), return_exceptions=True
    )
    assert sum(r is None for r in results) == 1
    assert all(isinstance(r, NoSuchUpload) for r in results if r is not None)
    assert await catalog.get_object(bucket.id, "movie") == attempts[results.index(None)]


async def test_racing_create_only_completions_one_wins(catalog: Catalog, bucket: Bucket) -> None:
    ups = [await started(catalog, bucket) for _ in range(4)]
    done = [completed(up, [await uploaded(catalog, up, 1)]) for up in ups]
    results = await asyncio.gather(
        *(catalog.complete_upload(v, WriteCondition(if_none_match="*")) for v in done),
        return_exceptions=True,
    )
    assert sum(r is None for r in results) == 1
    assert all(isinstance(r, PreconditionFailed) for r in results if r is not None)
    assert await catalog.get_object(bucket.id, "movie") == done[results.index(None)]


async def test_a_completed_version_keeps_its_parts_checksums(
    catalog: Catalog, bucket: Bucket
) -> None:
    up = await started(catalog, bucket)
    one = replace(part(1, await catalog.next_part_seq(up.upload_id)), checksums={
        "crc64nvme": "AAAAAAAAAAA=", "sha256": "x" * 44,
    })  # fmt: skip
    await catalog.commit_part(up.upload_id, one, up.sites)
    assert await catalog.list_parts(up.upload_id) == [one]
    await catalog.complete_upload(completed(up, [one]))
    found = await catalog.get_object(bucket.id, "movie")
    assert found is not None and found.parts == (one,)
    assert found.parts[0].checksums == one.checksums


async def test_paging_while_aborting_each_page_reaches_every_upload(
    catalog: Catalog, bucket: Bucket
) -> None:
    """A clean-up client: list one upload, abort it, list after it, and so on. The marker's
    upload is gone when the next page is asked for; the page still starts right after it."""
    for created in (1.0, 2.0, 3.0):
        await started(catalog, bucket, "k", created=created)
    await started(catalog, bucket, "l", created=0.5)
    marker: tuple[str, bytes] | None = None
    while page := await catalog.list_uploads(bucket.id, "", marker, 1):
        await catalog.abort_upload(page[0].upload_id)
        marker = (page[0].key, page[0].upload_id)
    assert await catalog.list_uploads(bucket.id, "", None, 10) == []


async def test_uploads_of_a_deleted_bucket_cannot_complete(
    catalog: Catalog, bucket: Bucket
) -> None:
    up = await started(catalog, bucket)
    parts = [await uploaded(catalog, up, 1)]
    await catalog.delete_bucket("photos")
    with pytest.raises(NoSuchUpload):
        await catalog.complete_upload(completed(up, parts))
    with pytest.raises(NoSuchUpload):
        await catalog.next_part_seq(up.upload_id)
    assert await catalog.list_uploads(bucket.id, "", None, 10) == []


async def test_a_completion_racing_a_create_only_put_one_wins(
    catalog: Catalog, bucket: Bucket
) -> None:
    up = await started(catalog, bucket)
    done = completed(up, [await uploaded(catalog, up, 1)])
    put = version(bucket, "movie")
    create_only = WriteCondition(if_none_match="*")
    results = await asyncio.gather(
        catalog.complete_upload(done, create_only),
        catalog.commit_version(put, create_only),
        return_exceptions=True,
    )
    assert sum(r is None for r in results) == 1
    assert all(isinstance(r, PreconditionFailed) for r in results if r is not None)
    assert await catalog.get_object(bucket.id, "movie") == (done if results[0] is None else put)


async def test_paging_after_a_completed_marker_goes_on_in_creation_order(
    catalog: Catalog, bucket: Bucket
) -> None:
    """The marker's upload completed between two pages: the next page is the uploads of the
    same key created after it, then the next keys."""
    first = await started(catalog, bucket, "k", created=1.0)
    later = [await started(catalog, bucket, "k", created=c) for c in (2.0, 3.0)]
    other = await started(catalog, bucket, "l", created=0.5)
    page = await catalog.list_uploads(bucket.id, "", None, 1)
    assert [u.upload_id for u in page] == [first.upload_id]
    await catalog.complete_upload(completed(first, [await uploaded(catalog, first, 1)]))
    rest = await catalog.list_uploads(bucket.id, "", ("k", first.upload_id), 10)
    assert [u.upload_id for u in rest] == [u.upload_id for u in later] + [other.upload_id]
