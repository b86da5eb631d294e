"""A query run in a worker thread of its own, its answer handed to an event loop piece by piece.

The engine runs on the server's loop; DuckDB must not (the filesystem bridges back to that loop
and waits, which the loop cannot do for itself). So the query runs in a thread, encodes each
batch there, and posts the bytes to the loop; at most `AHEAD` pieces wait to be sent, so a slow
client slows the query instead of filling memory. `start` returns the first piece (the schema
and the first batch) or raises the query's error, so a query that fails at once is answered
with an error status; later failures end the stream with the encoder's error record.
`cancel` (the client went away) interrupts DuckDB.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import AsyncIterator
from typing import Any

from egide.analytics.answer import Encoder
from egide.analytics.filesystem import EgideFileSystem
from egide.analytics.query import Limits, Query, QueryCancelled, QueryError, QueryTimeout

log = logging.getLogger("egide.analytics")

#: Encoded pieces that may wait for the client.
AHEAD = 4


def error_code(exc: BaseException) -> tuple[int, str, str]:
    """(HTTP status, code, message) of a query's failure."""
    message = str(exc)
    if isinstance(exc, QueryTimeout):
        return 400, "QueryTimeout", message
    if isinstance(exc, QueryError):
        if message.startswith("AccessDenied: "):
            return 403, "AccessDenied", message
        return 400, "InvalidQuery", message
    return 500, "InternalError", "the query failed on the server's side (see its log)"


class StreamedQuery:
    def __init__(
        self,
        fs: EgideFileSystem,
        limits: Limits,
        sql: str,
        encoder: Encoder,
        loop: asyncio.AbstractEventLoop,
    ) -> None:
        self.fs, self.limits, self.sql, self.encoder, self.loop = fs, limits, sql, encoder, loop
        self.rows = 0
        self._queue: asyncio.Queue[tuple[str, Any]] = asyncio.Queue()
        self._room = threading.Semaphore(AHEAD)
        self._cancelled = threading.Event()
        self._query: Query | None = None
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._work, name="egide-sql", daemon=True)

    # -- the loop's side ---------------------------------------------------------------------

    async def start(self, timeout: float | None = None) -> bytes | None:
        """The first bytes of the answer; raises the query's error if it failed before. None
        if nothing came within `timeout` (the query goes on; `rest` gives what follows)."""
        self._thread.start()
        try:
            kind, value = await asyncio.wait_for(self._next(), timeout)
        except TimeoutError:
            return None
        if kind == "error":
            raise value
        assert kind == "data"
        return bytes(value)

    async def rest(self, idle: float | None = None, keepalive: bytes = b"") -> AsyncIterator[bytes]:
        """The rest of the answer, its end record last; `keepalive` each `idle` seconds the
        query produces nothing."""
        while True:
            try:
                kind, value = await asyncio.wait_for(self._next(), idle)
            except TimeoutError:
                yield keepalive
                continue
            if kind == "error":
                _status, code, message = error_code(value)
                yield self.encoder.error(code, message)
                return
            yield value
            if kind == "end":
                return

    async def _next(self) -> tuple[str, Any]:
        item = await self._queue.get()
        self._room.release()
        return item

    def cancel(self) -> None:
        """Stop the query (from any thread); the worker ends without posting more."""
        self._cancelled.set()
        with self._lock:
            query = self._query
        if query is not None:
            query.cancel()

    async def wait(self, timeout: float = 30.0) -> None:
        """Until the worker thread has ended (its connection closed)."""
        await asyncio.to_thread(self._thread.join, timeout)

    # -- the worker's side -------------------------------------------------------------------

    def _post(self, kind: str, value: Any) -> None:
        while not self._room.acquire(timeout=0.2):
            if self._cancelled.is_set():
                raise QueryCancelled("the query was cancelled")
        if self._cancelled.is_set():
            raise QueryCancelled("the query was cancelled")
        self.loop.call_soon_threadsafe(self._queue.put_nowait, (kind, value))

    def _work(self) -> None:
        began = time.monotonic()
        encoder = self.encoder
        try:
            try:
                with Query(self.fs, self.limits) as query:
                    with self._lock:
                        self._query = query
                    if self._cancelled.is_set():
                        query.cancel()
                    schema, batches = query.run(self.sql)
                    first = next(batches, None)
                    head = encoder.start(schema)
                    if first is not None:
                        head += encoder.batch(first)
                        self.rows += first.num_rows
                    self._post("data", head)
                    for batch in batches:
                        if self._cancelled.is_set():
                            query.cancel()
                        self.rows += batch.num_rows
                        self._post("data", encoder.batch(batch))
            finally:
                with self._lock:
                    self._query = None
            self._post("end", encoder.end(self.rows, time.monotonic() - began))
        except QueryCancelled:
            return
        except Exception as exc:
            if not isinstance(exc, QueryError):
                log.error("query failed: %s", self.sql[:200], exc_info=exc)
            try:
                self._post("error", exc)
            except QueryCancelled:
                return
