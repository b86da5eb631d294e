"""SyncGroup: commits made together share one flush, and no directory it once saw is needed."""

from __future__ import annotations

import asyncio
import shutil
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from egide.sites.sync import SyncGroup


def test_a_deleted_directory_does_not_break_later_syncs(tmp_path: Path) -> None:
    """A lost site on the same disk must not fail the commits of the other sites."""
    lost, kept = tmp_path / "lost", tmp_path / "kept"
    for directory in (lost, kept):
        directory.mkdir()
        (directory / "shard").write_bytes(b"x")
    group = SyncGroup(ThreadPoolExecutor(2))

    async def scenario() -> None:
        await group.sync([lost / "shard", lost])
        shutil.rmtree(lost)
        await group.sync([kept / "shard", kept])

    asyncio.run(scenario())


def test_a_batch_with_a_vanished_path_still_syncs_the_others(tmp_path: Path) -> None:
    (tmp_path / "present").write_bytes(b"x")
    group = SyncGroup(ThreadPoolExecutor(1))
    asyncio.run(group.sync([tmp_path / "gone", tmp_path / "present"]))


def test_commits_under_way_share_one_flush(tmp_path: Path) -> None:
    paths = [tmp_path / f"f{i}" for i in range(6)]
    for path in paths:
        path.write_bytes(b"x")
    flushes: list[list[Path]] = []
    group = SyncGroup(ThreadPoolExecutor(1))
    original = SyncGroup._flush
    group._flush = lambda batch: (flushes.append(batch), original(batch))[1]  # type: ignore[method-assign]

    async def scenario() -> None:
        for _ in paths:
            group.begin()

        async def commit(path: Path) -> None:
            await asyncio.sleep(0)
            await group.sync([path])

        await asyncio.gather(*(commit(path) for path in paths))

    asyncio.run(scenario())
    assert len(flushes) == 1 and sorted(flushes[0]) == sorted(paths)
