"""Run the engine's coroutines from threads that have no event loop (DuckDB's, fsspec's).

The engine is async and bound to one loop; DuckDB calls the filesystem synchronously from its
own worker threads. Each call is handed to that loop with `run_coroutine_threadsafe` and the
calling thread waits; the loop itself is never blocked, and a call made from the loop's own
thread is refused rather than deadlock.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")
#: Longest one filesystem call (a range read, a listing page, a part written) may take.
CALL_TIMEOUT = 300.0


class Bridge:
    """Hands coroutines to `loop` and waits for them in the calling thread."""

    def __init__(self, loop: asyncio.AbstractEventLoop, *, timeout: float = CALL_TIMEOUT) -> None:
        self.loop = loop
        self.timeout = timeout

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is self.loop:
            coro.close()
            raise RuntimeError("the engine's loop cannot wait for itself: call from a thread")
        future = asyncio.run_coroutine_threadsafe(coro, self.loop)
        try:
            return future.result(self.timeout)
        except TimeoutError:
            future.cancel()
            raise TimeoutError(f"the engine did not answer within {self.timeout:g} s") from None


class LoopThread:
    """An event loop running in a daemon thread of its own, for a process that has none (the
    `egide sql` command, tests): the store is opened and used on it."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._serve, name="egide-engine", daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_forever()

    def bridge(self, *, timeout: float = CALL_TIMEOUT) -> Bridge:
        return Bridge(self.loop, timeout=timeout)

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result()

    def close(self) -> None:
        """Cancel what is left on the loop (the store's event feeds …), as asyncio.run does,
        then stop it."""

        async def cancel_the_rest() -> None:
            tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

        if self._thread.is_alive():
            self.run(cancel_the_rest())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(30)
        self.loop.close()

    def __enter__(self) -> LoopThread:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
