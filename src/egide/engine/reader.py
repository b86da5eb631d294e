"""Read a byte range of an object version: fetch k pieces per block, decode only if needed.

Data pieces are fetched first (the code is systematic, so a healthy read is a concatenation).
A piece that is missing or fails its checksum is replaced by a parity piece and the block is
rebuilt; a site that lost the whole shard is not asked again for the rest of the stream. With
fewer than k good pieces the read fails with ShardsUnavailable, never with wrong bytes.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable, Sequence

from egide.coding.blocks import CHECKSUM_SIZE, Layout
from egide.coding.shardfile import HEADER_SIZE, verify_piece
from egide.crypto.aead import DecryptionError
from egide.domain import ObjectVersion, Part, ShardsUnavailable
from egide.engine.workers import on_cpu
from egide.pipeline import PartCipher, decode_block
from egide.sites.base import ShardMissing, Site, SiteError

log = logging.getLogger("egide.read")

PREFETCH_BLOCKS = 4


class ObjectReader:
    """Async iterator over the plaintext bytes first..last (inclusive) of one version."""

    def __init__(
        self,
        version: ObjectVersion,
        ctx: PartCipher,
        sites: Sequence[Site | None],
        first: int,
        last: int,
        *,
        part: Part | None = None,
    ) -> None:
        """Bytes first..last of the version, or with `part`, of that part of a multipart
        version (offsets relative to the part)."""
        self.version = version
        self.ctx = ctx
        self.sites = sites
        self.first = first
        self.last = last
        self.seq = part.seq if part is not None else 0
        size = part.size if part is not None else version.size
        self.layout = Layout(version.k, version.m, version.block_size, size)
        #: Shard index → why the whole shard is unusable (missing file, dead site).
        self.lost: dict[int, str] = {
            i: f"site {version.sites[i]} is not configured"
            for i, s in enumerate(sites)
            if s is None
        }
        self._blocks = iter(self.layout.blocks_covering(first, last) if last >= first else ())
        self._queue: list[asyncio.Task[tuple[int, bytes]]] = []
        self._rebuilt = False

    def _describe(self, index: int) -> str:
        version = self.version
        where = f"block {index}" + (f" of part attempt {self.seq}" if self.seq else "")
        return f"{where} of object {version.key!r} (version {version.version_id.hex()})"

    async def _piece(self, shard: int, block: int, bad: dict[int, str]) -> bytes | None:
        site = self.sites[shard]
        assert site is not None
        length = self.layout.piece_len(block) + CHECKSUM_SIZE
        offset = self.version.pack_offset + self.layout.piece_offset(HEADER_SIZE, block)
        try:
            stored = await site.read(self.version.shard(shard, self.seq), offset, length)
        except ShardMissing as exc:
            self.lost[shard] = str(exc)
            return None
        except SiteError as exc:
            self.lost[shard] = str(exc)
            return None
        piece = verify_piece(stored) if len(stored) == length else None
        if piece is None:
            bad[shard] = f"piece {shard} on site {site.name} is corrupt (checksum mismatch)"
            log.warning("corrupt piece: %s; rebuilding from the other pieces", bad[shard])
        return piece

    async def _read_block(self, index: int) -> tuple[int, bytes]:
        k = self.version.k
        bad: dict[int, str] = {}
        pieces: dict[int, bytes] = {}
        candidates = [i for i in range(len(self.sites)) if i not in self.lost]
        while len(pieces) < k and candidates:
            batch, candidates = candidates[: k - len(pieces)], candidates[k - len(pieces) :]
            results = await asyncio.gather(*(self._piece(i, index, bad) for i in batch))
            pieces.update((i, p) for i, p in zip(batch, results, strict=True) if p is not None)
        if len(pieces) < k:
            reasons = {**self.lost, **bad}
            raise ShardsUnavailable(
                f"cannot read {self._describe(index)}: {len(pieces)} of the {k} needed shards "
                "are available; unavailable: " + "; ".join(reasons[i] for i in sorted(reasons))
            )
        try:
            plain = await on_cpu(
                decode_block, self.ctx, index, pieces, self.layout.sealed_len(index)
            )
        except DecryptionError as exc:
            raise ShardsUnavailable(
                f"cannot read {self._describe(index)}: its shards fail authentication "
                "(moved or tampered with)"
            ) from exc
        if not self._rebuilt and any(i >= k for i in pieces):
            self._rebuilt = True  # once per read, not once per block of a degraded object
            log.info("rebuilding %s and following blocks from parity", self._describe(index))
        return index, plain

    def _fill(self) -> None:
        while len(self._queue) < PREFETCH_BLOCKS:
            index = next(self._blocks, None)
            if index is None:
                return
            self._queue.append(asyncio.ensure_future(self._read_block(index)))

    async def start(self) -> None:
        """Fetch the first block now, so that an unreadable object fails before any byte is sent."""
        self._fill()
        if self._queue:
            try:
                await self._queue[0]  # raises here, before the response starts
            except BaseException:
                self.close()
                raise

    async def __aiter__(self) -> AsyncIterator[bytes]:
        try:
            self._fill()
            while self._queue:
                index, plain = await self._queue.pop(0)
                self._fill()
                start = index * self.layout.block_size
                lo = max(self.first - start, 0)
                hi = min(self.last - start + 1, len(plain))
                yield plain if lo == 0 and hi == len(plain) else plain[lo:hi]
        finally:
            self.close()

    def close(self) -> None:
        for task in self._queue:
            task.cancel()
        self._queue.clear()


class MultipartReader:
    """Bytes first..last of a multipart version: the readers of the parts it touches, one
    after the other. Each starts when the previous ends: one block of latency per part of
    at least 5 MiB, for no extra memory."""

    def __init__(
        self,
        parts: Sequence[Part],
        first: int,
        last: int,
        open_part: Callable[[Part, int, int], ObjectReader],
    ) -> None:
        #: (part, first, last) relative to each part, for the parts the range touches.
        self.spans: list[tuple[Part, int, int]] = []
        start = 0
        for part in parts:
            end = start + part.size - 1
            if part.size and start <= last and end >= first:
                self.spans.append((part, max(first - start, 0), min(last, end) - start))
            start = end + 1
        self._open_part = open_part
        self._current: ObjectReader | None = None

    async def start(self) -> None:
        if self.spans:
            self._current = self._open_part(*self.spans[0])
            await self._current.start()

    async def __aiter__(self) -> AsyncIterator[bytes]:
        try:
            for number, span in enumerate(self.spans):
                if number > 0 or self._current is None:
                    self._current = self._open_part(*span)
                    await self._current.start()
                async for chunk in self._current:
                    yield chunk
        finally:
            self.close()

    def close(self) -> None:
        if self._current is not None:
            self._current.close()
