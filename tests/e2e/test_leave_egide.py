"""Leaving Égide and coming in from another cloud: `egide export` and `egide import` run as
commands beside a running server, against a real moto S3 server, compared through boto3; and a
SIGKILL in the middle of either, then the same command again, loses and duplicates nothing."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from tests.conftest import Server
from tests.providers import Provider, running_moto

from egide.maintenance.dirlayout import MANIFEST_FILE, TEMP_PREFIX

MiB = 1024 * 1024
ODD_KEYS = ["a", "a/b", "dir/", "dir/x", "a//b", "../up", "x/./y", "100%.txt", "é/ü ."]
META = {"owner": "mairie", "dept": "69"}


@pytest.fixture(scope="module")
def moto(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Provider]:
    with running_moto(tmp_path_factory.mktemp("moto")) as provider:
        yield provider


def body(key: str, size: int) -> bytes:
    seed = hashlib.sha256(key.encode()).digest()
    return (seed * (size // len(seed) + 1))[:size]


def egide(server: Server, *args: str, moto: Provider | None = None, wait: bool = True) -> Any:
    """`egide ARGS --config …` as its own process, as a user would run it."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    if moto is not None:
        env |= {"AWS_ACCESS_KEY_ID": moto.access_key, "AWS_SECRET_ACCESS_KEY": moto.secret_key}
    command = [sys.executable, "-m", "egide", *args, "--config", str(server.config)]
    if not wait:
        return subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)


def summary(result: Any, code: int = 0) -> dict[str, Any]:
    assert result.returncode == code, result.stdout + result.stderr
    found: dict[str, Any] = json.loads(result.stdout)
    return found


def put_objects(s3: Any, bucket: str, sizes: dict[str, int]) -> None:
    for key, size in sizes.items():
        s3.put_object(
            Bucket=bucket, Key=key, Body=body(key, size), ContentType="text/csv",
            CacheControl="max-age=60", Metadata=META, Tagging="class=public&year=2024",
        )  # fmt: skip


def assert_same(s3: Any, bucket: str, sizes: dict[str, int], prefix: str = "") -> None:
    """Every object with its bytes, content type, metadata and tags, and nothing else."""
    listed = s3.list_objects_v2(Bucket=bucket, Prefix=prefix).get("Contents", [])
    assert sorted(item["Key"] for item in listed) == sorted(prefix + key for key in sizes)
    for key, size in sizes.items():
        got = s3.get_object(Bucket=bucket, Key=prefix + key)
        assert got["Body"].read() == body(key, size), key
        assert (got["ContentType"], got["Metadata"]) == ("text/csv", META), key
        assert got["CacheControl"] == "max-age=60"
        tags = s3.get_object_tagging(Bucket=bucket, Key=prefix + key)["TagSet"]
        assert {t["Key"]: t["Value"] for t in tags} == {"class": "public", "year": "2024"}, key


SIZES = {key: 100 * i for i, key in enumerate(ODD_KEYS)} | {"video.mp4": 12 * MiB}


def test_export_to_a_directory_and_to_s3(
    shared_server: Server, moto: Provider, tmp_path: Path
) -> None:
    s3 = shared_server.client()
    s3.create_bucket(Bucket="leaving")
    put_objects(s3, "leaving", SIZES)

    done = summary(egide(shared_server, "export", "leaving", str(tmp_path / "out"), "--json"))
    assert done["ok"] and done["verified"] == len(SIZES), done
    manifest = [json.loads(line) for line in (tmp_path / "out" / MANIFEST_FILE).open()]
    assert [item["key"] for item in manifest] == sorted(SIZES)
    for item in manifest:
        data = (tmp_path / "out" / item["path"]).read_bytes()
        assert data == body(item["key"], SIZES[item["key"]])
        assert item["sha256"] == hashlib.sha256(data).hexdigest()
        assert item["metadata"] == META and item["tags"] == {"class": "public", "year": "2024"}
    again = egide(shared_server, "export", "leaving", str(tmp_path / "out"))
    assert again.returncode == 2 and "already holds a finished Égide export" in again.stderr

    target = moto.new_bucket("dest")
    url = f"s3://{target}/from-egide/"
    done = summary(egide(shared_server, "export", "leaving", url, "--endpoint-url", moto.endpoint,
                         "--json", moto=moto))  # fmt: skip
    assert done["ok"] and done["verified"] == len(SIZES), done
    assert_same(moto.client(), target, SIZES, prefix="from-egide/")

    refused = egide(shared_server, "export", "leaving", url, "--endpoint-url", moto.endpoint,
                    moto=moto)  # fmt: skip
    assert refused.returncode == 2 and "is not empty" in refused.stderr
    missing = egide(shared_server, "export", "leaving", "s3://no-such-bucket-x/",
                    "--endpoint-url", moto.endpoint, moto=moto)  # fmt: skip
    assert missing.returncode == 2 and "does not exist" in missing.stderr


