"""SIGKILL amid a stream of PUTs loses no acknowledged object and shows no partial one."""

from __future__ import annotations

import hashlib
import signal
import threading
import time
from typing import Any

import pytest
from botocore.exceptions import BotoCoreError, ClientError
from tests.conftest import ServerFactory

MiB = 1024 * 1024


def body_for(key: str) -> bytes:
    """Deterministic content per key, so any visible object can be checked whole."""
    seed = hashlib.sha256(key.encode()).digest()
    size = (int.from_bytes(seed[:2], "big") % 3) * MiB + int.from_bytes(seed[2:4], "big")
    return (seed * (size // 32 + 1))[:size]


@pytest.mark.timeout(180)
def test_sigkill_during_puts(make_server: ServerFactory) -> None:
    server = make_server()
    s3 = server.client(retries={"max_attempts": 1}, connect_timeout=2, read_timeout=10)
    s3.create_bucket(Bucket="crash")
    acknowledged: list[str] = []
    stop = threading.Event()

    def writer(worker: int) -> None:
        client = server.client(retries={"max_attempts": 1}, connect_timeout=2, read_timeout=10)
        n = 0
        while not stop.is_set():
            key = f"w{worker}/obj{n:05d}"
            try:
                client.put_object(Bucket="crash", Key=key, Body=body_for(key))
            except (BotoCoreError, ClientError):
                return
            acknowledged.append(key)
            n += 1

    threads = [threading.Thread(target=writer, args=(i,)) for i in range(4)]
    for thread in threads:
        thread.start()
    time.sleep(3)
    assert server.proc is not None
    server.proc.send_signal(signal.SIGKILL)
    server.proc.wait()
    stop.set()
    for thread in threads:
        thread.join()
    assert len(acknowledged) > 10

    server.start()
    s3 = server.client()
    visible = [
        o["Key"]
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket="crash")
        for o in page.get("Contents", [])
    ]
    missing = set(acknowledged) - set(visible)
    assert not missing, f"acknowledged objects lost: {sorted(missing)[:5]}"
    # Everything visible is whole: acknowledged, or committed just before the kill.
    for key in visible:
        got: Any = s3.get_object(Bucket="crash", Key=key)
        assert got["Body"].read() == body_for(key), key
    assert len(visible) - len(acknowledged) <= 4  # at most the PUTs in flight
