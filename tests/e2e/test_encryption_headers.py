"""Server-side encryption request headers against a real server, with boto3: every one is
honoured (SSE-S3; SSE-C in test_sse_c.py) or refused with S3's error before anything is
stored, never accepted and ignored (decision 0027). Malformed values are sent as raw headers,
added to boto3's request just before it is signed."""

from __future__ import annotations

import base64
import hashlib
import os
from typing import Any

import pytest
import requests
from botocore.exceptions import ClientError
from tests.e2e.test_objects import error_of

MiB = 1024 * 1024
SSE = "x-amz-server-side-encryption"
KEY = os.urandom(32)


def customer(key: bytes = KEY, *, prefix: str = SSE, algorithm: str = "AES256") -> dict[str, str]:
    """The three SSE-C headers of `key` (prefix `x-amz-copy-source-server-side-encryption`
    for a copy's source)."""
    return {
        f"{prefix}-customer-algorithm": algorithm,
        f"{prefix}-customer-key": base64.b64encode(key).decode(),
        f"{prefix}-customer-key-md5": base64.b64encode(hashlib.md5(key).digest()).decode(),
    }


def sending(s3: Any, method: str, headers: dict[str, str], **params: Any) -> Any:
    """Call boto3's `method` with `headers` added to the request as they are."""
    event = f"before-call.s3.{s3.meta.method_to_api_mapping[method]}"

    def add(params: dict[str, Any], **_: Any) -> None:
        params["headers"].update(headers)

    s3.meta.events.register(event, add)
    try:
        return getattr(s3, method)(**params)
    finally:
        s3.meta.events.unregister(event, add)


def refusal(s3: Any, method: str, headers: dict[str, str], **params: Any) -> tuple[str, int, str]:
    """(code, status, message) of the S3 error that `method` with `headers` gets."""
    with pytest.raises(ClientError) as exc:
        sending(s3, method, headers, **params)
    code, status = error_of(exc)
    return code, status, exc.value.response["Error"].get("Message", "")


def absent(s3: Any, bucket: str, key: str) -> bool:
    try:
        s3.head_object(Bucket=bucket, Key=key)
    except ClientError as exc:
        return exc.response["ResponseMetadata"]["HTTPStatusCode"] == 404
    return False


def no_uploads(s3: Any, bucket: str) -> bool:
    return not s3.list_multipart_uploads(Bucket=bucket).get("Uploads")


# --- what each write refuses, before anything is stored --------------------------------------

#: Write headers, and the (code, status) every write that carries them gets.
WRITE_MATRIX: list[tuple[str, dict[str, str], tuple[str, int]]] = [
    (
        "sse-kms-other-key",
        {SSE: "aws:kms", f"{SSE}-aws-kms-key-id": "k1"},
        ("KMS.NotFoundException", 400),
    ),
    ("dsse-kms", {SSE: "aws:kms:dsse"}, ("NotImplemented", 501)),
    ("kms-context", {SSE: "aws:kms", f"{SSE}-context": "e30="}, ("NotImplemented", 501)),
    (
        "kms-without-bucket-key",
        {SSE: "aws:kms", f"{SSE}-bucket-key-enabled": "false"},
        ("NotImplemented", 501),
    ),
    ("bucket-key-alone", {f"{SSE}-bucket-key-enabled": "true"}, ("InvalidArgument", 400)),
    ("kms-key-without-kms", {f"{SSE}-aws-kms-key-id": "k1"}, ("InvalidArgument", 400)),
    ("kms-key-with-aes", {SSE: "AES256", f"{SSE}-aws-kms-key-id": "k1"}, ("InvalidArgument", 400)),
    ("kms-context-without-kms", {f"{SSE}-context": "e30="}, ("InvalidArgument", 400)),
    ("unknown-method", {SSE: "AES128"}, ("InvalidArgument", 400)),
    ("misspelt-kms", {SSE: "aes:kms"}, ("InvalidArgument", 400)),
    ("aes-and-customer", {SSE: "AES256", **customer()}, ("InvalidArgument", 400)),
    ("kms-and-customer", {SSE: "aws:kms", **customer()}, ("InvalidArgument", 400)),
    ("customer-algorithm-aes128", customer(algorithm="AES128"), ("InvalidArgument", 400)),
    ("customer-key-128-bits", customer(os.urandom(16)), ("InvalidArgument", 400)),
    (
        "customer-md5-mismatch",
        {**customer(), f"{SSE}-customer-key-md5": base64.b64encode(b"\0" * 16).decode()},
        ("InvalidArgument", 400),
    ),
    (
        "customer-key-not-base64",
        {**customer(), f"{SSE}-customer-key": "not base64!"},
        ("InvalidArgument", 400),
    ),
    (
        "customer-no-md5",
        {k: v for k, v in customer().items() if not k.endswith("md5")},
        ("InvalidArgument", 400),
    ),
    (
        "customer-no-key",
        {k: v for k, v in customer().items() if not k.endswith("-key")},
        ("InvalidArgument", 400),
    ),
    (
        "customer-no-algorithm",
        {k: v for k, v in customer().items() if not k.endswith("algorithm")},
        ("InvalidArgument", 400),
    ),
]
WRITE_IDS = [name for name, _, _ in WRITE_MATRIX]
WRITE_CASES = [(headers, expected) for _, headers, expected in WRITE_MATRIX]


