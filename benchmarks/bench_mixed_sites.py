"""PUT/GET of a large object with two of the six sites on local S3 servers, against all-local.

    python benchmarks/bench_mixed_sites.py [--size-mib 256] [--repeat 3]

Starts SeaweedFS and moto (as the tests do) and two Égide servers (code 4+2): one with six
local-directory sites, one with four local directories plus a SeaweedFS and a moto bucket.
Prints, in the same run, the median PUT and GET throughput of a --size-mib object on each, and
the mixed one as a ratio to all-local (the machine is shared: compare ratios, not absolutes).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import boto3
from bench_foundation import ACCESS, BUCKET, SECRET, free_port, get_large, put_large, wait_port
from botocore.config import Config
from tests.providers import running_moto, running_seaweedfs

MiB = 1024 * 1024


class Server:
    """An Égide server from a given [[sites]] configuration (the bench_foundation helpers
    speak to it through `port`)."""

    def __init__(self, root: Path, sites: str) -> None:
        root.mkdir(parents=True)
        self.port = free_port()
        config = root / "egide.toml"
        config.write_text(
            f'data_dir = "{root / "data"}"\nlisten = "127.0.0.1:{self.port}"\n'
            f"[code]\nk = 4\nm = 2\n{sites}"
            f'[[credentials]]\naccess_key = "{ACCESS}"\nsecret_key = "{SECRET}"\n'
        )
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "egide", "serve", "--config", str(config)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_port(self.port)
        time.sleep(1.0)
        boto3.client(
            "s3", endpoint_url=f"http://127.0.0.1:{self.port}", aws_access_key_id=ACCESS,
            aws_secret_access_key=SECRET, region_name="us-east-1",
            config=Config(signature_version="s3v4"),
        ).create_bucket(Bucket=BUCKET)  # fmt: skip

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(60)


def _local(root: Path, count: int) -> str:
    return "".join(
        f'[[sites]]\nname = "disk{i}"\npath = "{root / f"disk{i}"}"\n' for i in range(count)
    )


def measure(server: Server, size: int, repeat: int) -> tuple[float, float]:
    chunk = memoryview(os.urandom(4 * MiB))
    puts, gets = [], []
    for i in range(repeat):
        puts.append(put_large(server, f"big-{i}", size, chunk))  # type: ignore[arg-type]
        gets.append(get_large(server, f"big-{i}", size))  # type: ignore[arg-type]
    # put_large/get_large answer bytes per second.
    return sorted(puts)[len(puts) // 2] / 1e6, sorted(gets)[len(gets) // 2] / 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--size-mib", type=int, default=256)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    size = args.size_mib * MiB
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        local = Server(root / "local", _local(root / "local-disks", 6))
        try:
            local_put, local_get = measure(local, size, args.repeat)
        finally:
            local.stop()
        with (
            running_seaweedfs(root / "weed") as weed,
            running_moto(root / "moto") as moto,
        ):
            sites = _local(root / "mixed-disks", 4)
            sites += weed.site_toml("seaweedfs", weed.new_bucket("bench"), "egide/")
            sites += moto.site_toml("moto", moto.new_bucket("bench"), "")
            mixed = Server(root / "mixed", sites)
            try:
                mixed_put, mixed_get = measure(mixed, size, args.repeat)
            finally:
                mixed.stop()
    print(f"{args.size_mib} MiB object, code 4+2, median of {args.repeat}")
    print(f"  six local sites          PUT {local_put:7.1f} MB/s   GET {local_get:7.1f} MB/s")
    print(
        f"  4 local + SeaweedFS+moto PUT {mixed_put:7.1f} MB/s ({mixed_put / local_put:.2f}x)"
        f"   GET {mixed_get:7.1f} MB/s ({mixed_get / local_get:.2f}x)"
    )


if __name__ == "__main__":
    main()
