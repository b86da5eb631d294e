"""Object Lock through boto3: bucket configuration, default retention, COMPLIANCE and
GOVERNANCE retention, legal hold; a locked version cannot be removed until its date."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from botocore.exceptions import ClientError
from tests.e2e.test_versioning import error_of


@pytest.fixture
def locked(s3: Any) -> Iterator[str]:
    """A bucket created with Object Lock. Its locked versions outlive the test (that is the
    point), so the bucket is left behind in the module's server."""
    name = f"lock-{uuid.uuid4().hex[:12]}"
    s3.create_bucket(Bucket=name, ObjectLockEnabledForBucket=True)
    yield name


def _in(seconds: float) -> datetime:
    return datetime.now(UTC) + timedelta(seconds=seconds)


def test_lock_bucket_is_versioned_for_good(s3: Any, locked: str) -> None:
    assert s3.get_bucket_versioning(Bucket=locked)["Status"] == "Enabled"
    with pytest.raises(ClientError) as exc:
        s3.put_bucket_versioning(Bucket=locked, VersioningConfiguration={"Status": "Suspended"})
    assert error_of(exc) == ("InvalidBucketState", 409)
    config = s3.get_object_lock_configuration(Bucket=locked)["ObjectLockConfiguration"]
    assert config == {"ObjectLockEnabled": "Enabled"}


def test_configuration_rules(s3: Any, bucket: str, locked: str) -> None:
    rule = {"DefaultRetention": {"Mode": "GOVERNANCE", "Days": 1}}
    conf = {"ObjectLockEnabled": "Enabled", "Rule": rule}
    with pytest.raises(ClientError) as exc:
        s3.get_object_lock_configuration(Bucket=bucket)
    assert error_of(exc) == ("ObjectLockConfigurationNotFoundError", 404)
    with pytest.raises(ClientError) as exc:  # an unversioned bucket cannot take a lock
        s3.put_object_lock_configuration(Bucket=bucket, ObjectLockConfiguration=conf)
    assert error_of(exc) == ("InvalidBucketState", 409)
    bad = [
        ({"Mode": "GOVERNANCE", "Days": 0}, ("InvalidRetentionPeriod", 400)),
        ({"Mode": "GOVERNANCE", "Days": 1, "Years": 1}, ("MalformedXML", 400)),
        ({"Mode": "FOREVER", "Days": 1}, ("MalformedXML", 400)),
    ]
    for retention, expected in bad:
        with pytest.raises(ClientError) as exc:
            s3.put_object_lock_configuration(
                Bucket=locked,
                ObjectLockConfiguration={
                    "ObjectLockEnabled": "Enabled",
                    "Rule": {"DefaultRetention": retention},
                },
            )
        assert error_of(exc) == expected, retention
    s3.put_object_lock_configuration(Bucket=locked, ObjectLockConfiguration=conf)
    assert s3.get_object_lock_configuration(Bucket=locked)["ObjectLockConfiguration"] == conf
    # Enabling later works once the bucket is versioned.
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    s3.put_object_lock_configuration(Bucket=bucket, ObjectLockConfiguration=conf)


def test_default_governance_retention(s3: Any, locked: str) -> None:
    s3.put_object_lock_configuration(
        Bucket=locked,
        ObjectLockConfiguration={
            "ObjectLockEnabled": "Enabled",
            "Rule": {"DefaultRetention": {"Mode": "GOVERNANCE", "Days": 1}},
        },
    )
    version = s3.put_object(Bucket=locked, Key="k", Body=b"x")["VersionId"]
    head = s3.head_object(Bucket=locked, Key="k")
    assert head["ObjectLockMode"] == "GOVERNANCE"
    assert abs((head["ObjectLockRetainUntilDate"] - _in(86_400)).total_seconds()) < 60
    with pytest.raises(ClientError) as exc:
        s3.delete_object(Bucket=locked, Key="k", VersionId=version)
    assert error_of(exc) == ("AccessDenied", 403)
    s3.delete_object(Bucket=locked, Key="k", VersionId=version, BypassGovernanceRetention=True)
    with pytest.raises(ClientError) as exc:
        s3.head_object(Bucket=locked, Key="k", VersionId=version)
    assert error_of(exc)[1] == 404


