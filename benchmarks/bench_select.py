"""S3 Select through a real Égide server: MB of CSV scanned per second, with boto3's
`select_object_content` as the client.

    python benchmarks/bench_select.py [--mb 200] [--repeat 2]

A server (`egide serve`, one worker, six local-directory sites, 4+2, the default `[sql]`
limits) is started on a free port; a CSV of about --mb MB (an id, a city, two numbers as text)
is generated on local disk and uploaded as one object (multipart). Two queries, each run
--repeat times (best printed): an aggregate over every row (`SUM(CAST …)` with a LIKE filter,
one record returned) and a selective projection (`WHERE CAST(id AS INT) < 1000`). MB/s is the
object's size over the time from the request to the End event. Figures are printed, never
asserted.
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import boto3

MiB = 1024 * 1024
KEY, SECRET = "BENCHSELECTKEY00001", "bench-select-secret-0001"
CITIES = ("lyon", "nice", "brest", "lille", "nantes", "metz", "dijon", "tours")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def generate(path: Path, mb: int) -> int:
    rows = 0
    with path.open("wb") as out:
        out.write(b"id,city,kwh,price\n")
        while out.tell() < mb * MiB:
            lines = [
                f"{i},{CITIES[i % 8]},{(i * 37) % 1000 / 10},{(i * 11) % 500 / 100}\n"
                for i in range(rows, rows + 100_000)
            ]
            out.write("".join(lines).encode())
            rows += 100_000
    return rows


def run_select(s3: object, sql: str) -> tuple[float, bytes]:
    started = time.perf_counter()
    answer = s3.select_object_content(  # type: ignore[attr-defined]
        Bucket="bench", Key="data.csv", Expression=sql, ExpressionType="SQL",
        InputSerialization={"CSV": {"FileHeaderInfo": "USE"}},
        OutputSerialization={"CSV": {}},
    )  # fmt: skip
    records = bytearray()
    for event in answer["Payload"]:
        if "Records" in event:
            records += event["Records"]["Payload"]
    return time.perf_counter() - started, bytes(records)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mb", type=int, default=200)
    parser.add_argument("--repeat", type=int, default=2)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-select-") as tmp:
        root = Path(tmp)
        port = free_port()
        config = root / "egide.toml"
        config.write_text(
            f'data_dir = "{root / "data"}"\nlisten = "127.0.0.1:{port}"\nworkers = 1\n'
            f'[[credentials]]\naccess_key = "{KEY}"\nsecret_key = "{SECRET}"\n'
        )
        log = (root / "server.log").open("wb")
        server = subprocess.Popen(
            [sys.executable, "-m", "egide", "serve", "--config", str(config)],
            stdout=log, stderr=subprocess.STDOUT, env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )  # fmt: skip
        try:
            deadline = time.monotonic() + 60
            while True:
                try:
                    socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                    break
                except OSError:
                    if time.monotonic() > deadline:
                        raise RuntimeError("the server did not start") from None
                    time.sleep(0.1)
            s3 = boto3.client(
                "s3", endpoint_url=f"http://127.0.0.1:{port}", aws_access_key_id=KEY,
                aws_secret_access_key=SECRET, region_name="us-east-1",
            )  # fmt: skip
            s3.create_bucket(Bucket="bench")
            data = root / "data.csv"
            rows = generate(data, args.mb)
            size = data.stat().st_size
            started = time.perf_counter()
            s3.upload_file(str(data), "bench", "data.csv")
            print(f"CSV: {size / MiB:.1f} MiB, {rows} rows, uploaded in "
                  f"{time.perf_counter() - started:.1f} s")  # fmt: skip
            queries = {
                "aggregate, every row": "SELECT SUM(CAST(s.kwh AS FLOAT)), COUNT(*) "
                "FROM S3Object s WHERE s.city LIKE 'l%'",
                "selective projection": "SELECT s.id, s.city FROM S3Object s "
                "WHERE CAST(s.id AS INT) < 1000",
            }
            for name, sql in queries.items():
                best, records = min(run_select(s3, sql) for _ in range(args.repeat))
                print(f"{name:>22}: {best:6.2f} s, {size / MiB / best:7.1f} MiB/s scanned, "
                      f"{len(records)} bytes returned")  # fmt: skip
        finally:
            server.terminate()
            server.wait(30)


if __name__ == "__main__":
    main()
