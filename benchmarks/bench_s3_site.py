"""S3 provider site: one large shard written and read through `S3Site`, per provider.

    python benchmarks/bench_s3_site.py [--shard-mib 64] [--repeat 3] [--concurrency 2]

Starts SeaweedFS and moto (as the tests do) and prints, for each, in the same run:
  1. PUT of one shard through S3Site in 256 KiB writes (how the engine feeds a shard), and as a
     ratio, obstore putting the same bytes from one buffer (the client library's ceiling);
  2. GET of the shard as the reader does it (256 KiB ranged reads, 8 in flight) and whole;
  3. growth of this process's RSS while streaming the shard (it should stay near
     (1 + concurrency) parts, whatever the shard size).
Throughputs are the median of --repeat runs: this machine is shared and noisy.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import obstore
import psutil
from tests.providers import Provider, running_moto, running_seaweedfs

from egide.sites import s3 as s3_site

MiB = 1024 * 1024
PIECE = 256 * 1024


class RssPeak:
    """Highest resident size of this process while active, sampled every 5 ms."""

    def __init__(self) -> None:
        self.base = self.peak = psutil.Process().memory_info().rss
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        me = psutil.Process()
        while not self._stop.wait(0.005):
            self.peak = max(self.peak, me.memory_info().rss)

    def __enter__(self) -> RssPeak:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()

    @property
    def growth_mib(self) -> float:
        return (self.peak - self.base) / MiB


async def _timed(fn: Callable[[], Awaitable[object]]) -> float:
    started = time.perf_counter()
    await fn()
    return time.perf_counter() - started


async def measure(provider: Provider, data: bytes, repeat: int) -> dict[str, float]:
    site = s3_site.S3Site(provider.site_config("bench", provider.new_bucket("bench"), "b/"))
    size_mb = len(data) / 1e6

    async def put() -> None:
        writer = await site.writer("shard-0-0")
        for start in range(0, len(data), PIECE):
            # A fresh copy per piece, as the engine's encoder makes: what is held shows in RSS.
            await writer.write(data[start : start + PIECE])
        await writer.commit()

    async def put_raw() -> None:
        await obstore.put_async(site.store, "b/raw-0-0", data)

    async def get_ranged() -> None:
        gate = asyncio.Semaphore(8)

        async def one(offset: int) -> None:
            async with gate:
                assert len(await site.read("shard-0-0", offset, PIECE)) == PIECE

        await asyncio.gather(*(one(o) for o in range(0, len(data), PIECE)))

    async def get_whole() -> None:
        assert len(await site.read("shard-0-0", 0, -1)) == len(data)

    results: dict[str, float] = {}
    for name, fn in [
        ("put", put), ("put_raw", put_raw), ("get_ranged", get_ranged), ("get_whole", get_whole),
    ]:  # fmt: skip
        with RssPeak() as rss:
            times = [await _timed(fn) for _ in range(repeat)]
        results[name] = size_mb / statistics.median(times)
        results[f"{name}_rss_mib"] = rss.growth_mib
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--shard-mib", type=int, default=64)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--concurrency", type=int, default=s3_site.UPLOAD_CONCURRENCY)
    args = parser.parse_args()
    s3_site.UPLOAD_CONCURRENCY = args.concurrency
    data = os.urandom(args.shard_mib * MiB)
    print(
        f"S3Site, one {args.shard_mib} MiB shard, part {s3_site.PART_SIZE // MiB} MiB, "
        f"{args.concurrency} parts in flight, median of {args.repeat}"
    )
    with tempfile.TemporaryDirectory() as tmp:
        for start in (running_seaweedfs, running_moto):
            with start(Path(tmp) / start.__name__) as provider:
                r = asyncio.run(measure(provider, data, args.repeat))
            print(
                f"  {provider.kind:9}  PUT {r['put']:7.1f} MB/s "
                f"({r['put'] / r['put_raw']:.2f}x obstore one-buffer PUT {r['put_raw']:.1f})  "
                f"GET ranged {r['get_ranged']:7.1f} MB/s  whole {r['get_whole']:7.1f} MB/s  "
                f"RSS +{r['put_rss_mib']:.0f} MiB while streaming"
            )


if __name__ == "__main__":
    main()
