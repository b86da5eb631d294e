"""S3 behaviours found missing by ceph/s3-tests, each checked against a real server with boto3:
ListBuckets pages, an empty continuation token, Content-Encoding lists, and multipart
checksums (FULL_OBJECT and COMPOSITE, verified at CompleteMultipartUpload)."""

from __future__ import annotations

import base64
import hashlib
import http.client
import os
import re
import zlib
from collections.abc import Callable
from typing import Any

import pytest
from awscrt import checksums as crt
from botocore.auth import S3SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from botocore.exceptions import ClientError
from tests.conftest import ACCESS_KEY, SECRET_KEY, Server, ServerFactory

MiB = 1024 * 1024
PART = 5 * MiB


def error_of(exc: pytest.ExceptionInfo[ClientError]) -> tuple[str, int, str]:
    response = exc.value.response
    return (
        response["Error"]["Code"],
        response["ResponseMetadata"]["HTTPStatusCode"],
        response["Error"]["Message"],
    )


# -- ListBuckets pages (max-buckets, continuation-token, prefix: S3, 2024) -------------------


def test_list_buckets_pages_as_s3_tests_expects(make_server: ServerFactory) -> None:
    """s3-tests' test_list_buckets_paginated, on a server of our own (it counts every
    bucket): a token only while more buckets follow."""
    s3 = make_server().client()
    empty = s3.list_buckets(MaxBuckets=1)
    assert (empty["Buckets"], "ContinuationToken" in empty) == ([], False)
    s3.create_bucket(Bucket="page-one")
    single = s3.list_buckets(MaxBuckets=1)
    assert [b["Name"] for b in single["Buckets"]] == ["page-one"]
    assert "ContinuationToken" not in single
    s3.create_bucket(Bucket="page-two")
    first = s3.list_buckets(MaxBuckets=1)
    assert [b["Name"] for b in first["Buckets"]] == ["page-one"]
    second = s3.list_buckets(MaxBuckets=1, ContinuationToken=first["ContinuationToken"])
    assert [b["Name"] for b in second["Buckets"]] == ["page-two"]
    assert "ContinuationToken" not in second
    # The paginator of boto3 follows the tokens by itself.
    pages = s3.get_paginator("list_buckets").paginate(PaginationConfig={"PageSize": 1})
    assert [b["Name"] for page in pages for b in page["Buckets"]] == ["page-one", "page-two"]


def test_list_buckets_prefix_and_region(s3: Any) -> None:
    prefix = f"lb-{os.urandom(3).hex()}-"
    names = [f"{prefix}{n}" for n in ("a", "b", "c")]
    for name in reversed(names):
        s3.create_bucket(Bucket=name)
    s3.create_bucket(Bucket=f"other-{prefix}x")
    page = s3.list_buckets(Prefix=prefix, MaxBuckets=2)
    assert [b["Name"] for b in page["Buckets"]] == names[:2]
    assert page["Prefix"] == prefix
    assert {b["BucketRegion"] for b in page["Buckets"]} == {"us-east-1"}
    rest = s3.list_buckets(Prefix=prefix, MaxBuckets=2, ContinuationToken=page["ContinuationToken"])
    assert [b["Name"] for b in rest["Buckets"]] == names[2:]
    assert "ContinuationToken" not in rest
    assert [b["Name"] for b in s3.list_buckets(Prefix=prefix)["Buckets"]] == names
    # Égide is one region: asking for another lists nothing.
    assert s3.list_buckets(Prefix=prefix, BucketRegion="eu-west-3")["Buckets"] == []
    in_region = s3.list_buckets(Prefix=prefix, BucketRegion="us-east-1")["Buckets"]
    assert [b["Name"] for b in in_region] == names


def test_plain_list_buckets_is_unchanged(s3: Any, bucket: str) -> None:
    listed = s3.list_buckets()
    entry = next(b for b in listed["Buckets"] if b["Name"] == bucket)
    assert set(entry) == {"Name", "CreationDate"}
    assert "ContinuationToken" not in listed and "Prefix" not in listed
    assert listed["Owner"]["DisplayName"] == "admin"  # the caller (decision 0031)
    assert re.fullmatch(r"[0-9a-f]{64}", listed["Owner"]["ID"])


