"""GetObjectAttributes through boto3 against a real server: ETag, checksums, parts (paged),
size and storage class of a version, as S3 and ceph/s3-tests expect them."""

from __future__ import annotations

import base64
import hashlib
import os
import zlib
from collections.abc import Callable
from typing import Any

import pytest
from botocore.exceptions import ClientError
from tests.conftest import ACCESS_KEY, InProcessFactory, Server
from tests.e2e.test_authorize import DenyOne

from egide.auth.authorize import Authorizer

MiB = 1024 * 1024
ALL = ["ETag", "Checksum", "ObjectParts", "StorageClass", "ObjectSize"]


def error_of(exc: pytest.ExceptionInfo[ClientError]) -> tuple[str, int]:
    response = exc.value.response
    return response["Error"]["Code"], response["ResponseMetadata"]["HTTPStatusCode"]


def headers_of(response: dict[str, Any]) -> dict[str, str]:
    return dict(response["ResponseMetadata"]["HTTPHeaders"])


def with_headers(s3: Any, headers: dict[str, str]) -> Any:
    """`s3` sending `headers` with every GetObjectAttributes (botocore has no parameter for
    the conditional ones, and refuses a non-integer MaxParts before sending)."""

    def add(request: Any, **_: Any) -> None:
        for name, value in headers.items():
            del request.headers[name]  # (case-insensitive; setting alone would add a second)
            request.headers[name] = value

    s3.meta.events.register("before-sign.s3.GetObjectAttributes", add)
    return s3


@pytest.fixture
def plain(shared_server: Server) -> Any:
    """A client that sends a checksum only when an operation requires one (boto3 ≥ 1.36
    otherwise adds a CRC32 to every PutObject and UploadPart)."""
    return shared_server.client(request_checksum_calculation="when_required")


def crc32(data: bytes) -> str:
    return base64.b64encode(zlib.crc32(data).to_bytes(4, "big")).decode()


def test_a_simple_object_without_checksum(plain: Any, bucket: str) -> None:
    plain.put_object(Bucket=bucket, Key="obj", Body=b"foo")
    got = plain.get_object_attributes(Bucket=bucket, Key="obj", ObjectAttributes=ALL)
    head = plain.head_object(Bucket=bucket, Key="obj")
    assert got["ResponseMetadata"]["HTTPStatusCode"] == 200
    assert got["ETag"] == hashlib.md5(b"foo").hexdigest()  # without quotes, as S3
    assert got["ObjectSize"] == 3
    assert got["StorageClass"] == "STANDARD"
    assert got["LastModified"] == head["LastModified"]
    assert "Checksum" not in got  # none was sent, none is made up
    assert "ObjectParts" not in got  # an object uploaded in one piece
    assert "VersionId" not in got  # the null version of an unversioned bucket
    assert "DeleteMarker" not in got


def test_only_the_attributes_asked_for_are_answered(plain: Any, bucket: str) -> None:
    plain.put_object(Bucket=bucket, Key="obj", Body=b"12345")
    got = plain.get_object_attributes(Bucket=bucket, Key="obj", ObjectAttributes=["ObjectSize"])
    assert got["ObjectSize"] == 5
    assert not {"ETag", "StorageClass", "Checksum", "ObjectParts"} & set(got)
    # Names separated by a comma and spaces (LocalStack saw AWS accept them).
    s3 = with_headers(plain, {"x-amz-object-attributes": "ETag, StorageClass"})
    got = s3.get_object_attributes(Bucket=bucket, Key="obj", ObjectAttributes=["ETag"])
    assert got["ETag"] == hashlib.md5(b"12345").hexdigest()
    assert got["StorageClass"] == "STANDARD"
    assert "ObjectSize" not in got


