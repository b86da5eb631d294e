"""Clients that hold a server's memory, time or connections are cut off (issue 13, item 5).

Raw sockets against a real server with short limits (`[http]` in its configuration).
"""

from __future__ import annotations

import contextlib
import http.client
import os
import resource
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from botocore.auth import S3SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from tests.conftest import ACCESS_KEY, SECRET_KEY, Server, ServerFactory, free_port

LIMITS = """workers = 1
[http]
header_timeout_seconds = 1.5
body_timeout_seconds = 1.5
keep_alive_seconds = 2
max_connections = 8
"""


class UnsignedPayload(S3SigV4Auth):
    """Signs the head only, so that the body can be sent (or not) afterwards."""

    def payload(self, request: AWSRequest) -> str:
        return "UNSIGNED-PAYLOAD"


@pytest.fixture
def limited(make_server: ServerFactory) -> Server:
    return make_server(LIMITS)


def connect(server: Server) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=30)
    return sock


def read_until_closed(sock: socket.socket, within: float = 30.0) -> bytes:
    """Everything the server sends until it closes the connection (fails after `within`)."""
    sock.settimeout(within)
    data = b""
    try:
        while chunk := sock.recv(65536):
            data += chunk
    except ConnectionResetError:
        pass
    return data


def send_slowly(sock: socket.socket, data: bytes, pause: float) -> bool:
    """Send one byte per `pause` seconds; False once the server has closed the connection."""
    for byte in data:
        try:
            sock.sendall(bytes([byte]))
        except (BrokenPipeError, ConnectionResetError):
            return False
        time.sleep(pause)
    return True


def still_serves(server: Server) -> None:
    assert server.client().list_buckets()["ResponseMetadata"]["HTTPStatusCode"] == 200


def test_a_one_megabyte_header_is_refused_and_the_connection_closed(limited: Server) -> None:
    with connect(limited) as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: ")
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            sock.sendall(b"a" * (1024 * 1024))  # never finished
        reply = read_until_closed(sock)
    assert reply.startswith(b"HTTP/1.1 400 ")
    assert b"<Code>RequestHeaderSectionTooLarge</Code>" in reply
    still_serves(limited)


def test_a_whole_head_over_the_total_is_refused(limited: Server) -> None:
    """Five 4 KiB headers: each line within its bound, 20 KiB in all, sent in one piece."""
    head = b"GET / HTTP/1.1\r\nHost: x\r\n" + b"".join(
        b"X-%d: %s\r\n" % (i, b"a" * 4000) for i in range(5)
    )
    with connect(limited) as sock:
        sock.sendall(head + b"\r\n")
        reply = read_until_closed(sock)
    assert reply.startswith(b"HTTP/1.1 400 ")
    assert b"<Code>RequestHeaderSectionTooLarge</Code>" in reply


def test_too_many_headers_are_refused(limited: Server) -> None:
    head = b"GET / HTTP/1.1\r\nHost: x\r\n" + b"".join(b"X-%d: 1\r\n" % i for i in range(200))
    with connect(limited) as sock:
        sock.sendall(head + b"\r\n")
        reply = read_until_closed(sock)
    assert reply.startswith(b"HTTP/1.1 400 ")
    assert b"<Code>RequestHeaderSectionTooLarge</Code>" in reply


def test_a_slow_header_client_is_disconnected(limited: Server) -> None:
    """One byte every 50 ms would take 15 s; the head must be whole within 1.5 s."""
    with connect(limited) as sock:
        head = b"GET / HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"a" * 300
        assert not send_slowly(sock, head, 0.05)
    still_serves(limited)


def test_a_connection_that_sends_nothing_is_closed(limited: Server) -> None:
    with connect(limited) as sock:
        assert read_until_closed(sock) == b""


def test_a_stalled_body_gets_request_timeout_and_others_are_served(limited: Server) -> None:
    s3 = limited.client()
    s3.create_bucket(Bucket="stall")
    request = AWSRequest(method="PUT", url=f"{limited.endpoint}/stall/k", data=b"")
    UnsignedPayload(Credentials(ACCESS_KEY, SECRET_KEY), "s3", "us-east-1").add_auth(request)
    assert request.headers["X-Amz-Content-SHA256"] == "UNSIGNED-PAYLOAD"
    head = f"PUT /stall/k HTTP/1.1\r\nHost: 127.0.0.1:{limited.port}\r\n"
    head += "".join(f"{name}: {value}\r\n" for name, value in request.headers.items())
    with connect(limited) as sock:
        sock.sendall(f"{head}Content-Length: 1000\r\n\r\n".encode() + b"a" * 10)
        still_serves(limited)
        reply = read_until_closed(sock)
    assert reply == b"" or (
        reply.startswith(b"HTTP/1.1 400 ") and b"<Code>RequestTimeout</Code>" in reply
    )
    assert reply, "the server answers RequestTimeout before closing"
    still_serves(limited)


