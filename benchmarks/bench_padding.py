"""Size padding (docs/decisions/0017-size-padding.md): what it costs in space and time.

    python benchmarks/bench_padding.py [--objects 400] [--small 300] [--large-mib 40] [--repeat 3]

Prints, in one run:
  1. the space overhead computed over two size spreads (100,000 sizes each): a file share
     (log-normal, median 4 KiB, mean ~100 KiB: the shape of file-system surveys) and a
     log-uniform spread from 1 byte to 1 GiB; as padded plaintext over true size, and as
     bytes on the sites (pieces, headers, footers with manifests) padded over unpadded;
  2. the same measured on a store: --objects sizes drawn from the file-share spread, written
     to a padded bucket and to a `padding = false` bucket of one server, the site files
     attributed to each bucket by the bucket id in their headers;
  3. PUT and GET of 4 KiB objects (--small each, 8 concurrent clients) and of one large
     object (--large-mib, median of --repeat), padding on and off, interleaved in the same
     run: the ratios are what to compare (the machine is shared and noisy).
"""

from __future__ import annotations

import argparse
import http.client
import os
import random
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import boto3
from botocore.config import Config

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_foundation import ACCESS, SECRET, free_port, signed_headers, wait_port

from egide.coding.blocks import Layout
from egide.coding.padding import MANIFEST_FLOOR, padded_size, padme
from egide.coding.shardfile import FOOTER_TAIL_SIZE, HEADER_SIZE
from egide.domain import SITE_RECORD_PREFIXES

MiB = 1024 * 1024
K, M, BLOCK = 4, 2, MiB
#: A typical manifest (short key, a few headers), and what the footer adds around it.
MANIFEST = 600
FOOTER = 22 + 12 + 16 + FOOTER_TAIL_SIZE
BUCKETS = {"padded": True, "exact": False}


def file_share(rng: random.Random) -> int:
    return max(0, int(rng.lognormvariate(8.3, 2.6)))  # median e^8.3 ≈ 4 KiB


def log_uniform(rng: random.Random) -> int:
    return int(2 ** rng.uniform(0, 30))


def stored(size: int, pad: bool) -> int:
    """Bytes on all k+m sites for one object (one part) of `size` bytes."""
    plain = padded_size(size) if pad else size
    manifest = padme(max(MANIFEST, MANIFEST_FLOOR)) if pad else MANIFEST
    per_site = HEADER_SIZE + Layout(K, M, BLOCK, plain).shard_data_size() + FOOTER + manifest
    return (K + M) * per_site


def computed(name: str, draw: object, count: int) -> None:
    rng = random.Random(13)
    sizes = [draw(rng) for _ in range(count)]  # type: ignore[operator]
    true = sum(sizes)
    plain = sum(padded_size(s) for s in sizes)
    on, off = sum(stored(s, True) for s in sizes), sum(stored(s, False) for s in sizes)
    median = statistics.median(stored(s, True) / stored(s, False) - 1 for s in sizes)
    print(
        f"  {name:<32} {count:,} objects, {true / MiB:,.0f} MiB: padded plaintext "
        f"+{(plain / true - 1) * 100:.2f} %; on the sites {on / MiB:,.0f} MiB vs "
        f"{off / MiB:,.0f} MiB unpadded: +{(on / off - 1) * 100:.2f} % "
        f"(median object +{median * 100:.1f} %)"
    )


class Server:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.port = free_port()
        (root / "egide.toml").write_text(
            f'data_dir = "{root / "data"}"\nlisten = "127.0.0.1:{self.port}"\n'
            '[[policies]]\nbuckets = ["exact"]\nk = 4\nm = 2\npadding = false\n'
            f'[[credentials]]\naccess_key = "{ACCESS}"\nsecret_key = "{SECRET}"\n'
        )
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "egide", "serve", "--config", str(root / "egide.toml")],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        wait_port(self.port)
        time.sleep(1.0)
        self.s3 = boto3.client(
            "s3", endpoint_url=f"http://127.0.0.1:{self.port}", aws_access_key_id=ACCESS,
            aws_secret_access_key=SECRET, region_name="us-east-1",
            config=Config(signature_version="s3v4", max_pool_connections=16),
        )  # fmt: skip
        for bucket in BUCKETS:
            self.s3.create_bucket(Bucket=bucket)

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(60)

    def bytes_by_bucket(self) -> dict[str, int]:
        """Bytes of shard files and pack segments on all sites, by bucket (header ids)."""
        db = sqlite3.connect(f"file:{self.root / 'data' / 'catalog.sqlite3'}?mode=ro", uri=True)
        names = {bytes(i): n for i, n in db.execute("SELECT id, name FROM buckets")}
        db.close()
        totals = dict.fromkeys(BUCKETS, 0)
        for path in (self.root / "data" / "sites").rglob("*"):
            if not path.is_file() or path.name.startswith((*SITE_RECORD_PREFIXES, "snap-")):
                continue
            if "shards" not in path.parts or path.name.startswith("."):
                continue
            data = path.read_bytes()
            segments = []
            if path.name.startswith("pack-"):
                position = 0
                while position < len(data):
                    length = int.from_bytes(data[position : position + 8], "big")
                    segments.append(data[position + 8 : position + 8 + length])
                    position += 8 + length
            else:
                segments.append(data)
            for segment in segments:
                bucket = names.get(segment[16:32])  # the header: bucket id after 16 bytes
                if bucket in totals:
                    totals[bucket] += len(segment)
        return totals