def test_a_simple_object_with_a_checksum(s3: Any, bucket: str) -> None:
    # ceph/s3-tests test_get_checksum_object_attributes: 1024 × "A" and its SHA256.
    body = b"A" * 1024
    sha256 = "arcu6553sHVAiX4MjW0j7I7vD4w6R+Gz9Ok0Q9lTa+0="
    put = s3.put_object(
        Bucket=bucket, Key="sha", Body=body, ChecksumAlgorithm="SHA256", ChecksumSHA256=sha256
    )
    got = s3.get_object_attributes(Bucket=bucket, Key="sha", ObjectAttributes=ALL)
    assert got["ETag"] == put["ETag"].strip('"')
    assert got["ObjectSize"] == 1024
    assert got["Checksum"] == {"ChecksumSHA256": sha256, "ChecksumType": "FULL_OBJECT"}
    assert "ObjectParts" not in got
    # boto3's default: a CRC32 of the body.
    s3.put_object(Bucket=bucket, Key="crc", Body=b"69\n420\n")
    got = s3.get_object_attributes(Bucket=bucket, Key="crc", ObjectAttributes=["Checksum"])
    assert got["Checksum"] == {"ChecksumCRC32": crc32(b"69\n420\n"), "ChecksumType": "FULL_OBJECT"}


