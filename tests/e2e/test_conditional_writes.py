"""Conditional writes through boto3: If-None-Match: * and If-Match on PutObject and
CompleteMultipartUpload, decided in the catalog so racing writers cannot both win."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from botocore.exceptions import ClientError
from tests.e2e.test_versioning import error_of


def test_if_none_match_creates_only(s3: Any, bucket: str) -> None:
    s3.put_object(Bucket=bucket, Key="k", Body=b"first", IfNoneMatch="*")
    with pytest.raises(ClientError) as exc:
        s3.put_object(Bucket=bucket, Key="k", Body=b"second", IfNoneMatch="*")
    assert error_of(exc) == ("PreconditionFailed", 412)
    assert s3.get_object(Bucket=bucket, Key="k")["Body"].read() == b"first"
    # A deleted key can be created again.
    s3.delete_object(Bucket=bucket, Key="k")
    s3.put_object(Bucket=bucket, Key="k", Body=b"again", IfNoneMatch="*")


def test_if_match_replaces_only_that_etag(s3: Any, bucket: str) -> None:
    etag = s3.put_object(Bucket=bucket, Key="k", Body=b"v1")["ETag"]
    with pytest.raises(ClientError) as exc:
        s3.put_object(Bucket=bucket, Key="k", Body=b"v2", IfMatch='"0123456789abcdef"')
    assert error_of(exc) == ("PreconditionFailed", 412)
    s3.put_object(Bucket=bucket, Key="k", Body=b"v2", IfMatch=etag)
    assert s3.get_object(Bucket=bucket, Key="k")["Body"].read() == b"v2"
    with pytest.raises(ClientError) as exc:
        s3.put_object(Bucket=bucket, Key="absent", Body=b"x", IfMatch=etag)
    assert error_of(exc) == ("NoSuchKey", 404)


@pytest.mark.parametrize("size", [1024, 2 * 1024 * 1024], ids=["packed", "streamed"])
def test_racing_create_only_writers(s3: Any, bucket: str, size: int) -> None:
    def put(i: int) -> str:
        try:
            s3.put_object(Bucket=bucket, Key="race", Body=bytes([i]) * size, IfNoneMatch="*")
        except ClientError as exc:
            return str(exc.response["Error"]["Code"])
        return f"won-{i}"

    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(put, range(8)))
    winners = [r for r in results if r.startswith("won-")]
    assert len(winners) == 1, results
    assert sorted(set(results) - set(winners)) == ["PreconditionFailed"]
    winner = int(winners[0].split("-")[1])
    assert s3.get_object(Bucket=bucket, Key="race")["Body"].read() == bytes([winner]) * size


def test_complete_multipart_if_none_match(s3: Any, bucket: str) -> None:
    s3.put_object(Bucket=bucket, Key="k", Body=b"existing")
    upload = s3.create_multipart_upload(Bucket=bucket, Key="k")["UploadId"]
    part = s3.upload_part(Bucket=bucket, Key="k", UploadId=upload, PartNumber=1, Body=b"p")
    parts = {"Parts": [{"PartNumber": 1, "ETag": part["ETag"]}]}
    with pytest.raises(ClientError) as exc:
        s3.complete_multipart_upload(
            Bucket=bucket, Key="k", UploadId=upload, MultipartUpload=parts, IfNoneMatch="*"
        )
    assert error_of(exc) == ("PreconditionFailed", 412)
    # The upload is still there: completing without the condition works.
    s3.complete_multipart_upload(Bucket=bucket, Key="k", UploadId=upload, MultipartUpload=parts)
    assert s3.get_object(Bucket=bucket, Key="k")["Body"].read() == b"p"


def test_if_none_match_with_an_etag(s3: Any, bucket: str) -> None:
    """Replace only if the current object is not that one (absent counts as not)."""
    etag = s3.put_object(Bucket=bucket, Key="k", Body=b"x", IfNoneMatch='"abc"')["ETag"]
    with pytest.raises(ClientError) as exc:
        s3.put_object(Bucket=bucket, Key="k", Body=b"y", IfNoneMatch=etag)
    assert error_of(exc) == ("PreconditionFailed", 412)
    s3.put_object(Bucket=bucket, Key="k", Body=b"z", IfNoneMatch='"0123"')
    assert s3.get_object(Bucket=bucket, Key="k")["Body"].read() == b"z"
