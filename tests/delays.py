"""Slow and failing sites for tests and benchmarks, with real delays over real sites.

`SlowSite` wraps any site: its reads wait (asyncio.sleep) before reading, or fail, and it counts
what became of them (answered, cancelled, failed). `DelayingProxy` is a TCP proxy in front of
a real S3 server (SeaweedFS, moto) that holds each response back, or cuts and refuses
connections: a slow or dead provider as the S3 client sees one, down to the dropped connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any
from urllib.parse import urlsplit

from egide.sites.base import ShardWriter, Site, SiteError


class SlowSite:
    """`inner` with reads delayed by `delay` seconds (on a `slow_fraction` of them, drawn from
    a seeded generator), or failing while `failing` holds an error message."""

    def __init__(
        self, inner: Site, delay: float = 0.0, *, slow_fraction: float = 1.0, seed: int = 0
    ) -> None:
        self.inner = inner
        self.name = inner.name
        self.delay = delay
        self.slow_fraction = slow_fraction
        self.failing: str | None = None
        self._rng = random.Random(seed)
        self.started = self.answered = self.cancelled = self.failed = 0

    def reset(self) -> None:
        self.started = self.answered = self.cancelled = self.failed = 0

    async def read(self, shard: str, offset: int, length: int) -> bytes:
        self.started += 1
        try:
            if self.failing is not None:
                raise SiteError(f"site {self.name}: {self.failing}")
            if self.delay and self._rng.random() < self.slow_fraction:
                await asyncio.sleep(self.delay)
            data = await self.inner.read(shard, offset, length)
        except asyncio.CancelledError:
            self.cancelled += 1
            raise
        except SiteError:
            self.failed += 1
            raise
        self.answered += 1
        return data

    async def writer(self, shard: str) -> ShardWriter:
        return await self.inner.writer(shard)

    async def size(self, shard: str) -> int | None:
        return await self.inner.size(shard)

    async def delete(self, shard: str) -> None:
        await self.inner.delete(shard)

    def list(self, prefix: str = "") -> AsyncIterator[str]:
        return self.inner.list(prefix)


@dataclass(eq=False)
class _Connection:
    client: asyncio.StreamWriter
    upstream: asyncio.StreamWriter | None = None
    #: A request went upstream since the last response began: its response is to be held.
    awaiting_response: bool = False
    holding: bool = False
    client_gone: asyncio.Event = field(default_factory=asyncio.Event)


class DelayingProxy:
    """A TCP proxy on a free local port to the S3 server at `upstream` (an http:// URL),
    serving on the running event loop: each response (or a `slow_fraction` of them, drawn from
    a seeded generator) is held `delay` seconds before its first byte goes out; with `refuse`,
    connections are closed as soon as they are accepted."""

    def __init__(self, upstream: str, *, seed: int = 0) -> None:
        url = urlsplit(upstream)
        assert url.hostname is not None and url.port is not None
        self._upstream = (url.hostname, url.port)
        self.delay = 0.0
        self.slow_fraction = 1.0
        self._rng = random.Random(seed)
        self.refuse = False
        self.port = 0
        self.accepted = 0
        #: Connections the client closed while the proxy held their response back: requests
        #: the client gave up on (a cancelled read drops its connection).
        self.dropped_while_held = 0
        self._connections: set[_Connection] = set()
        self._tasks: set[asyncio.Task[Any]] = set()
        self._server: asyncio.Server | None = None

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def open_connections(self) -> int:
        return len(self._connections)

    @property
    def held(self) -> int:
        """Responses being held back now: requests the client still waits for."""
        return sum(conn.holding for conn in self._connections)

    def cut(self) -> None:
        """The provider goes dark: connections open now are closed, new ones refused."""
        self.refuse = True
        for conn in list(self._connections):
            conn.client.close()
            if conn.upstream is not None:
                conn.upstream.close()

    async def __aenter__(self) -> DelayingProxy:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        assert self._server is not None
        self._server.close()
        self.cut()  # the connection handlers see their streams end, and return
        if self._tasks:
            await asyncio.wait(self._tasks, timeout=5)
        await self._server.wait_closed()

    async def _serve(self, client_in: asyncio.StreamReader, client: asyncio.StreamWriter) -> None:
        self.accepted += 1
        if self.refuse:
            client.close()
            return
        conn = _Connection(client)
        try:
            upstream_in, conn.upstream = await asyncio.open_connection(*self._upstream)
        except OSError:
            client.close()
            return
        self._connections.add(conn)
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        try:
            with contextlib.suppress(OSError):
                await asyncio.gather(
                    self._requests(conn, client_in), self._responses(conn, upstream_in)
                )
        finally:
            self._tasks.discard(task)
            self._connections.discard(conn)
            client.close()
            conn.upstream.close()

    async def _requests(self, conn: _Connection, client_in: asyncio.StreamReader) -> None:
        assert conn.upstream is not None
        try:
            while data := await client_in.read(65536):
                conn.awaiting_response = True
                conn.upstream.write(data)
                await conn.upstream.drain()
        finally:
            if conn.holding:
                self.dropped_while_held += 1
            conn.client_gone.set()
            conn.upstream.close()

    async def _responses(self, conn: _Connection, upstream_in: asyncio.StreamReader) -> None:
        while data := await upstream_in.read(65536):
            if conn.awaiting_response:
                conn.awaiting_response = False
                if self.delay and self._rng.random() < self.slow_fraction:
                    conn.holding = True
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(conn.client_gone.wait(), self.delay)
                    conn.holding = False
            if conn.client_gone.is_set():
                return
            conn.client.write(data)
            await conn.client.drain()
        conn.client.close()
