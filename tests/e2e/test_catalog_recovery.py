"""The catalog is lost: rebuilt from the shards, or restored from a snapshot, every object,
version and metadata value reads back identical through the S3 API."""

from __future__ import annotations

import hashlib
import json
import sqlite3
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
from tests.conftest import Server, ServerFactory

from egide.crypto.keyring import create_master_key_file
from egide.engine.settingsrecords import RECORDED, digest

PART = 5 * 1024 * 1024
SCHEDULE = "snapshot_interval_seconds = 1\nlifecycle_interval_seconds = 1\n"


def egide(server: Server, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "egide", "catalog", *args, "--config", str(server.config)],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip


def fill(s3: Any) -> None:
    s3.create_bucket(Bucket="plain")
    meta = {"owner": "emile", "project": "x"}
    s3.put_object(Bucket="plain", Key="big.bin", Body=b"B" * 300_000, ContentType="app/x",
                  Metadata=meta, CacheControl="no-cache", ContentDisposition="inline")  # fmt: skip
    for n in range(5):
        s3.put_object(Bucket="plain", Key=f"small/{n}", Body=f"small {n}".encode(), Metadata=meta)
    s3.put_object(Bucket="plain", Key="small/0", Body=b"replaced", Tagging="a=b")
    upload = s3.create_multipart_upload(Bucket="plain", Key="multi", ContentType="video/mp4",
                                        Metadata=meta)["UploadId"]  # fmt: skip
    parts = [
        {"PartNumber": n, "ETag": s3.upload_part(Bucket="plain", Key="multi", UploadId=upload,
                                                 PartNumber=n, Body=body)["ETag"]}
        for n, body in ((1, b"1" * PART), (2, b"2" * 1000))
    ]  # fmt: skip
    s3.complete_multipart_upload(
        Bucket="plain", Key="multi", UploadId=upload, MultipartUpload={"Parts": parts}
    )
    s3.create_bucket(Bucket="versioned")
    s3.put_bucket_versioning(Bucket="versioned", VersioningConfiguration={"Status": "Enabled"})
    for n in range(3):
        s3.put_object(Bucket="versioned", Key="doc", Body=f"version {n}".encode() * 1000)
    s3.put_object(Bucket="versioned", Key="gone", Body=b"deleted later")
    s3.delete_object(Bucket="versioned", Key="gone")  # a delete marker
    s3.put_bucket_tagging(Bucket="versioned", Tagging={"TagSet": [{"Key": "t", "Value": "v"}]})
    # Changed after the write: tags, a legal hold, a retention extended.
    s3.put_object_tagging(Bucket="plain", Key="big.bin",
                          Tagging={"TagSet": [{"Key": "later", "Value": "yes"}]})  # fmt: skip
    s3.delete_object_tagging(Bucket="plain", Key="small/0")
    s3.create_bucket(Bucket="locked", ObjectLockEnabledForBucket=True)
    s3.put_object(Bucket="locked", Key="contract", Body=b"signed")
    s3.put_object_legal_hold(Bucket="locked", Key="contract", LegalHold={"Status": "ON"})
    until = datetime.now(UTC).replace(microsecond=0) + timedelta(days=30)
    s3.put_object_retention(Bucket="locked", Key="contract",
                            Retention={"Mode": "GOVERNANCE", "RetainUntilDate": until})  # fmt: skip


def listing(s3: Any) -> dict[str, Any]:
    """Every version and delete marker of every bucket, with HEAD fields and content hash."""
    result: dict[str, Any] = {}
    for bucket in sorted(b["Name"] for b in s3.list_buckets()["Buckets"]):
        page = s3.list_object_versions(Bucket=bucket)
        for v in page.get("Versions", []):
            head = s3.head_object(Bucket=bucket, Key=v["Key"], VersionId=v["VersionId"])
            body = s3.get_object(Bucket=bucket, Key=v["Key"], VersionId=v["VersionId"])["Body"]
            result[f"{bucket}/{v['Key']}/{v['VersionId']}"] = {
                "latest": v["IsLatest"], "etag": v["ETag"], "size": v["Size"],
                "modified": v["LastModified"].isoformat(),
                "sha256": hashlib.sha256(body.read()).hexdigest(),
                **{n: head.get(n) for n in ("ContentType", "Metadata", "CacheControl",
                                            "ContentDisposition", "TagCount", "PartsCount",
                                            "ObjectLockMode", "ObjectLockRetainUntilDate",
                                            "ObjectLockLegalHoldStatus")},
            }  # fmt: skip
        for m in page.get("DeleteMarkers", []):
            result[f"{bucket}/{m['Key']}/{m['VersionId']}"] = {"marker": m["IsLatest"]}
        status = s3.get_bucket_versioning(Bucket=bucket).get("Status")
        result[f"{bucket}: versioning"] = status
    return result


