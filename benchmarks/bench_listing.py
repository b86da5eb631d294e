"""Listings of a large bucket: pages, deep pages and delimiter listings, objects and versions.

    python benchmarks/bench_listing.py [--keys 107000] [--folders 32] [--repeat 7]
    python benchmarks/bench_listing.py --big          # 1,000,000 keys in 1,000 prefixes
    python benchmarks/bench_listing.py --catalog /tmp/list.sqlite3   # fill once, reuse
    python benchmarks/bench_listing.py --http        # also through `egide serve` and boto3

Fills a real SQLite catalog directly (versions group-committed by the thousand, not through
HTTP): --keys keys spread over --folders "folders" (`f0007/obj000123`), then times the engine's
listing functions (what ListObjectsV2 and ListObjectVersions call) on it:
  * the first 1,000-key page;
  * a deep page (start-after a key near the end);
  * a delimiter listing at the root (one common prefix per folder);
  * a delimiter listing inside one folder (its keys, 1,000 a page).
Each figure is the median of --repeat calls, in ms; the machine is shared and noisy, so compare
figures of one run. With --catalog the filled file is kept and reused by the next run (the
same file can then be listed by two versions of the code, alternately). With --http the same
listings are then timed through a real `egide serve` (one worker) with boto3: the bucket is
created over S3, the server stopped, the catalog filled, the server started again.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config

from egide.catalog.sqlite import SQLiteCatalog
from egide.domain import Bucket, ObjectVersion, new_id
from egide.engine.listing import list_objects
from egide.engine.versioning import list_versions

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_foundation import ACCESS, SECRET, free_port, wait_port

SITES = ("s1", "s2", "s3", "s4", "s5", "s6")
BUCKET = "bench"


def folder(i: int) -> str:
    return f"f{i:04d}/"


def key_of(i: int, folders: int) -> str:
    return f"{folder(i % folders)}obj{i // folders:07d}"


def version(bucket_id: bytes, key: str) -> ObjectVersion:
    return ObjectVersion(
        bucket_id=bucket_id, key=key, version_id=new_id(), size=4096,
        etag=f'"{new_id().hex()}"', last_modified=1_700_000_001.25,
        wrapped_data_key=b"data-key-" + new_id(), k=4, m=2, block_size=1024 * 1024,
        sites=SITES, headers={"content-type": "application/octet-stream"}, is_null=True,
    )  # fmt: skip


async def fill(catalog: SQLiteCatalog, keys: int, folders: int) -> bytes:
    """The bucket's id, after committing `keys` keys (once: a kept catalog is reused)."""
    existing = await catalog.get_bucket(BUCKET)
    if existing is not None:
        if await catalog.list_objects(existing.id, "", None, 1):
            return existing.id
        bucket = existing  # created over S3 by --http: its key is a real one
    else:
        bucket = Bucket(id=new_id(), name=BUCKET, created=1_700_000_000.0, wrapped_key=b"k" * 40)
        await catalog.create_bucket(bucket)
    started = time.perf_counter()
    for start in range(0, keys, 5000):
        batch = [
            version(bucket.id, key_of(i, folders)) for i in range(start, min(keys, start + 5000))
        ]
        await asyncio.gather(*(catalog.commit_version(v) for v in batch))
    print(f"filled {keys:,} keys in {folders:,} folders in {time.perf_counter() - started:.1f} s")
    return bucket.id


async def median_ms(repeat: int, call: Callable[[], Awaitable[object]]) -> float:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        await call()
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


