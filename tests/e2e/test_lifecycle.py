"""Lifecycle through boto3: Put/Get/DeleteBucketLifecycleConfiguration and S3's error codes on
the shared server; then rules acting, on servers whose lifecycle day lasts one second."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest
from botocore.exceptions import ClientError
from tests.conftest import ServerFactory
from tests.e2e.test_versioning import error_of

#: A lifecycle day of one second, a pass every half second.
FAST = "lifecycle_interval_seconds = 0.5\nlifecycle_day_seconds = 1"
WAIT = 30.0


def put_rules(s3: Any, bucket: str, *rules: dict[str, Any]) -> None:
    s3.put_bucket_lifecycle_configuration(Bucket=bucket, LifecycleConfiguration={"Rules": rules})


def error_of_rules(s3: Any, bucket: str, *rules: dict[str, Any]) -> tuple[str, int]:
    with pytest.raises(ClientError) as exc:
        put_rules(s3, bucket, *rules)
    return error_of(exc)


def wait_for(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + WAIT
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"still not {what} after {WAIT} s")
        time.sleep(0.2)


def test_configuration_round_trip(s3: Any, bucket: str) -> None:
    with pytest.raises(ClientError) as exc:
        s3.get_bucket_lifecycle_configuration(Bucket=bucket)
    assert error_of(exc) == ("NoSuchLifecycleConfiguration", 404)
    # ceph s3-tests, test_lifecycle_get: the older form (the rule's own Prefix) comes back as is.
    legacy = [
        {"ID": "test1/", "Expiration": {"Days": 31}, "Prefix": "test1/", "Status": "Enabled"},
        {"ID": "test2/", "Expiration": {"Days": 120}, "Prefix": "test2/", "Status": "Disabled"},
    ]
    put_rules(s3, bucket, *legacy)
    assert s3.get_bucket_lifecycle_configuration(Bucket=bucket)["Rules"] == legacy
    rules = [
        {
            "ID": "all",
            "Filter": {
                "And": {
                    "Prefix": "logs/",
                    "Tags": [{"Key": "k", "Value": "v"}],
                    "ObjectSizeGreaterThan": 10,
                    "ObjectSizeLessThan": 1000,
                }
            },
            "Status": "Enabled",
            "Expiration": {"Date": datetime(2030, 1, 1, tzinfo=UTC)},
        },
        {
            "ID": "versions",
            "Filter": {},
            "Status": "Enabled",
            "Expiration": {"ExpiredObjectDeleteMarker": True},
            "NoncurrentVersionExpiration": {"NoncurrentDays": 3, "NewerNoncurrentVersions": 2},
            "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": 2},
        },
        {
            "ID": "tag",
            "Filter": {"Tag": {"Key": "tmp", "Value": ""}},
            "Status": "Enabled",
            "Expiration": {"Days": 1},
        },
    ]
    put_rules(s3, bucket, *rules)  # replaces the whole configuration
    assert s3.get_bucket_lifecycle_configuration(Bucket=bucket)["Rules"] == rules
    assert s3.delete_bucket_lifecycle(Bucket=bucket)["ResponseMetadata"]["HTTPStatusCode"] == 204
    with pytest.raises(ClientError) as exc:
        s3.get_bucket_lifecycle_configuration(Bucket=bucket)
    assert error_of(exc) == ("NoSuchLifecycleConfiguration", 404)
    assert s3.delete_bucket_lifecycle(Bucket=bucket)["ResponseMetadata"]["HTTPStatusCode"] == 204


def test_a_rule_without_id_is_named(s3: Any, bucket: str) -> None:
    put_rules(s3, bucket, {"Expiration": {"Days": 31}, "Prefix": "a/", "Status": "Enabled"})
    (rule,) = s3.get_bucket_lifecycle_configuration(Bucket=bucket)["Rules"]
    assert rule["ID"] and rule["Prefix"] == "a/"


def test_older_put_bucket_lifecycle(s3: Any, bucket: str) -> None:
    rule = {"ID": "old", "Prefix": "p/", "Status": "Enabled", "Expiration": {"Days": 2}}
    s3.put_bucket_lifecycle(Bucket=bucket, LifecycleConfiguration={"Rules": [rule]})
    assert s3.get_bucket_lifecycle(Bucket=bucket)["Rules"] == [rule]


def test_error_codes(s3: Any, bucket: str) -> None:
    days = {"Expiration": {"Days": 1}, "Status": "Enabled"}
    cases: list[tuple[list[dict[str, Any]], tuple[str, int]]] = [
        ([{"ID": "a" * 256, "Prefix": "", **days}], ("InvalidArgument", 400)),
        ([{"ID": "same", "Prefix": "a", **days}, {"ID": "same", "Prefix": "b", **days}],
         ("InvalidArgument", 400)),
        ([{"ID": "r", "Prefix": "", **days, "Status": "enabled"}], ("MalformedXML", 400)),
        ([{"ID": "r", "Prefix": "", "Status": "Enabled", "Expiration": {"Days": 0}}],
         ("InvalidArgument", 400)),
        # boto3 sends "20200101" as a number of seconds: not a midnight.
        ([{"ID": "r", "Prefix": "", "Status": "Enabled", "Expiration": {"Date": "20200101"}}],
         ("InvalidArgument", 400)),
        ([{"ID": "r", "Filter": {"Prefix": "a", "ObjectSizeLessThan": 5}, **days}],
         ("MalformedXML", 400)),
        ([{"ID": "r", "Prefix": "", "Status": "Enabled"}], ("InvalidRequest", 400)),
        ([{"ID": "r", "Prefix": "", "Status": "Enabled",
           "Expiration": {"Days": 1, "ExpiredObjectDeleteMarker": True}}], ("MalformedXML", 400)),
        ([{"ID": "r", "Prefix": "", **days,
           "Transitions": [{"Days": 30, "StorageClass": "GLACIER"}]}], ("NotImplemented", 501)),
    ]  # fmt: skip
    for rules, expected in cases:
        assert error_of_rules(s3, bucket, *rules) == expected, rules
    with pytest.raises(ClientError) as exc:
        s3.get_bucket_lifecycle_configuration(Bucket=bucket)  # nothing was stored
    assert error_of(exc) == ("NoSuchLifecycleConfiguration", 404)
    with pytest.raises(ClientError) as exc:
        put_rules(s3, f"no-such-{uuid.uuid4().hex[:8]}", {"ID": "r", "Prefix": "", **days})
    assert error_of(exc) == ("NoSuchBucket", 404)


def test_objects_and_uploads_expire(make_server: ServerFactory) -> None:
    server = make_server(FAST)
    s3 = server.client()
    s3.create_bucket(Bucket="plain")
    for key in ("expire/a", "expire/b", "keep/c", "big/d"):
        s3.put_object(Bucket="plain", Key=key, Body=b"x" * (5000 if key == "big/d" else 10))
    s3.create_multipart_upload(Bucket="plain", Key="uploads/left")
    s3.create_multipart_upload(Bucket="plain", Key="keep/upload")
    put_rules(
        s3, "plain",
        {"ID": "prefix", "Filter": {"Prefix": "expire/"}, "Status": "Enabled",
         "Expiration": {"Days": 1}},
        {"ID": "size", "Filter": {"ObjectSizeGreaterThan": 1000}, "Status": "Enabled",
         "Expiration": {"Days": 1}},
        {"ID": "uploads", "Filter": {"Prefix": "uploads/"}, "Status": "Enabled",
         "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": 1}},
        {"ID": "off", "Filter": {"Prefix": "keep/"}, "Status": "Disabled",
         "Expiration": {"Days": 1}},
    )  # fmt: skip

    def keys() -> list[str]:
        return [o["Key"] for o in s3.list_objects_v2(Bucket="plain").get("Contents", [])]

    def uploads() -> list[str]:
        return [u["Key"] for u in s3.list_multipart_uploads(Bucket="plain").get("Uploads", [])]

    wait_for(lambda: keys() == ["keep/c"], "expired")
    wait_for(lambda: uploads() == ["keep/upload"], "aborted")
    assert "lifecycle rule 'prefix' of bucket plain: expired 'expire/a'" in server.output()


def test_versions_expire_around_a_legal_hold(make_server: ServerFactory) -> None:
    server = make_server(FAST)
    s3 = server.client()
    s3.create_bucket(Bucket="versions", ObjectLockEnabledForBucket=True)
    s3.put_object(Bucket="versions", Key="held", Body=b"1", ObjectLockLegalHoldStatus="ON")
    s3.put_object(Bucket="versions", Key="held", Body=b"2")
    for body in (b"1", b"2"):
        s3.put_object(Bucket="versions", Key="gone", Body=body)
    s3.delete_object(Bucket="versions", Key="gone")
    s3.put_object(Bucket="versions", Key="current/k", Body=b"1")
    put_rules(
        s3, "versions",
        {"ID": "noncurrent", "Filter": {}, "Status": "Enabled",
         "NoncurrentVersionExpiration": {"NoncurrentDays": 1},
         "Expiration": {"ExpiredObjectDeleteMarker": True}},
        {"ID": "current", "Filter": {"Prefix": "current/"}, "Status": "Enabled",
         "Expiration": {"Days": 1}},
    )  # fmt: skip

    def versions() -> list[tuple[str, bool, bool]]:
        listed = s3.list_object_versions(Bucket="versions")
        entries = [(v["Key"], False, v["IsLatest"]) for v in listed.get("Versions", [])]
        entries += [(m["Key"], True, m["IsLatest"]) for m in listed.get("DeleteMarkers", [])]
        return sorted(entries)

    # "gone" loses its versions, then its lone marker; "current/k" gets a marker, loses the
    # version under it a day later, then the marker; the held version stays.
    wait_for(lambda: versions() == [("held", False, False), ("held", False, True)], "expired")
    assert s3.get_object(Bucket="versions", Key="held")["Body"].read() == b"2"
    oldest = _oldest(s3)
    s3.put_object_legal_hold(
        Bucket="versions", Key="held", VersionId=oldest, LegalHold={"Status": "OFF"}
    )
    wait_for(lambda: versions() == [("held", False, True)], "expired once released")


def _oldest(s3: Any) -> str:
    listed = s3.list_object_versions(Bucket="versions", Prefix="held")["Versions"]
    return str(next(v["VersionId"] for v in listed if not v["IsLatest"]))