def test_an_idle_keep_alive_connection_is_closed(limited: Server) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", limited.port, timeout=30)
    conn.request("GET", "/")
    reply = conn.getresponse()
    reply.read()
    assert reply.status == 403 and not reply.will_close
    assert conn.sock is not None
    assert read_until_closed(conn.sock) == b""
    conn.close()


def test_idle_connections_beyond_the_cap_do_not_lock_out_a_request(limited: Server) -> None:
    idle = [connect(limited) for _ in range(20)]
    try:
        time.sleep(0.3)
        s3: Any = limited.client()
        assert s3.list_buckets()["ResponseMetadata"]["HTTPStatusCode"] == 200
        closed = 0
        for sock in idle:
            sock.settimeout(0.01)
            try:
                closed += sock.recv(1) == b""
            except TimeoutError:
                pass
            except ConnectionResetError:
                closed += 1
        assert closed >= 20 - 8
    finally:
        for sock in idle:
            sock.close()
    assert "connection limit" in limited.output()


class FewFilesServer(Server):
    """A server started under `ulimit -n 256`, as a small or badly configured host runs it."""

    def start(self) -> Server:
        out = self.log.open("ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "egide", "serve", "--config", str(self.config)],
            stdout=out, stderr=subprocess.STDOUT, env={**os.environ, "PYTHONUNBUFFERED": "1"},
            preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_NOFILE, (256, 256)),
        )  # fmt: skip
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return self
            except OSError:
                time.sleep(0.05)
        raise RuntimeError(f"egide did not start:\n{self.output()}")


def test_more_idle_connections_than_file_descriptors_do_not_stop_the_server(
    tmp_path: Path,
) -> None:
    """Before: with every descriptor held by an idle connection, each new connection was
    accepted and closed at once (libuv's answer to EMFILE), and nothing was logged."""
    port = free_port()
    config = tmp_path / "egide.toml"
    config.write_text(
        f'data_dir = "{tmp_path / "data"}"\nlisten = "127.0.0.1:{port}"\nworkers = 1\n'
        f'[[credentials]]\naccess_key = "{ACCESS_KEY}"\nsecret_key = "{SECRET_KEY}"\n'
    )
    server = FewFilesServer(tmp_path / "data", config, port).start()
    idle: list[socket.socket] = []
    try:
        for _ in range(400):
            with contextlib.suppress(OSError):
                idle.append(socket.create_connection(("127.0.0.1", port), timeout=5))
        time.sleep(0.5)
        still_serves(server)
        output = server.output()
        assert "max_connections 1000 is above what 256 open files allow" in output
        assert "connection limit reached" in output
    finally:
        for sock in idle:
            sock.close()
        assert server.proc is not None
        server.proc.kill()
        server.proc.wait()


def test_a_connection_beyond_the_cap_when_all_are_busy_gets_slow_down(
    make_server: ServerFactory,
) -> None:
    server = make_server("workers = 1\n[http]\nmax_connections = 4\nbody_timeout_seconds = 60")
    server.client().create_bucket(Bucket="busy")
    busy = []
    try:
        for i in range(4):  # each is serving a PUT whose body has not come: not evictable
            request = AWSRequest(method="PUT", url=f"{server.endpoint}/busy/{i}", data=b"")
            UnsignedPayload(Credentials(ACCESS_KEY, SECRET_KEY), "s3", "us-east-1").add_auth(
                request
            )
            head = f"PUT /busy/{i} HTTP/1.1\r\nHost: 127.0.0.1:{server.port}\r\n"
            head += "".join(f"{name}: {value}\r\n" for name, value in request.headers.items())
            sock = connect(server)
            sock.sendall(f"{head}Content-Length: 100\r\n\r\n".encode() + b"a")
            busy.append(sock)
        time.sleep(0.5)
        with connect(server) as extra:
            reply = read_until_closed(extra)
        assert reply.startswith(b"HTTP/1.1 503 ") and b"<Code>SlowDown</Code>" in reply
        for sock in busy:  # the busy ones finish as if nothing happened
            sock.sendall(b"a" * 99)
            sock.settimeout(30)
            assert sock.recv(65536).startswith(b"HTTP/1.1 200 ")
    finally:
        for sock in busy:
            sock.close()
    assert "all busy" in server.output()


def test_pipelined_requests_are_all_answered(limited: Server) -> None:
    """The protocol's overrides keep uvicorn's pipelining: two heads in one write, two replies."""
    with connect(limited) as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n" * 2)
        replies = read_until_closed(sock)  # closed after keep_alive_seconds
    assert replies.count(b"HTTP/1.1 403 Forbidden\r\n") == 2
