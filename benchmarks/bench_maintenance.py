"""Repair and evacuation throughput, with and without a rate limit, and the latency of live
GETs while they run.

    python benchmarks/bench_maintenance.py [--mib 256] [--rate-mb 20]

Starts one Égide server (code 4+2 over seven local-directory sites, jobs left to the command),
writes --mib of 4 MiB objects plus small "live" objects, then, each in the same run:
  * baseline: GET latency of the live objects with nothing else running;
  * repair: one site directory deleted, `egide repair` (no limit, then --rate);
  * evacuate: `egide site evacuate` of a site (no limit, then --rate), evacuation undone
    between runs by cancelling the job's retirement (a fresh data directory each run).
Throughput is MB/s of object data made whole again (repair: versions that had a piece on the
lost site; evacuation: versions that had a piece on the evacuated site). Latency is p50/p99 of
256 KiB GETs from one client, issued back to back while the job runs.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import boto3
from bench_foundation import ACCESS, SECRET, free_port, wait_port
from botocore.config import Config

MiB, KiB = 1024 * 1024, 1024
BUCKET = "bench"


class Server:
    def __init__(self, root: Path) -> None:
        root.mkdir(parents=True)
        self.port = free_port()
        self.root = root
        self.config = root / "egide.toml"
        sites = "".join(
            f'[[sites]]\nname = "disk-{i}"\npath = "data/sites/disk-{i}"\n' for i in range(7)
        )
        self.config.write_text(
            f'data_dir = "{root / "data"}"\nlisten = "127.0.0.1:{self.port}"\n'
            f"trash_grace_seconds = 0\n[code]\nk = 4\nm = 2\n{sites}"
            "[maintenance]\nrun_in_server = false\nscrub_period_days = 0\ngc_interval_hours = 0\n"
            f'[[credentials]]\naccess_key = "{ACCESS}"\nsecret_key = "{SECRET}"\n'
        )
        self.log = (root / "server.log").open("wb")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "egide", "serve", "--config", str(self.config)],
            stdout=self.log, stderr=subprocess.STDOUT,
        )  # fmt: skip
        wait_port(self.port)
        time.sleep(1.0)  # the port answers before the server's lifespan is up
        self.s3 = boto3.client(
            "s3", endpoint_url=f"http://127.0.0.1:{self.port}", aws_access_key_id=ACCESS,
            aws_secret_access_key=SECRET, region_name="us-east-1",
            config=Config(signature_version="s3v4", max_pool_connections=4),
        )  # fmt: skip
        self.s3.create_bucket(Bucket=BUCKET)

    def egide(self, *args: str) -> float:
        started = time.monotonic()
        done = subprocess.run(
            [sys.executable, "-m", "egide", *args, "--config", str(self.config)],
            capture_output=True, text=True,
        )  # fmt: skip
        if done.returncode != 0:
            raise RuntimeError(done.stdout + done.stderr)
        return time.monotonic() - started

    def versions_on(self, site: str) -> int:
        """Bytes of object data in versions with a piece on `site`."""
        path = self.root / "data" / "catalog.sqlite3"
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as db:
            rows = db.execute("SELECT size, sites FROM versions").fetchall()
        return sum(size for size, sites in rows if site in json.loads(sites))

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(60)


def fill(server: Server, mib: int) -> None:
    body = bytes(range(256)) * (4 * MiB // 256)
    for i in range(mib // 4):
        server.s3.put_object(Bucket=BUCKET, Key=f"big/{i:04}", Body=body[:-1] + bytes([i % 256]))
    for i in range(16):
        server.s3.put_object(Bucket=BUCKET, Key=f"live/{i:02}", Body=bytes([i]) * (256 * KiB))


def latencies(server: Server, stop: threading.Event, out: list[float]) -> None:
    n = 0
    while not stop.is_set():
        started = time.perf_counter()
        server.s3.get_object(Bucket=BUCKET, Key=f"live/{n % 16:02}")["Body"].read()
        out.append(time.perf_counter() - started)
        n += 1


def during(server: Server, action: list[str]) -> tuple[float, list[float]]:
    samples: list[float] = []
    stop = threading.Event()
    thread = threading.Thread(target=latencies, args=(server, stop, samples))
    thread.start()
    try:
        elapsed = server.egide(*action)
    finally:
        stop.set()
        thread.join()
    return elapsed, samples


def quantiles(samples: list[float]) -> str:
    if len(samples) < 20:
        return f"{len(samples)} GETs (too few for quantiles)"
    cuts = statistics.quantiles(samples, n=100)
    return f"GET p50 {cuts[49] * 1000:.1f} ms, p99 {cuts[98] * 1000:.1f} ms ({len(samples)} GETs)"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mib", type=int, default=256)
    parser.add_argument("--rate-mb", type=int, default=20)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="egide-bench-maint-") as tmp:
        for label, rate in (("no limit", None), (f"--rate {args.rate_mb}MB", args.rate_mb)):
            extra = ["--rate", f"{rate}MB"] if rate else []
            server = Server(Path(tmp) / f"repair-{rate}")  # repair of a lost site
            try:
                fill(server, args.mib)
                idle: list[float] = []
                stop = threading.Event()
                thread = threading.Thread(target=latencies, args=(server, stop, idle))
                thread.start()
                time.sleep(3)
                stop.set()
                thread.join()
                print(f"baseline            {quantiles(idle)}")
                lost = server.versions_on("disk-0")
                shutil.rmtree(server.root / "data" / "sites" / "disk-0")
                elapsed, samples = during(server, ["repair", *extra])
                report("repair", label, lost, elapsed, samples)
            finally:
                server.stop()
            server = Server(Path(tmp) / f"evacuate-{rate}")  # a site evacuated
            try:
                fill(server, args.mib)
                moving = server.versions_on("disk-1")
                elapsed, samples = during(server, ["site", "evacuate", "disk-1", *extra])
                report("evacuate", label, moving, elapsed, samples)
            finally:
                server.stop()


def report(job: str, label: str, data: int, elapsed: float, samples: list[float]) -> None:
    note = ", a 5 s settle included" if job == "evacuate" else ""
    print(
        f"{job:8} {label:10} {data / elapsed / 1e6:7.1f} MB/s of object data "
        f"({data / MiB:.0f} MiB in {elapsed:.1f} s{note}); {quantiles(samples)}"
    )


if __name__ == "__main__":
    main()
