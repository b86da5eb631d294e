"""Foundation benchmark: the data path against this machine's physical limits, in one run.

    python benchmarks/bench_foundation.py [--large-mib 1024] [--memory-mib 4096] [--seconds 8]

Prints, measured in the same run (ratios are what to compare: the machines are shared):
  1. baselines: AES-256-GCM + zfec 4+2 in-process on the large size, 1 and 2 threads; an
     fsync'd write of the same shard bytes (k+m files) to the same disk;
  2. PUT and GET of one large object through the S3 API (one stream), as ratios to those;
  3. 4 KiB objects: PUT and GET operations per second with 16 concurrent connections, p50 and
     p99 latency, measured with wrk on presigned URLs, and wrk's own ceiling on this machine;
  4. peak memory of all server processes during a large upload and download: PSS (each
     shared page counted once across the processes) and, for reference, summed RSS.
Throughputs are the median of --repeat runs: this machine is shared and noisy.
Needs `wrk` (Debian package wrk) for part 3; parts 1, 2 and 4 run without it.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import http.client
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import boto3
import psutil
import zfec
from botocore.auth import S3SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.config import Config
from botocore.credentials import Credentials
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from egide.engine.workers import tune_allocator

MiB = 1024 * 1024
ACCESS, SECRET = "EGBENCHACCESSKEY0001", "egide-benchmark-secret-0001"
BUCKET = "bench"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_port(port: int) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listens on {port}")


# -- 1. baselines ---------------------------------------------------------------------------


def encode_blocks(count: int, block: bytes) -> None:
    cipher = AESGCM(os.urandom(32))
    encoder = zfec.Encoder(4, 6)
    piece = (len(block) + 16) // 4
    for i in range(count):
        sealed = cipher.encrypt(i.to_bytes(12, "big"), block, b"aad")
        data = [sealed[j * piece : (j + 1) * piece] for j in range(4)]
        encoder.encode(data, (4, 5))


def baseline_encode(size: int, threads: int) -> float:
    block = os.urandom(MiB)
    blocks = size // MiB
    start = time.perf_counter()
    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(encode_blocks, [blocks // threads] * threads, [block] * threads))
    return size / (time.perf_counter() - start)


def baseline_disk(size: int, directory: Path) -> float:
    """k+m files holding 1.5x the object, written in 256 KiB pieces and fsync'd at the end."""
    piece = os.urandom(256 * 1024 + 4)
    per_file = size // 4
    start = time.perf_counter()

    def write(i: int) -> None:
        path = directory / f"baseline-{i}"
        with open(path, "wb") as f:
            for _ in range(per_file // (256 * 1024)):
                f.write(piece)
            f.flush()
            os.fsync(f.fileno())
        path.unlink()

    with ThreadPoolExecutor(6) as pool:
        list(pool.map(write, range(6)))
    return size / (time.perf_counter() - start)


# -- the server -----------------------------------------------------------------------------


class Egide:
    def __init__(self, root: Path, workers: int | None) -> None:
        self.port = free_port()
        config = root / "egide.toml"
        lines = [f'data_dir = "{root / "data"}"', f'listen = "127.0.0.1:{self.port}"']
        if workers:
            lines.append(f"workers = {workers}")
        config.write_text(
            "\n".join(lines)
            + f'\n[[credentials]]\naccess_key = "{ACCESS}"\nsecret_key = "{SECRET}"\n'
        )
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "egide", "serve", "--config", str(config)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_port(self.port)
        time.sleep(1.0)  # let every worker start
        self.s3 = boto3.client(
            "s3",
            endpoint_url=f"http://127.0.0.1:{self.port}",
            aws_access_key_id=ACCESS,
            aws_secret_access_key=SECRET,
            region_name="us-east-1",
            config=Config(signature_version="s3v4"),
        )
        self.s3.create_bucket(Bucket=BUCKET)

    def memory(self) -> tuple[int, int]:
        """(PSS, RSS) summed over the supervisor and its workers."""
        parent = psutil.Process(self.proc.pid)
        pss = rss = 0
        for proc in [parent, *parent.children(recursive=True)]:
            with contextlib.suppress(psutil.NoSuchProcess):
                info = proc.memory_full_info()
                pss += info.pss
                rss += info.rss
        return pss, rss

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(60)


class UnsignedPayloadAuth(S3SigV4Auth):
    """SigV4 with UNSIGNED-PAYLOAD, as SDKs send over HTTPS: the client hashes nothing."""

    def _should_sha256_sign_payload(self, request: AWSRequest) -> bool:
        return False


def signed_headers(port: int, method: str, path: str, extra: dict[str, str]) -> dict[str, str]:
    request = AWSRequest(method=method, url=f"http://127.0.0.1:{port}{path}", headers=extra)
    UnsignedPayloadAuth(Credentials(ACCESS, SECRET), "s3", "us-east-1").add_auth(request)
    return dict(request.headers.items())


def put_large(server: Egide, key: str, size: int, chunk: memoryview) -> float:
    path = f"/{BUCKET}/{key}"
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=600)
    conn.putrequest("PUT", path, skip_accept_encoding=True)
    for name, value in signed_headers(
        server.port, "PUT", path, {"Content-Length": str(size)}
    ).items():
        conn.putheader(name, value)
    start = time.perf_counter()
    conn.endheaders()
    sent = 0
    while sent < size:
        part = chunk[: min(len(chunk), size - sent)]
        conn.send(part)
        sent += len(part)
    response = conn.getresponse()
    body = response.read()
    elapsed = time.perf_counter() - start
    if response.status != 200:
        raise RuntimeError(f"PUT failed: {response.status} {body[:300]!r}")
    return size / elapsed


