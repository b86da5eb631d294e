"""Bucket and object tagging through boto3 against a real server, as S3 answers it."""

from __future__ import annotations

import http.client
from typing import Any

import pytest
from botocore.auth import S3SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from botocore.exceptions import ClientError
from tests.conftest import ACCESS_KEY, SECRET_KEY, Server


def error_of(exc: pytest.ExceptionInfo[ClientError]) -> tuple[str, int, str]:
    response = exc.value.response
    return (
        response["Error"]["Code"],
        response["ResponseMetadata"]["HTTPStatusCode"],
        response["Error"]["Message"],
    )


def tag_set(tags: dict[str, str]) -> dict[str, Any]:
    return {"TagSet": [{"Key": k, "Value": v} for k, v in tags.items()]}


def headers_of(reply: dict[str, Any]) -> dict[str, str]:
    return dict(reply["ResponseMetadata"]["HTTPHeaders"])


# -- bucket tagging ---------------------------------------------------------------------------


def test_bucket_tagging_round_trip(s3: Any, bucket: str) -> None:
    with pytest.raises(ClientError) as exc:
        s3.get_bucket_tagging(Bucket=bucket)
    assert error_of(exc) == ("NoSuchTagSet", 404, "The TagSet does not exist")

    tags = {"project": "égide", "cost-center": "42", "empty": ""}
    put = s3.put_bucket_tagging(Bucket=bucket, Tagging=tag_set(tags))
    assert put["ResponseMetadata"]["HTTPStatusCode"] == 204
    assert s3.get_bucket_tagging(Bucket=bucket)["TagSet"] == tag_set(tags)["TagSet"]

    s3.put_bucket_tagging(Bucket=bucket, Tagging=tag_set({"only": "this"}))
    assert s3.get_bucket_tagging(Bucket=bucket)["TagSet"] == [{"Key": "only", "Value": "this"}]

    deleted = s3.delete_bucket_tagging(Bucket=bucket)
    assert deleted["ResponseMetadata"]["HTTPStatusCode"] == 204
    with pytest.raises(ClientError) as exc:
        s3.get_bucket_tagging(Bucket=bucket)
    assert error_of(exc)[:2] == ("NoSuchTagSet", 404)


def test_empty_bucket_tag_set_leaves_the_bucket_untagged(s3: Any, bucket: str) -> None:
    s3.put_bucket_tagging(Bucket=bucket, Tagging=tag_set({"a": "1"}))
    s3.put_bucket_tagging(Bucket=bucket, Tagging={"TagSet": []})
    with pytest.raises(ClientError) as exc:
        s3.get_bucket_tagging(Bucket=bucket)
    assert error_of(exc)[:2] == ("NoSuchTagSet", 404)


def test_bucket_tag_limits(s3: Any, bucket: str) -> None:
    fifty = {f"k{i}": "v" * 256 for i in range(50)}
    s3.put_bucket_tagging(Bucket=bucket, Tagging=tag_set(fifty))
    assert len(s3.get_bucket_tagging(Bucket=bucket)["TagSet"]) == 50
    with pytest.raises(ClientError) as exc:
        s3.put_bucket_tagging(Bucket=bucket, Tagging=tag_set({**fifty, "one-more": ""}))
    assert error_of(exc) == ("BadRequest", 400, "Bucket tags cannot be greater than 50")
    assert len(s3.get_bucket_tagging(Bucket=bucket)["TagSet"]) == 50  # unchanged


@pytest.mark.parametrize(
    "tags,message,field",
    [
        ([("k" * 129, "v")], "The TagKey you have provided is invalid", ("TagKey", "k" * 129)),
        ([("a;b", "v")], "The TagKey you have provided is invalid", ("TagKey", "a;b")),
        ([("k", "v" * 257)], "The TagValue you have provided is invalid", None),
        (
            [("dup", "1"), ("dup", "2")],
            "Cannot provide multiple Tags with the same key",
            ("TagKey", "dup"),
        ),
        ([("aws:created-by", "me")], "Your TagKey cannot be prefixed with aws:", None),
    ],
)
def test_invalid_tags_are_refused_on_buckets_and_objects(
    s3: Any,
    bucket: str,
    tags: list[tuple[str, str]],
    message: str,
    field: tuple[str, str] | None,
) -> None:
    s3.put_object(Bucket=bucket, Key="k", Body=b"x")
    tagging = {"TagSet": [{"Key": k, "Value": v} for k, v in tags]}
    for call in (
        lambda: s3.put_bucket_tagging(Bucket=bucket, Tagging=tagging),
        lambda: s3.put_object_tagging(Bucket=bucket, Key="k", Tagging=tagging),
    ):
        with pytest.raises(ClientError) as exc:
            call()
        assert error_of(exc) == ("InvalidTag", 400, message)
        if field:
            assert exc.value.response["Error"][field[0]] == field[1]
    assert s3.get_object_tagging(Bucket=bucket, Key="k")["TagSet"] == []