async def run(path: Path, keys: int, folders: int, repeat: int) -> None:
    catalog = SQLiteCatalog(path)
    catalog.open()
    try:
        bucket_id = await fill(catalog, keys, folders)
        last = key_of(keys - 1, folders)
        deep = sorted(key_of(i, folders) for i in range(keys - 2000, keys))[0]
        inner = folder(folders // 2)

        async def check(name: str, call: Callable[[], Awaitable[object]]) -> None:
            print(f"  {name:<40} {await median_ms(repeat, call):9.2f} ms")

        print(f"ListObjectsV2 ({keys:,} keys, {folders:,} folders; last key {last})")
        await check("first 1,000-key page", lambda: list_objects(catalog, bucket_id))
        await check("deep page (start-after)", lambda: list_objects(catalog, bucket_id, after=deep))
        await check(
            f"delimiter at the root ({folders:,} prefixes)",
            lambda: list_objects(catalog, bucket_id, delimiter="/"),
        )
        await check(
            "delimiter inside one folder",
            lambda: list_objects(catalog, bucket_id, prefix=inner, delimiter="/"),
        )
        print("ListObjectVersions")
        await check("first 1,000-version page", lambda: list_versions(catalog, bucket_id))
        await check(
            "deep page (key-marker)", lambda: list_versions(catalog, bucket_id, key_marker=deep)
        )
        await check(
            f"delimiter at the root ({folders:,} prefixes)",
            lambda: list_versions(catalog, bucket_id, delimiter="/"),
        )
        await check(
            "delimiter inside one folder",
            lambda: list_versions(catalog, bucket_id, prefix=inner, delimiter="/"),
        )
    finally:
        await catalog.close()


def serve(root: Path) -> tuple[subprocess.Popen[bytes], Any]:
    """A real `egide serve` (one worker) on root/data, and a boto3 client of it."""
    port = free_port()
    config = root / "egide.toml"
    config.write_text(
        f'data_dir = "{root / "data"}"\nlisten = "127.0.0.1:{port}"\nworkers = 1\n'
        f'[[credentials]]\naccess_key = "{ACCESS}"\nsecret_key = "{SECRET}"\n'
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", "egide", "serve", "--config", str(config)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    wait_port(port)
    s3 = boto3.client(
        "s3", endpoint_url=f"http://127.0.0.1:{port}", aws_access_key_id=ACCESS,
        aws_secret_access_key=SECRET, region_name="us-east-1",
        config=Config(signature_version="s3v4"),
    )  # fmt: skip
    return proc, s3


def over_http(root: Path, keys: int, folders: int, repeat: int) -> None:
    proc, s3 = serve(root)
    s3.create_bucket(Bucket=BUCKET)
    proc.terminate()
    proc.wait(60)
    asyncio.run(run(root / "data" / "catalog.sqlite3", keys, folders, repeat))
    proc, s3 = serve(root)
    try:
        deep = sorted(key_of(i, folders) for i in range(keys - 2000, keys))[0]
        inner = folder(folders // 2)
        calls: list[tuple[str, Callable[[], object]]] = [
            ("first 1,000-key page", lambda: s3.list_objects_v2(Bucket=BUCKET)),
            ("deep page", lambda: s3.list_objects_v2(Bucket=BUCKET, StartAfter=deep)),
            ("delimiter at the root", lambda: s3.list_objects_v2(Bucket=BUCKET, Delimiter="/")),
            (
                "delimiter inside one folder",
                lambda: s3.list_objects_v2(Bucket=BUCKET, Prefix=inner, Delimiter="/"),
            ),
            ("versions: first page", lambda: s3.list_object_versions(Bucket=BUCKET)),
            (
                "versions: delimiter at the root",
                lambda: s3.list_object_versions(Bucket=BUCKET, Delimiter="/"),
            ),
        ]
        print("Over HTTP (boto3, one worker)")
        for name, call in calls:
            call()  # a first call warms the connection
            times = []
            for _ in range(repeat):
                started = time.perf_counter()
                call()
                times.append((time.perf_counter() - started) * 1000)
            print(f"  {name:<40} {statistics.median(times):9.2f} ms")
    finally:
        proc.terminate()
        proc.wait(60)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--keys", type=int, default=107_000)
    parser.add_argument("--folders", type=int, default=32)
    parser.add_argument("--big", action="store_true", help="1,000,000 keys in 1,000 prefixes")
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--catalog", type=Path, help="keep (or reuse) the filled catalog here")
    parser.add_argument("--http", action="store_true", help="also list through egide serve")
    args = parser.parse_args()
    keys, folders = (1_000_000, 1000) if args.big else (args.keys, args.folders)
    if args.http:
        with tempfile.TemporaryDirectory() as tmp:
            over_http(Path(tmp), keys, folders, args.repeat)
        return
    if args.catalog is not None:
        asyncio.run(run(args.catalog, keys, folders, args.repeat))
        return
    with tempfile.TemporaryDirectory() as tmp:
        asyncio.run(run(Path(tmp) / "catalog.sqlite3", keys, folders, args.repeat))


if __name__ == "__main__":
    main()
