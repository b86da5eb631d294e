"""SSE-KMS mapped to the bucket's key, and bucket default encryption, against a real server with
boto3 (decision 0033): every answer says what the version was written as; a key id naming
anything but the bucket's key is refused before anything is stored."""

from __future__ import annotations

import os
from typing import Any

import pytest
from botocore.exceptions import ClientError
from tests.e2e.test_encryption_headers import absent, no_uploads, refusal, sending
from tests.e2e.test_objects import error_of

MiB = 1024 * 1024
KMS_KEY_ID = "x-amz-server-side-encryption-aws-kms-key-id"


def arn(bucket: str) -> str:
    return f"arn:egide:kms:::bucket/{bucket}"


def kms_answer(response: dict[str, Any]) -> tuple[str | None, str | None, bool | None]:
    return (
        response.get("ServerSideEncryption"),
        response.get("SSEKMSKeyId"),
        response.get("BucketKeyEnabled"),
    )


def test_sse_kms_put_get_head_answer_the_key_id(s3: Any, bucket: str) -> None:
    for key_id in (arn(bucket), f"bucket/{bucket}", "alias/egide/bucket"):
        put = s3.put_object(
            Bucket=bucket, Key="k", Body=b"data", ServerSideEncryption="aws:kms",
            SSEKMSKeyId=key_id,
        )  # fmt: skip
        assert kms_answer(put) == ("aws:kms", key_id, True)
        got = s3.get_object(Bucket=bucket, Key="k")
        assert kms_answer(got) == ("aws:kms", key_id, True)
        assert got["Body"].read() == b"data"
        assert kms_answer(s3.head_object(Bucket=bucket, Key="k")) == ("aws:kms", key_id, True)
        ranged = s3.get_object(Bucket=bucket, Key="k", Range="bytes=1-2")
        assert (kms_answer(ranged)[1], ranged["Body"].read()) == (key_id, b"at")
    # No key id: the bucket's key, answered by its ARN (AWS answers its default key's).
    put = s3.put_object(Bucket=bucket, Key="n", Body=b"data", ServerSideEncryption="aws:kms")
    assert kms_answer(put) == ("aws:kms", arn(bucket), True)
    assert kms_answer(s3.head_object(Bucket=bucket, Key="n")) == ("aws:kms", arn(bucket), True)


@pytest.mark.parametrize(
    "key_id", ["testkey-1", "bucket/another", "arn:egide:kms:::bucket/another", "alias/aws/s3"]
)
def test_sse_kms_key_id_of_anything_else_is_refused(s3: Any, bucket: str, key_id: str) -> None:
    with pytest.raises(ClientError) as exc:
        s3.put_object(
            Bucket=bucket, Key="k", Body=b"data", ServerSideEncryption="aws:kms",
            SSEKMSKeyId=key_id,
        )  # fmt: skip
    assert error_of(exc) == ("KMS.NotFoundException", 400)
    assert key_id in exc.value.response["Error"]["Message"]
    assert absent(s3, bucket, "k")
    s3.put_object(Bucket=bucket, Key="src", Body=b"data")
    with pytest.raises(ClientError) as exc:
        s3.copy_object(
            Bucket=bucket, Key="k", CopySource={"Bucket": bucket, "Key": "src"},
            ServerSideEncryption="aws:kms", SSEKMSKeyId=key_id,
        )  # fmt: skip
    assert error_of(exc) == ("KMS.NotFoundException", 400)
    with pytest.raises(ClientError) as exc:
        s3.create_multipart_upload(
            Bucket=bucket, Key="k", ServerSideEncryption="aws:kms", SSEKMSKeyId=key_id
        )
    assert error_of(exc) == ("KMS.NotFoundException", 400)
    assert absent(s3, bucket, "k") and no_uploads(s3, bucket)


