"""`egide serve`: embedded defaults, credentials shown once, config errors, clean SIGTERM."""

from __future__ import annotations

import os
import re
import signal
import socket
import stat
import subprocess
import sys
import threading
import time
from pathlib import Path

import boto3
import pytest
import trustme
from tests.conftest import ACCESS_KEY, SECRET_KEY, Server, ServerFactory, free_port


def start_default(cwd: Path, port: int) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "egide", "serve", "--listen", f"127.0.0.1:{port}"],
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )


def serve_until_refused(config: Path) -> subprocess.CompletedProcess[str]:
    """`egide serve --config` for a start that must be refused (it returns)."""
    return subprocess.run(
        [sys.executable, "-m", "egide", "serve", "--config", str(config)],
        capture_output=True,
        text=True,
        timeout=60,
    )


def wait_for_port(port: int) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise AssertionError(f"nothing listens on port {port}")


def read_banner(proc: subprocess.Popen[str], port: int) -> str:
    wait_for_port(port)
    proc.send_signal(signal.SIGTERM)
    out, _ = proc.communicate(timeout=30)
    return out


def test_first_start_with_no_configuration(tmp_path: Path) -> None:
    port = free_port()
    proc = start_default(tmp_path, port)
    assert proc.stdout is not None
    banner = ""
    while "secret key" not in banner:
        line = proc.stdout.readline()
        assert line, f"server exited: {banner}"
        banner += line
    access = re.search(r"access key\s+(\S+)", banner)
    secret = re.search(r"secret key\s+(\S+)", banner)
    assert access and secret
    assert f"http://127.0.0.1:{port}" in banner
    assert "4+2" in banner
    assert "not against losing the disk" in banner
    data = tmp_path / "egide-data"
    key_mode = stat.S_IMODE((data / "master.key").stat().st_mode)
    assert key_mode == 0o600
    assert (data / "catalog.sqlite3").exists()
    assert len(list((data / "sites").iterdir())) == 6
    # The secret is not stored in clear.
    assert secret.group(1).encode() not in (data / "catalog.sqlite3").read_bytes()
    wait_for_port(port)
    s3 = boto3.client(
        "s3",
        endpoint_url=f"http://127.0.0.1:{port}",
        aws_access_key_id=access.group(1),
        aws_secret_access_key=secret.group(1),
        region_name="us-east-1",
    )
    s3.create_bucket(Bucket="first-bucket")
    s3.put_object(Bucket="first-bucket", Key="k", Body=b"hello")
    proc.send_signal(signal.SIGTERM)
    rest, _ = proc.communicate(timeout=30)
    assert proc.returncode == 0
    assert "stopped cleanly" in rest
    # A second start reuses everything and does not print a secret again.
    port2 = free_port()
    second = read_banner(start_default(tmp_path, port2), port2)
    assert "secret key" not in second
    assert "(new:" not in second


@pytest.mark.parametrize(
    "toml,field",
    [
        ("block_size = 12", "block_size"),
        ("listen = 'nowhere'", "listen"),
        ("colour = 'blue'", "colour"),
        ("[code]\nk = 5\nm = 2\n[[sites]]\nname = 'a'\npath = 'a'", "code"),
        ("[[sites]]\nname = 'bad name!'\npath = 'x'", "sites.0.name"),
        ("this is not toml", "not valid TOML"),
    ],
)
def test_invalid_configuration_is_refused_naming_the_field(
    tmp_path: Path, toml: str, field: str
) -> None:
    config = tmp_path / "egide.toml"
    config.write_text(toml)
    result = serve_until_refused(config)
    assert result.returncode == 2
    assert field in " ".join(result.stderr.split())


def test_sigterm_finishes_the_request_in_flight(make_server: ServerFactory) -> None:
    server = make_server()
    s3 = server.client()
    s3.create_bucket(Bucket="inflight")
    data = os.urandom(64 * 1024 * 1024)
    result: dict[str, object] = {}

    def upload() -> None:
        try:
            result["etag"] = s3.put_object(Bucket="inflight", Key="k", Body=data)["ETag"]
        except Exception as exc:  # reported below
            result["error"] = exc

    thread = threading.Thread(target=upload)
    thread.start()
    time.sleep(0.3)  # the upload is under way
    assert server.stop(signal.SIGTERM) == 0
    thread.join()
    assert "etag" in result, result.get("error")
    assert "stopped cleanly" in server.output()
    server.start()
    assert server.client().get_object(Bucket="inflight", Key="k")["Body"].read() == data


def test_missing_master_key_with_existing_catalog_is_refused(make_server: ServerFactory) -> None:
    server = make_server()
    server.stop()
    (server.data_dir / "master.key").unlink()
    result = serve_until_refused(server.config)
    assert result.returncode == 2
    assert "master key" in result.stderr and "missing" in result.stderr


def test_a_second_server_on_the_same_port_is_refused(make_server: ServerFactory) -> None:
    server = make_server()
    config = server.config.parent / "second.toml"
    config.write_text(
        server.config.read_text().replace(str(server.data_dir), str(server.data_dir) + "-2")
    )
    result = serve_until_refused(config)
    assert result.returncode == 2
    assert f"cannot listen on 127.0.0.1:{server.port}" in " ".join(result.stderr.split())


