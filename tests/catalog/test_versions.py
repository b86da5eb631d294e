"""Versions in the SQLite catalog: null versions replace each other, other versions
accumulate, delete markers hide a key, Object Lock refuses removal, conditional writes are
decided in the committing transaction."""

from __future__ import annotations

import asyncio
import time
from dataclasses import replace

import pytest
from tests.catalog.test_sqlite import _version, catalog, path, run

from egide.catalog.sqlite import SQLiteCatalog
from egide.domain import (
    Bucket,
    KeyNotFound,
    ObjectLocked,
    ObjectVersion,
    PreconditionFailed,
    WriteCondition,
    new_id,
    shard_name,
)

__all__ = ["catalog", "path"]  # fixtures shared with test_sqlite.py


@pytest.fixture
def bucket(catalog: SQLiteCatalog) -> Bucket:
    created = Bucket(id=new_id(), name="photos", created=1.0, wrapped_key=b"w" * 40)
    run(catalog.create_bucket(created))
    return created


def _trashed(catalog: SQLiteCatalog) -> set[str]:
    return {t.shard for t in run(catalog.trash_due(time.time() + 60, 1000))}


def _versioned(bucket: Bucket, key: str) -> ObjectVersion:
    return replace(_version(bucket, key), is_null=False)


def _marker(bucket: Bucket, key: str, *, is_null: bool = False) -> ObjectVersion:
    return ObjectVersion(
        bucket_id=bucket.id, key=key, version_id=new_id(), size=0, etag="", last_modified=2.0,
        wrapped_data_key=b"", k=0, m=0, block_size=0, sites=(), delete_marker=True,
        is_null=is_null,
    )  # fmt: skip


def test_versions_accumulate_and_a_null_version_replaces_the_null_one(
    catalog: SQLiteCatalog, bucket: Bucket
) -> None:
    null1 = _version(bucket, "k")
    run(catalog.commit_version(null1))
    kept = [_versioned(bucket, "k") for _ in range(2)]
    for version in kept:
        run(catalog.commit_version(version))
    null2 = _version(bucket, "k")
    run(catalog.commit_version(null2))
    listed = run(catalog.list_versions(bucket.id, "", None, 100))
    assert [(v.version_id, latest) for v, latest in listed] == [
        (null2.version_id, True),
        (kept[1].version_id, False),
        (kept[0].version_id, False),
    ]
    # Only the replaced null version's shards went to the trash.
    assert _trashed(catalog) == {shard_name(null1.version_id, 0, i) for i in range(6)}
    assert run(catalog.get_version(bucket.id, "k", None)) == null2


def test_delete_marker_hides_the_key_from_listing(catalog: SQLiteCatalog, bucket: Bucket) -> None:
    version = _versioned(bucket, "k")
    run(catalog.commit_version(version))
    marker = _marker(bucket, "k")
    run(catalog.commit_version(marker))
    assert run(catalog.get_object(bucket.id, "k")) == marker
    assert run(catalog.list_objects(bucket.id, "", None, 10)) == []
    # Removing the marker makes the version current again; nothing was trashed.
    assert run(catalog.delete_version(bucket.id, "k", marker.version_id)) == marker
    assert run(catalog.get_object(bucket.id, "k")) == version
    assert _trashed(catalog) == set()


def test_deleting_the_current_version_promotes_the_next(
    catalog: SQLiteCatalog, bucket: Bucket
) -> None:
    older, newer = _versioned(bucket, "k"), _versioned(bucket, "k")
    run(catalog.commit_version(older))
    run(catalog.commit_version(newer))
    run(catalog.delete_version(bucket.id, "k", newer.version_id))
    assert run(catalog.get_object(bucket.id, "k")) == older
    run(catalog.delete_version(bucket.id, "k", older.version_id))
    assert run(catalog.get_object(bucket.id, "k")) is None
    assert run(catalog.list_versions(bucket.id, "", None, 10)) == []