def test_sse_kms_copy_target_takes_the_request(s3: Any, bucket: str) -> None:
    s3.put_object(Bucket=bucket, Key="plain", Body=b"data")
    copied = s3.copy_object(
        Bucket=bucket, Key="a", CopySource={"Bucket": bucket, "Key": "plain"},
        ServerSideEncryption="aws:kms", SSEKMSKeyId=f"bucket/{bucket}",
    )  # fmt: skip
    assert kms_answer(copied) == ("aws:kms", f"bucket/{bucket}", True)
    assert kms_answer(s3.head_object(Bucket=bucket, Key="a"))[:2] == ("aws:kms", f"bucket/{bucket}")
    # A copy without encryption headers does not inherit the source's (as in S3).
    plain = s3.copy_object(Bucket=bucket, Key="b", CopySource={"Bucket": bucket, "Key": "a"})
    assert "ServerSideEncryption" not in plain
    assert "SSEKMSKeyId" not in s3.head_object(Bucket=bucket, Key="b")
    # Onto itself, asking for SSE-KMS is a change.
    again = s3.copy_object(
        Bucket=bucket, Key="plain", CopySource={"Bucket": bucket, "Key": "plain"},
        ServerSideEncryption="aws:kms",
    )  # fmt: skip
    assert kms_answer(again)[:2] == ("aws:kms", arn(bucket))
    assert s3.get_object(Bucket=bucket, Key="plain")["Body"].read() == b"data"


def test_sse_kms_multipart_answers_on_every_step(s3: Any, bucket: str) -> None:
    created = s3.create_multipart_upload(
        Bucket=bucket, Key="k", ServerSideEncryption="aws:kms", SSEKMSKeyId=arn(bucket)
    )
    assert kms_answer(created) == ("aws:kms", arn(bucket), True)
    upload_id = created["UploadId"]
    first = os.urandom(5 * MiB)
    part = s3.upload_part(Bucket=bucket, Key="k", UploadId=upload_id, PartNumber=1, Body=first)
    assert kms_answer(part) == ("aws:kms", arn(bucket), True)
    # A part may repeat its upload's encryption exactly (ceph/s3-tests does), never choose
    # another: a different key id, even one naming the same key, is refused (400).
    same = {"x-amz-server-side-encryption": "aws:kms", KMS_KEY_ID: arn(bucket)}
    again = sending(s3, "upload_part", same, Bucket=bucket, Key="k", UploadId=upload_id,
                    PartNumber=1, Body=first)  # fmt: skip
    assert kms_answer(again)[:2] == ("aws:kms", arn(bucket))
    for other in ({KMS_KEY_ID: "alias/egide/bucket"}, {"x-amz-server-side-encryption": "AES256"}):
        code, status, _ = refusal(
            s3, "upload_part", other,
            Bucket=bucket, Key="k", UploadId=upload_id, PartNumber=2, Body=b"x",
        )  # fmt: skip
        assert (code, status) == ("InvalidArgument", 400)
    assert [p["PartNumber"] for p in s3.list_parts(Bucket=bucket, Key="k",
                                                   UploadId=upload_id)["Parts"]] == [1]  # fmt: skip
    complete = {
        "Bucket": bucket, "Key": "k", "UploadId": upload_id,
        "MultipartUpload": {"Parts": [{"PartNumber": 1, "ETag": part["ETag"]}]},
    }  # fmt: skip
    code, status, _ = refusal(s3, "complete_multipart_upload", {KMS_KEY_ID: "bucket/x"}, **complete)
    assert (code, status) == ("InvalidArgument", 400)
    assert absent(s3, bucket, "k")
    done = sending(s3, "complete_multipart_upload", same, **complete)
    assert kms_answer(done) == ("aws:kms", arn(bucket), True)
    got = s3.get_object(Bucket=bucket, Key="k")
    assert kms_answer(got) == ("aws:kms", arn(bucket), True)
    assert got["Body"].read() == first


# --- bucket default encryption --------------------------------------------------------------


def _default(algorithm: str, key_id: str | None = None) -> dict[str, Any]:
    by_default = {"SSEAlgorithm": algorithm}
    if key_id is not None:
        by_default["KMSMasterKeyID"] = key_id
    return {"Rules": [{"ApplyServerSideEncryptionByDefault": by_default}]}