@pytest.mark.parametrize(
    ("arguments", "name"),
    [
        ({"MaxBuckets": 0}, "max-buckets"),
        ({"MaxBuckets": 10_001}, "max-buckets"),
        ({"MaxBuckets": 5, "ContinuationToken": "not a token"}, "continuation-token"),
    ],
)
def test_list_buckets_bad_arguments(
    shared_server: Server, arguments: dict[str, Any], name: str
) -> None:
    # botocore would refuse max-buckets 0 itself; the server is what is tested here.
    s3 = shared_server.client(parameter_validation=False)
    with pytest.raises(ClientError) as exc:
        s3.list_buckets(**arguments)
    assert error_of(exc)[:2] == ("InvalidArgument", 400)
    assert exc.value.response["Error"]["ArgumentName"] == name


# -- ListObjectsV2 with an empty continuation token -------------------------------------------


def test_empty_continuation_token_lists_from_the_start(s3: Any, bucket: str) -> None:
    keys = ["bar", "baz", "foo", "quxx"]
    for key in keys:
        s3.put_object(Bucket=bucket, Key=key, Body=b"")
    listed = s3.list_objects_v2(Bucket=bucket, ContinuationToken="")
    assert listed["ContinuationToken"] == ""
    assert listed["IsTruncated"] is False
    assert [o["Key"] for o in listed["Contents"]] == keys
    # Still a first page: start-after applies, and the next token works as usual.
    page = s3.list_objects_v2(Bucket=bucket, ContinuationToken="", StartAfter="bar", MaxKeys=2)
    assert [o["Key"] for o in page["Contents"]] == ["baz", "foo"]
    last = s3.list_objects_v2(Bucket=bucket, ContinuationToken=page["NextContinuationToken"])
    assert [o["Key"] for o in last["Contents"]] == ["quxx"]


# -- Content-Encoding with several codings ---------------------------------------------------


def test_content_encoding_list_is_returned_as_sent(s3: Any, bucket: str) -> None:
    s3.put_object(Bucket=bucket, Key="enc", Body=b"x", ContentEncoding="deflate, gzip")
    assert s3.head_object(Bucket=bucket, Key="enc")["ContentEncoding"] == "deflate, gzip"


@pytest.mark.parametrize(
    ("sent", "kept"),
    [
        ("gzip", "gzip"),
        ("gzip, aws-chunked", "gzip"),
        ("aws-chunked, gzip", "gzip"),
        ("aws-chunked", None),
        ("aws-chunked, aws-chunked", None),
    ],
)
def test_aws_chunked_is_dropped_from_content_encoding(
    s3: Any, bucket: str, sent: str, kept: str | None
) -> None:
    s3.put_object(Bucket=bucket, Key="enc", Body=b"x", ContentEncoding=sent)
    assert s3.head_object(Bucket=bucket, Key="enc").get("ContentEncoding") == kept


def test_repeated_content_encoding_lines_keep_every_coding(
    shared_server: Server, s3: Any, bucket: str
) -> None:
    """Two Content-Encoding lines are one list (RFC 9110 §5.3): both codings, in order."""
    path = f"/{bucket}/twice"
    # SigV4 signs repeated headers as their values joined by ",".
    request = AWSRequest(
        method="PUT", url=f"{shared_server.endpoint}{path}", data=b"x",
        headers={"Content-Encoding": "deflate,gzip"},
    )  # fmt: skip
    S3SigV4Auth(Credentials(ACCESS_KEY, SECRET_KEY), "s3", "us-east-1").add_auth(request)
    conn = http.client.HTTPConnection("127.0.0.1", shared_server.port, timeout=30)
    conn.putrequest("PUT", path, skip_accept_encoding=True)
    for name, value in request.headers.items():
        if name.lower() != "content-encoding":
            conn.putheader(name, value)
    conn.putheader("Content-Encoding", "deflate")
    conn.putheader("Content-Encoding", "gzip")
    conn.putheader("Content-Length", "1")
    conn.endheaders()
    conn.send(b"x")
    reply = conn.getresponse()
    assert (reply.status, reply.read()) == (200, b"")
    got = s3.head_object(Bucket=bucket, Key="twice")["ContentEncoding"]
    assert [c.strip() for c in got.split(",")] == ["deflate", "gzip"]


