"""Multipart benchmark: parallel part uploads, parallel ranged GETs, and memory on huge copies.

    python benchmarks/bench_multipart.py [--size-mib 2048] [--part-mib 64] [--streams 4]
                                         [--copy-mib 6144]

Prints, measured in the same run (compare ratios: the machines are shared):
  1. the baseline: AES-256-GCM + zfec 4+2 in-process, 1 and 2 threads;
  2. a multipart PUT of --size-mib with --streams part uploads in flight, as ratios to it;
  3. a GET of the same object as --streams parallel ranged GETs, as ratios to it;
  4. peak server memory (PSS, all processes) during a --copy-mib multipart upload and its copy
     by UploadPartCopy (parts of up to 5 GiB): streamed, it stays near the idle figure.
Bodies are sent with UNSIGNED-PAYLOAD over raw connections, so the client hashes nothing.
"""

from __future__ import annotations

import argparse
import http.client
import os
import re
import shutil
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import psutil
from bench_foundation import (
    BUCKET,
    Egide,
    baseline_encode,
    median_of,
    peak_memory_during,
    signed_headers,
)

from egide.engine.workers import tune_allocator

MiB = 1024 * 1024


def request(
    server: Egide, method: str, path: str, body: memoryview | None = None,
    headers: dict[str, str] | None = None,
) -> tuple[int, bytes, dict[str, str]]:  # fmt: skip
    extra = dict(headers or {})
    if body is not None:
        extra["Content-Length"] = str(len(body))
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=3600)
    conn.putrequest(method, path, skip_accept_encoding=True)
    for name, value in signed_headers(server.port, method, path, extra).items():
        conn.putheader(name, value)
    conn.endheaders()
    if body is not None:
        for start in range(0, len(body), 4 * MiB):
            conn.send(body[start : start + 4 * MiB])
    response = conn.getresponse()
    data = response.read()
    conn.close()
    if response.status >= 300:
        raise RuntimeError(f"{method} {path}: {response.status} {data[:300]!r}")
    return response.status, data, dict(response.getheaders())


def create_upload(server: Egide, key: str) -> str:
    _, body, _ = request(server, "POST", f"/{BUCKET}/{key}?uploads")
    match = re.search(rb"<UploadId>([0-9a-f]+)</UploadId>", body)
    assert match is not None
    return match.group(1).decode()


def complete(server: Egide, key: str, upload_id: str, etags: list[str]) -> None:
    parts = "".join(
        f"<Part><PartNumber>{n}</PartNumber><ETag>{e}</ETag></Part>"
        for n, e in enumerate(etags, start=1)
    )
    body = memoryview(f"<CompleteMultipartUpload>{parts}</CompleteMultipartUpload>".encode())
    request(server, "POST", f"/{BUCKET}/{key}?uploadId={upload_id}", body)


def multipart_put(server: Egide, key: str, size: int, part: int, streams: int) -> float:
    data = memoryview(os.urandom(part))
    count = size // part
    start = time.perf_counter()
    upload_id = create_upload(server, key)

    def send(number: int) -> str:
        path = f"/{BUCKET}/{key}?partNumber={number}&uploadId={upload_id}"
        return request(server, "PUT", path, data)[2]["etag"]

    with ThreadPoolExecutor(streams) as pool:
        etags = list(pool.map(send, range(1, count + 1)))
    complete(server, key, upload_id, etags)
    return size / (time.perf_counter() - start)


def ranged_get(server: Egide, key: str, size: int, streams: int) -> float:
    span = size // streams

    def fetch(index: int) -> int:
        path = f"/{BUCKET}/{key}"
        last = size - 1 if index == streams - 1 else (index + 1) * span - 1
        headers = {"Range": f"bytes={index * span}-{last}"}
        conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=3600)
        conn.request("GET", path, headers=signed_headers(server.port, "GET", path, headers))
        response = conn.getresponse()
        buffer = bytearray(4 * MiB)
        received = 0
        while n := response.readinto(buffer):
            received += n
        conn.close()
        return received

    start = time.perf_counter()
    with ThreadPoolExecutor(streams) as pool:
        received = sum(pool.map(fetch, range(streams)))
    if received != size:
        raise RuntimeError(f"ranged GETs returned {received} of {size} bytes")
    return size / (time.perf_counter() - start)


def part_copy(server: Egide, source: str, key: str, size: int) -> float:
    start = time.perf_counter()
    upload_id = create_upload(server, key)
    limit = 5 * 1024 * MiB
    etags = []
    for number, first in enumerate(range(0, size, limit), start=1):
        last = min(first + limit, size) - 1
        headers = {
            "x-amz-copy-source": f"/{BUCKET}/{source}",
            "x-amz-copy-source-range": f"bytes={first}-{last}",
        }
        path = f"/{BUCKET}/{key}?partNumber={number}&uploadId={upload_id}"
        _, body, _ = request(server, "PUT", path, headers=headers)
        match = re.search(rb"<ETag>([^<]+)</ETag>", body)
        assert match is not None
        etags.append(match.group(1).decode().replace("&quot;", '"'))
    complete(server, key, upload_id, etags)
    return size / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--size-mib", type=int, default=2048)
    parser.add_argument("--part-mib", type=int, default=64)
    parser.add_argument("--streams", type=int, default=4)
    parser.add_argument("--copy-mib", type=int, default=6144)
    parser.add_argument("--repeat", type=int, default=3, help="runs per throughput figure")
    args = parser.parse_args()
    size, part = args.size_mib * MiB, args.part_mib * MiB
    root = Path(tempfile.mkdtemp(prefix="egide-bench-", dir=Path.cwd()))
    print(f"machine: {os.cpu_count()} cores, {psutil.virtual_memory().total / 2**30:.0f} GiB")
    tune_allocator()
    try:
        enc1 = median_of(args.repeat, lambda: baseline_encode(1024 * MiB, 1))
        enc2 = median_of(args.repeat, lambda: baseline_encode(1024 * MiB, 2))
        print(f"baseline AES-256-GCM + zfec 4+2, 1 thread    {enc1 / 1e6:8.0f} MB/s")
        print(f"baseline AES-256-GCM + zfec 4+2, 2 threads   {enc2 / 1e6:8.0f} MB/s")
        server = Egide(root, None)
        put = median_of(args.repeat, lambda: multipart_put(server, "mp", size, part, args.streams))
        get = median_of(args.repeat, lambda: ranged_get(server, "mp", size, args.streams))
        for name, rate in (("multipart PUT", put), ("ranged GET   ", get)):
            print(
                f"{name} {args.size_mib} MiB, {args.streams} streams   {rate / 1e6:8.0f} MB/s"
                f"   = {rate / enc1:.2f} x encode(1 thread), {rate / enc2:.2f} x encode(2)"
            )
        idle, _ = server.memory()
        print(f"server memory idle, all processes    PSS {idle / MiB:5.0f} MiB")
        huge = args.copy_mib * MiB
        pss, _, rate = peak_memory_during(
            server, lambda: multipart_put(server, "huge", huge, part, args.streams)
        )
        print(
            f"server memory peak, {args.copy_mib} MiB multipart PUT   PSS {pss / MiB:5.0f} MiB"
            f"   ({rate / 1e6:.0f} MB/s)"
        )
        pss, _, rate = peak_memory_during(server, lambda: part_copy(server, "huge", "copy", huge))
        print(
            f"server memory peak, {args.copy_mib} MiB UploadPartCopy  PSS {pss / MiB:5.0f} MiB"
            f"   ({rate / 1e6:.0f} MB/s)"
        )
        server.stop()
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