def test_connections_are_spread_over_the_workers(make_server: ServerFactory) -> None:
    """Each worker has its own socket (SO_REUSEPORT): many clients reach both."""
    server = make_server("workers = 2")
    assert server.proc is not None
    time.sleep(1)
    import psutil

    workers = [
        child
        for child in psutil.Process(server.proc.pid).children()
        if "resource_tracker" not in " ".join(child.cmdline())  # multiprocessing's helper
    ]
    assert len(workers) == 2
    clients = [server.client() for _ in range(24)]
    for client in clients:
        client.list_buckets()  # opens one kept-alive connection per client
    serving = {
        w.pid
        for w in workers
        for c in w.net_connections(kind="tcp")
        if c.status == "ESTABLISHED" and c.laddr.port == server.port
    }
    assert len(serving) == 2


@pytest.mark.parametrize("delay", [0.3, 0.8, 1.5])
def test_sigterm_during_start_up_stops_the_server(tmp_path: Path, delay: float) -> None:
    """A stop request that lands while workers are still starting is not lost."""
    port = free_port()
    proc = start_default(tmp_path, port)
    time.sleep(delay)
    proc.send_signal(signal.SIGTERM)
    proc.communicate(timeout=20)
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", port), timeout=0.5).close()


CATALOG_FILES = ("catalog.sqlite3", "catalog.sqlite3-wal", "catalog.sqlite3-shm")


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_the_data_directory_and_the_catalog_are_owner_only(make_server: ServerFactory) -> None:
    """The catalog holds bucket and object names, metadata and tags in clear: no other user of
    the host may read it, nor list the data directory."""
    server = make_server()
    s3 = server.client()
    s3.create_bucket(Bucket="private")
    s3.put_object(Bucket="private", Key="payroll-2026.xlsx", Body=b"x", Tagging="team=hr")
    assert _mode(server.data_dir) == 0o700
    for name in CATALOG_FILES:  # the -wal and -shm exist while the server runs
        assert _mode(server.data_dir / name) == 0o600, name


def test_an_open_data_directory_of_an_earlier_version_is_tightened_at_start(
    make_server: ServerFactory,
) -> None:
    server = make_server()
    server.client().create_bucket(Bucket="private")
    server.stop()
    server.data_dir.chmod(0o755)
    for name in CATALOG_FILES:
        if (server.data_dir / name).exists():
            (server.data_dir / name).chmod(0o644)
    server.start()
    server.client().put_object(Bucket="private", Key="k", Body=b"x")
    assert _mode(server.data_dir) == 0o700
    for name in CATALOG_FILES:
        assert _mode(server.data_dir / name) == 0o600, name
    assert f"{server.data_dir} was open to other users (mode 755): now 700" in server.output()


def test_a_tls_key_other_users_can_read_is_refused(tmp_path: Path) -> None:
    ca = trustme.CA()
    leaf = ca.issue_cert("127.0.0.1")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert.write_bytes(b"".join(blob.bytes() for blob in leaf.cert_chain_pems))
    leaf.private_key_pem.write_to_path(str(key))
    key.chmod(0o644)
    config = tmp_path / "egide.toml"
    config.write_text(
        f'data_dir = "data"\nlisten = "127.0.0.1:{free_port()}"\n'
        'tls_cert = "cert.pem"\ntls_key = "key.pem"\n'
    )
    result = serve_until_refused(config)
    assert result.returncode == 2
    assert f"chmod 600 {key}" in " ".join(result.stderr.split())
    assert not (tmp_path / "data").exists()  # refused before anything was created


def _three_sites_config(folder: Path, port: int, site_dir: str) -> Path:
    config = folder / "egide.toml"
    config.write_text(
        f'data_dir = "d"\nlisten = "127.0.0.1:{port}"\n'
        + "".join(f'[[sites]]\nname = "{n}"\npath = "{site_dir}/{n}"\n' for n in "abc")
        + f'[[credentials]]\naccess_key = "{ACCESS_KEY}"\nsecret_key = "{SECRET_KEY}"\n'
    )
    return config


def test_relative_site_paths_are_taken_from_the_config_folder(tmp_path: Path) -> None:
    """As every other path of the file: `path = "sites/a"` beside `data_dir = "d"` is
    FOLDER/sites/a, not FOLDER/d/sites/a."""
    port = free_port()
    server = Server(tmp_path / "d", _three_sites_config(tmp_path, port, "sites"), port).start()
    try:
        server.client().create_bucket(Bucket="paths")
        server.client().put_object(Bucket="paths", Key="k", Body=b"where am I")
    finally:
        assert server.stop() == 0
    for name in "abc":
        assert any((tmp_path / "sites" / name / "shards").rglob("*-*")), name
    assert not (tmp_path / "d" / "sites").exists()


def test_an_upgrade_with_sites_at_their_old_place_is_refused_until_fixed(tmp_path: Path) -> None:
    """A store whose `path = "sites/a"` an earlier version took from data_dir: the start is
    refused, naming the line to write, rather than served with empty sites; once the line is
    written as told, every object is there."""
    port = free_port()
    config = _three_sites_config(tmp_path, port, "d/sites")  # where the old rule put them
    server = Server(tmp_path / "d", config, port).start()
    try:
        server.client().create_bucket(Bucket="paths")
        server.client().put_object(Bucket="paths", Key="k", Body=b"kept")
    finally:
        assert server.stop() == 0
    _three_sites_config(tmp_path, port, "sites")  # the file as the earlier version read it
    result = serve_until_refused(config)
    assert result.returncode == 2
    message = " ".join(result.stderr.split())
    assert f'path = "sites/a" now means {tmp_path / "sites" / "a"}' in message
    assert 'set path = "d/sites/a"' in message
    assert not (tmp_path / "sites").exists()
    _three_sites_config(tmp_path, port, "d/sites")  # as the message says
    server.start()
    try:
        assert server.client().get_object(Bucket="paths", Key="k")["Body"].read() == b"kept"
    finally:
        server.stop()
