"""Bucket and account quotas on a real server (decision 0033): set through the admin API and the
CLI, enforced before a write sends a byte (403 QuotaExceeded), nothing stored past them."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from typing import Any

import pytest
from botocore.exceptions import ClientError
from tests.conftest import Server, ServerFactory
from tests.e2e.test_admin_api import admin, answer
from tests.e2e.test_auth import _streaming_signed_put, send
from tests.e2e.test_objects import error_of

pytestmark = pytest.mark.timeout(180)
MiB = 1024 * 1024


@pytest.fixture
def server(make_server: ServerFactory) -> Server:
    return make_server("workers = 1\n")


def egide(server: Server, *args: str) -> Any:
    done = subprocess.run(
        [sys.executable, "-m", "egide", *args, "--json", "--config", str(server.config)],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def put_quota(server: Server, path: str, **quota: int | None) -> Any:
    return answer(admin(server, "PUT", path, json.dumps(quota).encode()))


def refused(call: Any, **params: Any) -> str:
    with pytest.raises(ClientError) as exc:
        call(**params)
    assert error_of(exc) == ("QuotaExceeded", 403)
    return str(exc.value.response["Error"]["Message"])


def keys(s3: Any, bucket: str) -> list[str]:
    return [o["Key"] for o in s3.list_objects_v2(Bucket=bucket).get("Contents", [])]


def test_bucket_byte_quota_refuses_a_put_past_it(server: Server) -> None:
    s3 = server.client()
    s3.create_bucket(Bucket="quota-b")
    path = "/_egide/admin/buckets/quota-b/quota"
    shown = put_quota(server, path, max_bytes=1000, max_objects=None)
    assert shown["quota"] == {"max_bytes": 1000, "max_objects": None}
    s3.put_object(Bucket="quota-b", Key="a", Body=b"x" * 600)
    message = refused(s3.put_object, Bucket="quota-b", Key="big", Body=b"x" * 401)
    assert "1000" in message and "600" in message and "bucket quota-b" in message
    assert keys(s3, "quota-b") == ["a"]
    assert answer(admin(server, "GET", path))["usage"] == {"bytes": 600, "objects": 1}
    s3.put_object(Bucket="quota-b", Key="fits", Body=b"x" * 400)  # exactly at the quota
    # A copy counts as the write it is.
    refused(s3.copy_object, Bucket="quota-b", Key="c", CopySource={"Bucket": "quota-b", "Key": "a"})
    assert sorted(keys(s3, "quota-b")) == ["a", "fits"]
    # Removed, the quota no longer holds anything back.
    assert answer(admin(server, "DELETE", path))["quota"] == {
        "max_bytes": None,
        "max_objects": None,
    }
    s3.put_object(Bucket="quota-b", Key="big", Body=b"x" * 401)


def test_streamed_bodies_are_held_to_the_quota(server: Server) -> None:
    """An aws-chunked body announces its decoded length: one past the quota is refused before
    a chunk is read; one that sends more than it announced is refused by the store, and in
    neither case is anything stored. A body with no length at all is refused (411)."""
    s3 = server.client()
    s3.create_bucket(Bucket="quota-s")
    put_quota(server, "/_egide/admin/buckets/quota-s/quota", max_bytes=100 * 1024)
    data = bytes(range(256)) * 800  # 200 KiB
    reply = _streaming_signed_put(server, "/quota-s/big", data)
    reply.expect_error(403, "QuotaExceeded")
    reply = _streaming_signed_put(server, "/quota-s/liar", data, decoded_length=1000)
    assert reply.status >= 400, reply.body
    reply = send(server, "PUT", "/quota-s/nolength", {"Transfer-Encoding": "chunked"}, b"")
    assert reply.status in (400, 403, 411), reply.body
    assert keys(s3, "quota-s") == []
    usage = answer(admin(server, "GET", "/_egide/admin/buckets/quota-s/quota"))["usage"]
    assert usage == {"bytes": 0, "objects": 0}


def test_object_quota_and_multipart_parts(server: Server) -> None:
    s3 = server.client()
    s3.create_bucket(Bucket="quota-b")
    put_quota(server, "/_egide/admin/buckets/quota-b/quota", max_objects=2)
    s3.put_object(Bucket="quota-b", Key="1", Body=b"1")
    s3.put_object(Bucket="quota-b", Key="2", Body=b"2")
    message = refused(s3.put_object, Bucket="quota-b", Key="3", Body=b"3")
    assert "object quota" in message and "2" in message
    upload = s3.create_multipart_upload(Bucket="quota-b", Key="m")["UploadId"]
    part = s3.upload_part(Bucket="quota-b", Key="m", UploadId=upload, PartNumber=1, Body=b"p" * MiB)
    done = {"Parts": [{"PartNumber": 1, "ETag": part["ETag"]}]}
    refused(s3.complete_multipart_upload, Bucket="quota-b", Key="m", UploadId=upload,
            MultipartUpload=done)  # fmt: skip
    assert sorted(keys(s3, "quota-b")) == ["1", "2"]
    # Parts count as they are written: a byte quota stops the next part.
    put_quota(server, "/_egide/admin/buckets/quota-b/quota", max_bytes=MiB + 10)
    refused(
        s3.upload_part, Bucket="quota-b", Key="m", UploadId=upload, PartNumber=2, Body=b"p" * 100
    )
    listed = s3.list_parts(Bucket="quota-b", Key="m", UploadId=upload)["Parts"]
    assert [p["PartNumber"] for p in listed] == [1]
    s3.abort_multipart_upload(Bucket="quota-b", Key="m", UploadId=upload)
    assert answer(admin(server, "GET", "/_egide/admin/buckets/quota-b/quota"))["usage"] == {
        "bytes": 2,
        "objects": 2,
    }


def test_account_quota_spans_buckets(server: Server) -> None:
    s3 = server.client()
    s3.create_bucket(Bucket="one-b")
    s3.create_bucket(Bucket="two-b")
    shown = put_quota(server, "/_egide/admin/account/quota", max_bytes=100)
    assert shown["quota"]["max_bytes"] == 100
    s3.put_object(Bucket="one-b", Key="a", Body=b"x" * 60)
    message = refused(s3.put_object, Bucket="two-b", Key="b", Body=b"x" * 41)
    assert "the account" in message
    assert keys(s3, "two-b") == []
    account = answer(admin(server, "GET", "/_egide/admin/account/quota"))
    assert account["usage"] == {"bytes": 60, "objects": 1}
    answer(admin(server, "DELETE", "/_egide/admin/account/quota"))
    s3.put_object(Bucket="two-b", Key="b", Body=b"x" * 41)


def test_cli_sets_and_shows_quotas(server: Server) -> None:
    s3 = server.client()
    s3.create_bucket(Bucket="quota-b")
    s3.put_object(Bucket="quota-b", Key="a", Body=b"x" * 10)
    shown = egide(server, "bucket", "quota", "quota-b", "--max-bytes", "1KiB", "--max-objects", "5")
    assert shown == {
        "bucket": "quota-b",
        "quota": {"max_bytes": 1024, "max_objects": 5},
        "usage": {"bytes": 10, "objects": 1},
    }
    assert egide(server, "bucket", "show", "quota-b")["quota"]["max_bytes"] == 1024
    time.sleep(1.5)  # the gateway's bucket_cache_seconds
    refused(server.client().put_object, Bucket="quota-b", Key="big", Body=b"x" * 1015)
    assert egide(server, "bucket", "quota", "quota-b", "--clear")["quota"]["max_bytes"] is None
    account = egide(server, "account", "quota", "--max-objects", "7")
    assert account == {
        "quota": {"max_bytes": None, "max_objects": 7},
        "usage": {"bytes": 10, "objects": 1},
    }
    assert answer(admin(server, "GET", "/_egide/admin/account/quota"))["quota"]["max_objects"] == 7
