"""A site in a local directory: atomic writes (temp file, fsync, rename, fsync dir)."""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import IO, TypeVar

from egide.sites.base import ShardMissing, SiteError

T = TypeVar("T")
# Blocking file I/O runs here; shared by all local sites so that six sites write in parallel.
_IO_POOL = ThreadPoolExecutor(max_workers=32, thread_name_prefix="egide-io")
MARKER = ".egide-site"


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


async def _run(fn: Callable[..., T], *args: object) -> T:
    return await asyncio.get_running_loop().run_in_executor(_IO_POOL, fn, *args)


class LocalShardWriter:
    def __init__(self, site: LocalSite, final: Path, tmp: Path, f: IO[bytes]) -> None:
        self._site, self._final, self._tmp, self._f = site, final, tmp, f

    async def write(self, data: bytes) -> None:
        try:
            await _run(self._f.write, data)
        except OSError as exc:
            raise SiteError(f"site {self._site.name}: write failed: {exc}") from exc

    def _commit(self) -> None:
        self._f.flush()
        os.fsync(self._f.fileno())
        self._f.close()
        self._final.parent.mkdir(exist_ok=True)
        os.replace(self._tmp, self._final)
        _fsync_dir(self._final.parent)

    async def commit(self) -> None:
        try:
            await _run(self._commit)
        except OSError as exc:
            raise SiteError(f"site {self._site.name}: commit failed: {exc}") from exc

    def _abort(self) -> None:
        self._f.close()
        self._tmp.unlink(missing_ok=True)

    async def abort(self) -> None:
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

    def prepare(self) -> None:
        """Create the directories and drop temp files left by a crash."""
        self._shards.mkdir(parents=True, exist_ok=True)
        self._tmp.mkdir(exist_ok=True)
        (self.root / MARKER).touch()
        for leftover in self._tmp.iterdir():
            leftover.unlink(missing_ok=True)

    def _path(self, shard: str) -> Path:
        return self._shards / shard[:2] / shard

    async def writer(self, shard: str) -> LocalShardWriter:
        tmp = self._tmp / f"{shard}.{os.urandom(4).hex()}"
        try:
            f: IO[bytes] = await _run(lambda: open(tmp, "xb"))  # noqa: SIM115 (closed by commit/abort)
        except OSError as exc:
            raise SiteError(f"site {self.name}: cannot create shard: {exc}") from exc
        return LocalShardWriter(self, self._path(shard), tmp, f)

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
            return sorted(
                p.name for d in self._shards.iterdir() for p in d.iterdir()
                if p.name.startswith(prefix)
            )  # fmt: skip

        for name in await _run(scan):
            yield name