# -- multipart checksums ----------------------------------------------------------------------

CRCS: dict[str, tuple[Callable[[bytes], int], int]] = {
    # zlib's CRC-32 is independent of the awscrt code the server combines parts with.
    "CRC32": (zlib.crc32, 4),
    "CRC32C": (lambda data: crt.crc32c(data), 4),
    "CRC64NVME": (lambda data: crt.crc64nvme(data), 8),
}


def crc_b64(algorithm: str, data: bytes) -> str:
    function, size = CRCS[algorithm]
    return base64.b64encode(function(data).to_bytes(size, "big")).decode()


def upload_parts(
    s3: Any, bucket: str, key: str, upload_id: str, algorithm: str | None, parts: list[bytes]
) -> list[dict[str, Any]]:
    """Upload `parts` with the client's checksum of `algorithm` (none if None); the entries of
    the CompleteMultipartUpload document, each with its checksum."""
    done = []
    for number, data in enumerate(parts, start=1):
        extra = {f"Checksum{algorithm}": crc_b64(algorithm, data)} if algorithm else {}
        sent = s3.upload_part(
            Bucket=bucket, Key=key, UploadId=upload_id, PartNumber=number, Body=data, **extra
        )
        entry = {"PartNumber": number, "ETag": sent["ETag"]}
        entry.update(
            {n: v for n, v in sent.items() if n.startswith("Checksum") and n != "ChecksumType"}
        )
        done.append(entry)
    return done


@pytest.mark.parametrize("algorithm", ["CRC32", "CRC32C", "CRC64NVME"])
def test_full_object_checksum_of_a_multipart_object(s3: Any, bucket: str, algorithm: str) -> None:
    parts = [os.urandom(PART), os.urandom(PART + 3), os.urandom(MiB - 1)]
    whole = b"".join(parts)
    expected = crc_b64(algorithm, whole)
    created = s3.create_multipart_upload(
        Bucket=bucket, Key="full", ChecksumAlgorithm=algorithm, ChecksumType="FULL_OBJECT"
    )
    assert (created["ChecksumAlgorithm"], created["ChecksumType"]) == (algorithm, "FULL_OBJECT")
    upload_id = created["UploadId"]
    done = upload_parts(s3, bucket, "full", upload_id, algorithm, parts)
    listed = s3.list_parts(Bucket=bucket, Key="full", UploadId=upload_id)
    assert (listed["ChecksumAlgorithm"], listed["ChecksumType"]) == (algorithm, "FULL_OBJECT")
    result = s3.complete_multipart_upload(
        Bucket=bucket, Key="full", UploadId=upload_id, MultipartUpload={"Parts": done},
        ChecksumType="FULL_OBJECT", **{f"Checksum{algorithm}": expected},
    )  # fmt: skip
    # A full-object checksum is the CRC of the object's bytes, with no "-<parts>" suffix.
    assert (result[f"Checksum{algorithm}"], result["ChecksumType"]) == (expected, "FULL_OBJECT")
    head = s3.head_object(Bucket=bucket, Key="full", ChecksumMode="ENABLED")
    assert (head[f"Checksum{algorithm}"], head["ChecksumType"]) == (expected, "FULL_OBJECT")
    assert f"Checksum{algorithm}" not in s3.head_object(Bucket=bucket, Key="full")
    # boto3 checks a full-object CRC against the body it receives.
    got = s3.get_object(Bucket=bucket, Key="full", ChecksumMode="ENABLED")
    assert got["ChecksumType"] == "FULL_OBJECT"
    assert got["Body"].read() == whole


