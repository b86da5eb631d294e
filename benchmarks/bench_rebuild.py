"""Catalog rebuild benchmark: time to rebuild the catalog of N objects from the shards.

    python benchmarks/bench_rebuild.py [--objects 10000] [--size 4096] [--pack-threshold 262144]
                                       [--buckets 1]

Writes N objects of --size bytes through the engine directly (not HTTP; many at once, so small
ones share packs as under load) on six local sites with 4+2, then rebuilds the catalog from the
shards into a new file (egide.recovery.rebuild) and prints the time, objects per second and
the time per 10,000 objects. --pack-threshold 0 writes every object in files of its own (six
files per object: the worst case for listing and reading). The page cache is warm: on a cold
cache or a remote site, the reads' latency dominates (see docs/performance.md). --buckets B
spreads the objects over B buckets in turn: clear headers name no bucket (decision 0018), so
the rebuild finds each version's bucket by the key that opens its manifest, busiest first;
objects interleaved evenly over B buckets are its worst case (compare with --buckets 1).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import tempfile
import time
from collections.abc import AsyncIterator
from pathlib import Path

from egide.catalog import open_catalog
from egide.config import Settings
from egide.crypto.keyring import Keyring
from egide.engine.store import ObjectStore
from egide.recovery.rebuild import rebuild_catalog
from egide.sites.local import LocalSite

CONCURRENT_PUTS = 256


async def one(data: bytes) -> AsyncIterator[bytes]:
    yield data


async def fill(store: ObjectStore, count: int, size: int, buckets: int = 1) -> None:
    names = [f"bench-{b}" for b in range(buckets)]
    for name in names:
        await store.create_bucket(name)
    body = os.urandom(size)
    pending: set[asyncio.Task[object]] = set()
    for n in range(count):
        if len(pending) >= CONCURRENT_PUTS:
            _, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
        pending.add(asyncio.create_task(store.put_object(
            names[n % buckets], f"obj/{n:08d}", one(body), size=size,
            headers={"content-type": "application/octet-stream", "x-amz-meta-n": str(n)},
        )))  # fmt: skip
    await asyncio.gather(*pending)


async def main(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory(prefix="egide-bench-rebuild-") as tmp:
        root = Path(tmp)
        sites = []
        for i in range(6):
            site = LocalSite(f"local-{i}", root / f"site-{i}")
            site.prepare()
            sites.append(site)
        catalog = open_catalog(Settings(data_dir=root))
        keyring = Keyring(os.urandom(32))
        store = ObjectStore(catalog, keyring, sites, k=4, m=2, block_size=1024 * 1024,
                            pack_threshold=args.pack_threshold, trash_grace=0)  # fmt: skip
        started = time.perf_counter()
        await fill(store, args.objects, args.size, args.buckets)
        written = time.perf_counter() - started
        await catalog.close()
        files = sum(1 for s in sites for p in (s.root / "shards").rglob("*") if p.is_file())
        print(f"wrote {args.objects} objects of {args.size} B in {written:.1f} s "
              f"({files} files on 6 sites, pack threshold {args.pack_threshold}, "
              f"{args.buckets} buckets)")  # fmt: skip
        timings = []
        for run in range(args.repeat):
            into = root / f"rebuilt-{run}.sqlite3"
            started = time.perf_counter()
            report = await rebuild_catalog({s.name: s for s in sites}, keyring, into)
            timings.append(time.perf_counter() - started)
            assert report.versions == args.objects and not report.unrecoverable, report
        best = min(timings)
        print(f"rebuild: {report.files} files read, {report.versions} versions")
        print(f"rebuild time      {best:.2f} s (best of {args.repeat}: "
              + ", ".join(f"{t:.2f}" for t in timings) + ")")  # fmt: skip
        print(f"rebuild rate      {args.objects / best:,.0f} objects/s")
        print(f"per 10,000 objects {best * 10_000 / args.objects:.2f} s")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--objects", type=int, default=10_000)
    parser.add_argument("--size", type=int, default=4096)
    parser.add_argument("--pack-threshold", type=int, default=256 * 1024)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--buckets", type=int, default=1)
    asyncio.run(main(parser.parse_args()))
