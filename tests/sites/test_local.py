"""The local-directory site: atomic, invisible-until-commit shard writes, reads, listing."""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any, TypeVar

import pytest

from egide.sites.base import ShardMissing, SiteError
from egide.sites.local import FLUSH_SIZE, MARKER, LocalSite

T = TypeVar("T")
DATA = bytes(range(256)) * 4


def run(fn: Callable[[], Coroutine[Any, Any, T]]) -> T:
    return asyncio.run(fn())


@pytest.fixture
def site(tmp_path: Path) -> LocalSite:
    site = LocalSite("site-1", tmp_path / "site")
    site.prepare()
    return site


def _files(directory: Path) -> list[Path]:
    return [p for p in directory.rglob("*") if p.is_file()]


async def _put(site: LocalSite, shard: str, data: bytes) -> None:
    writer = await site.writer(shard)
    await writer.write(data)
    await writer.commit()


async def _list(site: LocalSite, prefix: str = "") -> list[str]:
    return [name async for name in site.list(prefix)]


def test_prepare_creates_directories_and_marker(site: LocalSite) -> None:
    assert (site.root / "shards").is_dir()
    assert (site.root / "tmp").is_dir()
    assert (site.root / MARKER).is_file()


def test_written_shard_is_invisible_until_commit(site: LocalSite) -> None:
    async def scenario() -> None:
        writer = await site.writer("ab12-0-0")
        await writer.write(b"hello ")
        await writer.write(b"world")
        with pytest.raises(ShardMissing):
            await site.read("ab12-0-0", 0, -1)
        assert await site.size("ab12-0-0") is None
        assert await _list(site) == []
        await writer.commit()
        assert await site.read("ab12-0-0", 0, -1) == b"hello world"
        assert await site.size("ab12-0-0") == 11
        assert await _list(site) == ["ab12-0-0"]

    run(scenario)
    assert _files(site.root / "tmp") == []


def test_abort_leaves_nothing(site: LocalSite) -> None:
    async def scenario() -> None:
        writer = await site.writer("ab12-0-0")
        await writer.write(DATA)
        await writer.abort()
        with pytest.raises(ShardMissing):
            await site.read("ab12-0-0", 0, -1)
        assert await site.size("ab12-0-0") is None

    run(scenario)
    assert _files(site.root / "tmp") == []
    assert _files(site.root / "shards") == []


def test_commit_replaces_an_existing_shard(site: LocalSite) -> None:
    async def scenario() -> bytes:
        await _put(site, "ab12-0-0", b"old")
        await _put(site, "ab12-0-0", b"new contents")
        return await site.read("ab12-0-0", 0, -1)

    assert run(scenario) == b"new contents"


def test_read_with_offset_and_length(site: LocalSite) -> None:
    async def scenario() -> None:
        await _put(site, "ab12-0-0", DATA)
        assert await site.read("ab12-0-0", 0, 10) == DATA[:10]
        assert await site.read("ab12-0-0", 300, 50) == DATA[300:350]
        assert await site.read("ab12-0-0", 1000, 100) == DATA[1000:]
        assert await site.read("ab12-0-0", len(DATA), 10) == b""
        assert await site.read("ab12-0-0", 0, 0) == b""

    run(scenario)


def test_read_with_negative_length_reads_to_the_end(site: LocalSite) -> None:
    async def scenario() -> None:
        await _put(site, "ab12-0-0", DATA)
        assert await site.read("ab12-0-0", 0, -1) == DATA
        assert await site.read("ab12-0-0", 1000, -1) == DATA[1000:]

    run(scenario)


def test_read_of_missing_shard_raises_shard_missing(site: LocalSite) -> None:
    async def scenario() -> None:
        with pytest.raises(ShardMissing, match="site-1"):
            await site.read("ffff-0-0", 0, -1)

    run(scenario)
    assert issubclass(ShardMissing, SiteError)