# The values ceph/s3-tests computed with RGW (test_multipart_use_cksum_helper_*): three 5 MiB
# parts of "A", "B" and "C".
KNOWN = [
    ("CRC32", "FULL_OBJECT", "WgDhBQ=="),
    ("CRC32C", "FULL_OBJECT", "xU+Krw=="),
    ("CRC64NVME", "FULL_OBJECT", "i+6LR0y3eFo="),
    ("SHA256", "COMPOSITE", "uWBwpe1dxI4Vw8Gf0X9ynOdw/SS6VBzfWm9giiv1sf4=-3"),
    ("SHA1", "COMPOSITE", "sizjvY4eud3MrcHdZM3cQ/ol39o=-3"),
]


@pytest.mark.parametrize(("algorithm", "kind", "value"), KNOWN)
def test_checksums_match_the_s3_tests_vectors(
    s3: Any, bucket: str, algorithm: str, kind: str, value: str
) -> None:
    key = f"known-{algorithm}"
    created = s3.create_multipart_upload(
        Bucket=bucket, Key=key, ChecksumAlgorithm=algorithm, ChecksumType=kind
    )
    done = []
    for number, letter in enumerate(b"ABC", start=1):
        sent = s3.upload_part(
            Bucket=bucket, Key=key, UploadId=created["UploadId"], PartNumber=number,
            Body=bytes([letter]) * PART, ChecksumAlgorithm=algorithm,
        )  # fmt: skip
        done.append(
            {
                "PartNumber": number,
                "ETag": sent["ETag"],
                f"Checksum{algorithm}": sent[f"Checksum{algorithm}"],
            }
        )
    result = s3.complete_multipart_upload(
        Bucket=bucket, Key=key, UploadId=created["UploadId"], MultipartUpload={"Parts": done},
        **{f"Checksum{algorithm}": value},
    )  # fmt: skip
    assert (result[f"Checksum{algorithm}"], result["ChecksumType"]) == (value, kind)
    head = s3.head_object(Bucket=bucket, Key=key, ChecksumMode="ENABLED")
    assert (head[f"Checksum{algorithm}"], head["ChecksumType"]) == (value, kind)


@pytest.mark.parametrize("wrong", ["AAAAAA==", "bad"])
def test_wrong_whole_object_checksum_fails_complete(s3: Any, bucket: str, wrong: str) -> None:
    parts = [os.urandom(PART), os.urandom(1000)]
    created = s3.create_multipart_upload(
        Bucket=bucket, Key="k", ChecksumAlgorithm="CRC32", ChecksumType="FULL_OBJECT"
    )
    done = upload_parts(s3, bucket, "k", created["UploadId"], "CRC32", parts)
    with pytest.raises(ClientError) as exc:
        s3.complete_multipart_upload(
            Bucket=bucket, Key="k", UploadId=created["UploadId"],
            MultipartUpload={"Parts": done}, ChecksumCRC32=wrong,
        )  # fmt: skip
    assert error_of(exc) == (
        "BadDigest", 400, "The CRC32 you specified did not match the calculated checksum."
    )  # fmt: skip
    # Nothing was committed: the upload is still there, and completes with the right value.
    with pytest.raises(ClientError):
        s3.head_object(Bucket=bucket, Key="k")
    right = crc_b64("CRC32", b"".join(parts))
    result = s3.complete_multipart_upload(
        Bucket=bucket, Key="k", UploadId=created["UploadId"], MultipartUpload={"Parts": done},
        ChecksumCRC32=right,
    )  # fmt: skip
    assert result["ChecksumCRC32"] == right
    # Completing again (a retry) checks the checksum too.
    with pytest.raises(ClientError) as exc:
        s3.complete_multipart_upload(
            Bucket=bucket, Key="k", UploadId=created["UploadId"],
            MultipartUpload={"Parts": done}, ChecksumCRC32=wrong,
        )  # fmt: skip
    assert error_of(exc)[:2] == ("BadDigest", 400)


