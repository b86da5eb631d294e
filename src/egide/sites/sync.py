"""Group sync: many shard commits share one flush of the filesystem.

A flush of this disk costs about as much for one small file as for a hundred, so commits made
together wait for one flush together (group commit, as databases do with their logs): a flush
starts once every commit under way has reached its sync, or after a short linger. On Linux one
`syncfs` makes every file and directory entry of the filesystem durable; elsewhere each file
and directory is fsync'd.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import ctypes.util
import os
from collections.abc import Callable
from concurrent.futures import Executor
from pathlib import Path

_libc = ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True)
_syncfs: Callable[[int], int] | None = getattr(_libc, "syncfs", None)
#: Longest wait for commits still on their way before flushing those that arrived.
LINGER = 0.002


def _fsync_path(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _open_any(paths: list[Path]) -> int:
    """A descriptor on the first of `paths` that still exists."""
    error: OSError | None = None
    for path in paths:
        try:
            return os.open(path, os.O_RDONLY)
        except OSError as exc:
            error = exc
    raise error or OSError("nothing to sync")


class SyncGroup:
    """Makes written paths durable, batching the commits that happen at the same time."""

    def __init__(self, executor: Executor) -> None:
        self._executor = executor
        self._pending: list[tuple[list[Path], asyncio.Future[None]]] = []
        self._under_way = 0
        #: While a flush lingers for the commits under way: resolved when the last arrives.
        self._all_arrived: asyncio.Future[None] | None = None
        #: The task flushing, while there is one.
        self._flusher: asyncio.Future[None] | None = None

    @staticmethod
    def _flush(paths: list[Path]) -> None:
        if _syncfs is None:
            for path in dict.fromkeys(paths):
                _fsync_path(path)
            return
        # syncfs needs any descriptor on the filesystem: one of the paths being synced, not a
        # stored directory that could have been deleted since (a lost site on the same disk).
        fd = _open_any(paths)
        try:
            if _syncfs(fd) != 0:
                err = ctypes.get_errno()
                raise OSError(err, f"syncfs failed: {os.strerror(err)}")
        finally:
            os.close(fd)

    def begin(self) -> None:
        """A commit has started writing its last bytes; its `sync` call will follow."""
        self._under_way += 1

    def cancel(self) -> None:
        """A commit that called `begin` will not call `sync` (it failed)."""
        self._arrived()

    def _arrived(self) -> None:
        self._under_way -= 1
        waiter = self._all_arrived
        if self._under_way == 0 and waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def sync(self, paths: list[Path]) -> None:
        """Return once `paths` (files and the directories holding their names) are durable."""
        future = asyncio.get_running_loop().create_future()
        self._pending.append((paths, future))
        self._arrived()
        if self._flusher is None:
            self._flusher = asyncio.ensure_future(self._run())
        await future

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            while self._pending:
                if self._under_way:
                    self._all_arrived = loop.create_future()
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._all_arrived, LINGER)
                    self._all_arrived = None
                batch, self._pending = self._pending, []
                paths = [p for ps, _ in batch for p in ps]
                try:
                    await loop.run_in_executor(self._executor, self._flush, paths)
                except OSError as exc:
                    for _, future in batch:
                        if not future.done():  # a waiter cancelled (client gone) is skipped
                            future.set_exception(exc)
                else:
                    for _, future in batch:
                        if not future.done():
                            future.set_result(None)
        finally:
            self._flusher = None