def test_bucket_encryption_put_get_delete(s3: Any, bucket: str) -> None:
    with pytest.raises(ClientError) as exc:
        s3.get_bucket_encryption(Bucket=bucket)
    assert error_of(exc) == ("ServerSideEncryptionConfigurationNotFoundError", 404)
    s3.put_bucket_encryption(Bucket=bucket, ServerSideEncryptionConfiguration=_default("AES256"))
    rules = s3.get_bucket_encryption(Bucket=bucket)["ServerSideEncryptionConfiguration"]["Rules"]
    assert rules[0]["ApplyServerSideEncryptionByDefault"] == {"SSEAlgorithm": "AES256"}
    conf = _default("aws:kms", "alias/egide/bucket")
    s3.put_bucket_encryption(Bucket=bucket, ServerSideEncryptionConfiguration=conf)
    rules = s3.get_bucket_encryption(Bucket=bucket)["ServerSideEncryptionConfiguration"]["Rules"]
    assert (
        rules[0]["ApplyServerSideEncryptionByDefault"]
        == conf["Rules"][0]["ApplyServerSideEncryptionByDefault"]
    )
    assert s3.delete_bucket_encryption(Bucket=bucket)["ResponseMetadata"]["HTTPStatusCode"] == 204
    with pytest.raises(ClientError) as exc:
        s3.get_bucket_encryption(Bucket=bucket)
    assert error_of(exc)[1] == 404


@pytest.mark.parametrize(
    "conf,expected",
    [
        (_default("aws:kms", "testkey-1"), ("KMS.NotFoundException", 400)),
        (_default("AES256", "alias/egide/bucket"), ("InvalidArgument", 400)),
        (_default("AES128"), ("MalformedXML", 400)),
        ({"Rules": []}, ("MalformedXML", 400)),
        ({"Rules": [_default("AES256")["Rules"][0]] * 2}, ("MalformedXML", 400)),
        (_default("aws:kms:dsse"), ("NotImplemented", 501)),
    ],
    ids=["other-key", "aes-with-key", "unknown", "no-rule", "two-rules", "dsse"],
)
def test_bucket_encryption_refused(
    s3: Any, bucket: str, conf: dict[str, Any], expected: tuple[str, int]
) -> None:
    with pytest.raises(ClientError) as exc:
        s3.put_bucket_encryption(Bucket=bucket, ServerSideEncryptionConfiguration=conf)
    assert error_of(exc) == expected
    with pytest.raises(ClientError):
        s3.get_bucket_encryption(Bucket=bucket)


def test_bucket_default_applies_to_writes_that_ask_nothing(s3: Any, bucket: str) -> None:
    s3.put_object(Bucket=bucket, Key="before", Body=b"data")
    s3.put_bucket_encryption(Bucket=bucket, ServerSideEncryptionConfiguration=_default("aws:kms"))
    put = s3.put_object(Bucket=bucket, Key="k", Body=b"data")
    assert kms_answer(put) == ("aws:kms", arn(bucket), True)
    assert kms_answer(s3.get_object(Bucket=bucket, Key="k"))[:2] == ("aws:kms", arn(bucket))
    # What a version was written as stays: one from before the default says nothing.
    assert "ServerSideEncryption" not in s3.head_object(Bucket=bucket, Key="before")
    # A write that asks keeps what it asked.
    own = s3.put_object(Bucket=bucket, Key="own", Body=b"d", ServerSideEncryption="AES256")
    assert kms_answer(own) == ("AES256", None, None)
    copied = s3.copy_object(Bucket=bucket, Key="c", CopySource={"Bucket": bucket, "Key": "before"})
    assert kms_answer(copied)[:2] == ("aws:kms", arn(bucket))
    # The default alone is no change: copying an object onto itself is still refused.
    with pytest.raises(ClientError) as exc:
        s3.copy_object(Bucket=bucket, Key="c", CopySource={"Bucket": bucket, "Key": "c"})
    assert error_of(exc) == ("InvalidRequest", 400)
    s3.put_bucket_encryption(Bucket=bucket, ServerSideEncryptionConfiguration=_default("AES256"))
    created = s3.create_multipart_upload(Bucket=bucket, Key="m")
    assert created["ServerSideEncryption"] == "AES256"
    s3.abort_multipart_upload(Bucket=bucket, Key="m", UploadId=created["UploadId"])
    s3.delete_bucket_encryption(Bucket=bucket)
    assert "ServerSideEncryption" not in s3.put_object(Bucket=bucket, Key="after", Body=b"d")
