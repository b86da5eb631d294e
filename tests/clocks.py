"""`ManualClock`: an `egide.clock.Clock` that a test moves by hand, for caches, cool-downs,
sample ages and expiries that would otherwise be waited out."""

from __future__ import annotations

import asyncio
import time


class ManualClock:
    """Monotonic time starts at `now` and wall time at the real time of creation; both move
    only by `advance` (or `now +=`), and `sleep` moves them instead of waiting."""

    def __init__(self, now: float = 1000.0) -> None:
        self.now = now
        self._wall_offset = time.time() - now

    def monotonic(self) -> float:
        return self.now

    def time(self) -> float:
        return self.now + self._wall_offset

    def advance(self, seconds: float) -> None:
        self.now += seconds

    async def sleep(self, seconds: float) -> None:
        self.advance(max(seconds, 0.0))
        await asyncio.sleep(0)  # a sleep still lets other tasks run
