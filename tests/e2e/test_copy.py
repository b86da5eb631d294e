"""CopyObject and UploadPartCopy through boto3 against a real server."""

from __future__ import annotations

import base64
import hashlib
import os
import zlib
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from boto3.s3.transfer import TransferConfig
from botocore.exceptions import ClientError
from tests.e2e.test_multipart import upload
from tests.e2e.test_objects import error_of

MiB = 1024 * 1024


@pytest.mark.parametrize("size", [0, 10, 3 * MiB + 1])
def test_copy_within_and_across_buckets(s3: Any, bucket: str, size: int) -> None:
    data = os.urandom(size)
    s3.put_object(
        Bucket=bucket, Key="src", Body=data, ContentType="text/csv", Metadata={"owner": "ana"}
    )
    s3.create_bucket(Bucket=f"{bucket}-other")
    for target_bucket in (bucket, f"{bucket}-other"):
        result = s3.copy_object(
            Bucket=target_bucket, Key="dst", CopySource={"Bucket": bucket, "Key": "src"}
        )["CopyObjectResult"]
        assert result["ETag"] == f'"{hashlib.md5(data).hexdigest()}"'
        got = s3.get_object(Bucket=target_bucket, Key="dst")
        assert got["Body"].read() == data
        assert got["ContentType"] == "text/csv"
        assert got["Metadata"] == {"owner": "ana"}
    # The source is untouched.
    assert s3.get_object(Bucket=bucket, Key="src")["Body"].read() == data


def test_metadata_directive_replace_and_copy_onto_itself(s3: Any, bucket: str) -> None:
    s3.put_object(Bucket=bucket, Key="k", Body=b"same", Metadata={"v": "1"})
    with pytest.raises(ClientError) as exc:
        s3.copy_object(Bucket=bucket, Key="k", CopySource={"Bucket": bucket, "Key": "k"})
    assert error_of(exc) == ("InvalidRequest", 400)
    s3.copy_object(
        Bucket=bucket, Key="k", CopySource={"Bucket": bucket, "Key": "k"},
        MetadataDirective="REPLACE", Metadata={"v": "2"}, ContentType="text/plain",
    )  # fmt: skip
    got = s3.get_object(Bucket=bucket, Key="k")
    assert (got["Metadata"], got["ContentType"], got["Body"].read()) == (
        {"v": "2"}, "text/plain", b"same",
    )  # fmt: skip
    # REPLACE without new metadata leaves none of the old.
    s3.copy_object(
        Bucket=bucket, Key="k2", CopySource={"Bucket": bucket, "Key": "k"},
        MetadataDirective="REPLACE",
    )  # fmt: skip
    assert s3.head_object(Bucket=bucket, Key="k2")["Metadata"] == {}


def test_copy_source_conditions(s3: Any, bucket: str) -> None:
    etag = s3.put_object(Bucket=bucket, Key="src", Body=b"x")["ETag"]
    source = {"Bucket": bucket, "Key": "src"}
    future = datetime.now(UTC) + timedelta(days=1)
    past = datetime.now(UTC) - timedelta(days=1)
    accepted = [
        {"CopySourceIfMatch": etag},
        {"CopySourceIfNoneMatch": '"other"'},
        {"CopySourceIfModifiedSince": past},
        {"CopySourceIfUnmodifiedSince": future},
    ]
    refused = [
        {"CopySourceIfMatch": '"other"'},
        {"CopySourceIfNoneMatch": etag},
        {"CopySourceIfModifiedSince": future},
        {"CopySourceIfUnmodifiedSince": past},
    ]
    for condition in accepted:
        s3.copy_object(Bucket=bucket, Key="dst", CopySource=source, **condition)
    for condition in refused:
        with pytest.raises(ClientError) as exc:
            s3.copy_object(Bucket=bucket, Key="dst", CopySource=source, **condition)
        assert error_of(exc) == ("PreconditionFailed", 412), condition


def test_copy_errors(s3: Any, bucket: str) -> None:
    with pytest.raises(ClientError) as exc:
        s3.copy_object(Bucket=bucket, Key="d", CopySource={"Bucket": bucket, "Key": "missing"})
    assert error_of(exc) == ("NoSuchKey", 404)
    with pytest.raises(ClientError) as exc:
        s3.copy_object(Bucket=bucket, Key="d", CopySource={"Bucket": "no-such-b", "Key": "k"})
    assert error_of(exc) == ("NoSuchBucket", 404)
    s3.put_object(Bucket=bucket, Key="k", Body=b"x")
    with pytest.raises(ClientError) as exc:
        s3.copy_object(
            Bucket=bucket, Key="d", CopySource={"Bucket": bucket, "Key": "k", "VersionId": "v1"}
        )
    assert error_of(exc) == ("InvalidArgument", 400)  # not an id Égide could have issued
    missing = {"Bucket": bucket, "Key": "k", "VersionId": "0" * 32}
    with pytest.raises(ClientError) as exc:
        s3.copy_object(Bucket=bucket, Key="d", CopySource=missing)
    assert error_of(exc) == ("NoSuchVersion", 404)
    copied = s3.copy_object(
        Bucket=bucket, Key="d", CopySource={"Bucket": bucket, "Key": "k", "VersionId": "null"}
    )
    assert copied["CopyObjectResult"]["ETag"] == f'"{hashlib.md5(b"x").hexdigest()}"'