def get_large(server: Egide, key: str, size: int) -> float:
    path = f"/{BUCKET}/{key}"
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=600)
    start = time.perf_counter()
    conn.request("GET", path, headers=signed_headers(server.port, "GET", path, {}))
    response = conn.getresponse()
    buffer = bytearray(4 * MiB)
    received = 0
    while n := response.readinto(buffer):
        received += n
    elapsed = time.perf_counter() - start
    if response.status != 200 or received != size:
        raise RuntimeError(f"GET failed: {response.status}, {received} of {size} bytes")
    return size / elapsed


# -- 3. small objects with wrk --------------------------------------------------------------

WRK_SCRIPT = """
local paths = {}
for line in io.lines("%(urls)s") do table.insert(paths, (line:gsub("^http://[^/]+", ""))) end
local body = string.rep("x", 4096)
local n = 0
setup = function(thread) thread:set("offset", n * 100000); n = n + 1 end
local i = 0
request = function()
  i = i + 1
  local path = paths[(offset + i) %% #paths + 1]
  if "%(method)s" == "PUT" then
    return wrk.format("PUT", path, {["Content-Length"] = "4096"}, body)
  end
  return wrk.format("GET", path)
end
"""


def run_wrk(
    port: int, urls: list[str], method: str, seconds: int, workdir: Path
) -> dict[str, float]:
    url_file = workdir / f"{method}.urls"
    url_file.write_text("\n".join(urls))
    script = workdir / f"{method}.lua"
    script.write_text(WRK_SCRIPT % {"urls": url_file, "method": method})
    return wrk(script, port, seconds)