def upload(
    s3: Any, bucket: str, key: str, parts: list[bytes], algorithm: str | None = None, **kw: Any
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """A multipart upload of `parts`, each with its `algorithm` checksum when one is given:
    the CompleteMultipartUpload response and the UploadPart responses."""
    create = {"ChecksumAlgorithm": algorithm, **kw} if algorithm else kw
    upload_id = s3.create_multipart_upload(Bucket=bucket, Key=key, **create)["UploadId"]
    answers, done = [], []
    for number, data in enumerate(parts, start=1):
        extra = {"ChecksumAlgorithm": algorithm} if algorithm else {}
        answer = s3.upload_part(
            Bucket=bucket, Key=key, UploadId=upload_id, PartNumber=number, Body=data, **extra
        )
        answers.append(answer)
        entry = {"PartNumber": number, "ETag": answer["ETag"]}
        if algorithm:
            entry[f"Checksum{algorithm}"] = answer[f"Checksum{algorithm}"]
        done.append(entry)
    complete = s3.complete_multipart_upload(
        Bucket=bucket, Key=key, UploadId=upload_id, MultipartUpload={"Parts": done}
    )
    return complete, answers


def test_a_multipart_object_with_checksums_pages_its_parts(s3: Any, bucket: str) -> None:
    parts = [os.urandom(5 * MiB), os.urandom(5 * MiB), os.urandom(1000)]
    complete, answers = upload(s3, bucket, "mp", parts, "SHA256")
    sha = [base64.b64encode(hashlib.sha256(p).digest()).decode() for p in parts]
    assert [a["ChecksumSHA256"] for a in answers] == sha

    got = s3.get_object_attributes(Bucket=bucket, Key="mp", ObjectAttributes=ALL)
    assert got["ETag"] == complete["ETag"].strip('"')
    assert got["ETag"].endswith("-3")
    assert got["ObjectSize"] == sum(map(len, parts))
    assert got["StorageClass"] == "STANDARD"
    # The composite checksum, as CompleteMultipartUpload and HeadObject answer it.
    assert got["Checksum"] == {
        "ChecksumSHA256": complete["ChecksumSHA256"], "ChecksumType": "COMPOSITE"
    }  # fmt: skip
    assert got["ObjectParts"] == {
        "TotalPartsCount": 3, "PartNumberMarker": 0, "NextPartNumberMarker": 3,
        "MaxParts": 1000, "IsTruncated": False,
        "Parts": [
            {"PartNumber": n, "Size": len(p), "ChecksumSHA256": c}
            for n, (p, c) in enumerate(zip(parts, sha, strict=True), start=1)
        ],
    }  # fmt: skip

    page = s3.get_object_attributes(
        Bucket=bucket, Key="mp", ObjectAttributes=["ObjectParts"], MaxParts=1, PartNumberMarker=1
    )
    assert page["ObjectParts"] == {
        "TotalPartsCount": 3, "PartNumberMarker": 1, "NextPartNumberMarker": 2, "MaxParts": 1,
        "IsTruncated": True,
        "Parts": [{"PartNumber": 2, "Size": 5 * MiB, "ChecksumSHA256": sha[1]}],
    }  # fmt: skip
    last = s3.get_object_attributes(
        Bucket=bucket, Key="mp", ObjectAttributes=["ObjectParts"], MaxParts=10, PartNumberMarker=2
    )
    assert last["ObjectParts"]["IsTruncated"] is False
    assert last["ObjectParts"]["NextPartNumberMarker"] == 3
    assert [p["PartNumber"] for p in last["ObjectParts"]["Parts"]] == [3]
    beyond = s3.get_object_attributes(
        Bucket=bucket, Key="mp", ObjectAttributes=["ObjectParts"], PartNumberMarker=3
    )
    assert beyond["ObjectParts"]["IsTruncated"] is False
    assert "Parts" not in beyond["ObjectParts"]
    assert beyond["ObjectParts"]["TotalPartsCount"] == 3


def test_a_full_object_checksum_and_parts_without_checksums(plain: Any, bucket: str) -> None:
    parts = [os.urandom(5 * MiB), os.urandom(100)]
    complete, _ = upload(plain, bucket, "full", parts, "CRC32", ChecksumType="FULL_OBJECT")
    got = plain.get_object_attributes(Bucket=bucket, Key="full", ObjectAttributes=["Checksum"])
    assert got["Checksum"] == {
        "ChecksumCRC32": crc32(b"".join(parts)),
        "ChecksumType": "FULL_OBJECT",
    }
    assert complete["ChecksumCRC32"] == got["Checksum"]["ChecksumCRC32"]

    # ceph/s3-tests test_get_multipart_object_attributes: parts are listed (number and size)
    # even when the upload carried no checksums.
    upload(plain, bucket, "bare", parts)
    got = plain.get_object_attributes(Bucket=bucket, Key="bare", ObjectAttributes=ALL)
    assert "Checksum" not in got
    assert got["ObjectParts"]["TotalPartsCount"] == 2
    assert got["ObjectParts"]["Parts"] == [
        {"PartNumber": 1, "Size": 5 * MiB}, {"PartNumber": 2, "Size": 100}
    ]  # fmt: skip


def test_a_version_by_its_id(s3: Any, bucket: str) -> None:
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    first = s3.put_object(Bucket=bucket, Key="obj", Body=b"foo")
    second = s3.put_object(Bucket=bucket, Key="obj", Body=b"version 2")

    current = s3.get_object_attributes(Bucket=bucket, Key="obj", ObjectAttributes=ALL)
    assert current["VersionId"] == second["VersionId"]
    assert current["ETag"] == second["ETag"].strip('"')
    assert current["ObjectSize"] == 9

    old = s3.get_object_attributes(
        Bucket=bucket, Key="obj", VersionId=first["VersionId"], ObjectAttributes=ALL
    )
    assert old["VersionId"] == first["VersionId"]
    assert old["ETag"] == first["ETag"].strip('"')
    assert old["ObjectSize"] == 3
    assert old["Checksum"]["ChecksumCRC32"] == first["ChecksumCRC32"]
    assert "ObjectParts" not in old and "DeleteMarker" not in old

    with pytest.raises(ClientError) as exc:
        s3.get_object_attributes(
            Bucket=bucket, Key="obj", VersionId="0" * 32, ObjectAttributes=["ETag"]
        )
    assert error_of(exc) == ("NoSuchVersion", 404)


def test_a_delete_marker(s3: Any, bucket: str) -> None:
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    s3.put_object(Bucket=bucket, Key="obj", Body=b"foo")
    marker = s3.delete_object(Bucket=bucket, Key="obj")["VersionId"]

    with pytest.raises(ClientError) as exc:
        s3.get_object_attributes(Bucket=bucket, Key="obj", ObjectAttributes=["ETag"])
    assert error_of(exc) == ("NoSuchKey", 404)
    headers = exc.value.response["ResponseMetadata"]["HTTPHeaders"]
    assert headers["x-amz-delete-marker"] == "true"
    assert headers["x-amz-version-id"] == marker

    with pytest.raises(ClientError) as exc:
        s3.get_object_attributes(
            Bucket=bucket, Key="obj", VersionId=marker, ObjectAttributes=["ETag"]
        )
    assert error_of(exc) == ("MethodNotAllowed", 405)
    headers = exc.value.response["ResponseMetadata"]["HTTPHeaders"]
    assert headers["x-amz-delete-marker"] == "true"
    assert headers["x-amz-version-id"] == marker
    assert "last-modified" in headers


def test_a_missing_key_or_bucket(s3: Any, bucket: str) -> None:
    with pytest.raises(ClientError) as exc:
        s3.get_object_attributes(Bucket=bucket, Key="nothing", ObjectAttributes=["ETag"])
    assert error_of(exc) == ("NoSuchKey", 404)
    with pytest.raises(ClientError) as exc:
        s3.get_object_attributes(Bucket=bucket + "-gone", Key="k", ObjectAttributes=["ETag"])
    assert error_of(exc) == ("NoSuchBucket", 404)


@pytest.mark.parametrize("names", [[], ["Bogus"], ["ETag", "Metadata"]])
def test_invalid_attribute_names(s3: Any, bucket: str, names: list[str]) -> None:
    s3.put_object(Bucket=bucket, Key="obj", Body=b"foo")
    with pytest.raises(ClientError) as exc:
        s3.get_object_attributes(Bucket=bucket, Key="obj", ObjectAttributes=names)
    assert error_of(exc) == ("InvalidArgument", 400)
    assert exc.value.response["Error"]["Message"] == "Invalid attribute name specified."


def test_the_attributes_header_is_required(shared_server: Server, bucket: str) -> None:
    s3 = shared_server.client()
    s3.put_object(Bucket=bucket, Key="obj", Body=b"foo")

    def drop(request: Any, **_: Any) -> None:
        del request.headers["x-amz-object-attributes"]

    s3.meta.events.register("before-sign.s3.GetObjectAttributes", drop)
    with pytest.raises(ClientError) as exc:
        s3.get_object_attributes(Bucket=bucket, Key="obj", ObjectAttributes=["ETag"])
    assert error_of(exc) == ("InvalidArgument", 400)


@pytest.mark.parametrize(
    ("header", "value"),
    [("x-amz-max-parts", "many"), ("x-amz-max-parts", "-1"), ("x-amz-part-number-marker", "x")],
)
def test_invalid_paging_headers(
    shared_server: Server, bucket: str, header: str, value: str
) -> None:
    s3 = with_headers(shared_server.client(), {header: value})
    s3.put_object(Bucket=bucket, Key="obj", Body=b"foo")
    with pytest.raises(ClientError) as exc:
        s3.get_object_attributes(Bucket=bucket, Key="obj", ObjectAttributes=["ObjectParts"])
    assert error_of(exc) == ("InvalidArgument", 400)


Conditional = Callable[[dict[str, str]], Any]


@pytest.fixture
def conditional(shared_server: Server, bucket: str) -> Conditional:
    """GetObjectAttributes of `obj` (b"foo") sent with the given headers."""
    shared_server.client().put_object(Bucket=bucket, Key="obj", Body=b"foo")

    def ask(headers: dict[str, str]) -> Any:
        s3 = with_headers(shared_server.client(), headers)
        return s3.get_object_attributes(Bucket=bucket, Key="obj", ObjectAttributes=["ETag"])

    return ask


def test_conditional_headers(conditional: Conditional) -> None:
    etag = hashlib.md5(b"foo").hexdigest()
    assert conditional({"If-Match": f'"{etag}"'})["ETag"] == etag
    with pytest.raises(ClientError) as exc:
        conditional({"If-Match": '"0123"'})
    assert error_of(exc) == ("PreconditionFailed", 412)
    with pytest.raises(ClientError) as exc:
        conditional({"If-None-Match": f'"{etag}"'})
    assert exc.value.response["ResponseMetadata"]["HTTPStatusCode"] == 304
    with pytest.raises(ClientError) as exc:
        conditional({"If-Modified-Since": "Fri, 01 Jan 2100 00:00:00 GMT"})
    assert exc.value.response["ResponseMetadata"]["HTTPStatusCode"] == 304
    with pytest.raises(ClientError) as exc:
        conditional({"If-Unmodified-Since": "Mon, 01 Jan 2001 00:00:00 GMT"})
    assert error_of(exc) == ("PreconditionFailed", 412)
    # If-Match true wins over If-Unmodified-Since false (RFC 7232 §6, as S3 documents).
    both = {"If-Match": f'"{etag}"', "If-Unmodified-Since": "Mon, 01 Jan 2001 00:00:00 GMT"}
    assert conditional(both)["ETag"] == etag


def attributes_ssec(key: bytes) -> dict[str, str]:
    """SSE-C parameters for GetObjectAttributes, which botocore sends as given (for GetObject,
    PutObject and the like it encodes the key and adds its MD5 itself)."""
    return {
        "SSECustomerAlgorithm": "AES256",
        "SSECustomerKey": base64.b64encode(key).decode(),
        "SSECustomerKeyMD5": base64.b64encode(hashlib.md5(key).digest()).decode(),
    }


def test_a_customer_key_is_never_ignored(s3: Any, bucket: str) -> None:
    """A customer-provided key (SSE-C) sent for an object stored without one applies to
    nothing, and is refused rather than ignored."""
    s3.put_object(Bucket=bucket, Key="obj", Body=b"foo")
    with pytest.raises(ClientError) as exc:
        s3.get_object_attributes(
            Bucket=bucket, Key="obj", ObjectAttributes=["ETag"], **attributes_ssec(os.urandom(32))
        )
    assert error_of(exc) == ("InvalidRequest", 400)


@pytest.mark.timeout(120)
@pytest.mark.parametrize(
    ("denied", "versioned"),
    [("s3:GetObjectAttributes", False), ("s3:GetObjectVersionAttributes", True)],
)
def test_the_policy_action(
    make_inprocess_server: InProcessFactory, denied: str, versioned: bool
) -> None:
    decision = DenyOne(denied)
    s3 = make_inprocess_server(Authorizer(decision)).client()
    s3.create_bucket(Bucket="attrs")
    s3.put_bucket_versioning(Bucket="attrs", VersioningConfiguration={"Status": "Enabled"})
    version = s3.put_object(Bucket="attrs", Key="k", Body=b"v1")["VersionId"]
    which = {"VersionId": version} if versioned else {}
    with pytest.raises(ClientError) as exc:
        s3.get_object_attributes(Bucket="attrs", Key="k", ObjectAttributes=["ETag"], **which)
    assert error_of(exc) == ("AccessDenied", 403)
    assert decision.actions()[-1] == (ACCESS_KEY, denied, "arn:aws:s3:::attrs/k")
    # The other form is another action, allowed here.
    other = {} if versioned else {"VersionId": version}
    got = s3.get_object_attributes(Bucket="attrs", Key="k", ObjectAttributes=["ETag"], **other)
    assert got["ETag"] == hashlib.md5(b"v1").hexdigest()


def test_an_object_under_a_customer_key_answers_only_to_that_key(s3: Any, bucket: str) -> None:
    """As GET (decision 0027): without the key 400 InvalidRequest, with another 400
    InvalidArgument, with the key the attributes."""
    key = os.urandom(32)
    s3.put_object(
        Bucket=bucket, Key="secret", Body=b"data", SSECustomerAlgorithm="AES256", SSECustomerKey=key
    )
    with pytest.raises(ClientError) as exc:
        s3.get_object_attributes(Bucket=bucket, Key="secret", ObjectAttributes=["ObjectSize"])
    assert error_of(exc) == ("InvalidRequest", 400)
    with pytest.raises(ClientError) as exc:
        s3.get_object_attributes(
            Bucket=bucket, Key="secret", ObjectAttributes=["ObjectSize"],
            **attributes_ssec(os.urandom(32)),
        )  # fmt: skip
    assert error_of(exc) == ("InvalidArgument", 400)
    answer = s3.get_object_attributes(
        Bucket=bucket, Key="secret", ObjectAttributes=["ObjectSize"], **attributes_ssec(key)
    )
    assert answer["ObjectSize"] == 4