def test_tagging_of_a_missing_bucket(s3: Any) -> None:
    with pytest.raises(ClientError) as exc:
        s3.get_bucket_tagging(Bucket="no-such-bucket-tagging")
    assert error_of(exc)[:2] == ("NoSuchBucket", 404)
    with pytest.raises(ClientError) as exc:
        s3.get_object_tagging(Bucket="no-such-bucket-tagging", Key="k")
    assert error_of(exc)[:2] == ("NoSuchBucket", 404)


# -- object tagging ---------------------------------------------------------------------------


def test_object_tagging_round_trip(s3: Any, bucket: str) -> None:
    s3.put_object(Bucket=bucket, Key="doc", Body=b"hello", ContentType="text/plain")
    assert s3.get_object_tagging(Bucket=bucket, Key="doc")["TagSet"] == []
    assert "x-amz-tagging-count" not in headers_of(s3.head_object(Bucket=bucket, Key="doc"))

    tags = {"team": "data", "Été": "a b/c=d+e@f", "blank": ""}
    put = s3.put_object_tagging(Bucket=bucket, Key="doc", Tagging=tag_set(tags))
    assert put["ResponseMetadata"]["HTTPStatusCode"] == 200
    # S3 gives tags back in key order.
    got = s3.get_object_tagging(Bucket=bucket, Key="doc")["TagSet"]
    assert got == tag_set(dict(sorted(tags.items())))["TagSet"]

    head = s3.head_object(Bucket=bucket, Key="doc")
    assert headers_of(head)["x-amz-tagging-count"] == "3"
    assert "x-amz-tagging" not in headers_of(head)
    obj = s3.get_object(Bucket=bucket, Key="doc")
    assert obj["TagCount"] == 3
    assert obj["Body"].read() == b"hello"
    assert obj["ContentType"] == "text/plain"  # the other stored headers are kept
    assert "x-amz-tagging" not in headers_of(obj)

    deleted = s3.delete_object_tagging(Bucket=bucket, Key="doc")
    assert deleted["ResponseMetadata"]["HTTPStatusCode"] == 204
    assert s3.get_object_tagging(Bucket=bucket, Key="doc")["TagSet"] == []
    assert "x-amz-tagging-count" not in headers_of(s3.head_object(Bucket=bucket, Key="doc"))
    assert s3.get_object(Bucket=bucket, Key="doc")["Body"].read() == b"hello"


def test_empty_tag_set_removes_object_tags(s3: Any, bucket: str) -> None:
    s3.put_object(Bucket=bucket, Key="k", Body=b"x", Tagging="a=1")
    s3.put_object_tagging(Bucket=bucket, Key="k", Tagging={"TagSet": []})
    assert s3.get_object_tagging(Bucket=bucket, Key="k")["TagSet"] == []
    assert "TagCount" not in s3.get_object(Bucket=bucket, Key="k")


def test_object_tag_limit(s3: Any, bucket: str) -> None:
    s3.put_object(Bucket=bucket, Key="k", Body=b"x")
    ten = {f"k{i:02}": "v" * 256 for i in range(10)}
    s3.put_object_tagging(Bucket=bucket, Key="k", Tagging=tag_set(ten))
    assert s3.get_object(Bucket=bucket, Key="k")["TagCount"] == 10
    with pytest.raises(ClientError) as exc:
        s3.put_object_tagging(Bucket=bucket, Key="k", Tagging=tag_set({**ten, "k10": ""}))
    assert error_of(exc) == ("BadRequest", 400, "Object tags cannot be greater than 10")
    assert len(s3.get_object_tagging(Bucket=bucket, Key="k")["TagSet"]) == 10


def test_tagging_a_missing_key_is_no_such_key(s3: Any, bucket: str) -> None:
    for call in (
        lambda: s3.get_object_tagging(Bucket=bucket, Key="nope"),
        lambda: s3.put_object_tagging(Bucket=bucket, Key="nope", Tagging=tag_set({"a": "1"})),
        lambda: s3.delete_object_tagging(Bucket=bucket, Key="nope"),
    ):
        with pytest.raises(ClientError) as exc:
            call()
        assert error_of(exc)[:2] == ("NoSuchKey", 404)


def test_only_the_null_version_can_be_named(s3: Any, bucket: str) -> None:
    s3.put_object(Bucket=bucket, Key="k", Body=b"x")
    s3.put_object_tagging(Bucket=bucket, Key="k", VersionId="null", Tagging=tag_set({"a": "1"}))
    got = s3.get_object_tagging(Bucket=bucket, Key="k", VersionId="null")
    assert got["TagSet"] == [{"Key": "a", "Value": "1"}]
    with pytest.raises(ClientError) as exc:
        s3.get_object_tagging(Bucket=bucket, Key="k", VersionId="3HL4kqtJlcpXroDTDmJ")
    assert error_of(exc) == ("InvalidArgument", 400, "Invalid version id specified")
    assert exc.value.response["Error"]["ArgumentName"] == "versionId"


