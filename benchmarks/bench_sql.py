"""DuckDB over a Parquet object through Égide (egide:// filesystem: ranged reads, decryption,
erasure-coded pieces) against DuckDB on the same plaintext file on local disk, in the same run.

    python benchmarks/bench_sql.py [--mb 200] [--threads 2] [--egide-threads N] [--repeat 3]

One object store in this process (SQLite catalog, six local-directory sites, 4+2, 1 MiB
blocks), served on its own loop thread as `egide sql` serves it; the caller is the
administrator through the real authorization decision (allow-all here: what is measured is the
read path). A Parquet file of about --mb MB (random doubles, sorted ids, row groups of 1 M
rows) is generated, written to local disk and stored as one object. Two queries: a full-scan
aggregate over every column, and a selective one whose id range lies in one row group (the
others are pruned by their statistics). Each runs --repeat times per side, alternately; the
best time of each is printed with the ratio local/Égide (1.0 = as fast as the local file).
"""

from __future__ import annotations

import argparse
import math
import os
import tempfile
import time
from collections.abc import AsyncIterator
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from egide.analytics.access import ObjectAccess
from egide.analytics.bridge import LoopThread
from egide.analytics.filesystem import EgideFileSystem
from egide.analytics.query import Limits, Query
from egide.auth.authorize import Authorizer, Principal, allow_all
from egide.catalog import open_catalog
from egide.config import Settings
from egide.crypto.keyring import Keyring
from egide.engine.store import ObjectStore
from egide.sites.local import LocalSite

ROW_GROUP = 1_000_000
MiB = 1024 * 1024


def generate(path: Path, mb: int) -> int:
    """A Parquet file of about `mb` MB (4 doubles and an int64 id per row: ~40 bytes)."""
    rows = mb * MiB // 40
    writer = None
    for start in range(0, rows, ROW_GROUP):
        n = min(ROW_GROUP, rows - start)
        columns = {name: pc.random(n, initializer=start + i) for i, name in enumerate("abcd")}
        ids = pa.array(range(start, start + n), pa.int64())
        batch = pa.table({"id": ids, **columns})
        if writer is None:
            writer = pq.ParquetWriter(path, batch.schema, compression="snappy")
        writer.write_table(batch, row_group_size=ROW_GROUP)
    assert writer is not None
    writer.close()
    return rows


async def chunks(path: Path) -> AsyncIterator[bytes]:
    with path.open("rb") as f:
        while block := f.read(4 * MiB):
            yield block


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--mb", type=int, default=200)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument(
        "--egide-threads", type=int, default=None,
        help="DuckDB's threads on the Égide side (default: --threads); reads wait on the "
        "engine, so more threads than cores overlap them",
    )  # fmt: skip
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        local = tmp / "data.parquet"
        rows = generate(local, args.mb)
        size = local.stat().st_size
        groups = pq.ParquetFile(local).metadata.num_row_groups
        print(f"Parquet: {size / MiB:.0f} MiB, {rows:,} rows, {groups} row groups")
        catalog = open_catalog(Settings(data_dir=tmp))
        sites = [LocalSite(f"site-{i}", tmp / f"site-{i}") for i in range(6)]
        for site in sites:
            site.prepare()
        store = ObjectStore(catalog, Keyring(os.urandom(32)), sites, k=4, m=2, block_size=MiB)
        with LoopThread() as engine:
            engine.run(store.create_bucket("lake"))
            started = time.perf_counter()
            engine.run(store.put_object("lake", "data.parquet", chunks(local), size=size,
                                        headers={}))  # fmt: skip
            print(f"stored through the engine in {time.perf_counter() - started:.1f} s")
            access = ObjectAccess(store, Authorizer(allow_all), Principal(user="admin"))
            middle = (groups // 2) * ROW_GROUP
            queries = {
                "full scan": "SELECT count(*), sum(a), avg(b), min(c), max(d) "
                "FROM read_parquet('{}')",
                "one row group": "SELECT count(*), sum(a) FROM read_parquet('{}') "
                f"WHERE id BETWEEN {middle + 1000} AND {middle + 200_000}",
            }  # fmt: skip
            threads = args.egide_threads or args.threads
            print(f"DuckDB threads: local {args.threads}, Égide {threads}")
            limits = Limits(memory="2GB", threads=threads, timeout=600)
            for name, sql in queries.items():
                best = {"local": float("inf"), "egide": float("inf")}
                results = {}
                for _ in range(args.repeat):
                    con = duckdb.connect(config={"threads": args.threads})
                    started = time.perf_counter()
                    results["local"] = con.execute(sql.format(local)).fetchall()
                    best["local"] = min(best["local"], time.perf_counter() - started)
                    con.close()
                    fs = EgideFileSystem(access, engine.bridge())  # a new query, a new fs
                    with Query(fs, limits) as query:
                        started = time.perf_counter()
                        _, batches = query.run(sql.format("egide://lake/data.parquet"))
                        results["egide"] = [
                            tuple(r.values()) for b in batches for r in b.to_pylist()
                        ]
                        best["egide"] = min(best["egide"], time.perf_counter() - started)
                # Sums of doubles differ in their last bits with the order threads add them.
                same = all(
                    math.isclose(x, y, rel_tol=1e-9)
                    for a, b in zip(results["local"], results["egide"], strict=True)
                    for x, y in zip(a, b, strict=True)
                )
                assert same, results
                print(
                    f"{name:14} local {best['local'] * 1000:8.1f} ms   "
                    f"Égide {best['egide'] * 1000:8.1f} ms   "
                    f"ratio local/Égide {best['local'] / best['egide']:.2f}"
                )
            engine.run(catalog.close())


if __name__ == "__main__":
    main()
