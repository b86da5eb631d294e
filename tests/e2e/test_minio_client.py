"""A second S3 client, the MinIO Python SDK, drives a real server end to end.

It signs differently from botocore (its own SigV4 code, a signed SHA-256 payload over plain
HTTP, Content-MD5 on its XML requests, GetBucketLocation before a bucket's first call, three
threads uploading parts at once), so it catches what boto3 alone would let through.
"""

from __future__ import annotations

import hashlib
import io
import os
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import Any

import pytest
from minio import Minio
from minio.commonconfig import ComposeSource, CopySource, Tags
from minio.deleteobjects import DeleteObject
from minio.error import S3Error
from tests.conftest import ACCESS_KEY, SECRET_KEY, Server

MiB = 1024 * 1024
PART = 5 * MiB


class TrickleStream(io.RawIOBase):
    """A non-seekable stream of unknown length that hands out at most 64 KiB a read, as a
    socket or a pipe does: the SDK has to assemble its parts itself."""

    def __init__(self, data: bytes) -> None:
        self._data = memoryview(data)
        self._offset = 0

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        size = len(self._data) if size < 0 else min(size, 64 * 1024)
        chunk = bytes(self._data[self._offset : self._offset + size])
        self._offset += len(chunk)
        return chunk


@pytest.fixture
def mc(shared_server: Server) -> Minio:
    # No region: the SDK asks GetBucketLocation for each bucket, which Égide answers too.
    return Minio(
        f"127.0.0.1:{shared_server.port}",
        access_key=ACCESS_KEY,
        secret_key=SECRET_KEY,
        secure=False,
    )


@pytest.fixture
def mbucket(mc: Minio, request: pytest.FixtureRequest) -> str:
    """A fresh bucket named after the test, made by the SDK."""
    name = "mc-" + "".join(c if c.isalnum() else "-" for c in request.node.name.lower())[:40]
    name = name.strip("-") + f"-{os.urandom(3).hex()}"
    mc.make_bucket(name)
    return name


def read_all(response: Any) -> bytes:
    try:
        return bytes(response.read())
    finally:
        response.close()
        response.release_conn()


def test_make_bucket_exists_and_is_listed(mc: Minio) -> None:
    name = f"mc-made-{os.urandom(3).hex()}"
    assert not mc.bucket_exists(name)
    mc.make_bucket(name)
    assert mc.bucket_exists(name)
    assert name in [b.name for b in mc.list_buckets()]
    mc.remove_bucket(name)
    assert not mc.bucket_exists(name)


def test_small_object_from_a_stream_stat_and_get(mc: Minio, mbucket: str) -> None:
    data = os.urandom(300_000)
    written = mc.put_object(
        mbucket, "docs/small.bin", TrickleStream(data), len(data),
        content_type="application/x-test", metadata={"colour": "bleu"},
    )  # fmt: skip
    assert written.etag == hashlib.md5(data).hexdigest()
    stat = mc.stat_object(mbucket, "docs/small.bin")
    assert (stat.size, stat.etag, stat.content_type) == (
        len(data), written.etag, "application/x-test",
    )  # fmt: skip
    assert stat.metadata["x-amz-meta-colour"] == "bleu"
    assert read_all(mc.get_object(mbucket, "docs/small.bin")) == data
    ranged = mc.get_object(mbucket, "docs/small.bin", offset=1000, length=5000)
    assert ranged.status == 206
    assert read_all(ranged) == data[1000:6000]
    tail = mc.get_object(mbucket, "docs/small.bin", offset=len(data) - 10)
    assert read_all(tail) == data[-10:]


def test_large_object_of_unknown_length_goes_multipart(mc: Minio, mbucket: str) -> None:
    data = os.urandom(2 * PART + MiB + 7)  # three parts, the last one short
    written = mc.put_object(mbucket, "big.bin", TrickleStream(data), -1, part_size=PART)
    # The ETag of a multipart object: MD5 of the parts' MD5s, dash, part count.
    digests = b"".join(hashlib.md5(data[i : i + PART]).digest() for i in range(0, len(data), PART))
    assert written.etag == f"{hashlib.md5(digests).hexdigest()}-3"
    stat = mc.stat_object(mbucket, "big.bin")
    assert (stat.size, stat.etag) == (len(data), written.etag)
    assert read_all(mc.get_object(mbucket, "big.bin")) == data
    across = mc.get_object(mbucket, "big.bin", offset=PART - 100, length=PART + 200)
    assert read_all(across) == data[PART - 100 : 2 * PART + 100]


def test_copy_object_and_compose(mc: Minio, mbucket: str) -> None:
    data = os.urandom(PART + 1234)
    mc.put_object(mbucket, "src", io.BytesIO(data), len(data), metadata={"origin": "src"})
    copied = mc.copy_object(mbucket, "dst", CopySource(mbucket, "src"))
    assert copied.etag == hashlib.md5(data).hexdigest()
    assert read_all(mc.get_object(mbucket, "dst")) == data
    assert mc.stat_object(mbucket, "dst").metadata["x-amz-meta-origin"] == "src"
    # compose_object is a multipart upload whose parts are UploadPartCopy of the sources.
    mc.compose_object(
        mbucket, "joined", [ComposeSource(mbucket, "src"), ComposeSource(mbucket, "dst")]
    )
    assert read_all(mc.get_object(mbucket, "joined")) == data + data
    assert mc.stat_object(mbucket, "joined").etag.endswith("-2")