def wrk(script: Path, port: int, seconds: int) -> dict[str, float]:
    """wrk with 2 threads and 16 connections: rate, p50, p99 and errors."""
    out = subprocess.run(
        ["wrk", "-t2", "-c16", f"-d{seconds}s", "--latency", "-s", str(script),
         f"http://127.0.0.1:{port}"],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    return parse_wrk(out)


def parse_wrk(out: str) -> dict[str, float]:
    def latency(label: str) -> float:
        match = re.search(rf"{label}\s+([\d.]+)(us|ms|s)", out)
        assert match, out
        return float(match.group(1)) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[match.group(2)]

    rate = re.search(r"Requests/sec:\s+([\d.]+)", out)
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    assert rate, out
    return {
        "rate": float(rate.group(1)),
        "p50": latency("50%"),
        "p99": latency("99%"),
        "errors": float(errors.group(1)) if errors else 0.0,
    }


class _Fixed(asyncio.Protocol):
    """A trivial HTTP responder: what wrk alone can drive on this machine."""

    RESPONSE = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        for _ in range(data.count(b"\r\n\r\n")):
            self.transport.write(self.RESPONSE)  # type: ignore[attr-defined]


def wrk_ceiling(seconds: int, workdir: Path) -> dict[str, float]:
    import uvloop

    port = free_port()
    ready = threading.Event()

    def serve() -> None:
        loop = uvloop.new_event_loop()
        server = loop.run_until_complete(loop.create_server(_Fixed, "127.0.0.1", port))
        ready.set()
        loop.run_until_complete(asyncio.sleep(seconds + 3))
        server.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    ready.wait()
    script = workdir / "ceiling.lua"
    script.write_text('request = function() return wrk.format("GET", "/") end\n')
    return wrk(script, port, seconds)


# -- 4. memory --------------------------------------------------------------------------------


def peak_memory_during(server: Egide, action: Callable[[], float]) -> tuple[int, int, float]:
    """Peak PSS and RSS of the server while `action` runs, and what `action` returned."""
    peak_pss = peak_rss = 0
    done = threading.Event()

    def sample() -> None:
        nonlocal peak_pss, peak_rss
        while not done.is_set():
            pss, rss = server.memory()
            peak_pss, peak_rss = max(peak_pss, pss), max(peak_rss, rss)
            time.sleep(0.05)

    sampler = threading.Thread(target=sample)
    sampler.start()
    try:
        rate = action()
    finally:
        done.set()
        sampler.join()
    return peak_pss, peak_rss, rate


def median_of(repeat: int, action: Callable[[], float]) -> float:
    return statistics.median(action() for _ in range(repeat))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--large-mib", type=int, default=1024)
    parser.add_argument("--memory-mib", type=int, default=4096)
    parser.add_argument("--seconds", type=int, default=8)
    parser.add_argument("--workers", type=int, default=None, help="server processes")
    parser.add_argument("--repeat", type=int, default=3, help="runs per throughput figure")
    args = parser.parse_args()
    large = args.large_mib * MiB
    root = Path(tempfile.mkdtemp(prefix="egide-bench-", dir=Path.cwd()))
    print(f"machine: {os.cpu_count()} cores, {psutil.virtual_memory().total / 2**30:.0f} GiB")
    tune_allocator()  # the same allocator settings as the server, for a fair baseline
    try:
        enc1 = median_of(args.repeat, lambda: baseline_encode(large, 1))
        enc2 = median_of(args.repeat, lambda: baseline_encode(large, 2))
        disk = median_of(args.repeat, lambda: baseline_disk(large, root))
        print(f"baseline AES-256-GCM + zfec 4+2, 1 thread    {enc1 / 1e6:8.0f} MB/s")
        print(f"baseline AES-256-GCM + zfec 4+2, 2 threads   {enc2 / 1e6:8.0f} MB/s")
        print(f"baseline fsync'd write of the 4+2 shards     {disk / 1e6:8.0f} MB/s (object bytes)")

        server = Egide(root, args.workers)
        chunk = memoryview(os.urandom(64 * MiB))
        put = median_of(args.repeat, lambda: put_large(server, "large", large, chunk))
        get = median_of(args.repeat, lambda: get_large(server, "large", large))
        for name, rate in (("PUT", put), ("GET", get)):
            print(
                f"{name} {args.large_mib} MiB, 1 stream                 {rate / 1e6:8.0f} MB/s"
                f"   = {rate / enc1:.2f} x encode(1 thread), {rate / enc2:.2f} x encode(2),"
                f" {rate / disk:.2f} x disk"
            )

        if shutil.which("wrk"):
            ceiling = wrk_ceiling(args.seconds, root)
            print(f"wrk ceiling (trivial server), 16 connections {ceiling['rate']:8.0f} req/s")
            keys = [f"small/{i:06d}" for i in range(20000)]
            s3 = server.s3
            put_urls = [
                s3.generate_presigned_url("put_object", Params={"Bucket": BUCKET, "Key": k})
                for k in keys
            ]
            get_urls = [
                s3.generate_presigned_url("get_object", Params={"Bucket": BUCKET, "Key": k})
                for k in keys[:2000]
            ]
            for key in keys[:2000]:  # every GET finds its object
                s3.put_object(Bucket=BUCKET, Key=key, Body=b"x" * 4096)
            for method, urls in (("PUT", put_urls), ("GET", get_urls)):
                result = run_wrk(server.port, urls, method, args.seconds, root)
                print(
                    f"4 KiB {method}, 16 connections               {result['rate']:8.0f} op/s"
                    f"   p50 {result['p50']:.1f} ms, p99 {result['p99']:.1f} ms,"
                    f" {result['errors']:.0f} errors"
                )
        else:
            print("4 KiB objects: skipped (install wrk: apt-get install wrk)")

        big = args.memory_mib * MiB
        idle_pss, idle_rss = server.memory()
        print(
            f"server memory idle, all processes    PSS {idle_pss / MiB:5.0f} MiB"
            f"   (summed RSS {idle_rss / MiB:.0f} MiB)"
        )
        for name, action in (
            ("PUT", lambda: put_large(server, "huge", big, chunk)),
            ("GET", lambda: get_large(server, "huge", big)),
        ):
            pss, rss, rate = peak_memory_during(server, action)
            print(
                f"server memory peak, {args.memory_mib} MiB {name}   PSS {pss / MiB:5.0f} MiB"
                f"   (summed RSS {rss / MiB:.0f} MiB; {rate / 1e6:.0f} MB/s)"
            )
        server.stop()
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
