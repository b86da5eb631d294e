"""A town protects its master key with a passphrase, rotates it, restarts, and everything
reads; then it shreds a bucket, and the others still read."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError
from tests.conftest import Server, ServerFactory

from egide.domain import SITE_RECORD_PREFIXES

PASSPHRASE = "the town hall passphrase"
MiB = 1024 * 1024


def egide(server: Server, *args: str, env: dict[str, str] | None = None) -> str:
    proc = subprocess.run(
        [sys.executable, "-m", "egide", *args, "--config", str(server.config)],
        capture_output=True, text=True, timeout=120, env=env,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout


def write(s3: Any) -> dict[tuple[str, str], str]:
    """Small (packed), large (streamed) and multipart objects in two buckets."""
    objects = {
        ("records", "a.json"): b'{"a": 1}',
        ("records", "b.json"): b'{"b": 2}' * 100,
        ("records", "scan.pdf"): bytes(range(256)) * 4096,  # 1 MiB: streamed
        ("minutes", "2024.txt"): b"council minutes" * 1000,
    }
    for bucket in ("records", "minutes"):
        s3.create_bucket(Bucket=bucket)
    for (bucket, key), body in objects.items():
        s3.put_object(Bucket=bucket, Key=key, Body=body)
    upload = s3.create_multipart_upload(Bucket="records", Key="video.mp4")
    parts, whole = [], b""
    for number in (1, 2):
        body = bytes([number]) * (5 * MiB if number == 1 else 1000)
        whole += body
        etag = s3.upload_part(
            Bucket="records", Key="video.mp4", UploadId=upload["UploadId"],
            PartNumber=number, Body=body,
        )["ETag"]  # fmt: skip
        parts.append({"PartNumber": number, "ETag": etag})
    s3.complete_multipart_upload(
        Bucket="records", Key="video.mp4", UploadId=upload["UploadId"],
        MultipartUpload={"Parts": parts},
    )  # fmt: skip
    objects["records", "video.mp4"] = whole
    return {name: hashlib.sha256(body).hexdigest() for name, body in objects.items()}


def read(s3: Any, names: dict[tuple[str, str], str]) -> dict[tuple[str, str], str]:
    return {
        (bucket, key): hashlib.sha256(
            s3.get_object(Bucket=bucket, Key=key)["Body"].read()
        ).hexdigest()
        for bucket, key in names
    }


def shard_files(server: Server) -> dict[Path, tuple[bytes, int]]:
    return {
        p: (p.read_bytes(), p.stat().st_mtime_ns)
        for p in (server.data_dir / "sites").glob("*/shards/*/*")
        if not p.name.startswith((*SITE_RECORD_PREFIXES, "snap-"))  # records, snapshots
    }


def test_protected_key_rotated_then_restarted_reads_everything(
    make_server: ServerFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The server reads the bucket again on every request: the shredded bucket is gone at once
    # (how long a gateway may keep it: tests/engine/test_store.py).
    server = make_server("bucket_cache_seconds = 0")
    digests = write(server.client())
    assert server.stop() == 0
    env = {**os.environ, "EGIDE_NEW_PASSPHRASE": PASSPHRASE}
    assert "Argon2id" in egide(server, "keys", "protect", env=env)

    monkeypatch.setenv("EGIDE_PASSPHRASE", "a wrong passphrase")
    with pytest.raises(RuntimeError, match="wrong passphrase"):
        server.start()
    monkeypatch.setenv("EGIDE_PASSPHRASE", PASSPHRASE)
    server.start()
    assert read(server.client(), digests) == digests
    before = shard_files(server)
    assert server.stop() == 0

    out = egide(server, "keys", "rotate-master")
    assert "no data rewritten" in out
    server.start()
    s3 = server.client()
    assert read(s3, digests) == digests
    assert shard_files(server) == before

    out = egide(server, "keys", "rotate-bucket", "records")  # with the server up
    assert "data keys rewrapped" in out
    assert read(s3, digests) == digests
    s3.put_object(Bucket="records", Key="after.txt", Body=b"after the rotation")
    assert s3.get_object(Bucket="records", Key="after.txt")["Body"].read() == b"after the rotation"

    out = egide(server, "bucket", "delete", "minutes", "--shred", "--yes")  # server up too
    assert "crypto-shredded" in out
    with pytest.raises(ClientError, match="NoSuchBucket"):
        s3.get_object(Bucket="minutes", Key="2024.txt")
    remaining = {name: d for name, d in digests.items() if name[0] == "records"}
    assert read(s3, remaining) == remaining