def settings_recorded(server: Server) -> bool:
    """Whether the server has recorded every bucket's current settings on the sites."""
    path = server.data_dir / "catalog.sqlite3"
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as db:
        settings: dict[bytes, dict[str, str]] = {
            b: {} for (b,) in db.execute("SELECT id FROM buckets")
        }
        for bucket_id, name, value in db.execute(
            "SELECT bucket_id, name, value FROM bucket_settings"
        ):
            settings[bucket_id][name] = value
    db.close()
    return all(named.get(RECORDED) == digest(named) for named in settings.values())


def credentials_recorded_since(server: Server, since_ns: int) -> bool:
    """Whether a credentials record newer than `since_ns` is on the first site."""
    site = server.site_dirs()[0] / "shards" / "cr"
    names = [p.name for p in site.iterdir()] if site.is_dir() else []
    return any(int(name.removeprefix("creds-")) > since_ns for name in names)


def lose_catalog(server: Server) -> None:
    server.stop()
    for suffix in ("", "-wal", "-shm"):
        (server.data_dir / f"catalog.sqlite3{suffix}").unlink(missing_ok=True)


def test_rebuild_then_restore_give_back_everything(make_server: ServerFactory) -> None:
    server = make_server(SCHEDULE)
    s3 = server.client()
    fill(s3)
    created_at = time.time_ns()
    created = subprocess.run(
        [sys.executable, "-m", "egide", "credentials", "create", "--config", str(server.config)],
        capture_output=True, text=True, timeout=60, check=True,
    ).stdout.split()  # fmt: skip
    access, secret = created[created.index("access") + 2], created[created.index("secret") + 2]
    before = listing(s3)
    taken = egide(server, "snapshot", "--json")
    assert taken.returncode == 0, taken.stderr
    deadline = time.monotonic() + 15  # the server's own schedule takes one too
    while len(json.loads(egide(server, "snapshots", "--json").stdout)) < 2:
        assert time.monotonic() < deadline, "no scheduled snapshot"
        time.sleep(0.5)
    while not settings_recorded(server):  # the servers' housekeeping, every second here
        assert time.monotonic() < deadline + 15, "bucket settings not recorded"
        time.sleep(0.5)
    while not credentials_recorded_since(server, created_at):
        assert time.monotonic() < deadline + 15, "credentials not recorded"
        time.sleep(0.5)

    lose_catalog(server)
    rebuilt = egide(server, "rebuild", "--force", "--json")
    assert rebuilt.returncode == 0, rebuilt.stderr
    report = json.loads(rebuilt.stdout)
    assert report["unrecoverable"] == [] and report["buckets"] == 3
    server.start()
    after = listing(server.client())
    # From the shards and the records beside them alone: every version and delete marker
    # ("gone" stays deleted), tags and locks as changed after the write, bucket settings.
    assert after == before
    assert any(isinstance(v, dict) and "marker" in v for v in before.values())
    tags = server.client().get_bucket_tagging(Bucket="versioned")["TagSet"]
    assert tags == [{"Key": "t", "Value": "v"}]
    # The access key created with the command still signs: no new pair to hand out.
    assert report["credentials"] == 1 + 1  # egide.toml's, recorded too, and the created one
    as_created = boto3.client("s3", endpoint_url=server.endpoint, region_name="us-east-1",
                              aws_access_key_id=access, aws_secret_access_key=secret)  # fmt: skip
    assert {b["Name"] for b in as_created.list_buckets()["Buckets"]} == {
        "plain",
        "versioned",
        "locked",
    }

    lose_catalog(server)
    restored = egide(server, "restore", "--force", "--json")
    assert restored.returncode == 0, restored.stderr
    server.start()
    s3 = server.client()
    assert listing(s3) == before  # delete markers and settings included
    assert s3.get_bucket_tagging(Bucket="versioned")["TagSet"] == [{"Key": "t", "Value": "v"}]


def test_refuses_a_running_server_and_a_wrong_key(
    make_server: ServerFactory, tmp_path: Path
) -> None:
    server = make_server()
    server.client().create_bucket(Bucket="bkt")
    busy = egide(server, "rebuild", "--force")
    assert busy.returncode == 2 and "stop the Égide server" in busy.stderr
    server.stop()
    other = tmp_path / "other.key"
    create_master_key_file(other)
    wrong = egide(server, "rebuild", "--force", "--master-key", str(other))
    assert wrong.returncode == 2 and "master key opens none" in wrong.stderr
    assert (server.data_dir / "catalog.sqlite3").exists()  # untouched
