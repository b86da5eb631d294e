"""Write one part of an object version: stream → blocks → sealed, coded pieces → k+m shards.

The body is consumed block by block. Block i is encoded while its MD5 is computed on the other
core and block i-1 is still being written, so memory stays at a few blocks whatever the size.
Nothing becomes visible here: the caller commits the catalog row after `commit` succeeds.
With padding (decision 0017), zeros follow the body up to its size class: they are sealed with
it, never hashed, and the reader never returns them (it stops at the true size).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Sequence
from typing import Any, Protocol

from egide.coding.padding import padded_size
from egide.coding.shardfile import ShardFooter, ShardHeader
from egide.domain import NO_BUCKET_ID, SitesUnavailable, shard_name
from egide.engine.workers import on_cpu
from egide.pipeline import PartCipher, encode_block
from egide.sites.base import ShardWriter, Site, SiteError


class Hasher(Protocol):
    def update(self, data: bytes, /) -> None: ...


async def rechunk(body: AsyncIterator[bytes], size: int) -> AsyncIterator[bytes]:
    """Re-cut a stream of arbitrary pieces into blocks of exactly `size` (the last shorter).

    Pieces are gathered in a list and joined once per block: one copy of each byte, where a
    growing bytearray sliced into bytes costs three.
    """
    parts: list[bytes | memoryview] = []
    held = 0
    async for chunk in body:
        parts.append(chunk)
        held += len(chunk)
        while held >= size:
            excess = held - size
            rest = None
            if excess:  # the block ends inside the last piece: split it without copying
                last = memoryview(parts[-1])
                parts[-1], rest = last[: len(last) - excess], last[len(last) - excess :]
            yield b"".join(parts)
            parts, held = ([rest] if rest is not None else []), excess
    if held:
        yield b"".join(parts)


def _update_all(hashers: Sequence[Hasher], data: bytes) -> None:
    for hasher in hashers:
        hasher.update(data)


def encode_object(
    ctx: PartCipher, data: bytes, block_size: int, hashers: Sequence[Hasher], pad: bool
) -> list[list[bytes]]:
    """A whole (small) object at once: hashed, and its blocks' stored pieces, per block
    (padded to its size class with `pad`)."""
    _update_all(hashers, data)
    if pad:
        data += bytes(padded_size(len(data)) - len(data))
    return [
        encode_block(ctx, index, data[start : start + block_size])
        for index, start in enumerate(range(0, len(data), block_size))
    ]


async def _padded(body: AsyncIterator[bytes], writer: PartWriter) -> AsyncIterator[bytes]:
    """The body, then zeros up to its size class; `writer.size` is set when the body ends."""
    size = 0
    async for chunk in body:
        size += len(chunk)
        yield chunk
    writer.size = size
    left = padded_size(size) - size
    zeros = bytes(min(left, writer.block_size))  # at most one block of zeros in memory
    while left > 0:
        yield zeros if left >= len(zeros) else zeros[:left]
        left -= len(zeros)


class PartWriter:
    """Writes the shards of one part; `finish` then `commit`, or `abort` on any failure.

    `size` is the body's length; `stored_size` the plaintext the blocks hold (with `pad`, the
    size's class, decision 0017; else the size). `name`: the (id, seq) naming its files and
    written in their clear header (a part attempt's own random id and 0, decision 0018); the
    version id and part by default."""

    def __init__(
        self,
        ctx: PartCipher,
        sites: Sequence[Site],
        block_size: int,
        *,
        pad: bool,
        name: tuple[bytes, int] | None = None,
    ) -> None:
        self.ctx = ctx
        self.name = name or (ctx.version_id, ctx.part)
        self.sites = sites
        self.block_size = block_size
        self.pad = pad
        self.size = 0
        self.stored_size = 0
        self.block_count = 0
        self._writers: list[ShardWriter] = []

    @property
    def padded_size(self) -> int | None:
        """The stored size when padding made it differ from the size (else None)."""
        return self.stored_size if self.stored_size != self.size else None

    async def _each(self, calls: Sequence[object]) -> None:
        results = await asyncio.gather(*calls, return_exceptions=True)  # type: ignore[call-overload]
        failed = [
            (site.name, result)
            for site, result in zip(self.sites, results, strict=True)
            if isinstance(result, BaseException)
        ]
        if failed:
            raise SitesUnavailable(
                "could not write shards to " + ", ".join(f"{n} ({e})" for n, e in failed),
                tuple(name for name, _ in failed),
            )

    async def open(self) -> None:
        ctx = self.ctx
        results = await asyncio.gather(
            *(site.writer(shard_name(*self.name, i)) for i, site in enumerate(self.sites)),
            return_exceptions=True,
        )
        self._writers = [r for r in results if not isinstance(r, BaseException)]
        errors = [r for r in results if isinstance(r, BaseException)]
        if errors:
            await self.abort()
            failed = tuple(
                site.name
                for site, r in zip(self.sites, results, strict=True)
                if isinstance(r, BaseException)
            )
            raise SitesUnavailable(
                "could not open shards: " + "; ".join(str(e) for e in errors), failed
            ) from errors[0]
        headers = [
            ShardHeader(
                ctx.code.k,
                ctx.code.m,
                i,
                self.name[1],
                self.block_size,
                NO_BUCKET_ID,
                self.name[0],
            ).encode()
            for i in range(len(self.sites))
        ]
        await self._each([w.write(h) for w, h in zip(self._writers, headers, strict=True)])

    async def write_stream(self, body: AsyncIterator[bytes], hashers: Sequence[Hasher]) -> None:
        """Three stages overlap: block i+1 is received while block i is encoded (and hashed,
        in order, on the other core) and block i-1 is written."""
        hashing: asyncio.Future[None] | None = None
        encoding: asyncio.Future[list[bytes]] | None = None
        writing: asyncio.Future[None] | None = None
        self.size = -1  # until the body ends (with padding): every byte so far is the body's
        source = _padded(body, self) if self.pad else body
        try:
            async for block in rechunk(source, self.block_size):
                if hashing is not None:
                    await hashing  # hashers take the blocks in order
                # A block holding padding comes after the body ended, when `size` is known.
                content = block if self.size < 0 else block[: max(self.size - self.stored_size, 0)]
                hashing = on_cpu(_update_all, hashers, content)
                encoded = on_cpu(encode_block, self.ctx, self.block_count, block)
                self.stored_size += len(block)
                self.block_count += 1
                if encoding is not None:
                    writing = await self._write_after(writing, await encoding)
                encoding = encoded
            if encoding is not None:
                writing = await self._write_after(writing, await encoding)
            if not self.pad:
                self.size = self.stored_size
            for stage in (hashing, writing):
                if stage is not None:
                    await stage
        except BaseException:
            stages: list[asyncio.Future[Any] | None] = [hashing, encoding, writing]
            for stage in stages:
                if stage is not None:
                    stage.cancel()
            raise

    async def _write_after(
        self, previous: asyncio.Future[None] | None, pieces: list[bytes]
    ) -> asyncio.Future[None]:
        """Start writing `pieces` once the previous block's write is done (order per shard)."""
        if previous is not None:
            await previous
        return asyncio.ensure_future(
            self._each([w.write(p) for w, p in zip(self._writers, pieces, strict=True)])
        )

    async def finish(self, footer: ShardFooter) -> None:
        data = footer.encode()
        await self._each([w.write(data) for w in self._writers])

    async def commit(self) -> None:
        await self._each([w.commit() for w in self._writers])

    async def abort(self) -> None:
        for writer in self._writers:
            with contextlib.suppress(SiteError):
                await writer.abort()
