"""What checking keys every second costs a 4 KiB GET (egide.auth.credentials.SecretCache).

    python benchmarks/bench_identities.py [--count 3000] [--concurrency 8] [--repeat 3]

One object store in this process (SQLite catalog, six local-directory sites, 4+2) holds 4 KiB
objects; each GET asks the secret cache for the key's secret and principal, as the S3 app does
before SigV4 and authorize, then reads the object. Three cache lifetimes, interleaved --repeat
times so that the machine's noise falls on all alike:
  * forever: what a worker did before identities (a secret cached for the process's life);
  * 1 s: today's (a disabled or deleted key refused within a second);
  * 0 s: a catalog look-up on every request (the worst case, for scale).
Prints GETs per second (median of the runs) and each lifetime's ratio to "forever", then the
cache's own cost per request (secret and principal, 100 000 calls) for each lifetime: on a
loaded machine the GET rates move more with noise than with the cache.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import os
import statistics
import tempfile
import time
from collections.abc import AsyncIterator
from pathlib import Path

from egide.auth.credentials import SecretCache
from egide.catalog import open_catalog
from egide.config import Settings
from egide.crypto.keyring import Keyring
from egide.engine.identities import IdentityService
from egide.engine.store import ObjectStore
from egide.sites.local import LocalSite

BODY = os.urandom(4096)
LIFETIMES = {"forever": math.inf, "1 s": 1.0, "0 s": 0.0}


async def _body() -> AsyncIterator[bytes]:
    yield BODY


async def run(root: Path, lifetime: float, count: int, concurrency: int) -> float:
    """GETs per second of `count` 4 KiB GETs, each through the secret cache."""
    catalog = open_catalog(Settings(data_dir=root))
    sites = []
    for i in range(6):
        site = LocalSite(f"site-{i}", root / f"site-{i}")
        site.prepare()
        sites.append(site)
    store = ObjectStore(catalog, Keyring(os.urandom(32)), sites, k=4, m=2, block_size=1 << 20)
    key, _ = await store.identities.create_key("admin")
    cache = SecretCache(catalog, store.keyring, lifetime=lifetime)
    await store.create_bucket("b")
    for i in range(100):
        await store.put_object("b", f"k{i}", _body(), size=len(BODY), headers={})
    gate = asyncio.Semaphore(concurrency)

    async def get(i: int) -> None:
        async with gate:
            assert await cache.secret(key.access_key) is not None
            assert cache.principal(key.access_key).user == "admin"
            version = await store.head_object("b", f"k{i % 100}")
            reader = await store.reader(version, 0, version.size - 1)
            async for _ in reader:
                pass

    began = time.perf_counter()
    await asyncio.gather(*(get(i) for i in range(count)))
    elapsed = time.perf_counter() - began
    await catalog.close()
    return count / elapsed


async def cache_alone(root: Path, lifetime: float, calls: int = 100_000) -> float:
    """Microseconds per request that the cache itself takes (secret, then principal)."""
    catalog = open_catalog(Settings(data_dir=root))
    keyring = Keyring(os.urandom(32))
    key, _ = await IdentityService(catalog, keyring).create_key("admin")
    cache = SecretCache(catalog, keyring, lifetime=lifetime)
    began = time.perf_counter()
    for _ in range(calls):
        await cache.secret(key.access_key)
        cache.principal(key.access_key)
    elapsed = time.perf_counter() - began
    await catalog.close()
    return elapsed / calls * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--count", type=int, default=3000)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    rates: dict[str, list[float]] = {name: [] for name in LIFETIMES}
    for _ in range(args.repeat):
        for name, lifetime in LIFETIMES.items():
            with tempfile.TemporaryDirectory() as tmp:
                rates[name].append(
                    asyncio.run(run(Path(tmp), lifetime, args.count, args.concurrency))
                )
    base = statistics.median(rates["forever"])
    print(f"{args.count} GETs of 4 KiB, {args.concurrency} at a time, median of {args.repeat}")
    for name in LIFETIMES:
        rate = statistics.median(rates[name])
        print(f"{name:8s} {rate:8.0f} GET/s  ratio to forever {rate / base:.3f}")
    for name, lifetime in LIFETIMES.items():
        with tempfile.TemporaryDirectory() as tmp:
            micros = asyncio.run(cache_alone(Path(tmp), lifetime))
        print(f"cache alone, {name:8s} {micros:7.2f} µs per request")


if __name__ == "__main__":
    main()
