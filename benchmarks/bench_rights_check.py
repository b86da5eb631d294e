"""What the rights check every request passes costs (decision 0035), on a real SQLite catalog.

    python benchmarks/bench_rights_check.py [--count 20000] [--repeat 5]

Times `RightsWatch.check` in the three cases a request meets: nothing committed since the last
request (the mark alone: `PRAGMA data_version`), an object version committed by another
connection meanwhile (the mark moved: the counter is read too, and found unchanged), and a
right changed meanwhile (the caches are emptied, here one empty cache). For scale, the counter
read alone, with nothing committed and after a version was (what a check without the mark would
cost). Prints the best and the median of `--repeat` runs, in microseconds per check.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

from egide.auth.rights import RightsWatch
from egide.catalog.sqlite import SQLiteCatalog
from egide.domain import Bucket, ObjectVersion, new_id


def version(bucket: Bucket) -> ObjectVersion:
    return ObjectVersion(
        bucket_id=bucket.id, key="k", version_id=new_id(), size=1, etag='"e"', last_modified=1.0,
        wrapped_data_key=b"w", k=1, m=0, block_size=1024, sites=("a",), headers={},
    )  # fmt: skip


async def per_call(count: int, each: Callable[[int], Awaitable[object]]) -> float:
    began = time.perf_counter()
    for i in range(count):
        await each(i)
    return (time.perf_counter() - began) / count * 1e6


async def measure(count: int, repeat: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "catalog.sqlite3"
        worker, other = SQLiteCatalog(path), SQLiteCatalog(path)
        worker.open()
        other.open()
        watch = RightsWatch(worker, (lambda: None,))
        bucket = Bucket(new_id(), "b", 1.0, b"key")
        await other.create_bucket(bucket)
        await watch.check()
        # What the commits cost is not the check's: they are made first, between checks.
        commits = max(count // 20, 1)

        async def counter(_: int) -> object:
            return await worker.rights_version()

        async def quiet(_: int) -> None:
            await watch.check()

        async def after(
            change: Callable[[], Awaitable[object]],
            check: Callable[[], Awaitable[object]] = watch.check,
        ) -> float:
            total = 0.0
            for _ in range(commits):
                await change()
                began = time.perf_counter()
                await check()
                total += time.perf_counter() - began
            return total / commits * 1e6

        cases: dict[str, list[float]] = {}
        for _ in range(repeat):
            cases.setdefault("the counter read alone", []).append(await per_call(count, counter))
            cases.setdefault("check, nothing committed", []).append(await per_call(count, quiet))
            cases.setdefault("counter alone, after a version", []).append(
                await after(lambda: other.commit_version(version(bucket)), worker.rights_version)
            )
            cases.setdefault("check, a version committed", []).append(
                await after(lambda: other.commit_version(version(bucket)))
            )
            cases.setdefault("check, a right changed", []).append(
                await after(lambda: other.put_bucket_setting(bucket.id, "acl", new_id().hex()))
            )
        for name, runs in cases.items():
            print(f"{name:31} best {min(runs):6.1f} µs   median {statistics.median(runs):6.1f} µs")
        await other.close()
        await worker.close()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--count", type=int, default=20000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    asyncio.run(measure(args.count, args.repeat))


if __name__ == "__main__":
    main()
