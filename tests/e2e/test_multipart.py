"""Multipart upload through boto3 against a real server: the whole API and its errors."""

from __future__ import annotations

import base64
import hashlib
import os
import zlib
from pathlib import Path
from typing import Any

import pytest
from boto3.s3.transfer import TransferConfig
from botocore.exceptions import ClientError
from tests.e2e.test_objects import error_of

MiB = 1024 * 1024


def md5_etag(parts: list[bytes]) -> str:
    digest = hashlib.md5(b"".join(hashlib.md5(p).digest() for p in parts)).hexdigest()
    return f'"{digest}-{len(parts)}"'


def upload(s3: Any, bucket: str, key: str, parts: list[bytes], **create: Any) -> dict[str, Any]:
    """Create, upload `parts` in order, complete; the CompleteMultipartUpload response."""
    upload_id = s3.create_multipart_upload(Bucket=bucket, Key=key, **create)["UploadId"]
    done = []
    for number, data in enumerate(parts, start=1):
        etag = s3.upload_part(
            Bucket=bucket, Key=key, UploadId=upload_id, PartNumber=number, Body=data
        )["ETag"]
        done.append({"PartNumber": number, "ETag": etag})
    return s3.complete_multipart_upload(  # type: ignore[no-any-return]
        Bucket=bucket, Key=key, UploadId=upload_id, MultipartUpload={"Parts": done}
    )