def test_locked_versions_cannot_be_removed(catalog: SQLiteCatalog, bucket: Bucket) -> None:
    future = time.time() + 3600
    compliance = replace(_versioned(bucket, "c"), retention_mode="COMPLIANCE", retain_until=future)
    governance = replace(_versioned(bucket, "g"), retention_mode="GOVERNANCE", retain_until=future)
    held = replace(_versioned(bucket, "h"), legal_hold=True)
    for version in (compliance, governance, held):
        run(catalog.commit_version(version))
    for version in (compliance, held):
        for bypass in (False, True):
            with pytest.raises(ObjectLocked):
                run(
                    catalog.delete_version(
                        bucket.id, version.key, version.version_id, bypass_governance=bypass
                    )
                )
    with pytest.raises(ObjectLocked):
        run(catalog.delete_version(bucket.id, "g", governance.version_id))
    assert run(
        catalog.delete_version(bucket.id, "g", governance.version_id, bypass_governance=True)
    )
    # COMPLIANCE can be extended, never shortened; GOVERNANCE only with the bypass.
    with pytest.raises(ObjectLocked):
        run(catalog.set_lock(bucket.id, "c", compliance.version_id, retention=("COMPLIANCE", 1.0)))
    extended = run(
        catalog.set_lock(
            bucket.id, "c", compliance.version_id, retention=("COMPLIANCE", future + 60)
        )
    )
    assert extended.retain_until == future + 60
    # Once its legal hold is released, a version without retention can go.
    run(catalog.set_lock(bucket.id, "h", held.version_id, legal_hold=False))
    assert run(catalog.delete_version(bucket.id, "h", held.version_id))
    assert {v.key for v, _ in run(catalog.list_versions(bucket.id, "", None, 10))} == {"c"}


def test_conditional_writes_are_decided_at_commit(catalog: SQLiteCatalog, bucket: Bucket) -> None:
    create_only = WriteCondition(if_none_match="*")
    first = _version(bucket, "k")
    run(catalog.commit_version(first, create_only))
    refused = _version(bucket, "k")
    with pytest.raises(PreconditionFailed):
        run(catalog.commit_version(refused, create_only))
    # The refused version's shards, already written, are collected.
    assert _trashed(catalog) == {shard_name(refused.version_id, 0, i) for i in range(6)}
    with pytest.raises(PreconditionFailed):
        run(catalog.commit_version(_version(bucket, "k"), WriteCondition(if_match="other")))
    with pytest.raises(KeyNotFound):
        run(catalog.commit_version(_version(bucket, "absent"), WriteCondition(if_match="x")))
    second = _version(bucket, "k")
    run(catalog.commit_version(second, WriteCondition(if_match=first.etag)))
    assert run(catalog.get_object(bucket.id, "k")) == second


def test_racing_create_only_writers_one_wins(catalog: SQLiteCatalog, bucket: Bucket) -> None:
    """Writers committed in the same group-commit batch: the condition of each is checked
    after the ones before it, so exactly one create-only write succeeds."""

    async def race() -> list[BaseException | None]:
        versions = [_version(bucket, "k") for _ in range(8)]
        results = await asyncio.gather(
            *(catalog.commit_version(v, WriteCondition(if_none_match="*")) for v in versions),
            return_exceptions=True,
        )
        return list(results)

    results = run(race())
    assert sum(r is None for r in results) == 1
    assert all(isinstance(r, PreconditionFailed) for r in results if r is not None)


def test_condition_sees_a_delete_marker_as_absent(catalog: SQLiteCatalog, bucket: Bucket) -> None:
    run(catalog.commit_version(_versioned(bucket, "k")))
    run(catalog.commit_version(_marker(bucket, "k")))
    run(catalog.commit_version(_versioned(bucket, "k"), WriteCondition(if_none_match="*")))
    assert len(run(catalog.list_versions(bucket.id, "", None, 10))) == 3
