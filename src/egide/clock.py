"""Time as caches, expiries and rate limits read it, passed in so that tests move it by hand.

`monotonic` measures durations (a cache entry's age, a cool-down, a rate); `time` is wall time,
for what is compared with dates stored in the catalog (an upload's age, a lifecycle pass).
`sleep` waits on the same clock: a rate limit that waits on a clock a test moves does not wait.
"""

from __future__ import annotations

import asyncio
import time
from typing import Protocol


class Clock(Protocol):
    def monotonic(self) -> float: ...

    def time(self) -> float: ...

    async def sleep(self, seconds: float) -> None: ...


class SystemClock:
    """The clocks of the operating system, and the event loop's sleep."""

    def monotonic(self) -> float:
        return time.monotonic()

    def time(self) -> float:
        return time.time()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


SYSTEM_CLOCK: Clock = SystemClock()
