"""What deciding by policies costs a 4 KiB GET and PUT: a bucket policy of 20 statements against
none (egide.auth.decide.PolicyDecision with egide.s3.bucketpolicy.BucketPolicies).

    python benchmarks/bench_authorize.py [--count 2000] [--concurrency 8] [--repeat 3]

One object store in this process (SQLite catalog, six local-directory sites, 4+2). A user whose
identity policy allows s3:GetObject and s3:PutObject on the bucket does `count` GETs, then
`count` PUTs, of 4 KiB, each decided first as the S3 app decides it (its identity policies and
the bucket's policy, each re-read at most every second and compiled once). The two settings run
alternately --repeat times (after a discarded warm-up run, each pair in the other order than
the last), so that the machine's noise falls on both; prints ops/s (median)
and the ratio "20 statements / none", then the decision's own cost per request.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import tempfile
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

from egide.auth.authorize import Principal, RequestContext
from egide.auth.decide import PolicyDecision
from egide.catalog import open_catalog
from egide.config import Settings
from egide.crypto.keyring import Keyring
from egide.engine.store import ObjectStore
from egide.s3.bucketpolicy import SETTING, BucketPolicies
from egide.sites.local import LocalSite

BODY = os.urandom(4096)
CONTEXT = RequestContext(request_time=datetime.now(UTC), source_ip="10.1.2.3")


def bucket_policy(statements: int, bucket: str = "b") -> str:
    """`statements` statements, as a real bucket's: denials for other networks, prefixes and
    users, allowances for others' prefixes; the last one grants the bench's user."""
    made = []
    for i in range(statements - 1):
        made.append({
            "Sid": f"S{i}", "Effect": "Deny" if i % 2 else "Allow",
            "Principal": {"AWS": f"arn:aws:iam::123456789012:user/other{i}"},
            "Action": ["s3:GetObject", "s3:PutObject", "s3:DeleteObject"],
            "Resource": f"arn:aws:s3:::{bucket}/team{i}/*",
            "Condition": {"IpAddress": {"aws:SourceIp": f"192.168.{i}.0/24"}},
        })  # fmt: skip
    made.append({"Sid": "Bench", "Effect": "Allow", "Principal": "*",
                 "Action": ["s3:GetObject", "s3:PutObject"], "Resource": f"arn:aws:s3:::{bucket}/*",
                 "Condition": {"Bool": {"aws:SecureTransport": "false"}}})  # fmt: skip
    return json.dumps({"Version": "2012-10-17", "Statement": made})


async def _body() -> AsyncIterator[bytes]:
    yield BODY


async def run(
    root: Path, statements: int, count: int, concurrency: int
) -> tuple[float, float, float]:
    """GETs and PUTs per second, each decided first; µs per decision alone."""
    catalog = open_catalog(Settings(data_dir=root))
    sites = []
    for i in range(6):
        site = LocalSite(f"site-{i}", root / f"site-{i}")
        site.prepare()
        sites.append(site)
    store = ObjectStore(catalog, Keyring(os.urandom(32)), sites, k=4, m=2, block_size=1 << 20)
    await store.identities.create_user("bench")
    grant = {"Statement": {"Effect": "Allow", "Action": ["s3:GetObject", "s3:PutObject"],
                           "Resource": "arn:aws:s3:::b/*"}}  # fmt: skip
    await store.identities.put_policy("user", "bench", "rw", json.dumps(grant))
    bucket = await store.create_bucket("b")
    if statements:
        await store.bucket_settings.put(bucket, SETTING, bucket_policy(statements))
    decide = PolicyDecision(catalog, bucket_policy=BucketPolicies(store))
    who = Principal(access_key="EGBENCH", user="bench")
    for i in range(100):
        await store.put_object("b", f"k{i}", _body(), size=len(BODY), headers={})
    gate = asyncio.Semaphore(concurrency)

    async def get(i: int) -> None:
        async with gate:
            assert await decide(who, "s3:GetObject", f"arn:aws:s3:::b/k{i % 100}", CONTEXT)
            version = await store.head_object("b", f"k{i % 100}")
            async for _ in await store.reader(version, 0, version.size - 1):
                pass

    async def put(i: int) -> None:
        async with gate:
            assert await decide(who, "s3:PutObject", f"arn:aws:s3:::b/p{i}", CONTEXT)
            await store.put_object("b", f"p{i}", _body(), size=len(BODY), headers={})

    rates = []
    for op in (get, put):
        began = time.perf_counter()
        await asyncio.gather(*(op(i) for i in range(count)))
        rates.append(count / (time.perf_counter() - began))
    calls = 5000
    began = time.perf_counter()
    for i in range(calls):  # the decision alone, its lookups cached
        await decide(who, "s3:GetObject", f"arn:aws:s3:::b/k{i % 100}", CONTEXT)
    rates.append((time.perf_counter() - began) / calls * 1e6)
    await catalog.close()
    return rates[0], rates[1], rates[2]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--count", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    settings = {"none": 0, "20 statements": 20}
    gets: dict[str, list[float]] = {name: [] for name in settings}
    puts: dict[str, list[float]] = {name: [] for name in settings}
    alone: dict[str, list[float]] = {name: [] for name in settings}
    with tempfile.TemporaryDirectory() as tmp:  # a first, discarded run warms the process up
        asyncio.run(run(Path(tmp), 0, args.count // 4, args.concurrency))
    for turn in range(args.repeat):
        order = list(settings.items())
        for name, statements in order if turn % 2 == 0 else order[::-1]:
            with tempfile.TemporaryDirectory() as tmp:
                g, p, a = asyncio.run(run(Path(tmp), statements, args.count, args.concurrency))
            gets[name].append(g)
            puts[name].append(p)
            alone[name].append(a)
    print(f"{args.count} GETs and PUTs of 4 KiB, {args.concurrency} at a time, "
          f"median of {args.repeat} alternate runs")  # fmt: skip
    for name in settings:
        print(f"{name:14s} {statistics.median(gets[name]):7.0f} GET/s "
              f"{statistics.median(puts[name]):7.0f} PUT/s  "
              f"decision alone {statistics.median(alone[name]):6.1f} µs")  # fmt: skip
    for label, rates in (("GET", gets), ("PUT", puts)):
        ratio = statistics.median(rates["20 statements"]) / statistics.median(rates["none"])
        print(f"{label} ratio 20 statements / none: {ratio:.3f}")


if __name__ == "__main__":
    main()