def test_parts_complete_into_one_object(s3: Any, bucket: str) -> None:
    parts = [os.urandom(5 * MiB), os.urandom(5 * MiB + 7), os.urandom(123)]
    done = upload(s3, bucket, "big", parts, ContentType="text/plain", Metadata={"a": "b"})
    assert done["ETag"] == md5_etag(parts)
    got = s3.get_object(Bucket=bucket, Key="big")
    assert got["Body"].read() == b"".join(parts)
    assert got["ETag"] == md5_etag(parts)
    assert got["ContentType"] == "text/plain"
    assert got["Metadata"] == {"a": "b"}
    head = s3.head_object(Bucket=bucket, Key="big")
    assert head["ContentLength"] == sum(map(len, parts))
    assert [o["Key"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"]] == ["big"]


def test_ranges_across_part_boundaries(s3: Any, bucket: str) -> None:
    parts = [os.urandom(5 * MiB), os.urandom(5 * MiB), os.urandom(MiB)]
    upload(s3, bucket, "r", parts)
    whole = b"".join(parts)
    for first, last in [(5 * MiB - 10, 5 * MiB + 10), (0, 11 * MiB - 1), (10 * MiB, 10 * MiB)]:
        got = s3.get_object(Bucket=bucket, Key="r", Range=f"bytes={first}-{last}")
        assert got["Body"].read() == whole[first : last + 1]
        assert got["ContentRange"] == f"bytes {first}-{last}/{len(whole)}"


def test_get_by_part_number(s3: Any, bucket: str) -> None:
    parts = [os.urandom(5 * MiB), os.urandom(2 * MiB)]
    upload(s3, bucket, "p", parts)
    for number, data in enumerate(parts, start=1):
        got = s3.get_object(Bucket=bucket, Key="p", PartNumber=number)
        assert got["Body"].read() == data
        assert got["PartsCount"] == 2
        assert got["ResponseMetadata"]["HTTPStatusCode"] == 206
    head = s3.head_object(Bucket=bucket, Key="p", PartNumber=2)
    assert head["ContentLength"] == 2 * MiB
    with pytest.raises(ClientError) as exc:
        s3.get_object(Bucket=bucket, Key="p", PartNumber=3)
    assert error_of(exc) == ("InvalidPartNumber", 416)
    # An object uploaded in one piece is its own part 1.
    s3.put_object(Bucket=bucket, Key="single", Body=b"body")
    assert s3.get_object(Bucket=bucket, Key="single", PartNumber=1)["Body"].read() == b"body"


def test_part_uploaded_again_replaces_the_first(s3: Any, bucket: str) -> None:
    upload_id = s3.create_multipart_upload(Bucket=bucket, Key="again")["UploadId"]
    first, second = os.urandom(MiB), os.urandom(MiB)
    s3.upload_part(Bucket=bucket, Key="again", UploadId=upload_id, PartNumber=1, Body=first)
    etag = s3.upload_part(
        Bucket=bucket, Key="again", UploadId=upload_id, PartNumber=1, Body=second
    )["ETag"]
    listed = s3.list_parts(Bucket=bucket, Key="again", UploadId=upload_id)["Parts"]
    assert [(p["PartNumber"], p["ETag"], p["Size"]) for p in listed] == [(1, etag, MiB)]
    s3.complete_multipart_upload(
        Bucket=bucket, Key="again", UploadId=upload_id,
        MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": etag}]},
    )  # fmt: skip
    assert s3.get_object(Bucket=bucket, Key="again")["Body"].read() == second


def test_completion_errors(s3: Any, bucket: str) -> None:
    key = "bad"
    upload_id = s3.create_multipart_upload(Bucket=bucket, Key=key)["UploadId"]
    parts_data = [os.urandom(MiB), os.urandom(MiB)]
    etags = [
        s3.upload_part(Bucket=bucket, Key=key, UploadId=upload_id, PartNumber=n, Body=data)["ETag"]
        for n, data in enumerate(parts_data, start=1)
    ]

    def complete(parts: list[dict[str, Any]]) -> tuple[str, int]:
        with pytest.raises(ClientError) as exc:
            s3.complete_multipart_upload(
                Bucket=bucket, Key=key, UploadId=upload_id, MultipartUpload={"Parts": parts}
            )
        return error_of(exc)

    one, two = ({"PartNumber": n, "ETag": e} for n, e in zip((1, 2), etags, strict=True))
    assert complete([one, two]) == ("EntityTooSmall", 400)  # part 1 is under 5 MiB
    assert complete([two, one]) == ("InvalidPartOrder", 400)
    assert complete([{"PartNumber": 1, "ETag": etags[1]}]) == ("InvalidPart", 400)
    assert complete([{"PartNumber": 3, "ETag": etags[0]}]) == ("InvalidPart", 400)
    # A single small part is a valid object: only parts before the last have a minimum.
    s3.complete_multipart_upload(
        Bucket=bucket, Key=key, UploadId=upload_id, MultipartUpload={"Parts": [two]}
    )
    # Completing again (a retry after a lost answer) answers the same; other parts do not.
    again = s3.complete_multipart_upload(
        Bucket=bucket, Key=key, UploadId=upload_id, MultipartUpload={"Parts": [two]}
    )
    assert again["ETag"] == md5_etag([parts_data[1]])
    s3.put_object(Bucket=bucket, Key=key, Body=b"newer")
    assert complete([two]) == ("NoSuchUpload", 404)  # no longer the current version
    assert s3.head_object(Bucket=bucket, Key=key)["ContentLength"] == len(b"newer")


def test_unknown_upload_and_bad_part_numbers(s3: Any, bucket: str) -> None:
    for upload_id in ["nonsense", "00" * 16]:
        with pytest.raises(ClientError) as exc:
            s3.upload_part(Bucket=bucket, Key="k", UploadId=upload_id, PartNumber=1, Body=b"x")
        assert error_of(exc) == ("NoSuchUpload", 404)
        with pytest.raises(ClientError) as exc:
            s3.list_parts(Bucket=bucket, Key="k", UploadId=upload_id)
        assert error_of(exc) == ("NoSuchUpload", 404)
    upload_id = s3.create_multipart_upload(Bucket=bucket, Key="k")["UploadId"]
    for number in (0, 10_001):
        with pytest.raises(ClientError) as exc:
            s3.upload_part(Bucket=bucket, Key="k", UploadId=upload_id, PartNumber=number, Body=b"x")
        assert error_of(exc) == ("InvalidArgument", 400)
    with pytest.raises(ClientError) as exc:  # the upload belongs to another key
        s3.upload_part(Bucket=bucket, Key="other", UploadId=upload_id, PartNumber=1, Body=b"x")
    assert error_of(exc) == ("NoSuchUpload", 404)
    with pytest.raises(ClientError) as exc:
        s3.complete_multipart_upload(
            Bucket=bucket, Key="k", UploadId=upload_id, MultipartUpload={"Parts": []}
        )
    assert error_of(exc) == ("MalformedXML", 400)


def test_abort_forgets_the_upload(s3: Any, bucket: str) -> None:
    upload_id = s3.create_multipart_upload(Bucket=bucket, Key="gone")["UploadId"]
    s3.upload_part(Bucket=bucket, Key="gone", UploadId=upload_id, PartNumber=1, Body=b"data")
    s3.abort_multipart_upload(Bucket=bucket, Key="gone", UploadId=upload_id)
    assert s3.list_multipart_uploads(Bucket=bucket).get("Uploads", []) == []
    with pytest.raises(ClientError) as exc:
        s3.abort_multipart_upload(Bucket=bucket, Key="gone", UploadId=upload_id)
    assert error_of(exc) == ("NoSuchUpload", 404)
    with pytest.raises(ClientError) as exc:
        s3.head_object(Bucket=bucket, Key="gone")
    assert error_of(exc)[1] == 404


def test_list_parts_pages(s3: Any, bucket: str) -> None:
    upload_id = s3.create_multipart_upload(Bucket=bucket, Key="lp")["UploadId"]
    for number in range(1, 6):
        s3.upload_part(
            Bucket=bucket, Key="lp", UploadId=upload_id, PartNumber=number, Body=b"x" * number
        )
    page = s3.list_parts(Bucket=bucket, Key="lp", UploadId=upload_id, MaxParts=2)
    assert [p["PartNumber"] for p in page["Parts"]] == [1, 2]
    assert page["IsTruncated"] is True
    assert page["NextPartNumberMarker"] == 2
    rest = s3.list_parts(
        Bucket=bucket, Key="lp", UploadId=upload_id, PartNumberMarker=page["NextPartNumberMarker"]
    )
    assert [(p["PartNumber"], p["Size"]) for p in rest["Parts"]] == [(3, 3), (4, 4), (5, 5)]
    assert rest["IsTruncated"] is False
    paginated = s3.get_paginator("list_parts").paginate(
        Bucket=bucket, Key="lp", UploadId=upload_id, PaginationConfig={"PageSize": 2}
    )
    assert [p["PartNumber"] for page in paginated for p in page["Parts"]] == [1, 2, 3, 4, 5]


def test_list_multipart_uploads_with_markers_and_delimiter(s3: Any, bucket: str) -> None:
    ids = {}
    for key in ["a/1", "a/2", "b", "b", "c/x/y"]:
        ids.setdefault(key, []).append(
            s3.create_multipart_upload(Bucket=bucket, Key=key)["UploadId"]
        )
    listed = s3.list_multipart_uploads(Bucket=bucket)["Uploads"]
    assert [u["Key"] for u in listed] == ["a/1", "a/2", "b", "b", "c/x/y"]
    assert sorted(u["UploadId"] for u in listed if u["Key"] == "b") == sorted(ids["b"])
    page = s3.list_multipart_uploads(Bucket=bucket, MaxUploads=3)
    assert page["IsTruncated"] is True
    assert (page["NextKeyMarker"], page["NextUploadIdMarker"]) == (
        "b", page["Uploads"][-1]["UploadId"],
    )  # fmt: skip
    rest = s3.list_multipart_uploads(
        Bucket=bucket, KeyMarker=page["NextKeyMarker"], UploadIdMarker=page["NextUploadIdMarker"]
    )
    assert [u["Key"] for u in rest["Uploads"]] == ["b", "c/x/y"]
    after_key = s3.list_multipart_uploads(Bucket=bucket, KeyMarker="b")
    assert [u["Key"] for u in after_key["Uploads"]] == ["c/x/y"]
    rolled = s3.list_multipart_uploads(Bucket=bucket, Delimiter="/")
    assert [u["Key"] for u in rolled["Uploads"]] == ["b", "b"]
    assert [p["Prefix"] for p in rolled["CommonPrefixes"]] == ["a/", "c/"]
    prefixed = s3.list_multipart_uploads(Bucket=bucket, Prefix="c/", Delimiter="/")
    assert [p["Prefix"] for p in prefixed["CommonPrefixes"]] == ["c/x/"]


def test_part_checksums_and_composite_checksum(s3: Any, bucket: str) -> None:
    key = "crc"
    parts = [os.urandom(5 * MiB), os.urandom(MiB)]
    created = s3.create_multipart_upload(Bucket=bucket, Key=key, ChecksumAlgorithm="CRC32")
    upload_id = created["UploadId"]
    done = []
    for number, data in enumerate(parts, start=1):
        crc = base64.b64encode(zlib.crc32(data).to_bytes(4, "big")).decode()
        sent = s3.upload_part(
            Bucket=bucket, Key=key, UploadId=upload_id, PartNumber=number, Body=data,
            ChecksumCRC32=crc,
        )  # fmt: skip
        assert sent["ChecksumCRC32"] == crc
        done.append({"PartNumber": number, "ETag": sent["ETag"], "ChecksumCRC32": crc})
    listed = s3.list_parts(Bucket=bucket, Key=key, UploadId=upload_id)["Parts"]
    assert [p["ChecksumCRC32"] for p in listed] == [d["ChecksumCRC32"] for d in done]
    result = s3.complete_multipart_upload(
        Bucket=bucket, Key=key, UploadId=upload_id, MultipartUpload={"Parts": done}
    )
    raw = b"".join(base64.b64decode(d["ChecksumCRC32"]) for d in done)
    composite = base64.b64encode(zlib.crc32(raw).to_bytes(4, "big")).decode() + "-2"
    assert result["ChecksumCRC32"] == composite
    head = s3.head_object(Bucket=bucket, Key=key, ChecksumMode="ENABLED")
    assert head["ChecksumCRC32"] == composite
    assert "ChecksumCRC32" not in s3.head_object(Bucket=bucket, Key=key)


def test_wrong_part_checksum_is_refused(s3: Any, bucket: str) -> None:
    upload_id = s3.create_multipart_upload(Bucket=bucket, Key="k")["UploadId"]
    wrong = base64.b64encode(b"\0\0\0\0").decode()
    with pytest.raises(ClientError) as exc:
        s3.upload_part(
            Bucket=bucket, Key="k", UploadId=upload_id, PartNumber=1, Body=b"data",
            ChecksumCRC32=wrong,
        )  # fmt: skip
    assert error_of(exc) == ("BadDigest", 400)
    assert s3.list_parts(Bucket=bucket, Key="k", UploadId=upload_id).get("Parts", []) == []


def test_boto3_transfer_manager_round_trip(s3: Any, bucket: str, tmp_path: Path) -> None:
    """upload_file/download_file split into parts and ranged GETs in parallel threads."""
    source = tmp_path / "src.bin"
    source.write_bytes(os.urandom(23 * MiB + 5))
    config = TransferConfig(
        multipart_threshold=5 * MiB, multipart_chunksize=5 * MiB, max_concurrency=4
    )
    s3.upload_file(str(source), bucket, "file.bin", Config=config)
    head = s3.head_object(Bucket=bucket, Key="file.bin")
    assert head["ETag"].endswith('-5"')
    target = tmp_path / "dst.bin"
    s3.download_file(bucket, "file.bin", str(target), Config=config)
    assert target.read_bytes() == source.read_bytes()


def test_deleting_a_bucket_drops_its_uploads(s3: Any) -> None:
    s3.create_bucket(Bucket="mp-drop")
    s3.create_multipart_upload(Bucket="mp-drop", Key="k")
    s3.delete_bucket(Bucket="mp-drop")
    s3.create_bucket(Bucket="mp-drop")
    assert s3.list_multipart_uploads(Bucket="mp-drop").get("Uploads", []) == []
