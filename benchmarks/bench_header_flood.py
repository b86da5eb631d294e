"""Header flood: memory of the server processes while clients send unfinished huge headers.

    python benchmarks/bench_header_flood.py [--clients 20] [--mib 50] [--workers 2]

Starts a throw-away `egide serve`, then `--clients` clients each send a request head whose
one header line never ends, `--mib` MiB of it, as fast as the server reads. Prints the RSS of
each server process before and after, and how many bytes the server took from each client
before closing the connection (issue 13: 95 MB → 727/525 MB before heads were bounded).
"""

from __future__ import annotations

import argparse
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import psutil


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def rss_mib(proc: subprocess.Popen[bytes]) -> list[int]:
    parent = psutil.Process(proc.pid)
    return [round(p.memory_info().rss / 2**20) for p in [parent, *parent.children(True)]]


def flood(port: int, size: int, sent: list[int]) -> None:
    chunk = b"a" * 65536
    total = 0
    with socket.create_connection(("127.0.0.1", port)) as sock:
        try:
            sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: ")
            while total < size:
                sock.sendall(chunk)
                total += len(chunk)
        except OSError:
            pass
    sent.append(total)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--mib", type=int, default=50)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as root:
        port = free_port()
        config = Path(root) / "egide.toml"
        config.write_text(
            f'data_dir = "{root}/data"\nlisten = "127.0.0.1:{port}"\nworkers = {args.workers}\n'
        )
        proc = subprocess.Popen(
            [sys.executable, "-m", "egide", "serve", "--config", str(config)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        try:
            for _ in range(600):
                try:
                    socket.create_connection(("127.0.0.1", port)).close()
                    break
                except OSError:
                    time.sleep(0.1)
            time.sleep(2)
            print(f"RSS before (MiB; supervisor, workers): {rss_mib(proc)}")
            sent: list[int] = []
            threads = [
                threading.Thread(target=flood, args=(port, args.mib * 2**20, sent))
                for _ in range(args.clients)
            ]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            print(f"RSS after  (MiB; supervisor, workers): {rss_mib(proc)}")
            print(f"bytes sent per client before the server closed: max {max(sent):,}")
        finally:
            proc.terminate()
            proc.wait()


if __name__ == "__main__":
    main()
