"""Bucket operations: naming rules, ownership, emptiness."""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import ClientError
from tests.e2e.test_objects import error_of


def test_create_list_head_delete(s3: Any) -> None:
    s3.create_bucket(Bucket="life-cycle-bucket")
    names = [b["Name"] for b in s3.list_buckets()["Buckets"]]
    assert "life-cycle-bucket" in names
    assert s3.head_bucket(Bucket="life-cycle-bucket")["ResponseMetadata"]["HTTPStatusCode"] == 200
    s3.delete_bucket(Bucket="life-cycle-bucket")
    with pytest.raises(ClientError) as exc:
        s3.head_bucket(Bucket="life-cycle-bucket")
    assert error_of(exc) == ("404", 404)


def test_create_with_location_constraint(s3: Any) -> None:
    s3.create_bucket(
        Bucket="located-bucket", CreateBucketConfiguration={"LocationConstraint": "eu-west-3"}
    )
    assert s3.get_bucket_location(Bucket="located-bucket")["LocationConstraint"] is None


@pytest.mark.parametrize(
    "name", ["ab", "UpperCase", "-leading", "trailing-", "a..b", "192.168.1.1", "xn--abc", "a_b"]
)
def test_invalid_bucket_names(s3: Any, name: str) -> None:
    with pytest.raises(ClientError) as exc:
        s3.create_bucket(Bucket=name)
    assert error_of(exc) == ("InvalidBucketName", 400)


def test_creating_an_owned_bucket_again_succeeds_and_keeps_it(s3: Any, bucket: str) -> None:
    """us-east-1's legacy answer (Égide's one region): 200, and nothing in the bucket changes."""
    s3.put_object(Bucket=bucket, Key="kept", Body=b"still here")
    again = s3.create_bucket(Bucket=bucket)
    assert again["ResponseMetadata"]["HTTPStatusCode"] == 200
    assert again["Location"] == f"/{bucket}"
    assert s3.get_object(Bucket=bucket, Key="kept")["Body"].read() == b"still here"
    assert [b["Name"] for b in s3.list_buckets()["Buckets"]].count(bucket) == 1


def test_delete_non_empty_and_missing(s3: Any, bucket: str) -> None:
    s3.put_object(Bucket=bucket, Key="k", Body=b"x")
    with pytest.raises(ClientError) as exc:
        s3.delete_bucket(Bucket=bucket)
    assert error_of(exc) == ("BucketNotEmpty", 409)
    s3.delete_object(Bucket=bucket, Key="k")
    s3.delete_bucket(Bucket=bucket)
    with pytest.raises(ClientError) as exc:
        s3.delete_bucket(Bucket=bucket)
    assert error_of(exc) == ("NoSuchBucket", 404)


def test_malformed_create_body(s3: Any) -> None:
    def corrupt(request: Any, **_: Any) -> None:
        request.data = b"<CreateBucketConfiguration><LocationConstraint>"
        request.headers["Content-Length"] = str(len(request.data))

    s3.meta.events.register("before-sign.s3.CreateBucket", corrupt)
    with pytest.raises(ClientError) as exc:
        s3.create_bucket(Bucket="malformed-body-bucket")
    assert error_of(exc) == ("MalformedXML", 400)


def test_unimplemented_operation_is_501(s3: Any, bucket: str) -> None:
    with pytest.raises(ClientError) as exc:
        s3.get_bucket_website(Bucket=bucket)
    assert error_of(exc) == ("NotImplemented", 501)