def test_list_objects_recursive_and_by_level(mc: Minio, mbucket: str) -> None:
    keys = ["a.txt", "dir/b.txt", "dir/sub/c.txt", "dir/sub/d.txt", "zeta/e.txt"]
    for key in keys:
        mc.put_object(mbucket, key, io.BytesIO(key.encode()), len(key))
    everything = list(mc.list_objects(mbucket, recursive=True))
    assert [o.object_name for o in everything] == keys
    assert [o.size for o in everything] == [len(k) for k in keys]
    top = list(mc.list_objects(mbucket))
    assert [(o.object_name, o.is_dir) for o in top] == [
        ("a.txt", False), ("dir/", True), ("zeta/", True),
    ]  # fmt: skip
    level = list(mc.list_objects(mbucket, prefix="dir/"))
    assert [(o.object_name, o.is_dir) for o in level] == [("dir/b.txt", False), ("dir/sub/", True)]
    v1 = list(mc.list_objects(mbucket, prefix="dir/sub/", use_api_v1=True))
    assert [o.object_name for o in v1] == ["dir/sub/c.txt", "dir/sub/d.txt"]


def test_list_objects_pages_through_continuation_tokens(mc: Minio, mbucket: str) -> None:
    # The SDK asks for pages of 1,000 and follows NextContinuationToken until IsTruncated is
    # false: 1,003 keys make it go round twice.
    keys = [f"k{n:04d}" for n in range(1003)]
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda key: mc.put_object(mbucket, key, io.BytesIO(b"x"), 1), keys))
    assert [o.object_name for o in mc.list_objects(mbucket, recursive=True)] == keys
    assert [o.object_name for o in mc.list_objects(mbucket, start_after="k0997")] == keys[998:]


def test_remove_objects_in_one_batch(mc: Minio, mbucket: str) -> None:
    keys = [f"del/{n}" for n in range(12)]
    for key in keys:
        mc.put_object(mbucket, key, io.BytesIO(b"gone"), 4)
    mc.put_object(mbucket, "kept", io.BytesIO(b"kept"), 4)
    errors = list(mc.remove_objects(mbucket, [DeleteObject(k) for k in [*keys, "never-was"]]))
    assert errors == []  # deleting a missing key is a success in S3
    assert [o.object_name for o in mc.list_objects(mbucket, recursive=True)] == ["kept"]
    mc.remove_object(mbucket, "kept")
    with pytest.raises(S3Error) as exc:
        mc.stat_object(mbucket, "kept")
    assert exc.value.code == "NoSuchKey"


def test_presigned_get_is_fetched_by_a_plain_http_client(mc: Minio, mbucket: str) -> None:
    data = os.urandom(4096)
    mc.put_object(mbucket, "shared/report.bin", io.BytesIO(data), len(data))
    url = mc.presigned_get_object(mbucket, "shared/report.bin", expires=timedelta(minutes=5))
    with urllib.request.urlopen(url, timeout=10) as reply:
        assert reply.status == 200
        assert reply.read() == data
    # The signature covers the key: pointing the same query at another object is refused.
    forged = url.replace("shared/report.bin", "shared/other.bin")
    with pytest.raises(urllib.error.HTTPError) as exc:
        urllib.request.urlopen(forged, timeout=10)
    assert exc.value.code == 403
    assert b"<Code>SignatureDoesNotMatch</Code>" in exc.value.read()


def test_presigned_put_then_get(mc: Minio, mbucket: str) -> None:
    url = mc.presigned_put_object(mbucket, "dropped.txt", expires=timedelta(minutes=5))
    request = urllib.request.Request(url, data=b"dropped in", method="PUT")
    with urllib.request.urlopen(request, timeout=10) as reply:
        assert reply.status == 200
    assert read_all(mc.get_object(mbucket, "dropped.txt")) == b"dropped in"


def test_bucket_and_object_tags(mc: Minio, mbucket: str) -> None:
    assert mc.get_bucket_tags(mbucket) is None
    bucket_tags = Tags.new_bucket_tags()
    bucket_tags["project"] = "égide"
    bucket_tags["cost-centre"] = "42"
    mc.set_bucket_tags(mbucket, bucket_tags)
    assert dict(mc.get_bucket_tags(mbucket) or {}) == {"project": "égide", "cost-centre": "42"}
    mc.delete_bucket_tags(mbucket)
    assert mc.get_bucket_tags(mbucket) is None

    object_tags = Tags.new_object_tags()
    object_tags["state"] = "draft"
    mc.put_object(mbucket, "tagged", io.BytesIO(b"t"), 1, tags=object_tags)
    assert dict(mc.get_object_tags(mbucket, "tagged") or {}) == {"state": "draft"}
    object_tags["state"] = "final"
    mc.set_object_tags(mbucket, "tagged", object_tags)
    assert dict(mc.get_object_tags(mbucket, "tagged") or {}) == {"state": "final"}
    mc.delete_object_tags(mbucket, "tagged")
    assert mc.get_object_tags(mbucket, "tagged") is None


