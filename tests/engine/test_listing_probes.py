"""Delimiter listings read O(common prefixes) catalog rows, not every key under each prefix
(issue 16: 32 folders of 3,300 keys took 770 ms because every key was read), and list in S3's
byte order whatever the page sizes.

Rows are counted through a wrapper around a real SQLite catalog: what the listing asked for and
got back, never a timing."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

import pytest
from tests.catalog.contract.builders import new_bucket, version

from egide.catalog.base import Catalog
from egide.catalog.sqlite import SQLiteCatalog
from egide.domain import ObjectVersion
from egide.engine.listing import list_objects
from egide.engine.versioning import list_versions

FOLDERS = 20
PER_FOLDER = 100
#: Non-ASCII keys and keys with a byte below "/" ("a-b", "a b", "a!"): they sort before "a/…"
#: in byte order, so the skip past "a/" must land after them and before "a0".
ODD = [
    "a", "a b", "a!", "a-b", "a/1", "a/2", "a/é", "a0", "z/1", "é", "é/x", "é/y", "😀/1", "\x01/1",
]  # fmt: skip


class Counting:
    """A catalog that counts the listing rows it hands back."""

    def __init__(self, inner: Catalog) -> None:
        self.inner = inner
        self.rows = 0

    async def list_objects(self, *args: Any, **kwargs: Any) -> list[ObjectVersion]:
        rows = await self.inner.list_objects(*args, **kwargs)
        self.rows += len(rows)
        return rows

    async def list_versions(self, *args: Any, **kwargs: Any) -> list[tuple[ObjectVersion, bool]]:
        rows = await self.inner.list_versions(*args, **kwargs)
        self.rows += len(rows)
        return rows


@pytest.fixture
def runner() -> Iterator[asyncio.Runner]:
    with asyncio.Runner() as run:
        yield run


@pytest.fixture
def filled(runner: asyncio.Runner, tmp_path: Path) -> Iterator[tuple[Counting, bytes]]:
    """FOLDERS folders of PER_FOLDER keys (each key two versions), and the ODD keys."""
    catalog = SQLiteCatalog(tmp_path / "catalog.sqlite3")
    catalog.open()
    bucket = new_bucket()

    async def fill() -> None:
        await catalog.create_bucket(bucket)
        names = [f"f{f:02d}/k{i:04d}" for f in range(FOLDERS) for i in range(PER_FOLDER)]
        for batch in (names, names, ODD):  # each of `names` twice: two versions a key
            await asyncio.gather(
                *(catalog.commit_version(version(bucket, n, null=False)) for n in batch)
            )

    runner.run(fill())
    yield Counting(catalog), bucket.id
    runner.run(catalog.close())


def test_a_delimiter_listing_reads_one_row_per_common_prefix(
    runner: asyncio.Runner, filled: tuple[Counting, bytes]
) -> None:
    counting, bucket_id = filled
    listing = runner.run(
        list_objects(cast(Catalog, counting), bucket_id, prefix="f", delimiter="/")
    )
    assert listing.prefixes == [f"f{f:02d}/" for f in range(FOLDERS)]
    assert counting.rows <= 2 * FOLDERS + 1


def test_a_delimiter_version_listing_reads_one_row_per_common_prefix(
    runner: asyncio.Runner, filled: tuple[Counting, bytes]
) -> None:
    counting, bucket_id = filled
    listing = runner.run(
        list_versions(cast(Catalog, counting), bucket_id, prefix="f", delimiter="/")
    )
    assert listing.prefixes == [f"f{f:02d}/" for f in range(FOLDERS)]
    assert counting.rows <= 2 * FOLDERS + 1


def test_a_page_of_keys_is_still_read_in_few_rows(
    runner: asyncio.Runner, filled: tuple[Counting, bytes]
) -> None:
    """Inside a folder (no common prefix), a 1,000-key page reads about 1,000 rows."""
    counting, bucket_id = filled
    listing = runner.run(
        list_objects(cast(Catalog, counting), bucket_id, prefix="f03/", delimiter="/")
    )
    assert [v.key for v in listing.objects] == [f"f03/k{i:04d}" for i in range(PER_FOLDER)]
    assert counting.rows <= PER_FOLDER + 1


#: The entries of a delimiter listing of ODD at the root.
TOP = ["\x01/", "a", "a b", "a!", "a-b", "a/", "a0", "z/", "é", "é/", "😀/"]


def byte_order(names: list[str]) -> list[str]:
    return sorted(names, key=lambda name: name.encode())


def test_delimiter_listing_is_in_byte_order_page_by_page(
    runner: asyncio.Runner, filled: tuple[Counting, bytes]
) -> None:
    """One entry a page, resumed after each key or common prefix: S3's byte order, with keys
    below "/" before "a/" and non-ASCII last."""
    counting, bucket_id = filled
    catalog = cast(Catalog, counting)
    want = byte_order([*TOP, *(f"f{f:02d}/" for f in range(FOLDERS))])
    got: list[str] = []
    after, after_is_prefix = None, False
    while True:
        page = runner.run(
            list_objects(
                catalog,
                bucket_id,
                delimiter="/",
                after=after,
                after_is_prefix=after_is_prefix,
                max_keys=1,
            )
        )
        got += [v.key for v in page.objects] + page.prefixes
        if not page.truncated:
            break
        after, after_is_prefix = page.last, page.last_is_prefix
    assert got == want


def test_delimiter_version_listing_is_in_byte_order_page_by_page(
    runner: asyncio.Runner, filled: tuple[Counting, bytes]
) -> None:
    counting, bucket_id = filled
    catalog = cast(Catalog, counting)
    want = byte_order([*TOP, *(f"f{f:02d}/" for f in range(FOLDERS))])
    got: list[str] = []
    key_marker: str | None = None
    after_seq = 0
    while True:
        page = runner.run(
            list_versions(
                catalog,
                bucket_id,
                delimiter="/",
                key_marker=key_marker,
                after_seq=after_seq,
                max_keys=1,
            )
        )
        got += [v.key for v, _ in page.versions] + page.prefixes
        if not page.truncated:
            break
        key_marker = page.next_key
        after_seq = page.next_version.seq if page.next_version is not None else 0
    assert got == want