# -- x-amz-tagging on PutObject ---------------------------------------------------------------


def test_put_object_with_tagging_header(s3: Any, bucket: str) -> None:
    s3.put_object(Bucket=bucket, Key="k", Body=b"x", Tagging="b=2&a=1&flag&s=hello+world")
    got = s3.get_object_tagging(Bucket=bucket, Key="k")["TagSet"]
    assert got == [
        {"Key": "a", "Value": "1"},
        {"Key": "b", "Value": "2"},
        {"Key": "flag", "Value": ""},
        {"Key": "s", "Value": "hello world"},
    ]
    assert s3.get_object(Bucket=bucket, Key="k")["TagCount"] == 4
    # A new PUT is a new version: its own tags (here none) replace the old ones.
    s3.put_object(Bucket=bucket, Key="k", Body=b"y")
    assert s3.get_object_tagging(Bucket=bucket, Key="k")["TagSet"] == []
    s3.put_object(Bucket=bucket, Key="k", Body=b"z", Tagging="c=3")
    assert s3.get_object_tagging(Bucket=bucket, Key="k")["TagSet"] == [{"Key": "c", "Value": "3"}]


@pytest.mark.parametrize(
    "header,code,message",
    [
        (
            "a=b=c",
            "InvalidArgument",
            "The header 'x-amz-tagging' shall be encoded as UTF-8 then URLEncoded URL query "
            "parameters without tag name duplicates.",
        ),
        (
            "a=1&a=2",
            "InvalidArgument",
            "The header 'x-amz-tagging' shall be encoded as UTF-8 then URLEncoded URL query "
            "parameters without tag name duplicates.",
        ),
        ("k%2Cx=v", "InvalidTag", "The TagKey you have provided is invalid"),
        (
            "&".join(f"k{i}=v" for i in range(11)),
            "BadRequest",
            "Object tags cannot be greater than 10",
        ),
    ],
)
def test_invalid_tagging_header_refuses_the_put(
    s3: Any, bucket: str, header: str, code: str, message: str
) -> None:
    with pytest.raises(ClientError) as exc:
        s3.put_object(Bucket=bucket, Key="k", Body=b"x", Tagging=header)
    assert error_of(exc) == (code, 400, message)
    with pytest.raises(ClientError) as missing:
        s3.head_object(Bucket=bucket, Key="k")
    assert error_of(missing)[:2] == ("404", 404)


def test_multipart_upload_keeps_its_tagging_header(s3: Any, bucket: str) -> None:
    upload = s3.create_multipart_upload(Bucket=bucket, Key="mp", Tagging="stage=raw")
    part = s3.upload_part(
        Bucket=bucket, Key="mp", UploadId=upload["UploadId"], PartNumber=1, Body=b"data"
    )
    s3.complete_multipart_upload(
        Bucket=bucket,
        Key="mp",
        UploadId=upload["UploadId"],
        MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": part["ETag"]}]},
    )
    got = s3.get_object_tagging(Bucket=bucket, Key="mp")["TagSet"]
    assert got == [{"Key": "stage", "Value": "raw"}]
    assert (
        s3.head_object(Bucket=bucket, Key="mp")["ResponseMetadata"]["HTTPHeaders"][
            "x-amz-tagging-count"
        ]
        == "1"
    )


def test_tagging_body_needs_an_integrity_header(
    s3: Any, shared_server: Server, bucket: str
) -> None:
    s3.put_object(Bucket=bucket, Key="k", Body=b"x")
    body = b"<Tagging><TagSet><Tag><Key>a</Key><Value>1</Value></Tag></TagSet></Tagging>"
    request = AWSRequest(
        method="PUT", url=f"{shared_server.endpoint}/{bucket}/k?tagging", data=body
    )
    S3SigV4Auth(Credentials(ACCESS_KEY, SECRET_KEY), "s3", "us-east-1").add_auth(request)
    conn = http.client.HTTPConnection("127.0.0.1", shared_server.port, timeout=30)
    conn.request("PUT", f"/{bucket}/k?tagging", body=body, headers=dict(request.headers.items()))
    response = conn.getresponse()
    text = response.read().decode()
    conn.close()
    assert response.status == 400
    assert "<Code>InvalidRequest</Code>" in text
    assert "Missing required header for this request: Content-MD5 OR x-amz-checksum-*" in text
    assert s3.get_object_tagging(Bucket=bucket, Key="k")["TagSet"] == []