def test_copy_of_a_multipart_object_is_one_piece(s3: Any, bucket: str) -> None:
    parts = [os.urandom(5 * MiB), os.urandom(100)]
    upload(s3, bucket, "mp", parts)
    result = s3.copy_object(Bucket=bucket, Key="cp", CopySource={"Bucket": bucket, "Key": "mp"})
    whole = b"".join(parts)
    assert result["CopyObjectResult"]["ETag"] == f'"{hashlib.md5(whole).hexdigest()}"'
    assert s3.get_object(Bucket=bucket, Key="cp")["Body"].read() == whole


def test_upload_part_copy_with_ranges(s3: Any, bucket: str) -> None:
    data = os.urandom(12 * MiB)
    s3.put_object(Bucket=bucket, Key="src", Body=data)
    upload_id = s3.create_multipart_upload(Bucket=bucket, Key="assembled")["UploadId"]
    ranges = [(0, 6 * MiB - 1), (6 * MiB, 12 * MiB - 1), (5, 9)]
    done = []
    for number, (first, last) in enumerate(ranges, start=1):
        result = s3.upload_part_copy(
            Bucket=bucket, Key="assembled", UploadId=upload_id, PartNumber=number,
            CopySource={"Bucket": bucket, "Key": "src"}, CopySourceRange=f"bytes={first}-{last}",
        )["CopyPartResult"]  # fmt: skip
        assert result["ETag"] == f'"{hashlib.md5(data[first : last + 1]).hexdigest()}"'
        done.append({"PartNumber": number, "ETag": result["ETag"]})
    s3.complete_multipart_upload(
        Bucket=bucket, Key="assembled", UploadId=upload_id, MultipartUpload={"Parts": done}
    )
    expected = b"".join(data[a : b + 1] for a, b in ranges)
    assert s3.get_object(Bucket=bucket, Key="assembled")["Body"].read() == expected
    # A whole-object part copy, and a range past the end.
    upload_id = s3.create_multipart_upload(Bucket=bucket, Key="again")["UploadId"]
    whole = s3.upload_part_copy(
        Bucket=bucket, Key="again", UploadId=upload_id, PartNumber=1,
        CopySource={"Bucket": bucket, "Key": "src"},
    )["CopyPartResult"]  # fmt: skip
    assert whole["ETag"] == f'"{hashlib.md5(data).hexdigest()}"'
    with pytest.raises(ClientError) as exc:
        s3.upload_part_copy(
            Bucket=bucket, Key="again", UploadId=upload_id, PartNumber=2,
            CopySource={"Bucket": bucket, "Key": "src"}, CopySourceRange=f"bytes=0-{12 * MiB}",
        )  # fmt: skip
    assert error_of(exc) == ("InvalidRange", 416)


def test_boto3_managed_copy_uses_part_copies(s3: Any, bucket: str) -> None:
    """s3.copy() (the transfer manager) splits a large source into UploadPartCopy calls."""
    data = os.urandom(11 * MiB)
    s3.put_object(Bucket=bucket, Key="src", Body=data)
    config = TransferConfig(multipart_threshold=5 * MiB, multipart_chunksize=5 * MiB)
    s3.copy({"Bucket": bucket, "Key": "src"}, bucket, "managed", Config=config)
    head = s3.head_object(Bucket=bucket, Key="managed")
    assert head["ETag"].endswith('-3"')
    assert s3.get_object(Bucket=bucket, Key="managed")["Body"].read() == data


def test_upload_part_copy_computes_the_part_checksum(s3: Any, bucket: str) -> None:
    data = os.urandom(6 * 1024 * 1024)
    s3.put_object(Bucket=bucket, Key="src", Body=data)
    upload = s3.create_multipart_upload(
        Bucket=bucket, Key="dst", ChecksumAlgorithm="CRC32", ChecksumType="FULL_OBJECT"
    )["UploadId"]
    copied = s3.upload_part_copy(
        Bucket=bucket, Key="dst", UploadId=upload, PartNumber=1,
        CopySource={"Bucket": bucket, "Key": "src"}, CopySourceRange="bytes=0-5242879",
    )["CopyPartResult"]  # fmt: skip
    expected = base64.b64encode(zlib.crc32(data[: 5 * 1024 * 1024]).to_bytes(4, "big")).decode()
    assert copied["ChecksumCRC32"] == expected
