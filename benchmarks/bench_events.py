"""Engine events: what observers cost a write (egide.engine.events).

    python benchmarks/bench_events.py [--count 2000] [--concurrency 8] [--repeat 3]

One object store in this process (SQLite catalog, six local-directory sites, 4+2, its default
block and pack sizes) takes --count PUTs of 4 KiB, --concurrency at a time, under four observer
setups, interleaved --repeat times so that the machine's noise falls on all alike:
  * none: no observer (announcing returns at once);
  * recorder: one observer that keeps every event;
  * stuck: one observer that never returns (its queue fills, then events are dropped for it);
  * failing: one observer that raises on every event (each failure is logged).
Prints operations per second and p50/p99 latency (median of the runs), and each setup's rate as
a ratio to "none" in the same run. Observers must cost a request nothing beyond noise.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import statistics
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

from egide.catalog import open_catalog
from egide.config import Settings
from egide.crypto.keyring import Keyring
from egide.engine.events import Event
from egide.engine.store import ObjectStore
from egide.sites.local import LocalSite

BODY = os.urandom(4096)


async def _body() -> AsyncIterator[bytes]:
    yield BODY


class Recorder:
    def __init__(self) -> None:
        self.events: list[Event] = []

    async def __call__(self, event: Event) -> None:
        self.events.append(event)


async def stuck(event: Event) -> None:
    await asyncio.Event().wait()


async def failing(event: Event) -> None:
    raise RuntimeError("observer broken")


SETUPS: dict[str, Callable[[], Callable[[Event], Awaitable[None]] | None]] = {
    "none": lambda: None,
    "recorder": Recorder,
    "stuck": lambda: stuck,
    "failing": lambda: failing,
}


async def run(root: Path, setup: str, count: int, concurrency: int) -> tuple[float, list[float]]:
    """(PUTs per second, latencies in ms) of `count` 4 KiB PUTs into a fresh store."""
    catalog = open_catalog(Settings(data_dir=root))
    sites = []
    for i in range(6):
        site = LocalSite(f"site-{i}", root / f"site-{i}")
        site.prepare()
        sites.append(site)
    store = ObjectStore(catalog, Keyring(os.urandom(32)), sites, k=4, m=2, block_size=1 << 20)
    observer = SETUPS[setup]()
    if observer is not None:
        store.events.subscribe(observer, name=setup)
    await store.create_bucket("b")
    gate = asyncio.Semaphore(concurrency)
    latencies: list[float] = []

    async def put(i: int) -> None:
        async with gate:
            started = time.perf_counter()
            await store.put_object("b", f"k{i}", _body(), size=len(BODY), headers={})
            latencies.append((time.perf_counter() - started) * 1000)

    began = time.perf_counter()
    await asyncio.gather(*(put(i) for i in range(count)))
    elapsed = time.perf_counter() - began
    await store.events.close()
    await catalog.close()
    return count / elapsed, latencies


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--count", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    logging.basicConfig(level=logging.CRITICAL)  # the failing observer's tracebacks
    rates: dict[str, list[float]] = {name: [] for name in SETUPS}
    p50: dict[str, list[float]] = {name: [] for name in SETUPS}
    p99: dict[str, list[float]] = {name: [] for name in SETUPS}
    for _ in range(args.repeat):
        for name in SETUPS:
            with tempfile.TemporaryDirectory() as tmp:
                rate, latencies = asyncio.run(run(Path(tmp), name, args.count, args.concurrency))
            ordered = sorted(latencies)
            rates[name].append(rate)
            p50[name].append(ordered[len(ordered) // 2])
            p99[name].append(ordered[int(len(ordered) * 0.99)])
    base = statistics.median(rates["none"])
    print(f"{args.count} PUTs of 4 KiB, {args.concurrency} at a time, median of {args.repeat}")
    for name in SETUPS:
        rate = statistics.median(rates[name])
        print(
            f"{name:9s} {rate:8.0f} PUT/s  p50 {statistics.median(p50[name]):6.2f} ms  "
            f"p99 {statistics.median(p99[name]):6.2f} ms  ratio to none {rate / base:.2f}"
        )


if __name__ == "__main__":
    main()
