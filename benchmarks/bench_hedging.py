"""Hedged reads: GET latency with one slow site, with and without hedging.

    python benchmarks/bench_hedging.py [--sites local|seaweedfs] [--delay-ms 200]
                                       [--small 500] [--large 100]

An ObjectStore as `egide serve` builds it by default (4+2 over six sites, 1 MiB blocks, objects
up to 256 KiB in packs), over six local directories, or six prefixes of one SeaweedFS (started
here, as the tests do). 4 KiB and 8 MiB objects are written, then read back one GET at a time
(`store.reader` to the last byte: no HTTP, no catalog lookup) in three situations:

  healthy      every site answers at its own speed
  slow always  one site holds every answer back --delay-ms (asyncio.sleep in front of a local
               site; a TCP proxy holding back responses in front of SeaweedFS)
  slow 10 %    the same site holds one answer in ten back

and three ways of reading, each from a fresh state (what they learn while reading counts):

  data first   the reader before hedging: data pieces, parity only for a failed one
  fastest      SiteHealth with hedge = false: the k sites of lowest measured latency
  hedged       SiteHealth defaults: fastest first, plus a hedged request when a read
               outlasts hedge_factor x p90 of its site (10 ms .. 1 s)

For each it prints p50, p90, p99 and max latency (the max is the first GETs, while the health
learns), the pieces read per block (4 when no read is hedged or replaced) and the share of GETs
that decoded (used a parity piece). The slow site
holds a data piece of two objects in three (placement rotates by version id). With SeaweedFS,
the slow site's requests always go through the proxy (slower than the others even when
healthy). This machine is shared and noisy: compare the rows of one run.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import statistics
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Sequence
from contextlib import AsyncExitStack
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.delays import DelayingProxy, SlowSite
from tests.providers import running_seaweedfs

from egide.catalog import Catalog, open_catalog
from egide.config import HealthConfig, Settings
from egide.crypto.keyring import Keyring
from egide.domain import ObjectVersion
from egide.engine.store import ObjectStore
from egide.sites.base import Site
from egide.sites.health import SiteHealth
from egide.sites.local import LocalSite

KiB, MiB = 1024, 1024 * 1024
K, M = 4, 2
MODES = ("data first", "fastest", "hedged")


class DecodeCounter(logging.Handler):
    """Counts the reads that used a parity piece (the reader says so once per read)."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.count = 0

    def emit(self, record: logging.LogRecord) -> None:
        self.count += record.msg.startswith("rebuilding")


class Bench:
    """Six sites (counting their reads), one of them slowable, and the objects written."""

    def __init__(self, sites: list[SlowSite], slow: SlowSite, proxy: DelayingProxy | None) -> None:
        self.sites, self.slow, self.proxy = sites, slow, proxy
        self.small: list[ObjectVersion] = []
        self.large: list[ObjectVersion] = []

    def set_slow(self, delay: float, fraction: float) -> None:
        if self.proxy is not None:
            self.proxy.delay, self.proxy.slow_fraction = delay, fraction
        else:
            self.slow.delay, self.slow.slow_fraction = delay, fraction

    def store(self, catalog: Catalog, keyring: Keyring, mode: str) -> ObjectStore:
        names = [site.name for site in self.sites]
        health = SiteHealth(names, HealthConfig(hedge=mode == "hedged"))
        store = ObjectStore(
            catalog, keyring, self.sites, k=K, m=M, block_size=MiB, health=health
        )  # fmt: skip
        if mode == "data first":
            store.health = None  # type: ignore[assignment]  # the reader takes None: no health
        return store


async def _body(data: bytes) -> AsyncIterator[bytes]:
    for start in range(0, len(data), 256 * KiB):
        yield data[start : start + 256 * KiB]


async def write_objects(store: ObjectStore, bench: Bench, small: int, large: int) -> None:
    await store.create_bucket("bench")
    headers = {"content-type": "application/octet-stream"}
    for i in range(small):
        data = os.urandom(4 * KiB)
        bench.small.append(
            await store.put_object("bench", f"s{i}", _body(data), size=len(data), headers=headers)
        )
    for i in range(large):
        data = os.urandom(8 * MiB)
        bench.large.append(
            await store.put_object("bench", f"l{i}", _body(data), size=len(data), headers=headers)
        )