def test_import_from_s3_and_from_a_directory(
    shared_server: Server, moto: Provider, tmp_path: Path
) -> None:
    source = moto.new_bucket("src")
    sizes = SIZES | {"./c": 10, "/lead": 20}
    put_objects(moto.client(), source, sizes)
    s3 = shared_server.client()

    done = summary(egide(shared_server, "import", f"s3://{source}", "arrived", "--endpoint-url",
                         moto.endpoint, "--access-key", moto.access_key, "--secret-key",
                         moto.secret_key, "--json"))  # fmt: skip
    assert done["ok"] and done["verified"] == len(sizes), done
    assert_same(s3, "arrived", sizes)

    # Through a directory: out of Égide, and back into another bucket.
    summary(egide(shared_server, "export", "arrived", str(tmp_path / "dir"), "--json"))
    done = summary(egide(shared_server, "import", str(tmp_path / "dir"), "back", "--json"))
    assert done["ok"] and done["objects"]["copied"] == len(sizes), done
    assert_same(s3, "back", sizes)


def kill_when(proc: subprocess.Popen[bytes], ready: Any, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not ready():
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline
        time.sleep(0.002)
    proc.send_signal(signal.SIGKILL)
    proc.wait()


#: Large enough that a kill lands in the middle of an object (shards written, not committed).
CRASH_SIZES = {f"part-{i:02d}.bin": 4 * MiB + i for i in range(8)}


def test_sigkill_during_import_then_rerun_imports_each_object_once(
    shared_server: Server, moto: Provider
) -> None:
    source = moto.new_bucket("crash")
    put_objects(moto.client(), source, CRASH_SIZES)
    s3 = shared_server.client()
    s3.create_bucket(Bucket="versioned-arrival")
    s3.put_bucket_versioning(
        Bucket="versioned-arrival", VersioningConfiguration={"Status": "Enabled"}
    )
    args = ["import", f"s3://{source}", "versioned-arrival", "--endpoint-url", moto.endpoint]

    proc = egide(shared_server, *args, moto=moto, wait=False)
    kill_when(proc, lambda: s3.list_objects_v2(Bucket="versioned-arrival")["KeyCount"] >= 2)
    assert s3.list_objects_v2(Bucket="versioned-arrival")["KeyCount"] < len(CRASH_SIZES)

    done = summary(egide(shared_server, *args, "--json", moto=moto))
    assert done["resumed"] and done["ok"], done
    versions = s3.list_object_versions(Bucket="versioned-arrival")["Versions"]
    assert sorted(v["Key"] for v in versions) == sorted(CRASH_SIZES)  # one version each
    assert_same(s3, "versioned-arrival", CRASH_SIZES)


def test_sigkill_during_export_then_rerun_completes(shared_server: Server, tmp_path: Path) -> None:
    s3 = shared_server.client()
    s3.create_bucket(Bucket="crash-export")
    put_objects(s3, "crash-export", CRASH_SIZES)
    dest = tmp_path / "out"
    manifest = dest / MANIFEST_FILE

    # Killed while a file is half written (the rate limit leaves time to see one).
    proc = egide(shared_server, "export", "crash-export", str(dest), "--rate", "16M", wait=False)
    kill_when(proc, lambda: manifest.exists() and any(dest.rglob(f"{TEMP_PREFIX}*")))

    done = summary(egide(shared_server, "export", "crash-export", str(dest), "--json"))
    assert done["resumed"] and done["ok"] and done["verified"] == len(CRASH_SIZES), done
    keys = [json.loads(line)["key"] for line in manifest.open()]
    assert keys == sorted(CRASH_SIZES)
    for key, size in CRASH_SIZES.items():
        assert (dest / "objects" / key).read_bytes() == body(key, size)
    assert not list(dest.rglob(f"{TEMP_PREFIX}*"))
