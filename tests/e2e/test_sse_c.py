"""SSE-C against a real server with boto3: the customer key is an extra wrapping of the object's
data key, so nothing reads the object without it, and the key is never stored (decision 0027).
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import requests
from botocore.exceptions import ClientError
from tests.conftest import Server, ServerFactory
from tests.e2e.test_objects import error_of
from tests.e2e.test_self_healing import NO_SCHEDULE, _sites, egide

MiB = 1024 * 1024
KEY = os.urandom(32)
OTHER = os.urandom(32)
KEY_MD5 = base64.b64encode(hashlib.md5(KEY).digest()).decode()


def ssec(key: bytes = KEY) -> dict[str, Any]:
    return {"SSECustomerAlgorithm": "AES256", "SSECustomerKey": key}


def source_ssec(key: bytes = KEY) -> dict[str, Any]:
    return {"CopySourceSSECustomerAlgorithm": "AES256", "CopySourceSSECustomerKey": key}


def refused(call: Any, **params: Any) -> tuple[str, int]:
    with pytest.raises(ClientError) as exc:
        call(**params)
    return error_of(exc)


def answers_key(response: dict[str, Any]) -> bool:
    return bool(
        response.get("SSECustomerAlgorithm") == "AES256"
        and response.get("SSECustomerKeyMD5") == KEY_MD5
    )


@pytest.mark.parametrize("size", [0, 10, 300_000, 3 * MiB + 5])
def test_get_and_head_need_the_key(s3: Any, bucket: str, size: int) -> None:
    data = os.urandom(size)
    put = s3.put_object(Bucket=bucket, Key="k", Body=data, **ssec())
    assert answers_key(put)
    got = s3.get_object(Bucket=bucket, Key="k", **ssec())
    assert got["Body"].read() == data and answers_key(got)
    head = s3.head_object(Bucket=bucket, Key="k", **ssec())
    assert head["ContentLength"] == size and answers_key(head)
    assert "x-amz-server-side-encryption-customer-key-hmac" not in str(head["ResponseMetadata"])
    if size > 2:
        ranged = s3.get_object(Bucket=bucket, Key="k", Range="bytes=1-2", **ssec())
        assert ranged["Body"].read() == data[1:3]
    # Without the key, or with another: 400 (ceph/s3-tests). Never the bytes.
    assert refused(s3.get_object, Bucket=bucket, Key="k") == ("InvalidRequest", 400)
    assert refused(s3.head_object, Bucket=bucket, Key="k")[1] == 400
    assert refused(s3.get_object, Bucket=bucket, Key="k", Range="bytes=0-0") == (
        "InvalidRequest",
        400,
    )
    assert refused(s3.get_object, Bucket=bucket, Key="k", **ssec(OTHER)) == ("InvalidArgument", 400)
    assert refused(s3.head_object, Bucket=bucket, Key="k", **ssec(OTHER))[1] == 400


def shard_files(server: Server) -> set[str]:
    return {
        p.name for site in server.site_dirs() for p in (site / "shards").rglob("*") if p.is_file()
    }


def test_small_objects_under_a_customer_key_are_never_packed(
    shared_server: Server, s3: Any, bucket: str
) -> None:
    before = shard_files(shared_server)
    s3.put_object(Bucket=bucket, Key="keyed", Body=b"small", **ssec())
    keyed = shard_files(shared_server) - before
    assert keyed and all(re.fullmatch(r"[0-9a-f]{32}-0-\d+", name) for name in keyed), keyed
    before = shard_files(shared_server)
    s3.put_object(Bucket=bucket, Key="plain", Body=b"small")
    assert any(name.startswith("pack-") for name in shard_files(shared_server) - before)


def test_the_key_is_never_stored_or_logged(shared_server: Server, s3: Any, bucket: str) -> None:
    s3.put_object(Bucket=bucket, Key="k", Body=b"x" * 1000, **ssec())
    upload_id = s3.create_multipart_upload(Bucket=bucket, Key="m", **ssec())["UploadId"]
    s3.upload_part(Bucket=bucket, Key="m", UploadId=upload_id, PartNumber=1, Body=b"p", **ssec())
    s3.get_object(Bucket=bucket, Key="k", **ssec())
    refused(s3.get_object, Bucket=bucket, Key="k", **ssec(OTHER))
    forms = [KEY, base64.b64encode(KEY), KEY.hex().encode(), hashlib.md5(KEY).digest(),
             KEY_MD5.encode()]  # fmt: skip
    files = [p for p in shared_server.data_dir.rglob("*") if p.is_file()]
    files.append(shared_server.log)
    for path in files:
        content = path.read_bytes()
        assert not any(form in content for form in forms), path


def test_copy_needs_the_source_key_and_sets_the_targets(s3: Any, bucket: str) -> None:
    data = os.urandom(1000)
    s3.put_object(Bucket=bucket, Key="src", Body=data, **ssec())
    source = {"Bucket": bucket, "Key": "src"}
    copy = s3.copy_object
    assert refused(copy, Bucket=bucket, Key="dst", CopySource=source) == ("InvalidRequest", 400)
    assert refused(copy, Bucket=bucket, Key="dst", CopySource=source, **source_ssec(OTHER)) == (
        "InvalidArgument",
        400,
    )
    # Out of SSE-C: the target is under the organisation's keys alone.
    copy(Bucket=bucket, Key="plain", CopySource=source, **source_ssec())
    assert s3.get_object(Bucket=bucket, Key="plain")["Body"].read() == data
    # Into another customer key, onto itself: a change of encryption, allowed.
    done = copy(Bucket=bucket, Key="src", CopySource=source, **source_ssec(), **ssec(OTHER))
    assert done["SSECustomerAlgorithm"] == "AES256"
    assert s3.get_object(Bucket=bucket, Key="src", **ssec(OTHER))["Body"].read() == data
    assert refused(s3.get_object, Bucket=bucket, Key="src", **ssec()) == ("InvalidArgument", 400)
    # Out of SSE-C onto itself: a change of encryption too.
    copy(Bucket=bucket, Key="src", CopySource=source, **source_ssec(OTHER))
    assert s3.get_object(Bucket=bucket, Key="src")["Body"].read() == data
    # A plain source into a customer key.
    done = copy(Bucket=bucket, Key="keyed", CopySource={"Bucket": bucket, "Key": "plain"}, **ssec())
    assert answers_key(done)
    assert refused(s3.get_object, Bucket=bucket, Key="keyed") == ("InvalidRequest", 400)
    assert s3.get_object(Bucket=bucket, Key="keyed", **ssec())["Body"].read() == data


def test_multipart_under_a_customer_key(s3: Any, bucket: str) -> None:
    tail = os.urandom(1000)
    s3.put_object(Bucket=bucket, Key="tail", Body=tail, **ssec(OTHER))
    created = s3.create_multipart_upload(Bucket=bucket, Key="k", **ssec())
    assert answers_key(created)
    part = {"Bucket": bucket, "Key": "k", "UploadId": created["UploadId"]}
    first = os.urandom(5 * MiB + 3)
    assert refused(s3.upload_part, **part, PartNumber=1, Body=first) == ("InvalidRequest", 400)
    assert refused(s3.upload_part, **part, PartNumber=1, Body=first, **ssec(OTHER)) == (
        "InvalidArgument",
        400,
    )
    one = s3.upload_part(**part, PartNumber=1, Body=first, **ssec())
    assert answers_key(one)
    source = {"Bucket": bucket, "Key": "tail"}
    assert refused(
        s3.upload_part_copy, **part, PartNumber=2, CopySource=source, **source_ssec(OTHER)
    ) == ("InvalidRequest", 400)
    two = s3.upload_part_copy(
        **part, PartNumber=2, CopySource=source, **source_ssec(OTHER), **ssec()
    )
    assert answers_key(two)
    parts = [
        {"PartNumber": 1, "ETag": one["ETag"]},
        {"PartNumber": 2, "ETag": two["CopyPartResult"]["ETag"]},
    ]
    # Completing needs the key too (ceph/s3-tests), the upload's.
    complete = {**part, "MultipartUpload": {"Parts": parts}}
    assert refused(s3.complete_multipart_upload, **complete) == ("InvalidRequest", 400)
    assert refused(s3.complete_multipart_upload, **complete, **ssec(OTHER)) == (
        "InvalidArgument",
        400,
    )
    done = s3.complete_multipart_upload(**complete, **ssec())
    assert done["ETag"]
    got = s3.get_object(Bucket=bucket, Key="k", **ssec())
    assert got["Body"].read() == first + tail and answers_key(got)
    middle = s3.get_object(Bucket=bucket, Key="k", Range=f"bytes={5 * MiB}-{5 * MiB + 9}", **ssec())
    assert middle["Body"].read() == (first + tail)[5 * MiB : 5 * MiB + 10]
    assert refused(s3.get_object, Bucket=bucket, Key="k") == ("InvalidRequest", 400)
    assert refused(s3.get_object, Bucket=bucket, Key="k", PartNumber=2) == ("InvalidRequest", 400)


def test_post_form_upload_under_a_customer_key(shared_server: Server, s3: Any, bucket: str) -> None:
    fields = {
        "x-amz-server-side-encryption-customer-algorithm": "AES256",
        "x-amz-server-side-encryption-customer-key": base64.b64encode(KEY).decode(),
        "x-amz-server-side-encryption-customer-key-md5": KEY_MD5,
    }
    poster = shared_server.client(signature_version="s3v4")
    post = poster.generate_presigned_post(
        bucket, "k", Fields=fields, Conditions=[{n: v} for n, v in fields.items()], ExpiresIn=300
    )
    response = requests.post(
        post["url"], data=post["fields"], files={"file": ("f", b"form")}, timeout=60
    )
    assert response.status_code == 204, response.content
    assert refused(s3.get_object, Bucket=bucket, Key="k") == ("InvalidRequest", 400)
    assert s3.get_object(Bucket=bucket, Key="k", **ssec())["Body"].read() == b"form"


def test_export_reports_objects_under_a_customer_key(
    shared_server: Server, s3: Any, bucket: str, tmp_path: Path
) -> None:
    """Égide cannot read them without the key: the export names them, writes nothing of
    them, and exports the others."""
    s3.put_object(Bucket=bucket, Key="keyed", Body=b"secret", **ssec())
    s3.put_object(Bucket=bucket, Key="plain", Body=b"public")
    out = tmp_path / "out"
    result = subprocess.run(
        [sys.executable, "-m", "egide", "export", bucket, str(out), "--json",
         "--config", str(shared_server.config)],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    summary = json.loads(result.stdout)
    assert summary["objects"]["skipped"] == 1 and not summary["ok"], summary
    [skipped] = summary["skipped"]
    assert skipped["key"].startswith("keyed"), skipped
    assert "customer-provided key (SSE-C)" in skipped["problem"], skipped
    assert (out / "objects" / "plain").read_bytes() == b"public"
    assert not (out / "objects" / "keyed").exists()
    assert [
        p for p in out.rglob("*") if b"secret" in (p.read_bytes() if p.is_file() else b"")
    ] == []


def test_rotation_repair_scrub_and_rebuild_keep_them_readable_with_the_key_only(
    make_server: ServerFactory,
) -> None:
    """They work on wrapped keys as opaque bytes and on sealed pieces: none needs the
    customer key, and none makes the object readable without it."""
    server = make_server("code = { k = 4, m = 2 }\n" + _sites(8) + NO_SCHEDULE)
    s3 = server.client()
    s3.create_bucket(Bucket="keyed")
    bodies = {"small": os.urandom(1000), "big": os.urandom(3 * MiB)}
    for name, data in bodies.items():
        s3.put_object(Bucket="keyed", Key=name, Body=data, **ssec())
    parts = [os.urandom(5 * MiB), os.urandom(100)]
    upload_id = s3.create_multipart_upload(Bucket="keyed", Key="parts", **ssec())["UploadId"]
    done = [
        {"PartNumber": n, "ETag": s3.upload_part(Bucket="keyed", Key="parts", UploadId=upload_id,
                                                 PartNumber=n, Body=data, **ssec())["ETag"]}
        for n, data in enumerate(parts, start=1)
    ]  # fmt: skip
    s3.complete_multipart_upload(
        Bucket="keyed", Key="parts", UploadId=upload_id, MultipartUpload={"Parts": done}, **ssec()
    )
    bodies["parts"] = b"".join(parts)

    def check() -> None:
        s3 = server.client()
        for name, data in bodies.items():
            assert s3.get_object(Bucket="keyed", Key=name, **ssec())["Body"].read() == data, name
            assert refused(s3.get_object, Bucket="keyed", Key=name) == ("InvalidRequest", 400)
            assert refused(s3.get_object, Bucket="keyed", Key=name, **ssec(OTHER))[1] == 400

    rotated = egide(server, "keys", "rotate-bucket", "keyed")
    assert rotated.returncode == 0 and "data keys rewrapped" in rotated.stdout, rotated.stderr
    check()
    shutil.rmtree(server.data_dir / "sites" / "disk-0")
    repaired = egide(server, "repair")
    assert repaired.returncode == 0, repaired.stdout + repaired.stderr
    scrubbed = egide(server, "scrub", "--json")
    assert scrubbed.returncode == 0, scrubbed.stdout + scrubbed.stderr
    assert json.loads(scrubbed.stdout)["progress"].get("bad_pieces", 0) == 0
    check()
    server.stop()
    for suffix in ("", "-wal", "-shm"):
        (server.data_dir / f"catalog.sqlite3{suffix}").unlink(missing_ok=True)
    rebuilt = egide(server, "catalog", "rebuild", "--force", "--allow-unreachable", "--json")
    assert rebuilt.returncode == 0, rebuilt.stdout + rebuilt.stderr
    assert json.loads(rebuilt.stdout)["unrecoverable"] == []
    server.start()
    check()
