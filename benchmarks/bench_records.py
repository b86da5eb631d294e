"""Records beside the shards: each delete marker, and each tag or lock change after a write,
is recorded on every site (docs/decisions/0016-records-beside-the-shards.md).

    python benchmarks/bench_records.py [--count 2000] [--threads 8]

Starts one Égide server on its defaults (six local-directory sites, 4+2), then, in one run:
  * PUT of --count 4 KiB objects (the reference: a small write that also reaches every site);
  * DELETE of each in a versioned bucket (a delete marker, its record written on six sites);
  * DELETE of each in a bucket never versioned (no marker: the version goes to the trash);
  * one DeleteObjects of 1000 keys in the versioned bucket (1000 markers, one after another);
  * PutObjectTagging of each object of the bucket never versioned (an amendment record each).
Each phase runs --threads clients in parallel; prints operations per second and p50/p99
latency, and the marker DELETE's rate as a ratio to the other two.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench_foundation import Egide


def timed(count: int, threads: int, action: Callable[[int], object]) -> tuple[float, list[float]]:
    """(operations per second, latencies in ms) of action(0 … count-1) on `threads` threads."""
    latencies: list[float] = []

    def one(i: int) -> None:
        started = time.perf_counter()
        action(i)
        latencies.append((time.perf_counter() - started) * 1000)

    started = time.perf_counter()
    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(one, range(count)))
    return count / (time.perf_counter() - started), latencies


def show(name: str, rate: float, latencies: list[float]) -> None:
    cuts = statistics.quantiles(latencies, n=100)
    print(f"{name:<28} {rate:8.0f} ops/s   p50 {cuts[49]:6.2f} ms   p99 {cuts[98]:6.2f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--count", type=int, default=2000)
    parser.add_argument("--threads", type=int, default=8)
    args = parser.parse_args()
    body = b"x" * 4096
    with tempfile.TemporaryDirectory() as tmp:
        server = Egide(Path(tmp), workers=None)
        s3 = server.s3
        try:
            s3.create_bucket(Bucket="versioned")
            s3.put_bucket_versioning(
                Bucket="versioned", VersioningConfiguration={"Status": "Enabled"}
            )
            put = timed(
                args.count,
                args.threads,
                lambda i: s3.put_object(Bucket="versioned", Key=f"k{i}", Body=body),
            )
            for i in range(args.count):
                s3.put_object(Bucket="bench", Key=f"k{i}", Body=body)
            tagset = {"TagSet": [{"Key": "reviewed", "Value": "yes"}]}
            tagging = timed(
                args.count,
                args.threads,
                lambda i: s3.put_object_tagging(Bucket="bench", Key=f"k{i}", Tagging=tagset),
            )
            marker = timed(
                args.count,
                args.threads,
                lambda i: s3.delete_object(Bucket="versioned", Key=f"k{i}"),
            )
            plain = timed(
                args.count, args.threads, lambda i: s3.delete_object(Bucket="bench", Key=f"k{i}")
            )
            batch = [{"Key": f"b{i}"} for i in range(1000)]
            started = time.perf_counter()
            s3.delete_objects(Bucket="versioned", Delete={"Objects": batch, "Quiet": True})
            batch_seconds = time.perf_counter() - started
        finally:
            server.stop()
    show("PUT 4 KiB", *put)
    show("DELETE, delete marker", *marker)
    show("DELETE, never versioned", *plain)
    show("PutObjectTagging", *tagging)
    print(f"DeleteObjects, 1000 new delete markers: {batch_seconds * 1000:.0f} ms")
    print(
        f"marker DELETE rate: {marker[0] / put[0]:.2f}x the PUT's, "
        f"{marker[0] / plain[0]:.2f}x the unversioned DELETE's"
    )


if __name__ == "__main__":
    main()
