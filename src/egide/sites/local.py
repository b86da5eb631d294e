"""A site in a local directory: atomic, durable, group-synced shard writes.

A shard is buffered and written to a temp file in one go per megabyte, renamed to its name on
commit, then made durable by a group sync shared with every other commit waiting at that time.
The catalog commit comes only after that, so a crash can leave at worst a file no version
references, never a referenced file that is not durable.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import IO, TypeVar

from egide.sites.base import ShardMissing, SiteError
from egide.sites.sync import SyncGroup

T = TypeVar("T")
# Blocking file I/O runs here; shared by all local sites so that six sites write in parallel.
_IO_POOL = ThreadPoolExecutor(max_workers=32, thread_name_prefix="egide-io")
MARKER = ".egide-site"
#: Buffered bytes written to the temp file in one call.
FLUSH_SIZE = 1024 * 1024
#: Reads this small are served on the calling thread: from the page cache they take less time
#: than a hand-off to the I/O pool would.
INLINE_READ = 64 * 1024

_sync_groups: dict[int, SyncGroup] = {}


def _sync_group(root: Path) -> SyncGroup:
    """One group per filesystem: a single flush covers every site on the same device."""
    device = root.stat().st_dev
    if device not in _sync_groups:
        _sync_groups[device] = SyncGroup(_IO_POOL)
    return _sync_groups[device]


async def _run(fn: Callable[..., T], *args: object) -> T:
    return await asyncio.get_running_loop().run_in_executor(_IO_POOL, fn, *args)


class LocalShardWriter:
    def __init__(self, site: LocalSite, final: Path, tmp: Path) -> None:
        self._site, self._final, self._tmp = site, final, tmp
        self._buffer: list[bytes] = []
        self._buffered = 0
        self._file: IO[bytes] | None = None

    def _write(self, chunks: list[bytes], close: bool) -> None:
        if self._file is None:
            self._file = open(self._tmp, "xb")  # noqa: SIM115 (closed below or by abort)
        self._file.writelines(chunks)
        if close:
            self._file.close()
            self._final.parent.mkdir(exist_ok=True)
            os.replace(self._tmp, self._final)

    async def _flush(self, close: bool) -> None:
        chunks, self._buffer, self._buffered = self._buffer, [], 0
        try:
            await _run(self._write, chunks, close)
        except OSError as exc:
            action = "commit" if close else "write"
            raise SiteError(f"site {self._site.name}: {action} failed: {exc}") from exc

    async def write(self, data: bytes) -> None:
        self._buffer.append(data)
        self._buffered += len(data)
        if self._buffered >= FLUSH_SIZE:
            await self._flush(close=False)

    async def commit(self) -> None:
        group = self._site.sync_group
        group.begin()
        try:
            await self._flush(close=True)
        except BaseException:
            group.cancel()
            raise
        try:
            await group.sync([self._final, self._final.parent])
        except OSError as exc:
            raise SiteError(f"site {self._site.name}: sync failed: {exc}") from exc

    def _abort(self) -> None:
        if self._file is not None:
            self._file.close()
        self._tmp.unlink(missing_ok=True)

    async def abort(self) -> None:
        self._buffer.clear()
        # A temp file left behind is swept by the site's next start.
        with contextlib.suppress(OSError):
            await _run(self._abort)


class LocalSite:
    """Shards under `root/shards/<first two hex digits>/<name>`; temp files under `root/tmp`."""

    def __init__(self, name: str, root: Path) -> None:
        self.name = name
        self.root = root
        self._shards = root / "shards"
        self._tmp = root / "tmp"
        self._sync_group: SyncGroup | None = None

    @property
    def sync_group(self) -> SyncGroup:
        assert self._sync_group is not None, "site not prepared"
        return self._sync_group

    def prepare(self) -> None:
        """At start, before any server process writes: create the directories and drop the
        temp files a crash left behind."""
        self._shards.mkdir(parents=True, exist_ok=True)
        self._tmp.mkdir(exist_ok=True)
        (self.root / MARKER).touch()
        for leftover in self._tmp.iterdir():
            leftover.unlink(missing_ok=True)
        self.attach()

    def attach(self) -> None:
        """Make the site usable in this process without touching its directory: a lost site
        stays lost (reads rebuild from the others) instead of being silently re-created."""
        device_of = self.root
        while not device_of.exists() and device_of != device_of.parent:
            device_of = device_of.parent
        self._sync_group = _sync_group(device_of)

    def _path(self, shard: str) -> Path:
        return self._shards / shard[:2] / shard

    async def writer(self, shard: str) -> LocalShardWriter:
        if not self._tmp.is_dir():
            raise SiteError(f"site {self.name}: directory {self._tmp} is missing")
        tmp = self._tmp / f"{shard}.{os.urandom(4).hex()}"
        return LocalShardWriter(self, self._path(shard), tmp)

    def _read(self, shard: str, offset: int, length: int) -> bytes:
        try:
            with open(self._path(shard), "rb") as f:
                f.seek(offset)
                return f.read() if length < 0 else f.read(length)
        except FileNotFoundError as exc:
            raise ShardMissing(f"site {self.name}: shard {shard} missing") from exc
        except OSError as exc:
            raise SiteError(f"site {self.name}: read failed: {exc}") from exc

    async def read(self, shard: str, offset: int, length: int) -> bytes:
        if 0 <= length <= INLINE_READ:
            return self._read(shard, offset, length)
        return await _run(self._read, shard, offset, length)

    def _size(self, shard: str) -> int | None:
        try:
            return self._path(shard).stat().st_size
        except FileNotFoundError:
            return None

    async def size(self, shard: str) -> int | None:
        return await _run(self._size, shard)

    async def delete(self, shard: str) -> None:
        await _run(self._path(shard).unlink, True)

    async def list(self, prefix: str = "") -> AsyncIterator[str]:
        def scan() -> list[str]:
            if not self._shards.is_dir():
                raise SiteError(f"site {self.name}: directory {self._shards} missing")
            # A file lives under the directory of its first two characters: a prefix that
            # long names the one directory to read (records: keys-, mark-, amend-).
            if len(prefix) >= 2:
                one = self._shards / prefix[:2]
                directories = [one] if one.is_dir() else []
            else:
                directories = [d for d in self._shards.iterdir() if d.is_dir()]
            return sorted(
                p.name for d in directories for p in d.iterdir() if p.name.startswith(prefix)
            )

        for name in await _run(scan):
            yield name
