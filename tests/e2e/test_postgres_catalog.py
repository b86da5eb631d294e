"""`egide serve` on a PostgreSQL catalog (`[catalog] url`): the S3 round trip works, the
password comes from the environment and is never printed, an unreachable database stops the
start with a message naming it, and two gateways on one database see each other's writes and
changes of rights."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from tests.conftest import ACCESS_KEY, SECRET_KEY, Server, ServerFactory, free_port
from tests.e2e.test_admin_identities import call
from tests.e2e.test_policies import code
from tests.e2e.test_rights_everywhere import clients, get_x, grant
from tests.postgres import PASSWORD, PostgresServer

PASSWORD_ENV = "EGIDE_TEST_CATALOG_PASSWORD"


def _catalog_toml(url: str) -> str:
    return f'[catalog]\nurl = "{url}"\npassword_env = "{PASSWORD_ENV}"\n'


@pytest.fixture
def on_postgres(postgres_server: PostgresServer, monkeypatch: pytest.MonkeyPatch) -> str:
    """The configuration of a catalog on a new, empty database (the first `egide serve`
    creates the catalog there), its password in the environment."""
    monkeypatch.setenv(PASSWORD_ENV, PASSWORD)
    return _catalog_toml(postgres_server.new_database(empty=True))


def test_a_server_on_postgresql_stores_lists_and_deletes(
    make_server: ServerFactory, on_postgres: str
) -> None:
    server = make_server(on_postgres)
    s3 = server.client()
    s3.create_bucket(Bucket="photos")
    for key in ("a/1.jpg", "a/2.jpg", "b/3.jpg", "top.txt"):
        s3.put_object(Bucket="photos", Key=key, Body=key.encode() * 100)
    assert s3.get_object(Bucket="photos", Key="a/2.jpg")["Body"].read() == b"a/2.jpg" * 100
    listed = s3.list_objects_v2(Bucket="photos", Delimiter="/")
    assert [p["Prefix"] for p in listed["CommonPrefixes"]] == ["a/", "b/"]
    assert [o["Key"] for o in listed["Contents"]] == ["top.txt"]
    s3.delete_object(Bucket="photos", Key="a/1.jpg")
    assert [o["Key"] for o in s3.list_objects_v2(Bucket="photos")["Contents"]] == [
        "a/2.jpg",
        "b/3.jpg",
        "top.txt",
    ]
    output = " ".join(server.output().split())  # the terminal's line breaks out
    assert "catalog PostgreSQL postgresql://egide@127.0.0.1:" in output
    assert PASSWORD not in output


def test_an_unreachable_database_stops_the_start_naming_it_without_the_password(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(PASSWORD_ENV, PASSWORD)
    url = f"postgresql://egide@127.0.0.1:{free_port()}/catalog"  # nothing listens there
    config = tmp_path / "egide.toml"
    config.write_text(
        f'data_dir = "{tmp_path / "data"}"\nlisten = "127.0.0.1:{free_port()}"\n'
        + _catalog_toml(url)
    )
    done = subprocess.run(
        [sys.executable, "-m", "egide", "serve", "--config", str(config)],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    said = " ".join((done.stdout + done.stderr).split())  # the terminal's line breaks out
    assert done.returncode != 0
    assert f"cannot reach the catalog database {url}" in said
    assert PASSWORD not in said


def test_two_gateways_on_one_database_see_each_others_writes(
    make_server: ServerFactory, on_postgres: str, tmp_path: Path
) -> None:
    """The same sites, the same master key, the same catalog: the whole set-up of a second
    gateway (docs/scale-out.md)."""
    sites = tmp_path / "sites"
    # Caches kept long: only the rights counter can make a change show on the other at once.
    shared = (
        "bucket_cache_seconds = 60\n"
        + on_postgres
        + "".join(
            f'[[sites]]\nname = "s{i}"\nkind = "local"\npath = "{sites / f"s{i}"}"\n'
            for i in range(1, 4)
        )
    )
    first = make_server(shared)
    first.stop()  # it made the master key; the second gateway gets a copy of it
    second_root = tmp_path / "second"
    (second_root / "data").mkdir(parents=True)
    shutil.copy2(first.data_dir / "master.key", second_root / "data" / "master.key")
    port = free_port()
    config = second_root / "egide.toml"
    config.write_text(
        f'data_dir = "{second_root / "data"}"\nlisten = "127.0.0.1:{port}"\n{shared}'
        f'[[credentials]]\naccess_key = "{ACCESS_KEY}"\nsecret_key = "{SECRET_KEY}"\n'
    )
    second = Server(second_root / "data", config, port).start()
    try:
        first.start()
        one: Any = first.client()
        other: Any = second.client()
        one.create_bucket(Bucket="shared")
        one.put_object(Bucket="shared", Key="k", Body=b"written on the first")
        assert other.get_object(Bucket="shared", Key="k")["Body"].read() == b"written on the first"
        other.put_object(Bucket="shared", Key="k", Body=b"then on the second")
        assert one.get_object(Bucket="shared", Key="k")["Body"].read() == b"then on the second"
        # A conditional create raced from both sides is decided once.
        other.put_object(Bucket="shared", Key="x", Body=b"x")
        other.put_object(Bucket="shared", Key="once", Body=b"2", IfNoneMatch="*")
        with pytest.raises(one.exceptions.ClientError) as refused:
            one.put_object(Bucket="shared", Key="once", Body=b"1", IfNoneMatch="*")
        assert refused.value.response["Error"]["Code"] == "PreconditionFailed"
        # A change of rights acknowledged by one gateway holds on the other at once (the
        # rights counter, read before each request), not after its caches expire.
        call(first, "POST", "users", {"name": "alice"}, 201)
        key = call(first, "POST", "users/alice/keys", {}, 201)
        alice = clients(second, key)[0]
        assert code(get_x(), alice) == "AccessDenied"  # the second caches alice's rights
        one.put_bucket_policy(Bucket="shared", Policy=grant("shared", "s3:GetObject"))
        assert code(get_x(), alice) == "ok"
        one.delete_bucket_policy(Bucket="shared")
        assert code(get_x(), alice) == "AccessDenied"
    finally:
        if second.proc is not None:
            second.stop()


def test_a_snapshot_of_a_postgresql_catalog_is_taken_while_the_server_writes(
    make_server: ServerFactory, on_postgres: str
) -> None:
    server = make_server(on_postgres)
    s3 = server.client()
    s3.create_bucket(Bucket="kept")
    s3.put_object(Bucket="kept", Key="k", Body=b"v")
    taken = subprocess.run(
        [sys.executable, "-m", "egide", "catalog", "snapshot", "--json", "--config",
         str(server.config)],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert taken.returncode == 0, taken.stderr
    listed = subprocess.run(
        [sys.executable, "-m", "egide", "catalog", "snapshots", "--json", "--config",
         str(server.config)],
        capture_output=True, text=True, timeout=120, check=True,
    )  # fmt: skip
    assert len(json.loads(listed.stdout)) >= 1
    assert PASSWORD not in taken.stdout + taken.stderr + listed.stdout + listed.stderr


def test_a_command_on_an_unreachable_catalog_says_so_in_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(PASSWORD_ENV, PASSWORD)
    url = f"postgresql://egide@127.0.0.1:{free_port()}/catalog"  # nothing listens there
    config = tmp_path / "egide.toml"
    config.write_text(f'data_dir = "{tmp_path / "data"}"\n' + _catalog_toml(url))
    done = subprocess.run(
        [sys.executable, "-m", "egide", "job", "list", "--config", str(config)],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    said = " ".join((done.stdout + done.stderr).split())
    assert done.returncode == 2
    assert f"catalog: cannot reach the catalog database {url}" in said
    assert "Traceback" not in said and PASSWORD not in said
