"""The site interface: where shard files go. Sites know nothing of objects, only opaque names."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Protocol


class SiteError(Exception):
    """The site could not be reached or refused the operation."""


class ShardMissing(SiteError):
    """The named shard does not exist on the site (deleted, lost, never written)."""


class ShardWriter(Protocol):
    """A shard being written; invisible under its name until `commit` returns."""

    async def write(self, data: bytes) -> None: ...

    async def commit(self) -> None:
        """Make the shard durable and visible under its name, atomically."""

    async def abort(self) -> None: ...


class Site(Protocol):
    name: str

    async def writer(self, shard: str) -> ShardWriter: ...

    async def read(self, shard: str, offset: int, length: int) -> bytes:
        """Up to `length` bytes at `offset`; `length` < 0 reads to the end."""

    async def size(self, shard: str) -> int | None:
        """The shard's size in bytes, or None if it does not exist."""

    async def delete(self, shard: str) -> None: ...

    def list(self, prefix: str = "") -> AsyncIterator[str]: ...


async def write_file(site: Site, name: str, data: bytes) -> None:
    """Write a whole small file (a record, a snapshot chunk) and make it visible, or nothing."""
    writer = await site.writer(name)
    try:
        await writer.write(data)
        await writer.commit()
    except BaseException:
        await writer.abort()
        raise