def test_size_of_missing_shard_is_none(site: LocalSite) -> None:
    assert run(lambda: site.size("ffff-0-0")) is None


def test_delete_removes_the_shard(site: LocalSite) -> None:
    async def scenario() -> None:
        await _put(site, "ab12-0-0", DATA)
        await _put(site, "ab12-0-1", DATA)
        await site.delete("ab12-0-0")
        with pytest.raises(ShardMissing):
            await site.read("ab12-0-0", 0, -1)
        assert await site.size("ab12-0-0") is None
        assert await _list(site) == ["ab12-0-1"]

    run(scenario)


def test_delete_of_missing_shard_is_a_no_op(site: LocalSite) -> None:
    run(lambda: site.delete("ffff-0-0"))


def test_list_with_prefix(site: LocalSite) -> None:
    names = ["ff03-0-0", "aa01-0-1", "aa01-0-0", "ab02-0-0", "aa011-0-0"]

    async def scenario() -> None:
        for name in names:
            await _put(site, name, b"x")
        assert await _list(site) == sorted(names)
        assert await _list(site, "aa01-") == ["aa01-0-0", "aa01-0-1"]
        assert await _list(site, "aa01") == ["aa01-0-0", "aa01-0-1", "aa011-0-0"]
        assert await _list(site, "ab02-0-0") == ["ab02-0-0"]
        assert await _list(site, "zz") == []
        assert await _list(site, "a") == ["aa01-0-0", "aa01-0-1", "aa011-0-0", "ab02-0-0"]
        # A prefix of two characters or more reads only its directory; a stray file put in
        # another directory by hand is not named under a prefix it does not start with.
        (site.root / "shards" / "aa" / "ab99-0-0").write_bytes(b"misplaced")
        assert await _list(site, "ab") == ["ab02-0-0"]

    run(scenario)


def test_list_of_site_without_shard_directory_raises_site_error(tmp_path: Path) -> None:
    site = LocalSite("gone", tmp_path / "never-prepared")
    with pytest.raises(SiteError, match="gone"):
        run(lambda: _list(site))


def test_prepare_removes_leftover_temp_files(tmp_path: Path) -> None:
    root = tmp_path / "site"
    first = LocalSite("site-1", root)
    first.prepare()
    run(lambda: _put(first, "ab12-0-0", DATA))
    (root / "tmp" / "cd34-0-0.deadbeef").write_bytes(b"half a shard")
    (root / "tmp" / "cd34-0-1.cafebabe").write_bytes(b"")

    restarted = LocalSite("site-1", root)
    restarted.prepare()
    assert _files(root / "tmp") == []
    assert run(lambda: restarted.read("ab12-0-0", 0, -1)) == DATA


def test_prepare_removes_the_temp_file_of_an_abandoned_writer(tmp_path: Path) -> None:
    root = tmp_path / "site"
    site = LocalSite("site-1", root)
    site.prepare()

    async def crash() -> None:
        writer = await site.writer("ab12-0-0")
        await writer.write(b"x" * FLUSH_SIZE)  # buffered writes reach the temp file at this size
        assert len(_files(root / "tmp")) == 1
        LocalSite("site-1", root).prepare()
        assert _files(root / "tmp") == []
        await writer.abort()

    run(crash)
    assert run(lambda: site.size("ab12-0-0")) is None


def test_opening_a_writer_after_the_site_directory_was_deleted_raises_site_error(
    site: LocalSite,
) -> None:
    shutil.rmtree(site.root)
    with pytest.raises(SiteError, match="site-1"):
        run(lambda: site.writer("ab12-0-0"))
    assert not site.root.exists()


def test_commit_after_the_site_directory_was_deleted_raises_site_error(site: LocalSite) -> None:
    async def scenario() -> None:
        writer = await site.writer("ab12-0-0")
        await writer.write(DATA)
        shutil.rmtree(site.root)
        with pytest.raises(SiteError, match="commit failed"):
            await writer.commit()

    run(scenario)
    assert not site.root.exists()
