"""The SQLite catalog on a real database file: migrations, buckets, versions, trash, listing."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import Coroutine, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any, TypeVar

import pytest

from egide.catalog.sqlite import MIGRATIONS, SQLiteCatalog
from egide.domain import (
    Bucket,
    BucketExists,
    BucketNotEmpty,
    BucketNotFound,
    ObjectVersion,
    new_id,
    shard_name,
)

T = TypeVar("T")
SITES = ("paris", "lyon", "lille", "nantes", "brest", "nice")
MAX = "\U0010ffff"


def run(coro: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coro)


def _bucket(name: str = "photos") -> Bucket:
    return Bucket(id=new_id(), name=name, created=1_700_000_000.5, wrapped_key=b"wrapped" * 8)


def _version(bucket: Bucket, key: str, *, k: int = 4, m: int = 2, size: int = 10) -> ObjectVersion:
    return ObjectVersion(
        bucket_id=bucket.id, key=key, version_id=new_id(), size=size, etag=f'"{key}-etag"',
        last_modified=1_700_000_001.25, wrapped_data_key=b"dk" * 30, k=k, m=m,
        block_size=1024 * 1024, sites=SITES[: k + m],
        headers={"content-type": "text/plain", "x-amz-meta-é": "😀"},
    )  # fmt: skip


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "catalog.sqlite3"


@pytest.fixture
def catalog(path: Path) -> Iterator[SQLiteCatalog]:
    cat = SQLiteCatalog(path)
    cat.open()
    yield cat
    run(cat.close())


@pytest.fixture
def bucket(catalog: SQLiteCatalog) -> Bucket:
    bucket = _bucket()
    run(catalog.create_bucket(bucket))
    return bucket


def _keys(versions: list[ObjectVersion]) -> list[str]:
    return [v.key for v in versions]


# -- migrations -----------------------------------------------------------------------------


def _user_version(path: Path) -> int:
    db = sqlite3.connect(path)
    try:
        return int(db.execute("PRAGMA user_version").fetchone()[0])
    finally:
        db.close()


def test_open_migrates_to_the_latest_schema(catalog: SQLiteCatalog, path: Path) -> None:
    assert _user_version(path) == len(MIGRATIONS)


def test_reopening_keeps_data_and_does_not_rerun_migrations(path: Path) -> None:
    bucket = _bucket()
    version = _version(bucket, "a.txt")
    first = SQLiteCatalog(path)
    first.open()
    run(first.create_bucket(bucket))
    run(first.commit_version(version))
    run(first.close())

    again = SQLiteCatalog(path)
    again.open()
    try:
        assert run(again.get_bucket("photos")) == bucket
        assert run(again.get_object(bucket.id, "a.txt")) == version
    finally:
        run(again.close())
    assert _user_version(path) == len(MIGRATIONS)


def test_versions_written_before_padding_keep_their_exact_layout(path: Path) -> None:
    """Schema 7 (before decision 0017) to now: old rows say nothing of padding, so their
    blocks are laid out for their true size; new rows keep the padded size of each part."""
    bucket = _bucket()
    db = sqlite3.connect(path)
    for number, script in enumerate(MIGRATIONS[:7], start=1):
        db.executescript(f"BEGIN; {script}; PRAGMA user_version={number}; COMMIT;")
    old_id = new_id()
    db.execute(
        "INSERT INTO buckets (id, name, created, wrapped_key) VALUES (?, ?, ?, ?)",
        (bucket.id, bucket.name, bucket.created, bucket.wrapped_key),
    )
    db.execute(
        "INSERT INTO versions (version_id, bucket_id, key, size, etag, last_modified, "
        "wrapped_data_key, k, m, block_size, sites, headers, parts) "
        "VALUES (?, ?, 'old', 7000000, 'e-2', 1.0, ?, 4, 2, 1048576, ?, '{}', ?)",
        (old_id, bucket.id, b"dk" * 30, '["a","b","c","d","e","f"]',
         '[[1, 1, 5242880, "e1", 1.0, {}], [2, 2, 1757120, "e2", 1.0, {}]]'),
    )  # fmt: skip
    db.execute(
        "INSERT INTO objects (bucket_id, key, version_id) VALUES (?, 'old', ?)", (bucket.id, old_id)
    )
    db.commit()
    db.close()
    catalog = SQLiteCatalog(path)
    catalog.open()
    try:
        old = run(catalog.get_object(bucket.id, "old"))
        assert old is not None and old.padded_size is None
        assert old.laid_out() == [(1, 5242880), (2, 1757120)]
        new = replace(_version(bucket, "new", size=1_000_000), padded_size=1_015_808)
        run(catalog.commit_version(new))
        assert run(catalog.get_object(bucket.id, "new")) == new
        assert new.laid_out() == [(0, 1_015_808)]
    finally:
        run(catalog.close())


def test_catalog_with_newer_schema_is_refused(path: Path) -> None:
    db = sqlite3.connect(path)
    db.execute(f"PRAGMA user_version = {len(MIGRATIONS) + 1}")
    db.close()
    cat = SQLiteCatalog(path)
    with pytest.raises(RuntimeError, match=r"newer than this Égide .*upgrade Égide"):
        cat.open()
    run(cat.close())
    assert _user_version(path) == len(MIGRATIONS) + 1


# -- buckets --------------------------------------------------------------------------------


def test_create_and_get_bucket(catalog: SQLiteCatalog) -> None:
    bucket = _bucket()
    run(catalog.create_bucket(bucket))
    assert run(catalog.get_bucket("photos")) == bucket


def test_get_missing_bucket_is_none(catalog: SQLiteCatalog) -> None:
    assert run(catalog.get_bucket("nope")) is None


def test_list_buckets_sorted_by_name(catalog: SQLiteCatalog) -> None:
    for name in ("zeta", "alpha", "mid"):
        run(catalog.create_bucket(_bucket(name)))
    assert [b.name for b in run(catalog.list_buckets())] == ["alpha", "mid", "zeta"]


def test_duplicate_bucket_name_raises_bucket_exists(catalog: SQLiteCatalog) -> None:
    run(catalog.create_bucket(_bucket("photos")))
    with pytest.raises(BucketExists):
        run(catalog.create_bucket(_bucket("photos")))
    assert len(run(catalog.list_buckets())) == 1


def test_delete_empty_bucket(catalog: SQLiteCatalog, bucket: Bucket) -> None:
    run(catalog.delete_bucket("photos"))
    assert run(catalog.get_bucket("photos")) is None
    assert run(catalog.list_buckets()) == []


def test_delete_non_empty_bucket_raises_bucket_not_empty(
    catalog: SQLiteCatalog, bucket: Bucket
) -> None:
    run(catalog.commit_version(_version(bucket, "a.txt")))
    with pytest.raises(BucketNotEmpty):
        run(catalog.delete_bucket("photos"))
    assert run(catalog.get_bucket("photos")) == bucket


def test_delete_bucket_after_its_objects_were_deleted(
    catalog: SQLiteCatalog, bucket: Bucket
) -> None:
    run(catalog.commit_version(_version(bucket, "a.txt")))
    run(catalog.commit_version(_version(bucket, "a.txt")))
    assert run(catalog.delete_version(bucket.id, "a.txt", None))
    run(catalog.delete_bucket("photos"))
    assert run(catalog.get_bucket("photos")) is None


def test_delete_missing_bucket_raises_bucket_not_found(catalog: SQLiteCatalog) -> None:
    with pytest.raises(BucketNotFound):
        run(catalog.delete_bucket("nope"))


# -- versions and trash ---------------------------------------------------------------------


def _trash(catalog: SQLiteCatalog) -> list[tuple[str, str]]:
    return [(t.site, t.shard) for t in run(catalog.trash_due(time.time() + 60, 1000))]


def test_commit_version_makes_it_current(catalog: SQLiteCatalog, bucket: Bucket) -> None:
    assert run(catalog.get_object(bucket.id, "a.txt")) is None
    version = _version(bucket, "a.txt")
    run(catalog.commit_version(version))
    assert run(catalog.get_object(bucket.id, "a.txt")) == version
    assert _trash(catalog) == []


def test_commit_version_into_missing_bucket_raises_bucket_not_found(
    catalog: SQLiteCatalog,
) -> None:
    with pytest.raises(BucketNotFound):
        run(catalog.commit_version(_version(_bucket(), "a.txt")))


def test_a_commit_cancelled_mid_batch_does_not_stall_the_others(
    catalog: SQLiteCatalog, bucket: Bucket, path: Path
) -> None:
    """A PUT whose client left while its batch was committing must not leave the rest of the
    batch, nor later commits, waiting; its version is committed with the batch all the same."""
    versions = [_version(bucket, f"k{i}") for i in range(4)]
    writer = sqlite3.connect(path, isolation_level=None)
    writer.execute("BEGIN IMMEDIATE")  # the batch waits for this write lock

    async def scenario() -> None:
        commits = [asyncio.ensure_future(catalog.commit_version(v)) for v in versions]
        await asyncio.sleep(0.2)  # the batch is taken, its transaction waits for the lock
        commits[1].cancel()
        await asyncio.sleep(0)
        writer.execute("ROLLBACK")
        for commit in (commits[0], *commits[2:]):
            await asyncio.wait_for(commit, 5)
        await asyncio.wait_for(catalog.commit_version(_version(bucket, "later")), 5)

    run(scenario())
    writer.close()
    for key in ("k0", "k1", "k2", "k3", "later"):
        assert run(catalog.get_object(bucket.id, key)) is not None


def test_a_commit_cancelled_mid_failed_batch_does_not_stall_the_others(
    catalog: SQLiteCatalog, bucket: Bucket, path: Path
) -> None:
    """The same when the batch fails as a whole: every other waiter is told why."""
    versions = [_version(bucket, f"k{i}") for i in range(4)]
    # Headers the catalog cannot store as JSON fail the batch's transaction, not one version.
    versions[3] = replace(versions[3], headers={"x-amz-meta-a": b"bytes"})  # type: ignore[dict-item]
    writer = sqlite3.connect(path, isolation_level=None)
    writer.execute("BEGIN IMMEDIATE")

    async def scenario() -> None:
        commits = [asyncio.ensure_future(catalog.commit_version(v)) for v in versions]
        await asyncio.sleep(0.2)
        commits[1].cancel()
        await asyncio.sleep(0)
        writer.execute("ROLLBACK")
        for commit in (commits[0], *commits[2:]):
            with pytest.raises(TypeError):
                await asyncio.wait_for(commit, 5)
        await asyncio.wait_for(catalog.commit_version(_version(bucket, "later")), 5)

    run(scenario())
    writer.close()
    assert run(catalog.get_object(bucket.id, "k0")) is None
    assert run(catalog.get_object(bucket.id, "later")) is not None


@pytest.mark.parametrize(("k", "m"), [(4, 2), (2, 1)])
def test_second_version_replaces_the_first_and_trashes_its_shards(
    catalog: SQLiteCatalog, bucket: Bucket, k: int, m: int
) -> None:
    old = _version(bucket, "a.txt", k=k, m=m, size=1)
    new = _version(bucket, "a.txt", k=k, m=m, size=2)
    other = _version(bucket, "b.txt", k=k, m=m)
    run(catalog.commit_version(old))
    run(catalog.commit_version(other))
    run(catalog.commit_version(new))
    assert run(catalog.get_object(bucket.id, "a.txt")) == new
    assert run(catalog.get_object(bucket.id, "b.txt")) == other
    assert _keys(run(catalog.list_objects(bucket.id, "", None, 100))) == ["a.txt", "b.txt"]
    assert _trash(catalog) == [(SITES[i], shard_name(old.version_id, 0, i)) for i in range(k + m)]


def test_delete_object_trashes_its_shards(catalog: SQLiteCatalog, bucket: Bucket) -> None:
    version = _version(bucket, "a.txt")
    run(catalog.commit_version(version))
    assert run(catalog.delete_version(bucket.id, "a.txt", None)) == version
    assert run(catalog.get_object(bucket.id, "a.txt")) is None
    assert _trash(catalog) == [(SITES[i], shard_name(version.version_id, 0, i)) for i in range(6)]


def test_delete_missing_object_returns_none(catalog: SQLiteCatalog, bucket: Bucket) -> None:
    assert run(catalog.delete_version(bucket.id, "nope", None)) is None
    assert _trash(catalog) == []


def test_trash_due_honours_before_and_limit(catalog: SQLiteCatalog, bucket: Bucket) -> None:
    run(catalog.commit_version(_version(bucket, "a.txt")))
    run(catalog.delete_version(bucket.id, "a.txt", None))
    assert run(catalog.trash_due(time.time() - 3600, 100)) == []
    assert len(run(catalog.trash_due(time.time() + 60, 4))) == 4


def test_forget_trash(catalog: SQLiteCatalog, bucket: Bucket) -> None:
    run(catalog.commit_version(_version(bucket, "a.txt")))
    run(catalog.delete_version(bucket.id, "a.txt", None))
    due = run(catalog.trash_due(time.time() + 60, 100))
    run(catalog.forget_trash([t.id for t in due[:2]]))
    assert run(catalog.trash_due(time.time() + 60, 100)) == due[2:]


# -- listing --------------------------------------------------------------------------------

ORDERED_KEYS = ["a", "a/b", "a0", "b", "é", "\ud7ff", "\ue000", "😀", MAX]


@pytest.fixture
def listed(catalog: SQLiteCatalog, bucket: Bucket) -> Bucket:
    for key in reversed(ORDERED_KEYS):
        run(catalog.commit_version(_version(bucket, key)))
    return bucket


def test_list_orders_keys_by_code_point(catalog: SQLiteCatalog, listed: Bucket) -> None:
    assert sorted(ORDERED_KEYS) == ORDERED_KEYS
    assert _keys(run(catalog.list_objects(listed.id, "", None, 100))) == ORDERED_KEYS


def test_list_returns_full_versions(catalog: SQLiteCatalog, listed: Bucket) -> None:
    [only] = run(catalog.list_objects(listed.id, "a/", None, 100))
    assert only == run(catalog.get_object(listed.id, "a/b"))


def test_list_honours_prefix(catalog: SQLiteCatalog, listed: Bucket) -> None:
    assert _keys(run(catalog.list_objects(listed.id, "a", None, 100))) == ["a", "a/b", "a0"]
    assert _keys(run(catalog.list_objects(listed.id, "a/", None, 100))) == ["a/b"]
    assert _keys(run(catalog.list_objects(listed.id, "c", None, 100))) == []


def test_list_with_prefix_ending_in_the_max_code_point(
    catalog: SQLiteCatalog, bucket: Bucket
) -> None:
    for key in ("a", f"a{MAX}", f"a{MAX}x", f"a{MAX}{MAX}", "b", f"{MAX}", f"{MAX}z"):
        run(catalog.commit_version(_version(bucket, key)))
    got = _keys(run(catalog.list_objects(bucket.id, f"a{MAX}", None, 100)))
    assert got == [f"a{MAX}", f"a{MAX}x", f"a{MAX}{MAX}"]
    assert _keys(run(catalog.list_objects(bucket.id, MAX, None, 100))) == [MAX, f"{MAX}z"]


def test_list_with_prefix_ending_just_below_the_surrogates(
    catalog: SQLiteCatalog, bucket: Bucket
) -> None:
    for key in ("a\ud7ff", "a\ud7ffz", "a\ue000", "b"):
        run(catalog.commit_version(_version(bucket, key)))
    got = _keys(run(catalog.list_objects(bucket.id, "a\ud7ff", None, 100)))
    assert got == ["a\ud7ff", "a\ud7ffz"]


def test_list_honours_after(catalog: SQLiteCatalog, listed: Bucket) -> None:
    assert _keys(run(catalog.list_objects(listed.id, "", "a0", 100))) == ORDERED_KEYS[3:]
    assert _keys(run(catalog.list_objects(listed.id, "", "a00", 100))) == ORDERED_KEYS[3:]
    assert _keys(run(catalog.list_objects(listed.id, "", MAX, 100))) == []


def test_list_after_with_inclusive_includes_that_key(
    catalog: SQLiteCatalog, listed: Bucket
) -> None:
    got = run(catalog.list_objects(listed.id, "", "a0", 100, inclusive=True))
    assert _keys(got) == ORDERED_KEYS[2:]


def test_list_combines_prefix_after_and_limit(catalog: SQLiteCatalog, listed: Bucket) -> None:
    assert _keys(run(catalog.list_objects(listed.id, "a", "a", 1))) == ["a/b"]
    assert _keys(run(catalog.list_objects(listed.id, "a", "a", 5))) == ["a/b", "a0"]
    assert _keys(run(catalog.list_objects(listed.id, "a", "0", 5))) == ["a", "a/b", "a0"]
    assert _keys(run(catalog.list_objects(listed.id, "a", "a0", 5))) == []


def test_list_honours_limit_and_pages_through_everything(
    catalog: SQLiteCatalog, listed: Bucket
) -> None:
    seen: list[str] = []
    after = None
    while page := run(catalog.list_objects(listed.id, "", after, 2)):
        assert len(page) <= 2
        seen += _keys(page)
        after = page[-1].key
    assert seen == ORDERED_KEYS


def test_list_is_scoped_to_its_bucket(catalog: SQLiteCatalog, listed: Bucket) -> None:
    other = _bucket("other")
    run(catalog.create_bucket(other))
    run(catalog.commit_version(_version(other, "only-here")))
    assert _keys(run(catalog.list_objects(other.id, "", None, 100))) == ["only-here"]
    assert "only-here" not in _keys(run(catalog.list_objects(listed.id, "", None, 100)))


# -- credentials ----------------------------------------------------------------------------


def test_credentials_add_get_count(catalog: SQLiteCatalog) -> None:
    assert run(catalog.count_credentials()) == 0
    run(catalog.add_credential("EGKEY1", b"sealed-1"))
    run(catalog.add_credential("EGKEY2", b"sealed-2"))
    assert run(catalog.get_credential("EGKEY1")) == b"sealed-1"
    assert run(catalog.get_credential("EGKEY2")) == b"sealed-2"
    assert run(catalog.get_credential("EGKEY3")) is None
    assert run(catalog.count_credentials()) == 2


def test_a_bucket_setting_is_swapped_only_from_the_value_expected(
    catalog: SQLiteCatalog, bucket: Bucket
) -> None:
    """Two servers recording a bucket's settings at once (decision 0018): one wins."""
    assert run(catalog.swap_bucket_setting(bucket.id, "settings-record", None, "bset-a"))
    assert not run(catalog.swap_bucket_setting(bucket.id, "settings-record", None, "bset-b"))
    assert run(catalog.get_bucket_setting(bucket.id, "settings-record")) == "bset-a"
    assert run(catalog.swap_bucket_setting(bucket.id, "settings-record", "bset-a", "bset-c"))
    assert run(catalog.get_bucket_setting(bucket.id, "settings-record")) == "bset-c"


def test_credentials_from_before_users_become_active_keys_of_admin(path: Path) -> None:
    """Schema 8 to 9 (decision 0029): every existing deployment keeps working, its keys the
    user `admin`'s, Active, with no expiry."""
    db = sqlite3.connect(path)
    for number, script in enumerate(MIGRATIONS[:8], start=1):
        db.executescript(f"BEGIN; {script}; PRAGMA user_version={number}; COMMIT;")
    db.execute("INSERT INTO credentials VALUES ('EGOLD1', x'01', 10.0), ('EGOLD2', x'02', 11.0)")
    db.commit()
    db.close()
    catalog = SQLiteCatalog(path)
    catalog.open()
    try:
        keys = run(catalog.access_keys())
        assert [(k.access_key, k.user, k.status, k.expires) for k in keys] == [
            ("EGOLD1", "admin", "Active", None),
            ("EGOLD2", "admin", "Active", None),
        ]
        assert [u.name for u in run(catalog.users())] == ["admin"]
        account = run(catalog.account_id())
        assert len(account) == 12 and account.isdigit()
    finally:
        run(catalog.close())
