"""PyIceberg through the gateway's Iceberg REST catalog: append and scan throughput, and
commits per second on one table, against a real server.

    python benchmarks/bench_iceberg.py [--rows 1000000] [--batches 4] [--commits 50]

Starts a throw-away `egide serve` (one worker), creates a warehouse bucket, a namespace and a
table, then prints: MB/s (Arrow bytes) and rows/s of `--batches` appends of `--rows` rows
each (a Parquet file written through Égide's S3 API, a metadata commit each); a full scan's
and a selective scan's rows/s; `--commits` property updates one after another (commits/s:
read the current metadata file, apply, write the next, compare-and-swap); the server's peak
resident memory (psutil).
"""

from __future__ import annotations

import argparse
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import boto3
import psutil
import pyarrow as pa
import pyarrow.compute as pc
from pyiceberg.catalog.rest import RestCatalog

ACCESS, SECRET = "EGBENCHICEBERG01", "bench-iceberg-secret-0001"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def serving(config: Path, port: int) -> Iterator[psutil.Process]:
    proc = subprocess.Popen([sys.executable, "-m", "egide", "serve", "--config", str(config)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    try:
        for _ in range(300):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.1)
        yield psutil.Process(proc.pid)
    finally:
        proc.terminate()
        proc.wait()


def peak_rss(server: psutil.Process) -> int:
    """The largest resident set of the server and its workers (VmHWM on Linux)."""
    peak = 0
    for proc in [server, *server.children(recursive=True)]:
        try:
            for line in Path(f"/proc/{proc.pid}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    peak = max(peak, int(line.split()[1]) * 1024)
        except OSError:
            pass
    return peak


def batch(first: int, rows: int) -> pa.Table:
    ids = pa.array(range(first, first + rows), pa.int64())
    kwh = pc.multiply(ids.cast(pa.float64()), 0.5)
    cities = pa.array(["Lyon", "Brest", "Metz", "Nice"] * (rows // 4))
    return pa.table({"id": ids, "kwh": kwh, "city": cities})


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--batches", type=int, default=4)
    parser.add_argument("--commits", type=int, default=50)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root, port = Path(tmp), free_port()
        config = root / "egide.toml"
        config.write_text(
            f'data_dir = "{root / "data"}"\nlisten = "127.0.0.1:{port}"\nworkers = 1\n'
            f'[[credentials]]\naccess_key = "{ACCESS}"\nsecret_key = "{SECRET}"\n'
        )
        endpoint = f"http://127.0.0.1:{port}"
        with serving(config, port) as server:
            boto3.client("s3", endpoint_url=endpoint, aws_access_key_id=ACCESS,
                         aws_secret_access_key=SECRET, region_name="us-east-1",
                         ).create_bucket(Bucket="bench")  # fmt: skip
            catalog = RestCatalog("bench", **{
                "uri": f"{endpoint}/_iceberg", "warehouse": "bench",
                "rest.sigv4-enabled": "true", "rest.signing-name": "s3",
                "rest.signing-region": "us-east-1", "client.access-key-id": ACCESS,
                "client.secret-access-key": SECRET, "client.region": "us-east-1",
                "s3.access-key-id": ACCESS, "s3.secret-access-key": SECRET,
                "s3.region": "us-east-1",
            })  # fmt: skip
            catalog.create_namespace("b")
            rows = args.rows - args.rows % 4
            table = catalog.create_table("b.t", schema=batch(0, 4).schema)
            data = [batch(i * rows, rows) for i in range(args.batches)]
            began = time.perf_counter()
            for part in data:
                table.append(part)
            spent = time.perf_counter() - began
            size = sum(part.nbytes for part in data)
            print(f"append: {args.batches} x {rows} rows, {size / spent / 1e6:.1f} MB/s "
                  f"(Arrow bytes), {args.batches * rows / spent:,.0f} rows/s")  # fmt: skip
            began = time.perf_counter()
            full = table.scan().to_arrow()
            spent = time.perf_counter() - began
            print(f"full scan: {full.num_rows:,} rows in {spent:.2f} s, "
                  f"{full.num_rows / spent:,.0f} rows/s")  # fmt: skip
            began = time.perf_counter()
            some = table.scan(row_filter=f"id < {rows // 10}").to_arrow()
            print(f"selective scan (id < {rows // 10}): {some.num_rows:,} rows in "
                  f"{time.perf_counter() - began:.2f} s")  # fmt: skip
            began = time.perf_counter()
            for i in range(args.commits):
                with table.transaction() as txn:
                    txn.set_properties(round=str(i))
            spent = time.perf_counter() - began
            print(f"commits on one table, one after another: {args.commits / spent:.1f}/s")
            print(f"server peak RSS: {peak_rss(server) / 2**20:.0f} MiB")


if __name__ == "__main__":
    main()