def test_composite_checksum_is_verified_with_or_without_its_suffix(s3: Any, bucket: str) -> None:
    parts = [os.urandom(PART), os.urandom(77)]
    created = s3.create_multipart_upload(Bucket=bucket, Key="c", ChecksumAlgorithm="SHA256")
    assert created["ChecksumType"] == "COMPOSITE"
    done = []
    for number, data in enumerate(parts, start=1):
        digest = base64.b64encode(hashlib.sha256(data).digest()).decode()
        sent = s3.upload_part(
            Bucket=bucket, Key="c", UploadId=created["UploadId"], PartNumber=number, Body=data,
            ChecksumSHA256=digest,
        )  # fmt: skip
        done.append({"PartNumber": number, "ETag": sent["ETag"], "ChecksumSHA256": digest})
    raw = b"".join(base64.b64decode(d["ChecksumSHA256"]) for d in done)
    composite = base64.b64encode(hashlib.sha256(raw).digest()).decode()
    with pytest.raises(ClientError) as exc:
        s3.complete_multipart_upload(
            Bucket=bucket, Key="c", UploadId=created["UploadId"], MultipartUpload={"Parts": done},
            ChecksumSHA256=composite + "-3",  # the wrong part count
        )  # fmt: skip
    assert error_of(exc)[:2] == ("BadDigest", 400)
    result = s3.complete_multipart_upload(
        Bucket=bucket, Key="c", UploadId=created["UploadId"], MultipartUpload={"Parts": done},
        ChecksumSHA256=composite,
    )  # fmt: skip
    assert (result["ChecksumSHA256"], result["ChecksumType"]) == (f"{composite}-2", "COMPOSITE")


def test_composite_complete_must_name_each_part_checksum(s3: Any, bucket: str) -> None:
    created = s3.create_multipart_upload(Bucket=bucket, Key="c", ChecksumAlgorithm="CRC32C")
    done = upload_parts(s3, bucket, "c", created["UploadId"], "CRC32C", [b"only part"])
    with pytest.raises(ClientError) as exc:
        s3.complete_multipart_upload(
            Bucket=bucket, Key="c", UploadId=created["UploadId"],
            MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": done[0]["ETag"]}]},
        )  # fmt: skip
    assert error_of(exc) == (
        "InvalidRequest", 400,
        "The upload was created using a crc32c checksum. The complete request must include "
        "the checksum for each part. It was missing for part 1 in the request.",
    )  # fmt: skip


@pytest.mark.parametrize(
    ("algorithm", "kind"),
    [("SHA256", "FULL_OBJECT"), ("SHA1", "FULL_OBJECT"), ("CRC64NVME", "COMPOSITE")],
)
def test_impossible_checksum_types_are_refused(
    s3: Any, bucket: str, algorithm: str, kind: str
) -> None:
    with pytest.raises(ClientError) as exc:
        s3.create_multipart_upload(
            Bucket=bucket, Key="k", ChecksumAlgorithm=algorithm, ChecksumType=kind
        )
    assert error_of(exc) == (
        "InvalidRequest", 400,
        f"The {kind} checksum type cannot be used with the {algorithm.lower()} checksum "
        "algorithm.",
    )  # fmt: skip


def test_checksum_type_defaults_and_requires_an_algorithm(s3: Any, bucket: str) -> None:
    crc64 = s3.create_multipart_upload(Bucket=bucket, Key="k", ChecksumAlgorithm="CRC64NVME")
    assert crc64["ChecksumType"] == "FULL_OBJECT"
    crc32 = s3.create_multipart_upload(Bucket=bucket, Key="k", ChecksumAlgorithm="CRC32")
    assert crc32["ChecksumType"] == "COMPOSITE"
    uploads = s3.list_multipart_uploads(Bucket=bucket)["Uploads"]
    assert {(u["ChecksumAlgorithm"], u["ChecksumType"]) for u in uploads} == {
        ("CRC64NVME", "FULL_OBJECT"), ("CRC32", "COMPOSITE"),
    }  # fmt: skip
    with pytest.raises(ClientError) as exc:
        s3.create_multipart_upload(Bucket=bucket, Key="k", ChecksumType="FULL_OBJECT")
    assert error_of(exc)[:2] == ("InvalidRequest", 400)
    assert "x-amz-checksum-algorithm" in error_of(exc)[2]


