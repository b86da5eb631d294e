"""Read a byte range of an object version: fetch k pieces per block, decode only if needed.

Data pieces are fetched first (the code is systematic, so a healthy read is a concatenation),
unless the store's `SiteHealth` says a parity piece's site answers clearly faster (by p90). A
read that outlasts its site's hedge delay is hedged: one more piece is asked, the first k good
pieces win and the other reads are cancelled. Sites whose circuit breaker is open are asked
only when too few other pieces are left. A piece that is missing or fails its checksum is
replaced by another and the block is rebuilt; a site that lost the whole shard is not asked
again for the rest of the stream. With fewer than k good pieces the read fails with
ShardsUnavailable, never with wrong bytes.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections import deque
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass

from egide.coding.blocks import CHECKSUM_SIZE, Layout
from egide.coding.shardfile import HEADER_SIZE, verify_piece
from egide.crypto.aead import DecryptionError
from egide.domain import ObjectVersion, Part, ShardsUnavailable
from egide.engine.workers import on_cpu
from egide.pipeline import PartCipher, decode_block
from egide.sites.base import ShardMissing, Site, SiteError
from egide.sites.health import SiteHealth

log = logging.getLogger("egide.read")

PREFETCH_BLOCKS = 4
#: A parity piece costs a decode (about 1 ms per parity piece of a 1 MiB block): it replaces a
#: data piece only if its site's p90 is lower by half and by 5 ms, so that the noise between
#: healthy providers (p90 of 64 reads) does not make reads decode.
PARITY_FACTOR, PARITY_PENALTY = 1.5, 0.005
#: Timers may fire this early (the loop's clock resolution): a read this close to its hedge
#: deadline is due.
DEADLINE_SLACK = 0.001


@dataclass
class _PieceRead:
    """A piece read under way: when it started and when it is hedged (loop time)."""

    shard: int
    site: str
    started: float
    deadline: float
    overdue: bool = False


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
        health: SiteHealth | None = None,
        on_damage: Callable[[str], None] | None = None,
    ) -> None:
        """Bytes first..last of the version, or with `part`, of that part of a multipart
        version (offsets relative to the part). Without `health`: data pieces first, no
        hedging, nothing learnt. `on_damage` hears once of a piece found missing or corrupt
        (the store queues the version for repair)."""
        self.version = version
        self._on_damage = on_damage
        self.ctx = ctx
        self.sites = sites
        self.health = health
        self._hedge = health is not None and health.config.hedge
        self.first = first
        self.last = last
        self.seq = part.seq if part is not None else 0
        # The blocks hold the padded size (decision 0017); first..last stay below the true
        # size, so the padding is never returned.
        size = part.stored_size if part is not None else version.stored_size
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
        health = self.health
        length = self.layout.piece_len(block) + CHECKSUM_SIZE
        offset = self.version.pack_offset + self.layout.piece_offset(HEADER_SIZE, block)
        loop = asyncio.get_running_loop()
        started = loop.time()
        try:
            stored = await site.read(self.version.shard(shard, self.seq), offset, length)
        except ShardMissing as exc:
            self.lost[shard] = str(exc)
            self._damage(f"piece {shard} missing on {site.name}")
            if health is not None:  # the site answered: it is up, the shard is not there
                health.record_success(site.name, loop.time() - started)
            return None
        except SiteError as exc:
            self.lost[shard] = str(exc)
            if health is not None:
                health.record_failure(site.name, str(exc))
            return None
        if health is not None:
            health.record_success(site.name, loop.time() - started, len(stored))
        piece = verify_piece(stored) if len(stored) == length else None
        if piece is None:
            bad[shard] = f"piece {shard} on site {site.name} is corrupt (checksum mismatch)"
            self._damage(bad[shard])
            log.warning("corrupt piece: %s; rebuilding from the other pieces", bad[shard])
        return piece

    def _damage(self, reason: str) -> None:
        if self._on_damage is not None:
            self._on_damage(reason)
            self._on_damage = None  # once per reader

    def _order(self) -> tuple[list[int], list[int]]:
        """The shards to ask for a block, best first; then those on sites whose breaker is
        open, asked only when the first cannot give k pieces."""
        candidates = [i for i in range(len(self.sites)) if i not in self.lost]
        health = self.health
        if health is None:
            return candidates, []
        k, names = self.version.k, self.version.sites
        ready = [i for i in candidates if health.is_available(names[i])]
        fallback = [i for i in candidates if i not in ready] if len(ready) < len(candidates) else []

        def cost(i: int) -> float:
            tail = health.tail_latency(names[i]) or 0.0
            return tail if i < k else tail * PARITY_FACTOR + PARITY_PENALTY

        ready.sort(key=cost)  # stable: data shards first among equals
        return ready, fallback

    def _launch(self, shard: int, now: float) -> _PieceRead:
        name = self.version.sites[shard]
        delay = math.inf
        if self.health is not None:
            self.health.begin(name)
            if self._hedge:
                delay = self.health.hedge_delay(name)
        return _PieceRead(shard, name, now, now + delay)

    async def _fetch(self, index: int, bad: dict[int, str]) -> dict[int, bytes]:
        """The first k good pieces of block `index` (fewer if fewer can be had): k reads in
        order of preference, one more whenever a read fails, or outlasts its site's hedge
        delay (a hedged request: the slow read keeps running, whichever answers first wins)."""
        k = self.version.k
        loop = asyncio.get_running_loop()
        ready, fallback = (deque(order) for order in self._order())
        pieces: dict[int, bytes] = {}
        running: dict[asyncio.Task[bytes | None], _PieceRead] = {}
        try:
            while len(pieces) < k:
                now = loop.time()
                on_time = sum(not read.overdue for read in running.values())
                while len(pieces) + on_time < k:
                    if ready:
                        shard = ready.popleft()
                    elif fallback and len(pieces) + len(running) < k:
                        shard = fallback.popleft()
                    else:
                        break
                    task = asyncio.ensure_future(self._piece(shard, index, bad))
                    running[task] = self._launch(shard, now)
                    on_time += 1
                if not running:
                    break
                deadlines = [read.deadline for read in running.values() if not read.overdue]
                wait = min(deadlines, default=math.inf) - now
                done, _ = await asyncio.wait(
                    running,
                    timeout=None if wait == math.inf else max(wait, 0.0),
                    return_when=asyncio.FIRST_COMPLETED,
                )
                for task in done:
                    read = running.pop(task)
                    piece = task.result()
                    if piece is not None:
                        pieces[read.shard] = piece
                now = loop.time()
                for read in running.values():
                    if not read.overdue and now + DEADLINE_SLACK >= read.deadline:
                        read.overdue = True
                        log.debug(
                            "%s: site %s has not answered piece %d in %.0f ms; asking another",
                            self._describe(index), read.site, read.shard,
                            (now - read.started) * 1000,
                        )  # fmt: skip
        finally:
            await self._abandon(running, loop.time())
        return pieces

    async def _abandon(
        self, running: dict[asyncio.Task[bytes | None], _PieceRead], now: float
    ) -> None:
        """Cancel the reads still under way and wait until they have ended, so that none
        outlives its block: a local read in a thread closes its file when it finishes, an S3
        request is dropped with its connection. Reads that outlasted their hedge delay tell
        the site's health how long they were waited for."""
        if not running:
            return
        for task, read in running.items():
            if task.cancel() and read.overdue and self.health is not None:
                self.health.record_abandoned(read.site, now - read.started)
        await asyncio.gather(*running, return_exceptions=True)

    async def _read_block(self, index: int) -> tuple[int, bytes]:
        k = self.version.k
        bad: dict[int, str] = {}
        pieces = await self._fetch(index, bad)
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
        if not self._rebuilt and not all(i in pieces for i in range(k)):
            self._rebuilt = True  # once per read, not once per block of a degraded object
            # A data piece passed over for a slower site is routine; a lost or bad one is news.
            degraded = any(i in self.lost or i in bad for i in range(k))
            log.log(
                logging.INFO if degraded else logging.DEBUG,
                "rebuilding %s and following blocks from parity", self._describe(index),
            )  # fmt: skip
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