@pytest.mark.parametrize("headers,expected", WRITE_CASES, ids=WRITE_IDS)
def test_put_object_refuses_before_storing(
    s3: Any, bucket: str, headers: dict[str, str], expected: tuple[str, int]
) -> None:
    code, status, message = refusal(
        s3, "put_object", headers, Bucket=bucket, Key="k", Body=b"secret"
    )
    assert (code, status) == expected
    if status == 501 or code.startswith("KMS"):
        assert "SSE-KMS" in message or "key id" in message, message
    assert absent(s3, bucket, "k")


@pytest.mark.parametrize("headers,expected", WRITE_CASES, ids=WRITE_IDS)
def test_copy_object_target_refuses_before_storing(
    s3: Any, bucket: str, headers: dict[str, str], expected: tuple[str, int]
) -> None:
    s3.put_object(Bucket=bucket, Key="src", Body=b"plain")
    source = {"Bucket": bucket, "Key": "src"}
    assert (
        refusal(s3, "copy_object", headers, Bucket=bucket, Key="dst", CopySource=source)[:2]
        == expected
    )
    assert absent(s3, bucket, "dst")


@pytest.mark.parametrize("headers,expected", WRITE_CASES, ids=WRITE_IDS)
def test_create_multipart_upload_refuses(
    s3: Any, bucket: str, headers: dict[str, str], expected: tuple[str, int]
) -> None:
    assert refusal(s3, "create_multipart_upload", headers, Bucket=bucket, Key="k")[:2] == expected
    assert no_uploads(s3, bucket)


@pytest.fixture
def poster(shared_server: Any) -> Any:
    return shared_server.client(signature_version="s3v4")


@pytest.mark.parametrize(
    "fields,expected",
    [
        ({SSE: "aws:kms", f"{SSE}-aws-kms-key-id": "k1"}, ("KMS.NotFoundException", 400)),
        ({SSE: "AES128"}, ("InvalidArgument", 400)),
        (customer(os.urandom(16)), ("InvalidArgument", 400)),
    ],
    ids=["sse-kms-other-key", "unknown-method", "customer-key-128-bits"],
)
def test_post_form_upload_refuses_before_storing(
    s3: Any, poster: Any, bucket: str, fields: dict[str, str], expected: tuple[str, int]
) -> None:
    post = poster.generate_presigned_post(
        bucket, "k", Fields=fields, Conditions=[{n: v} for n, v in fields.items()], ExpiresIn=300
    )
    response = requests.post(
        post["url"], data=post["fields"], files={"file": ("f", b"secret")}, timeout=60
    )
    assert response.status_code == expected[1], response.content
    assert f"<Code>{expected[0]}</Code>".encode() in response.content
    assert absent(s3, bucket, "k")


# --- SSE-C parameters for objects and uploads stored without a customer key ------------------


def test_get_and_head_refuse_customer_keys_of_an_object_without_one(s3: Any, bucket: str) -> None:
    """A GET with a customer key must not answer as if that key protected the data when it
    did not (S3: 400 InvalidRequest, "not applicable to this object")."""
    s3.put_object(Bucket=bucket, Key="k", Body=b"plain")
    assert refusal(s3, "get_object", customer(), Bucket=bucket, Key="k")[:2] == (
        "InvalidRequest",
        400,
    )
    assert refusal(s3, "head_object", customer(), Bucket=bucket, Key="k")[1] == 400
    assert refusal(s3, "get_object", customer(), Bucket=bucket, Key="k", Range="bytes=0-1")[:2] == (
        "InvalidRequest",
        400,
    )
    # A malformed key is InvalidArgument; a missing object still NoSuchKey.
    bad = customer(os.urandom(16))
    assert refusal(s3, "get_object", bad, Bucket=bucket, Key="k")[:2] == ("InvalidArgument", 400)
    assert refusal(s3, "get_object", customer(), Bucket=bucket, Key="nope")[:2] == (
        "NoSuchKey",
        404,
    )


