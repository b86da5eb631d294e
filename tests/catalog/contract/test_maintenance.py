"""Catalog contract: what maintenance walks and records: versions by id with a stable cursor,
the repair queue of damaged versions, and policy reports."""

from __future__ import annotations

from tests.catalog.contract.builders import marker, new_bucket, part, upload, version

from egide.catalog.base import Catalog, RecordedReport
from egide.domain import Bucket, ObjectVersion, new_id

# -- versions by id ---------------------------------------------------------------------------


async def test_versions_after_walks_versions_with_data_in_id_order(
    catalog: Catalog, bucket: Bucket
) -> None:
    other = new_bucket("other")
    await catalog.create_bucket(other)
    committed = [version(bucket, f"k{i}", null=False) for i in range(5)] + [version(other, "o")]
    for each in committed:
        await catalog.commit_version(each)
    await catalog.commit_version(marker(bucket, "k0"))  # a delete marker holds no data
    want = sorted(committed, key=lambda v: v.version_id)
    assert await catalog.versions_after(None, 100) == want
    assert await catalog.versions_after(None, 2) == want[:2]
    assert await catalog.versions_after(want[2].version_id, 100) == want[3:]
    assert await catalog.versions_after(want[-1].version_id, 100) == []
    assert await catalog.count_versions() == 6


async def test_the_cursor_is_stable_under_writes_and_deletes(
    catalog: Catalog, bucket: Bucket
) -> None:
    committed = [version(bucket, f"k{i}", null=False) for i in range(6)]
    for each in committed:
        await catalog.commit_version(each)
    want = sorted(committed, key=lambda v: v.version_id)
    seen: list[ObjectVersion] = []
    cursor: bytes | None = None
    while page := await catalog.versions_after(cursor, 2):
        seen += page
        cursor = page[-1].version_id
        if len(seen) == 2:  # meanwhile: one walked version and one ahead go, one is added
            await catalog.delete_version(bucket.id, seen[0].key, seen[0].version_id)
            await catalog.delete_version(bucket.id, want[4].key, want[4].version_id)
            await catalog.commit_version(version(bucket, "new", null=False))
    walked = [v.version_id for v in seen]
    assert len(walked) == len(set(walked))
    assert walked == sorted(walked)
    assert {v.version_id for v in want} - {want[4].version_id} <= set(walked)
    assert await catalog.count_versions() == 5


async def test_count_versions_counts_every_bucket_but_no_marker(
    catalog: Catalog, bucket: Bucket
) -> None:
    assert await catalog.count_versions() == 0
    other = new_bucket("other")
    await catalog.create_bucket(other)
    await catalog.commit_version(version(bucket, "a"))
    await catalog.commit_version(version(bucket, "a"))  # replaces the null version
    await catalog.commit_version(version(other, "a", null=False))
    await catalog.commit_version(marker(other, "a"))
    assert await catalog.count_versions() == 2


# -- the repair queue -------------------------------------------------------------------------


async def test_damaged_versions_are_queued_once_in_id_order(catalog: Catalog) -> None:
    ids = sorted(new_id() for _ in range(4))
    for version_id in reversed(ids):
        await catalog.mark_damaged(version_id, f"shard missing on paris: {version_id.hex()[:4]}")
    await catalog.mark_damaged(ids[0], "a second reason")  # already queued: kept as it was
    queue = await catalog.damaged(None, 100)
    assert [v for v, _ in queue] == ids
    assert queue[0][1] == f"shard missing on paris: {ids[0].hex()[:4]}"
    assert await catalog.damaged(None, 2) == queue[:2]
    assert await catalog.damaged(ids[1], 100) == queue[2:]
    assert await catalog.damaged(ids[3], 100) == []


async def test_forget_damaged(catalog: Catalog) -> None:
    ids = sorted(new_id() for _ in range(3))
    for version_id in ids:
        await catalog.mark_damaged(version_id, "corrupt")
    await catalog.forget_damaged([ids[0], ids[2], new_id()])
    assert await catalog.damaged(None, 100) == [(ids[1], "corrupt")]
    await catalog.forget_damaged([])
    await catalog.mark_damaged(ids[0], "found again")  # queued anew after it was repaired
    assert await catalog.damaged(None, 100) == [(ids[0], "found again"), (ids[1], "corrupt")]


# -- reports ----------------------------------------------------------------------------------


def report(kind: str, scope: str, created: float, digest: str) -> RecordedReport:
    return RecordedReport(
        kind=kind, scope=scope, created=created, sha256=digest * 64,
        content_sha256=digest.upper() * 64, summary=f"{kind} of {scope}: 3 findings, é",
    )  # fmt: skip


async def test_the_last_report_of_a_kind_and_scope(catalog: Catalog) -> None:
    assert await catalog.last_report("placement", "photos") is None
    first = report("placement", "photos", 100.0, "a")
    second = report("placement", "photos", 50.0, "b")  # newest recorded, its clock earlier
    elsewhere = report("placement", "other", 200.0, "c")
    another = report("retention", "photos", 300.0, "d")
    for each in (first, second, elsewhere, another):
        await catalog.record_report(each)
    assert await catalog.last_report("placement", "photos") == second
    assert await catalog.last_report("placement", "other") == elsewhere
    assert await catalog.last_report("retention", "photos") == another
    assert await catalog.last_report("retention", "other") is None


async def test_usage_counts_data_versions_and_open_upload_parts(
    catalog: Catalog, bucket: Bucket
) -> None:
    """What quotas count: versions holding data (noncurrent too), parts of open uploads; not
    delete markers; per bucket, or over every bucket."""
    assert await catalog.usage(bucket.id) == (0, 0)
    other = new_bucket("other")
    await catalog.create_bucket(other)
    await catalog.commit_version(version(bucket, "a", size=10, null=False))
    await catalog.commit_version(version(bucket, "a", size=20, null=False))
    await catalog.commit_version(marker(bucket, "a"))
    await catalog.commit_version(version(other, "b", size=5))
    up = upload(bucket, "big")
    await catalog.create_upload(up)
    await catalog.commit_part(up.upload_id, part(1, await catalog.next_part_seq(up.upload_id),
                                                 size=7), up.sites)  # fmt: skip
    assert await catalog.usage(bucket.id) == (37, 2)
    assert await catalog.usage(other.id) == (5, 1)
    assert await catalog.usage(None) == (42, 3)
