"""What the metrics cost a 4 KiB PUT and GET over HTTP, against real servers.

    python benchmarks/bench_metrics.py [--ops 1000] [--threads 4] [--repeat 3]

Starts two throw-away `egide serve` (one worker each): one with `[metrics] enabled = false`,
one with the metrics on (requests, latency and bytes by operation, site reads; the default).
With `--threads` boto3 clients at once: 4 KiB GETs/s and PUTs/s on each, alternated --repeat
times after a warm-up (each pair in the other order than the last); prints the medians and
the ratio "on / off". The servers idle while the other is measured. Also the server process's
CPU time per operation (from /proc, Linux): on a loaded machine throughput swings with the
other processes, CPU time per request much less.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import boto3
from bench_sts import CONFIG, free_port, rate

ACCESS, SECRET = "EGBENCHMETRICS001", "bench-metrics-secret-0001"
BODY = os.urandom(4096)


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@contextlib.contextmanager
def serving(config: Path, port: int) -> Iterator[tuple[str, int]]:
    """A throw-away `egide serve` (one worker: the process itself serves): endpoint and pid."""
    proc = subprocess.Popen([sys.executable, "-m", "egide", "serve", "--config", str(config)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    try:
        for _ in range(300):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.1)
        yield f"http://127.0.0.1:{port}", proc.pid
    finally:
        proc.terminate()
        proc.wait()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--ops", type=int, default=1000)
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument(
        "--on-first", action="store_true", help="start the server with metrics first"
    )
    args = parser.parse_args()
    servers = [("off", "false"), ("on", "true")]
    if args.on_first:
        servers.reverse()
    with tempfile.TemporaryDirectory() as tmp, contextlib.ExitStack() as stack:
        clients = {}
        pids: dict[str, int] = {}
        for name, enabled in servers:
            root = Path(tmp) / name
            root.mkdir()
            port = free_port()
            config = root / "egide.toml"
            config.write_text(
                f'data_dir = "{root / "data"}"\nlisten = "127.0.0.1:{port}"\nworkers = 1\n'
                f"[metrics]\nenabled = {enabled}\n"
                f'[[credentials]]\naccess_key = "{ACCESS}"\nsecret_key = "{SECRET}"\n'
            )
            endpoint, pids[name] = stack.enter_context(serving(config, port))
            clients[name] = boto3.client(
                "s3", endpoint_url=endpoint, region_name="us-east-1", config=CONFIG,
                aws_access_key_id=ACCESS, aws_secret_access_key=SECRET,
            )  # fmt: skip
        measure(clients, pids, args)


def measure(clients: dict[str, Any], pids: dict[str, int], args: Any) -> None:
    def get(s3: Any) -> Callable[[int], object]:
        return lambda i: s3.get_object(Bucket="bench", Key=f"k{i % 100}")["Body"].read()

    def put(s3: Any) -> Callable[[int], object]:
        return lambda i: s3.put_object(Bucket="bench", Key=f"k{i % 100}", Body=BODY)

    for s3 in clients.values():  # warm-up, and the objects the GETs read
        s3.create_bucket(Bucket="bench")
        rate(100, args.threads, put(s3))
        rate(200, args.threads, get(s3))
    runs: dict[tuple[str, str], list[float]] = {}
    cpu: dict[tuple[str, str], list[float]] = {}
    order = list(clients.items())
    for _ in range(args.repeat):
        for name, s3 in order:
            for op, make in (("GET", get), ("PUT", put)):
                before = cpu_seconds(pids[name])
                runs.setdefault((op, name), []).append(rate(args.ops, args.threads, make(s3)))
                used = (cpu_seconds(pids[name]) - before) / args.ops * 1000
                cpu.setdefault((op, name), []).append(used)
        order.reverse()
    for op in ("GET", "PUT"):
        medians = {name: statistics.median(runs[(op, name)]) for name in clients}
        for name, median in medians.items():
            spread = ", ".join(f"{r:.0f}" for r in runs[(op, name)])
            print(f"4 KiB {op}, metrics {name:3}  {median:8.0f} ops/s  (runs: {spread})")
        print(f"4 KiB {op}, metrics on / off  {medians['on'] / medians['off']:.3f}")
        cpus = {name: statistics.median(cpu[(op, name)]) for name in clients}
        for name, median in cpus.items():
            print(f"4 KiB {op}, metrics {name:3}  {median:8.3f} server CPU ms/op")
        print(f"4 KiB {op}, server CPU on / off  {cpus['on'] / cpus['off']:.3f}")


if __name__ == "__main__":
    main()