@pytest.mark.parametrize(
    "headers",
    [{SSE: "AES256"}, {SSE: "aws:kms"}, {f"{SSE}-aws-kms-key-id": "k1"}],
    ids=["aes256", "kms", "kms-key"],
)
def test_get_and_head_refuse_write_encryption_headers(
    s3: Any, bucket: str, headers: dict[str, str]
) -> None:
    """The encryption of a stored object cannot be chosen on read (S3: 400)."""
    s3.put_object(Bucket=bucket, Key="k", Body=b"plain", ServerSideEncryption="AES256")
    assert refusal(s3, "get_object", headers, Bucket=bucket, Key="k")[:2] == (
        "InvalidArgument",
        400,
    )
    assert refusal(s3, "head_object", headers, Bucket=bucket, Key="k")[1] == 400


def test_copy_source_customer_key_of_a_source_without_one(s3: Any, bucket: str) -> None:
    s3.put_object(Bucket=bucket, Key="src", Body=b"plain")
    source = {"Bucket": bucket, "Key": "src"}
    headers = customer(prefix="x-amz-copy-source-server-side-encryption")
    assert refusal(s3, "copy_object", headers, Bucket=bucket, Key="dst", CopySource=source)[:2] == (
        "InvalidRequest",
        400,
    )
    assert absent(s3, bucket, "dst")
    bad = customer(os.urandom(16), prefix="x-amz-copy-source-server-side-encryption")
    assert refusal(s3, "copy_object", bad, Bucket=bucket, Key="dst", CopySource=source)[:2] == (
        "InvalidArgument",
        400,
    )
    assert absent(s3, bucket, "dst")


def test_parts_refuse_encryption_headers_their_upload_does_not_have(s3: Any, bucket: str) -> None:
    s3.put_object(Bucket=bucket, Key="src", Body=b"plain")
    upload_id = s3.create_multipart_upload(Bucket=bucket, Key="k")["UploadId"]
    part = {"Bucket": bucket, "Key": "k", "UploadId": upload_id, "PartNumber": 1}
    cases: list[tuple[str, dict[str, str], dict[str, Any], tuple[str, int]]] = [
        ("upload_part", customer(), {"Body": b"x"}, ("InvalidRequest", 400)),
        ("upload_part", customer(os.urandom(16)), {"Body": b"x"}, ("InvalidArgument", 400)),
        ("upload_part", {SSE: "AES256"}, {"Body": b"x"}, ("InvalidArgument", 400)),
        ("upload_part", {SSE: "aws:kms"}, {"Body": b"x"}, ("InvalidArgument", 400)),
        (
            "upload_part_copy",
            customer(),
            {"CopySource": {"Bucket": bucket, "Key": "src"}},
            ("InvalidRequest", 400),
        ),
        (
            "upload_part_copy",
            customer(prefix="x-amz-copy-source-server-side-encryption"),
            {"CopySource": {"Bucket": bucket, "Key": "src"}},
            ("InvalidRequest", 400),
        ),
    ]
    for method, headers, params, expected in cases:
        assert refusal(s3, method, headers, **part, **params)[:2] == expected, (method, headers)
    assert s3.list_parts(Bucket=bucket, Key="k", UploadId=upload_id).get("Parts", []) == []
    # Completing with encryption parameters the upload does not have is refused too.
    etag = s3.upload_part(**part, Body=b"x")["ETag"]
    done = {"Parts": [{"PartNumber": 1, "ETag": etag}]}
    complete = {"Bucket": bucket, "Key": "k", "UploadId": upload_id, "MultipartUpload": done}
    for headers, expected in [
        (customer(), ("InvalidRequest", 400)),
        ({SSE: "AES256"}, ("InvalidArgument", 400)),
    ]:
        assert refusal(s3, "complete_multipart_upload", headers, **complete)[:2] == expected, (
            headers
        )
    assert absent(s3, bucket, "k")
    s3.complete_multipart_upload(**complete)
    assert s3.get_object(Bucket=bucket, Key="k")["Body"].read() == b"x"


# --- SSE-S3: honoured, as a statement of what is always true ----------------------------------