def put_large(port: int, bucket: str, key: str, size: int, chunk: memoryview) -> float:
    path = f"/{bucket}/{key}"
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
    conn.putrequest("PUT", path, skip_accept_encoding=True)
    for name, value in signed_headers(port, "PUT", path, {"Content-Length": str(size)}).items():
        conn.putheader(name, value)
    start = time.perf_counter()
    conn.endheaders()
    sent = 0
    while sent < size:
        part = chunk[: min(len(chunk), size - sent)]
        conn.send(part)
        sent += len(part)
    response = conn.getresponse()
    response.read()
    elapsed = time.perf_counter() - start
    assert response.status == 200, response.status
    return size / elapsed / MiB


def get_large(port: int, bucket: str, key: str, size: int) -> float:
    path = f"/{bucket}/{key}"
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
    start = time.perf_counter()
    conn.request("GET", path, headers=signed_headers(port, "GET", path, {}))
    response = conn.getresponse()
    buffer = bytearray(4 * MiB)
    received = 0
    while n := response.readinto(buffer):
        received += n
    elapsed = time.perf_counter() - start
    assert response.status == 200 and received == size, (response.status, received)
    return size / elapsed / MiB


def in_turn(round_: int) -> list[str]:
    """The buckets in turn, the first changing every round (no order bias)."""
    names = list(BUCKETS)
    return names if round_ % 2 == 0 else names[::-1]


def small_ops(server: Server, bucket: str, count: int, body: bytes) -> tuple[float, float]:
    """(PUT, GET) operations per second with 8 concurrent clients."""
    keys = [f"small/{i}" for i in range(count)]
    with ThreadPoolExecutor(8) as pool:
        start = time.perf_counter()
        list(pool.map(lambda k: server.s3.put_object(Bucket=bucket, Key=k, Body=body), keys))
        put = count / (time.perf_counter() - start)
        start = time.perf_counter()
        list(pool.map(lambda k: server.s3.get_object(Bucket=bucket, Key=k)["Body"].read(), keys))
        get = count / (time.perf_counter() - start)
    return put, get


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--objects", type=int, default=400)
    parser.add_argument("--small", type=int, default=300)
    parser.add_argument("--large-mib", type=int, default=40)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    print("1. space overhead, computed (4+2, 1 MiB blocks, 600-byte manifests)")
    computed("file share (log-normal)", file_share, 100_000)
    computed("log-uniform 1 B - 1 GiB", log_uniform, 100_000)

    with tempfile.TemporaryDirectory(prefix="bench-padding-") as tmp:
        server = Server(Path(tmp))
        try:
            rng = random.Random(17)
            sizes = [min(file_share(rng), 64 * MiB) for _ in range(args.objects)]
            for n, size in enumerate(sizes):
                body = os.urandom(size)
                for bucket in BUCKETS:
                    server.s3.put_object(Bucket=bucket, Key=f"spread/{n}", Body=body)
            totals = server.bytes_by_bucket()
            true = sum(sizes)
            print(f"2. space overhead, measured: {len(sizes)} objects, {true / MiB:,.1f} MiB "
                  f"(median {statistics.median(sizes):,.0f} B), on the six sites:")  # fmt: skip
            for bucket, total in totals.items():
                print(f"  {bucket:<7} {total / MiB:8,.1f} MiB = {total / true:.3f} × the data")
            print(f"  padded / exact: {totals['padded'] / totals['exact']:.3f}")

            print("3. time, padding on vs off (same server, interleaved)")
            body = os.urandom(4096)
            small: dict[str, list[tuple[float, float]]] = {b: [] for b in BUCKETS}
            for round_ in range(2):
                for bucket in in_turn(round_):
                    small[bucket].append(small_ops(server, bucket, args.small, body))
            for bucket in BUCKETS:
                puts = statistics.median(p for p, _ in small[bucket])
                gets = statistics.median(g for _, g in small[bucket])
                print(f"  4 KiB {bucket:<7} PUT {puts:6.0f} op/s   GET {gets:6.0f} op/s")
            ratio = [statistics.median(x[i] for x in small["padded"])
                     / statistics.median(x[i] for x in small["exact"]) for i in (0, 1)]  # fmt: skip
            print(f"  4 KiB padded/exact: PUT {ratio[0]:.2f}, GET {ratio[1]:.2f}")
            size = args.large_mib * 1_000_000  # not a class: 40 MB pads by 2.2 %
            chunk = memoryview(os.urandom(4 * MiB))
            large: dict[str, list[tuple[float, float]]] = {b: [] for b in BUCKETS}
            for round_ in range(args.repeat):
                for bucket in in_turn(round_):
                    put = put_large(server.port, bucket, "large", size, chunk)
                    get = get_large(server.port, bucket, "large", size)
                    large[bucket].append((put, get))
            for bucket in BUCKETS:
                puts = statistics.median(p for p, _ in large[bucket])
                gets = statistics.median(g for _, g in large[bucket])
                label = f"{size / 1e6:.0f} MB {bucket}"
                print(f"  {label:<13} PUT {puts:6.0f} MiB/s   GET {gets:6.0f} MiB/s")
            ratio = [statistics.median(x[i] for x in large["padded"])
                     / statistics.median(x[i] for x in large["exact"]) for i in (0, 1)]  # fmt: skip
            print(f"  {size / 1e6:.0f} MB padded/exact: PUT {ratio[0]:.2f}, GET {ratio[1]:.2f}")
        finally:
            server.stop()


if __name__ == "__main__":
    main()