def test_compliance_cannot_be_removed_or_shortened(s3: Any, locked: str) -> None:
    until = _in(3600).replace(microsecond=0)
    version = s3.put_object(
        Bucket=locked, Key="k", Body=b"kept", ObjectLockMode="COMPLIANCE",
        ObjectLockRetainUntilDate=until,
    )["VersionId"]  # fmt: skip
    retention = s3.get_object_retention(Bucket=locked, Key="k", VersionId=version)["Retention"]
    assert retention == {"Mode": "COMPLIANCE", "RetainUntilDate": until}
    for bypass in (False, True):
        with pytest.raises(ClientError) as exc:
            s3.delete_object(
                Bucket=locked, Key="k", VersionId=version, BypassGovernanceRetention=bypass
            )
        assert error_of(exc) == ("AccessDenied", 403)
    with pytest.raises(ClientError) as exc:
        s3.put_object_retention(
            Bucket=locked, Key="k", VersionId=version, BypassGovernanceRetention=True,
            Retention={"Mode": "GOVERNANCE", "RetainUntilDate": until},
        )  # fmt: skip
    assert error_of(exc) == ("AccessDenied", 403)
    with pytest.raises(ClientError) as exc:
        s3.put_object_retention(
            Bucket=locked, Key="k", VersionId=version,
            Retention={"Mode": "COMPLIANCE", "RetainUntilDate": _in(60)},
        )  # fmt: skip
    assert error_of(exc) == ("AccessDenied", 403)
    later = _in(7200).replace(microsecond=0)
    s3.put_object_retention(
        Bucket=locked, Key="k", VersionId=version,
        Retention={"Mode": "COMPLIANCE", "RetainUntilDate": later},
    )  # fmt: skip
    # Overwriting and deleting the key only add versions: the locked one stays readable.
    s3.put_object(Bucket=locked, Key="k", Body=b"new")
    s3.delete_object(Bucket=locked, Key="k")
    assert s3.get_object(Bucket=locked, Key="k", VersionId=version)["Body"].read() == b"kept"
    reply = s3.delete_objects(
        Bucket=locked, Delete={"Objects": [{"Key": "k", "VersionId": version}]}
    )
    assert [e["Code"] for e in reply["Errors"]] == ["AccessDenied"]
    with pytest.raises(ClientError) as exc:
        s3.delete_bucket(Bucket=locked)
    assert error_of(exc) == ("BucketNotEmpty", 409)


def test_retention_ends_at_its_date(s3: Any, locked: str) -> None:
    version = s3.put_object(
        Bucket=locked, Key="k", Body=b"x", ObjectLockMode="COMPLIANCE",
        ObjectLockRetainUntilDate=_in(2),
    )["VersionId"]  # fmt: skip
    with pytest.raises(ClientError):
        s3.delete_object(Bucket=locked, Key="k", VersionId=version)
    time.sleep(2.5)
    s3.delete_object(Bucket=locked, Key="k", VersionId=version)


def test_legal_hold(s3: Any, locked: str) -> None:
    version = s3.put_object(Bucket=locked, Key="k", Body=b"x", ObjectLockLegalHoldStatus="ON")[
        "VersionId"
    ]
    assert s3.get_object_legal_hold(Bucket=locked, Key="k")["LegalHold"] == {"Status": "ON"}
    with pytest.raises(ClientError) as exc:
        s3.delete_object(Bucket=locked, Key="k", VersionId=version, BypassGovernanceRetention=True)
    assert error_of(exc) == ("AccessDenied", 403)
    s3.put_object_legal_hold(Bucket=locked, Key="k", LegalHold={"Status": "OFF"})
    assert s3.get_object_legal_hold(Bucket=locked, Key="k")["LegalHold"] == {"Status": "OFF"}
    s3.delete_object(Bucket=locked, Key="k", VersionId=version)