def test_complete_must_use_the_upload_checksum_type(s3: Any, bucket: str) -> None:
    created = s3.create_multipart_upload(Bucket=bucket, Key="k", ChecksumAlgorithm="CRC32")
    done = upload_parts(s3, bucket, "k", created["UploadId"], "CRC32", [b"data"])
    with pytest.raises(ClientError) as exc:
        s3.complete_multipart_upload(
            Bucket=bucket, Key="k", UploadId=created["UploadId"], MultipartUpload={"Parts": done},
            ChecksumType="FULL_OBJECT",
        )  # fmt: skip
    assert error_of(exc) == (
        "InvalidRequest", 400,
        "The upload was created using the COMPOSITE checksum mode. The complete request must "
        "use the same checksum mode.",
    )  # fmt: skip


def test_part_checksums_follow_the_upload_algorithm(shared_server: Server, bucket: str) -> None:
    # Without this, botocore adds a CRC32 of its own to every part.
    s3 = shared_server.client(request_checksum_calculation="when_required")
    composite = s3.create_multipart_upload(Bucket=bucket, Key="c", ChecksumAlgorithm="SHA256")
    with pytest.raises(ClientError) as exc:
        s3.upload_part(
            Bucket=bucket, Key="c", UploadId=composite["UploadId"], PartNumber=1, Body=b"x"
        )
    assert error_of(exc) == (
        "InvalidRequest", 400,
        "Checksum Type mismatch occurred, expected checksum Type: sha256, actual checksum "
        "Type: null",
    )  # fmt: skip
    with pytest.raises(ClientError) as exc:
        s3.upload_part(
            Bucket=bucket, Key="c", UploadId=composite["UploadId"], PartNumber=1, Body=b"x",
            ChecksumCRC32=crc_b64("CRC32", b"x"),
        )  # fmt: skip
    assert error_of(exc)[:2] == ("InvalidRequest", 400)
    assert "expected checksum Type: sha256, actual checksum Type: crc32" in error_of(exc)[2]


def test_full_object_parts_without_checksums_get_one_from_the_server(
    shared_server: Server, bucket: str
) -> None:
    s3 = shared_server.client(request_checksum_calculation="when_required")
    parts = [os.urandom(PART), os.urandom(4321)]
    created = s3.create_multipart_upload(
        Bucket=bucket, Key="f", ChecksumAlgorithm="CRC32C", ChecksumType="FULL_OBJECT"
    )
    first = upload_parts(s3, bucket, "f", created["UploadId"], "CRC32C", parts[:1])
    sent = s3.upload_part(
        Bucket=bucket, Key="f", UploadId=created["UploadId"], PartNumber=2, Body=parts[1]
    )
    assert sent["ChecksumCRC32C"] == crc_b64("CRC32C", parts[1])
    listed = s3.list_parts(Bucket=bucket, Key="f", UploadId=created["UploadId"])["Parts"]
    assert [p["ChecksumCRC32C"] for p in listed] == [crc_b64("CRC32C", p) for p in parts]
    result = s3.complete_multipart_upload(
        Bucket=bucket, Key="f", UploadId=created["UploadId"],
        MultipartUpload={"Parts": [*first, {"PartNumber": 2, "ETag": sent["ETag"]}]},
    )  # fmt: skip
    assert result["ChecksumCRC32C"] == crc_b64("CRC32C", b"".join(parts))


def test_upload_without_an_algorithm_has_no_checksum_to_verify(s3: Any, bucket: str) -> None:
    created = s3.create_multipart_upload(Bucket=bucket, Key="n")
    sent = s3.upload_part(
        Bucket=bucket, Key="n", UploadId=created["UploadId"], PartNumber=1, Body=b"plain"
    )
    with pytest.raises(ClientError) as exc:
        s3.complete_multipart_upload(
            Bucket=bucket, Key="n", UploadId=created["UploadId"],
            MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": sent["ETag"]}]},
            ChecksumSHA256=base64.b64encode(hashlib.sha256(b"plain").digest()).decode(),
        )  # fmt: skip
    assert error_of(exc)[:2] == ("InvalidRequest", 400)
