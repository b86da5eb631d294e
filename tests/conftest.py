"""Fixtures that start real Égide servers (subprocesses on free ports, or in this process when
a test injects a Python object the server is assembled with) and real S3 clients."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import boto3
import pytest
import uvicorn
from botocore.config import Config

# A real PostgreSQL server for the tests that need one (the catalog contract on PostgreSQL).
from tests.postgres import postgres_server, postgres_url  # noqa: F401

from egide.auth.authorize import Authorizer
from egide.engine.events import Observer

ACCESS_KEY = "EGTESTACCESSKEY0001"
SECRET_KEY = "egide-test-secret-key-0001"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Server:
    """One `egide serve` process with its own data directory and configuration."""

    data_dir: Path
    config: Path
    port: int
    scheme: str = "http"
    ca_file: Path | None = None
    proc: subprocess.Popen[bytes] | None = None
    log: Path = field(init=False)

    def __post_init__(self) -> None:
        self.log = self.data_dir.parent / f"server-{self.port}.log"

    @property
    def endpoint(self) -> str:
        return f"{self.scheme}://127.0.0.1:{self.port}"

    def start(self) -> Server:
        out = self.log.open("ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "egide", "serve", "--config", str(self.config)],
            stdout=out,
            stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"egide exited at start:\n{self.output()}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return self
            except OSError:
                time.sleep(0.05)
        raise RuntimeError(f"egide did not start:\n{self.output()}")

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30) -> int:
        assert self.proc is not None
        self.proc.send_signal(sig)
        code = self.proc.wait(timeout)
        self.proc = None
        return code

    def client(self, **config: Any) -> Any:
        return boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            aws_access_key_id=ACCESS_KEY,
            aws_secret_access_key=SECRET_KEY,
            region_name="us-east-1",
            verify=str(self.ca_file) if self.ca_file else None,
            config=Config(**config) if config else None,
        )

    def site_dirs(self) -> list[Path]:
        return sorted((self.data_dir / "sites").iterdir())


ServerFactory = Callable[..., Server]


@pytest.fixture
def make_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerFactory]:
    """Start servers with optional extra TOML; all are killed at the end of the test."""
    started: list[Server] = []

    def make(extra_toml: str = "", *, tls: tuple[Path, Path, Path] | None = None) -> Server:
        root = tmp_path_factory.mktemp("egide")
        port = free_port()
        config = root / "egide.toml"
        lines = [
            f'data_dir = "{root / "data"}"',
            f'listen = "127.0.0.1:{port}"',
            "trash_grace_seconds = 0",
        ]
        if tls:
            lines += [f'tls_cert = "{tls[0]}"', f'tls_key = "{tls[1]}"']
        # Top-level keys must precede tables in TOML.
        config.write_text(
            "\n".join(lines)
            + f'\n{extra_toml}\n[[credentials]]\naccess_key = "{ACCESS_KEY}"\n'
            + f'secret_key = "{SECRET_KEY}"\n'
        )
        server = Server(
            root / "data", config, port, "https" if tls else "http", tls[2] if tls else None
        )
        started.append(server.start())
        return server

    yield make
    for server in started:
        if server.proc is not None:
            server.proc.kill()
            server.proc.wait()


class InProcessFactory(Protocol):
    def __call__(self, authorizer: Authorizer, observer: Observer | None = None) -> Server: ...


@pytest.fixture
def make_inprocess_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[InProcessFactory]:
    """A real server (the front door of `egide.server.open_app`, uvicorn, a socket) run in a
    thread of this process, with the `Authorizer` the test gives it: the one thing the
    configuration file cannot carry. `proc` stays None; stop it by leaving the test."""
    from egide.config import load_settings
    from egide.server import open_app, prepare

    running: list[tuple[uvicorn.Server, threading.Thread]] = []

    def make(authorizer: Authorizer, observer: Observer | None = None) -> Server:
        root = tmp_path_factory.mktemp("egide-inproc")
        port = free_port()
        config = root / "egide.toml"
        config.write_text(
            f'data_dir = "{root / "data"}"\nlisten = "127.0.0.1:{port}"\n'
            f'[[credentials]]\naccess_key = "{ACCESS_KEY}"\nsecret_key = "{SECRET_KEY}"\n'
        )
        settings = load_settings(config)
        prepare(settings)
        app = open_app(settings, authorizer)
        if observer is not None:  # sees the engine's events, on the server's loop
            app.default.store.events.subscribe(observer)  # type: ignore[attr-defined]
        server = uvicorn.Server(
            uvicorn.Config(
                app, host="127.0.0.1", port=port, lifespan="on", log_level="warning",
            )
        )  # fmt: skip
        thread = threading.Thread(target=lambda: asyncio.run(server.serve()), daemon=True)
        thread.start()
        running.append((server, thread))
        deadline = time.monotonic() + 30
        while not server.started:
            if time.monotonic() > deadline or not thread.is_alive():
                raise RuntimeError("the in-process server did not start")
            time.sleep(0.02)
        return Server(root / "data", config, port)

    yield make
    for server, thread in running:
        server.should_exit = True
        thread.join(30)


@pytest.fixture(scope="module")
def shared_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """One server for the tests of a module that do no damage (each uses its own bucket)."""
    root = tmp_path_factory.mktemp("egide-shared")
    port = free_port()
    config = root / "egide.toml"
    config.write_text(
        f'data_dir = "{root / "data"}"\nlisten = "127.0.0.1:{port}"\n'
        f'[[credentials]]\naccess_key = "{ACCESS_KEY}"\nsecret_key = "{SECRET_KEY}"\n'
    )
    server = Server(root / "data", config, port).start()
    yield server
    if server.proc is not None:
        server.proc.kill()
        server.proc.wait()


@pytest.fixture
def s3(shared_server: Server) -> Any:
    return shared_server.client()


@pytest.fixture
def bucket(s3: Any, request: pytest.FixtureRequest) -> str:
    """A fresh bucket named after the test."""
    name = "t-" + "".join(c if c.isalnum() else "-" for c in request.node.name.lower())[:50]
    name = name.strip("-") + f"-{os.urandom(3).hex()}"
    s3.create_bucket(Bucket=name)
    return name