def test_multipart_upload_takes_the_requested_retention(s3: Any, locked: str) -> None:
    until = _in(3600).replace(microsecond=0)
    upload = s3.create_multipart_upload(
        Bucket=locked, Key="mp", ObjectLockMode="GOVERNANCE", ObjectLockRetainUntilDate=until
    )["UploadId"]
    part = s3.upload_part(Bucket=locked, Key="mp", UploadId=upload, PartNumber=1, Body=b"p")
    done = s3.complete_multipart_upload(
        Bucket=locked, Key="mp", UploadId=upload,
        MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": part["ETag"]}]},
    )  # fmt: skip
    head = s3.head_object(Bucket=locked, Key="mp")
    assert (head["ObjectLockMode"], head["ObjectLockRetainUntilDate"]) == ("GOVERNANCE", until)
    with pytest.raises(ClientError) as exc:
        s3.delete_object(Bucket=locked, Key="mp", VersionId=done["VersionId"])
    assert error_of(exc) == ("AccessDenied", 403)


def test_lock_requests_refused_without_object_lock(s3: Any, bucket: str) -> None:
    with pytest.raises(ClientError) as exc:
        s3.put_object(
            Bucket=bucket, Key="k", Body=b"x", ObjectLockMode="GOVERNANCE",
            ObjectLockRetainUntilDate=_in(60),
        )  # fmt: skip
    assert error_of(exc) == ("InvalidRequest", 400)
    s3.put_object(Bucket=bucket, Key="k", Body=b"x")
    with pytest.raises(ClientError) as exc:
        s3.put_object_legal_hold(Bucket=bucket, Key="k", LegalHold={"Status": "ON"})
    assert error_of(exc) == ("InvalidRequest", 400)
    with pytest.raises(ClientError) as exc:
        s3.put_object(
            Bucket=bucket, Key="k", Body=b"x", ObjectLockMode="GOVERNANCE",
            ObjectLockRetainUntilDate=_in(-60),
        )  # fmt: skip
    assert error_of(exc) == ("InvalidArgument", 400)


def test_governance_mode_change_needs_the_bypass(s3: Any, locked: str) -> None:
    until = _in(3600).replace(microsecond=0)
    s3.put_object(
        Bucket=locked, Key="k", Body=b"x", ObjectLockMode="GOVERNANCE",
        ObjectLockRetainUntilDate=until,
    )  # fmt: skip
    stronger = {"Mode": "COMPLIANCE", "RetainUntilDate": until}
    with pytest.raises(ClientError) as exc:
        s3.put_object_retention(Bucket=locked, Key="k", Retention=stronger)
    assert error_of(exc) == ("AccessDenied", 403)
    s3.put_object_retention(
        Bucket=locked, Key="k", Retention=stronger, BypassGovernanceRetention=True
    )
    assert s3.get_object_retention(Bucket=locked, Key="k")["Retention"]["Mode"] == "COMPLIANCE"


def test_copy_takes_the_requested_lock(s3: Any, locked: str) -> None:
    s3.put_object(Bucket=locked, Key="src", Body=b"x")
    until = _in(3600).replace(microsecond=0)
    copied = s3.copy_object(
        Bucket=locked, Key="dst", CopySource={"Bucket": locked, "Key": "src"},
        ObjectLockMode="COMPLIANCE", ObjectLockRetainUntilDate=until,
    )  # fmt: skip
    head = s3.head_object(Bucket=locked, Key="dst", VersionId=copied["VersionId"])
    assert (head["ObjectLockMode"], head["ObjectLockRetainUntilDate"]) == ("COMPLIANCE", until)
    assert "ObjectLockMode" not in s3.head_object(Bucket=locked, Key="src")