def test_errors_reach_the_sdk_as_s3_codes(mc: Minio, mbucket: str, shared_server: Server) -> None:
    with pytest.raises(S3Error) as exc:
        mc.get_object(mbucket, "missing")
    assert (exc.value.code, exc.value.response.status) == ("NoSuchKey", 404)
    with pytest.raises(S3Error) as exc:
        mc.stat_object(f"mc-no-such-bucket-{os.urandom(3).hex()}", "k")
    # The SDK asks the missing bucket's location first: GetBucketLocation says NoSuchBucket.
    assert (exc.value.code, exc.value.response.status) == ("NoSuchBucket", 404)
    wrong = Minio(
        f"127.0.0.1:{shared_server.port}",
        access_key=ACCESS_KEY,
        secret_key="not-the-secret",
        secure=False,
        region="us-east-1",
    )
    with pytest.raises(S3Error) as exc:
        wrong.list_objects(mbucket).__next__()
    assert exc.value.code == "SignatureDoesNotMatch"


def test_versioning_through_the_sdk(mc: Minio, mbucket: str) -> None:
    from minio.commonconfig import ENABLED
    from minio.versioningconfig import VersioningConfig

    mc.set_bucket_versioning(mbucket, VersioningConfig(ENABLED))
    assert mc.get_bucket_versioning(mbucket).status == ENABLED
    first = mc.put_object(mbucket, "k", io.BytesIO(b"one"), 3).version_id
    second = mc.put_object(mbucket, "k", io.BytesIO(b"two"), 3).version_id
    assert first and second and first != second
    assert read_all(mc.get_object(mbucket, "k", version_id=first)) == b"one"
    mc.remove_object(mbucket, "k")  # a delete marker
    listed = list(mc.list_objects(mbucket, include_version=True))
    # The SDK yields versions, then delete markers (it reads the two element kinds apart).
    versions = [(o.version_id, o.is_latest) for o in listed if not o.is_delete_marker]
    markers = [(o.version_id, o.is_latest) for o in listed if o.is_delete_marker]
    assert versions == [(second, "false"), (first, "false")]
    assert len(markers) == 1 and markers[0][1] == "true"
    with pytest.raises(S3Error) as exc:
        mc.stat_object(mbucket, "k")
    assert exc.value.code == "NoSuchKey"
    mc.remove_object(mbucket, "k", version_id=markers[0][0])
    assert read_all(mc.get_object(mbucket, "k")) == b"two"


def test_object_lock_through_the_sdk(mc: Minio) -> None:
    from datetime import UTC, datetime

    from minio.commonconfig import COMPLIANCE, GOVERNANCE
    from minio.objectlockconfig import DAYS, ObjectLockConfig
    from minio.retention import Retention

    name = f"m-lock-{os.urandom(4).hex()}"
    mc.make_bucket(name, object_lock=True)
    mc.set_object_lock_config(name, ObjectLockConfig(GOVERNANCE, 1, DAYS))
    assert mc.get_object_lock_config(name).mode == GOVERNANCE
    until = datetime.now(UTC).replace(microsecond=0) + timedelta(hours=1)
    written = mc.put_object(
        name, "k", io.BytesIO(b"x"), 1, retention=Retention(COMPLIANCE, until), legal_hold=True
    )
    retention = mc.get_object_retention(name, "k", version_id=written.version_id)
    assert (retention.mode, retention.retain_until_date) == (COMPLIANCE, until)
    assert mc.is_object_legal_hold_enabled(name, "k", version_id=written.version_id)
    with pytest.raises(S3Error) as exc:
        mc.remove_object(name, "k", version_id=written.version_id)
    assert exc.value.code == "AccessDenied"


def test_lifecycle_configuration_through_the_sdk(mc: Minio, mbucket: str) -> None:
    from minio.commonconfig import ENABLED, Filter
    from minio.lifecycleconfig import Expiration, LifecycleConfig, Rule

    config = LifecycleConfig(
        [
            Rule(
                ENABLED,
                rule_filter=Filter(prefix="logs/"),
                rule_id="logs",
                expiration=Expiration(days=30),
            )
        ]
    )
    mc.set_bucket_lifecycle(mbucket, config)
    stored = mc.get_bucket_lifecycle(mbucket)
    assert stored is not None
    rule = stored.rules[0]
    assert (rule.rule_id, rule.rule_filter.prefix, rule.expiration.days) == ("logs", "logs/", 30)
    mc.delete_bucket_lifecycle(mbucket)
    assert mc.get_bucket_lifecycle(mbucket) is None
