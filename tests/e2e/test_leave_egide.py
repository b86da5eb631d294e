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
from xml.etree import ElementTree

import pytest
from tests.conftest import Server
from tests.providers import Provider, running_moto

from egide.transfer.dirlayout import MANIFEST_FILE, TEMP_PREFIX

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


# -- --all-versions ---------------------------------------------------------------------------


def version_order(s3: Any, bucket: str) -> list[tuple[Any, ...]]:
    """ListObjectVersions in document order (botocore splits versions from delete markers):
    (key, marker, size, ETag, latest, metadata) of each."""
    bodies: list[bytes] = []

    def grab(response_dict: dict[str, Any], **_: Any) -> None:
        bodies.append(response_dict["body"])

    s3.meta.events.register("before-parse.s3.ListObjectVersions", grab)
    try:
        s3.list_object_versions(Bucket=bucket)
    finally:
        s3.meta.events.unregister("before-parse.s3.ListObjectVersions", grab)
    found = []
    for element in ElementTree.fromstring(bodies[0]):
        kind = element.tag.rpartition("}")[2]
        if kind not in ("Version", "DeleteMarker"):
            continue
        field = {child.tag.rpartition("}")[2]: child.text or "" for child in element}
        marker = kind == "DeleteMarker"
        key, version = field["Key"], field["VersionId"]
        meta = {} if marker else s3.head_object(Bucket=bucket, Key=key, VersionId=version)
        size, etag = int(field.get("Size") or 0), field.get("ETag", "").strip('"')
        found.append((key, marker, size, etag, field["IsLatest"] == "true",
                      meta and meta["Metadata"]))  # fmt: skip
    return found


def split_lists(order: list[tuple[Any, ...]]) -> tuple[list[Any], list[Any]]:
    """Versions and delete markers apart, each in listing order (moto lists them so)."""
    return [v[:5] for v in order if not v[1]], [v[:5] for v in order if v[1]]


def make_history(s3: Any, bucket: str, big: int = 0) -> None:
    s3.create_bucket(Bucket=bucket)
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    for rev in range(1, 4):
        s3.put_object(Bucket=bucket, Key="doc.txt", Body=body(f"doc{rev}", 100 * rev),
                      Metadata={"rev": str(rev)}, ContentType="text/plain")  # fmt: skip
    s3.delete_object(Bucket=bucket, Key="doc.txt")
    s3.put_object(Bucket=bucket, Key="gone", Body=b"first life", Metadata={"rev": "1"})
    s3.delete_object(Bucket=bucket, Key="gone")
    s3.put_object(Bucket=bucket, Key="gone", Body=b"second life", Metadata={"rev": "2"})
    s3.put_object(Bucket=bucket, Key="dir/", Body=b"", Metadata={"rev": "1"})
    for rev in range(big):
        s3.put_object(Bucket=bucket, Key="big.bin", Body=body(f"big{rev}", 4 * MiB + rev))


def test_all_versions_out_and_back(shared_server: Server, moto: Provider, tmp_path: Path) -> None:
    s3 = shared_server.client()
    make_history(s3, "history")
    original = version_order(s3, "history")
    assert len(original) == 8
    assert [v[1] for v in original if v[0] == "gone"] == [False, True, False]  # newest first

    out = tmp_path / "out"
    done = summary(egide(shared_server, "export", "history", str(out), "--all-versions", "--json"))
    assert done["ok"] and done["all_versions"] and done["verified"] == 8, done
    manifest = [json.loads(line) for line in (out / MANIFEST_FILE).open()]
    assert [(m["key"], m["delete_marker"]) for m in manifest][-3:] == [
        ("gone", False), ("gone", True), ("gone", False),
    ]  # fmt: skip

    # To S3: only into a bucket with versioning.
    flat = moto.new_bucket("flat")
    moto_args = ["--endpoint-url", moto.endpoint, "--all-versions"]
    refused = egide(shared_server, "export", "history", f"s3://{flat}/", *moto_args, moto=moto)
    assert refused.returncode == 2 and "versioning enabled" in refused.stderr, refused.stderr
    dest = moto.new_bucket("versioned")
    remote = moto.client()
    remote.put_bucket_versioning(Bucket=dest, VersioningConfiguration={"Status": "Enabled"})
    done = summary(egide(shared_server, "export", "history", f"s3://{dest}/", *moto_args,
                         "--json", moto=moto))  # fmt: skip
    assert done["ok"] and done["verified"] == 8, done
    assert split_lists(version_order(remote, dest)) == split_lists(original)

    # Back into Égide, from the directory and from moto, into new (versioned) buckets.
    done = summary(egide(shared_server, "import", str(out), "from-dir", "--all-versions",
                         "--json"))  # fmt: skip
    assert done["ok"] and done["verified"] == 8, done
    assert version_order(s3, "from-dir") == original
    done = summary(egide(shared_server, "import", f"s3://{dest}", "from-moto", *moto_args,
                         "--json", moto=moto))  # fmt: skip
    assert done["ok"] and done["verified"] == 8, done
    assert version_order(s3, "from-moto") == original

    s3.create_bucket(Bucket="not-versioned")
    refused = egide(shared_server, "import", str(out), "not-versioned", "--all-versions")
    assert refused.returncode == 2 and "needs versioning enabled" in refused.stderr


def test_sigkill_during_a_versioned_import_then_rerun(
    shared_server: Server, tmp_path: Path
) -> None:
    s3 = shared_server.client()
    make_history(s3, "history-crash", big=6)
    original = version_order(s3, "history-crash")
    out = tmp_path / "out"
    summary(egide(shared_server, "export", "history-crash", str(out), "--all-versions", "--json"))

    args = ["import", str(out), "crash-back", "--all-versions"]
    proc = egide(shared_server, *args, wait=False)

    def written() -> int:
        try:
            return len(s3.list_object_versions(Bucket="crash-back").get("Versions", []))
        except s3.exceptions.NoSuchBucket:
            return 0

    kill_when(proc, lambda: written() >= 3)  # inside big.bin's history
    assert written() < 6 + 5
    done = summary(egide(shared_server, *args, "--json"))
    assert done["resumed"] and done["ok"] and done["verified"] == len(original), done
    assert version_order(s3, "crash-back") == original  # each version once, in order