def test_sse_s3_is_answered_on_put_get_head(s3: Any, bucket: str) -> None:
    put = s3.put_object(Bucket=bucket, Key="k", Body=b"data", ServerSideEncryption="AES256")
    assert put["ServerSideEncryption"] == "AES256"
    got = s3.get_object(Bucket=bucket, Key="k")
    assert (got["ServerSideEncryption"], got["Body"].read()) == ("AES256", b"data")
    assert s3.head_object(Bucket=bucket, Key="k")["ServerSideEncryption"] == "AES256"
    ranged = s3.get_object(Bucket=bucket, Key="k", Range="bytes=1-2")
    assert (ranged["ServerSideEncryption"], ranged["Body"].read()) == ("AES256", b"at")
    # An object written without the header is not said to be: the answer repeats the request.
    plain = s3.put_object(Bucket=bucket, Key="plain", Body=b"data")
    assert "ServerSideEncryption" not in plain
    assert "ServerSideEncryption" not in s3.head_object(Bucket=bucket, Key="plain")


def test_sse_s3_copy_is_the_target_request(s3: Any, bucket: str) -> None:
    s3.put_object(Bucket=bucket, Key="plain", Body=b"data")
    s3.put_object(Bucket=bucket, Key="sse", Body=b"data", ServerSideEncryption="AES256")
    copied = s3.copy_object(
        Bucket=bucket, Key="a", CopySource={"Bucket": bucket, "Key": "plain"},
        ServerSideEncryption="AES256",
    )  # fmt: skip
    assert copied["ServerSideEncryption"] == "AES256"
    assert s3.head_object(Bucket=bucket, Key="a")["ServerSideEncryption"] == "AES256"
    # As in S3, the target's encryption is what the copy request says, not the source's.
    copied = s3.copy_object(Bucket=bucket, Key="b", CopySource={"Bucket": bucket, "Key": "sse"})
    assert "ServerSideEncryption" not in copied
    assert "ServerSideEncryption" not in s3.head_object(Bucket=bucket, Key="b")
    # Asking for encryption is a change: an object may be copied onto itself with it.
    again = s3.copy_object(
        Bucket=bucket, Key="plain", CopySource={"Bucket": bucket, "Key": "plain"},
        ServerSideEncryption="AES256",
    )  # fmt: skip
    assert again["ServerSideEncryption"] == "AES256"
    got = s3.get_object(Bucket=bucket, Key="plain")
    assert (got["ServerSideEncryption"], got["Body"].read()) == ("AES256", b"data")


def test_sse_s3_multipart_answers_on_every_step(s3: Any, bucket: str) -> None:
    s3.put_object(Bucket=bucket, Key="src", Body=b"tail")
    created = s3.create_multipart_upload(Bucket=bucket, Key="k", ServerSideEncryption="AES256")
    assert created["ServerSideEncryption"] == "AES256"
    upload_id = created["UploadId"]
    first = os.urandom(5 * MiB)
    part = s3.upload_part(Bucket=bucket, Key="k", UploadId=upload_id, PartNumber=1, Body=first)
    assert part["ServerSideEncryption"] == "AES256"
    copied = s3.upload_part_copy(
        Bucket=bucket, Key="k", UploadId=upload_id, PartNumber=2,
        CopySource={"Bucket": bucket, "Key": "src"},
    )  # fmt: skip
    assert copied["ServerSideEncryption"] == "AES256"
    parts = [
        {"PartNumber": 1, "ETag": part["ETag"]},
        {"PartNumber": 2, "ETag": copied["CopyPartResult"]["ETag"]},
    ]
    done = s3.complete_multipart_upload(
        Bucket=bucket, Key="k", UploadId=upload_id, MultipartUpload={"Parts": parts}
    )
    assert done["ServerSideEncryption"] == "AES256"
    got = s3.get_object(Bucket=bucket, Key="k")
    assert (got["ServerSideEncryption"], got["Body"].read()) == ("AES256", first + b"tail")


def test_sse_s3_post_form_upload(s3: Any, poster: Any, bucket: str) -> None:
    post = poster.generate_presigned_post(
        bucket, "k", Fields={SSE: "AES256"}, Conditions=[{SSE: "AES256"}], ExpiresIn=300
    )
    response = requests.post(
        post["url"], data=post["fields"], files={"file": ("f", b"form")}, timeout=60
    )
    assert response.status_code == 204, response.content
    assert response.headers[SSE] == "AES256"
    got = s3.get_object(Bucket=bucket, Key="k")
    assert (got["ServerSideEncryption"], got["Body"].read()) == ("AES256", b"form")