async def get_latencies(
    store: ObjectStore, versions: Sequence[ObjectVersion], count: int
) -> list[float]:
    times = []
    for n in range(count):
        version = versions[n % len(versions)]
        started = time.perf_counter()
        reader = await store.reader(version, 0, version.size - 1)
        size = 0
        async for chunk in reader:
            size += len(chunk)
        times.append(time.perf_counter() - started)
        assert size == version.size
    return times


def _row(label: str, times: list[float], pieces: float, decoded: int) -> str:
    ms = sorted(t * 1000 for t in times)
    cuts = statistics.quantiles(ms, n=100, method="inclusive")
    return (
        f"  {label:21} p50 {cuts[49]:6.2f}  p90 {cuts[89]:6.2f}  p99 {cuts[98]:6.2f}  "
        f"max {ms[-1]:6.2f} ms  {pieces / len(ms):4.2f} pieces/block  "
        f"{100 * decoded / len(ms):3.0f} % decoded"
    )


async def run(bench: Bench, catalog: Catalog, keyring: Keyring, args: argparse.Namespace) -> None:
    delay = args.delay_ms / 1000
    decoded = DecodeCounter()
    read_log = logging.getLogger("egide.read")
    read_log.setLevel(logging.DEBUG)
    read_log.addHandler(decoded)
    read_log.propagate = False
    situations = [("healthy", 0.0, 1.0), ("slow always", delay, 1.0), ("slow 10 %", delay, 0.1)]
    for situation, seconds, fraction in situations:
        print(f"{situation}:")
        bench.set_slow(seconds, fraction)
        for mode in MODES:
            for label, versions, count, blocks in [
                ("4 KiB", bench.small, args.small, 1),
                ("8 MiB", bench.large, args.large, 8),
            ]:
                store = bench.store(catalog, keyring, mode)
                for site in bench.sites:
                    site.reset()
                decoded.count = 0
                times = await get_latencies(store, versions, count)
                pieces = sum(site.started for site in bench.sites) / blocks
                print(_row(f"{label} GET, {mode}", times, pieces, decoded.count))
        bench.set_slow(0.0, 1.0)


async def main_async(args: argparse.Namespace, tmp: Path) -> None:
    catalog = open_catalog(Settings(data_dir=tmp))
    keyring = Keyring(os.urandom(32))
    async with AsyncExitStack() as stack:
        inner: list[Site] = []
        proxy = None
        if args.sites == "local":
            for i in range(K + M):
                local = LocalSite(f"local-{i}", tmp / f"site-{i}")
                local.prepare()
                inner.append(local)
        else:
            from egide.sites.s3 import S3Site

            provider = stack.enter_context(running_seaweedfs(tmp / "weed"))
            bucket = provider.new_bucket("bench")
            proxy = await stack.enter_async_context(DelayingProxy(provider.endpoint))
            for i in range(K + M):
                config = provider.site_config(f"s3-{i}", bucket, f"site-{i}/")
                if i == 0:
                    config = config.model_copy(update={"endpoint": proxy.endpoint})
                inner.append(S3Site(config))
        sites = [SlowSite(site, seed=7) for site in inner]
        bench = Bench(sites, sites[0], proxy)
        await write_objects(bench.store(catalog, keyring, "hedged"), bench, 100, 6)
        print(
            f"{args.sites} sites, 4+2, 1 MiB blocks; slow site {sites[0].name} "
            f"(+{args.delay_ms:g} ms); {args.small} x 4 KiB and {args.large} x 8 MiB GETs "
            "one at a time"
        )
        await run(bench, catalog, keyring, args)
    await catalog.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sites", choices=["local", "seaweedfs"], default="local")
    parser.add_argument("--delay-ms", type=float, default=200.0)
    parser.add_argument("--small", type=int, default=500)
    parser.add_argument("--large", type=int, default=100)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        asyncio.run(main_async(args, Path(tmp)))


if __name__ == "__main__":
    main()
