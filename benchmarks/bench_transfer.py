"""`egide export` and `egide import` throughput against a plain copy of the same bytes.

    python benchmarks/bench_transfer.py [--mib 256] [--objects 8] [--repeat 3]

A real `egide serve` (six local sites on this disk, 4+2) gets --objects objects totalling --mib
MiB through S3. Then, --repeat times, median printed:
  * export: `egide export BUCKET DIR` to a new directory (read k shards per block, decrypt,
    write each file and fsync it, SHA-256 and MD5 of every byte), then its verification (every
    file read again and hashed);
  * import: `egide import DIR BUCKET` of that directory into a new bucket (encrypt, erasure
    code, k+m fsync'd shard files per object, MD5 + SHA-256 checked before commit), then its
    verification (a catalog look-up per object);
  * copy: the exported files copied to a new directory with an fsync per file (what `cp` and
    `sync` would do): the disk's own cost for the same bytes.
The MB/s of export and import are the commands' own (`--json`: the copy phase of the job, without
process start-up, the first listing or the verification, which are timed apart). MB = 10^6 B.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import boto3

MiB = 1024 * 1024
ACCESS, SECRET = "EGBENCHACCESSKEY0001", "egide-benchmark-secret-0001"
BUCKET = "bench"


def start_server(root: Path) -> tuple[subprocess.Popen[bytes], Path, int]:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = int(sock.getsockname()[1])
    config = root / "egide.toml"
    config.write_text(
        f'data_dir = "{root / "data"}"\nlisten = "127.0.0.1:{port}"\n'
        f'[[credentials]]\naccess_key = "{ACCESS}"\nsecret_key = "{SECRET}"\n'
    )
    log = (root / "server.log").open("ab")
    proc = subprocess.Popen([sys.executable, "-m", "egide", "serve", "--config", str(config)],
                            stdout=log, stderr=subprocess.STDOUT)  # fmt: skip
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return proc, config, port
        except OSError:
            time.sleep(0.05)
    raise RuntimeError("egide did not start")


def egide(config: Path, *args: str) -> dict[str, Any]:
    started = time.monotonic()
    done = subprocess.run([sys.executable, "-m", "egide", *args, "--json", "--config",
                           str(config)], capture_output=True, text=True)  # fmt: skip
    if done.returncode != 0:
        raise RuntimeError(done.stdout + done.stderr)
    result: dict[str, Any] = json.loads(done.stdout)
    result["wall"] = time.monotonic() - started
    return result


def plain_copy(source: Path, target: Path) -> float:
    """Seconds to copy every file under `source` to `target`, fsync'ing each."""
    started = time.monotonic()
    for path in sorted(p for p in source.rglob("*") if p.is_file()):
        dest = target / path.relative_to(source)
        dest.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "rb") as src, open(dest, "wb") as out:
            shutil.copyfileobj(src, out, 4 * MiB)
            out.flush()
            os.fsync(out.fileno())
    return time.monotonic() - started


def median(values: list[float]) -> float:
    return statistics.median(values)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--mib", type=int, default=256)
    parser.add_argument("--objects", type=int, default=8)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    size = args.mib * MiB // args.objects
    total = size * args.objects
    with tempfile.TemporaryDirectory(prefix="egide-bench-transfer-", dir=".") as tmp:
        root = Path(tmp)
        proc, config, port = start_server(root)
        try:
            s3 = boto3.client(
                "s3", endpoint_url=f"http://127.0.0.1:{port}", region_name="us-east-1",
                aws_access_key_id=ACCESS, aws_secret_access_key=SECRET,
            )  # fmt: skip
            s3.create_bucket(Bucket=BUCKET)
            for i in range(args.objects):
                s3.put_object(Bucket=BUCKET, Key=f"data/object-{i:03d}.bin",
                              Body=os.urandom(size))  # fmt: skip
            export_rates, import_rates, copy_rates = [], [], []
            export_verify, import_verify = [], []
            for run in range(args.repeat):
                out = root / f"export-{run}"
                done = egide(config, "export", BUCKET, str(out))
                export_rates.append(done["mb_per_s"])
                export_verify.append(done["seconds"] - done["copy_seconds"])
                done = egide(config, "import", str(out), f"back-{run}")
                import_rates.append(done["mb_per_s"])
                import_verify.append(done["seconds"] - done["copy_seconds"])
                copy_rates.append(total / 1e6 / plain_copy(out / "objects", root / f"copy-{run}"))
                shutil.rmtree(root / f"copy-{run}")
                shutil.rmtree(out)
        finally:
            proc.terminate()
            proc.wait()

    def line(name: str, rates: list[float], note: str = "") -> None:
        ratio = median(rates) / median(copy_rates)
        print(f"  {name:<38} {median(rates):7.1f} MB/s  {ratio:5.2f}x plain copy {note}")

    print(f"{args.objects} objects of {size / MiB:.0f} MiB ({total / MiB:.0f} MiB), "
          f"median of {args.repeat} runs, one disk, 4+2 over six local sites")  # fmt: skip
    print(f"  {'plain copy (read, write, fsync per file)':<38} {median(copy_rates):7.1f} MB/s")
    line("egide export BUCKET DIR", export_rates)
    line("egide import DIR BUCKET", import_rates)
    print(f"  count + verification, beside the copy: export {median(export_verify):.2f} s, "
          f"import {median(import_verify):.2f} s")  # fmt: skip


if __name__ == "__main__":
    main()
