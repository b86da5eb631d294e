"""SyncGroup: commits made together share one flush, and no directory it once saw is needed."""

from __future__ import annotations

import asyncio
import shutil
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

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


def _held_executor() -> tuple[ThreadPoolExecutor, threading.Event]:
    """A one-thread executor busy until the event is set: a flush sent to it waits there."""
    executor = ThreadPoolExecutor(1)
    gate = threading.Event()
    executor.submit(gate.wait)
    return executor, gate


async def _commit_and_cancel_one(paths: list[Path]) -> list[asyncio.Future[None]]:
    """Commits of `paths` flushed as one batch, the second cancelled while the flush runs."""
    executor, gate = _held_executor()
    group = SyncGroup(executor)
    for _ in paths:
        group.begin()
    commits = [asyncio.ensure_future(group.sync([path])) for path in paths]
    await asyncio.sleep(0.1)  # the batch is taken and its flush waits behind the gate
    commits[1].cancel()
    await asyncio.sleep(0)
    gate.set()
    return [commits[0], *commits[2:]]


def test_a_waiter_cancelled_mid_flush_does_not_stall_the_others(tmp_path: Path) -> None:
    """A PUT whose client left during the flush must not leave the rest of its batch waiting."""
    paths = [tmp_path / f"f{i}" for i in range(4)]
    for path in paths:
        path.write_bytes(b"x")

    async def scenario() -> None:
        for commit in await _commit_and_cancel_one(paths):
            await asyncio.wait_for(commit, 5)

    asyncio.run(scenario())


def test_a_waiter_cancelled_mid_failed_flush_does_not_stall_the_others(tmp_path: Path) -> None:
    """The same when the flush fails: every other waiter is told why."""
    paths = [tmp_path / f"gone{i}" for i in range(4)]  # nothing to open: the flush fails

    async def scenario() -> None:
        for commit in await _commit_and_cancel_one(paths):
            with pytest.raises(FileNotFoundError):
                await asyncio.wait_for(commit, 5)

    asyncio.run(scenario())
