"""x-amz-expected-bucket-owner (and x-amz-source-expected-bucket-owner for a copy's source)
through boto3 against a real server: the request is done only when the header names the
bucket's owner, by the organisation's account id or the owner's canonical ID; otherwise
403 AccessDenied and nothing done (docs/policies.md)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.conftest import ACCESS_KEY, SECRET_KEY, Server
from tests.e2e.test_acls import user
from tests.e2e.test_policies import code
from tests.e2e.test_sts import sts


def test_the_expected_owner_must_be_the_buckets(shared_server: Server, tmp_path: Path) -> None:
    admin = shared_server.client()
    account = sts(shared_server, ACCESS_KEY, SECRET_KEY).get_caller_identity()["Account"]
    admin_id = admin.list_buckets()["Owner"]["ID"]
    admin.create_bucket(Bucket="expected-owner")
    admin.put_object(Bucket="expected-owner", Key="k", Body=b"x")
    for right in (account, admin_id):
        assert (
            code(admin.list_objects_v2, Bucket="expected-owner", ExpectedBucketOwner=right) == "ok"
        )
        assert (
            code(
                admin.put_object,
                Bucket="expected-owner",
                Key="k2",
                Body=b"y",
                ExpectedBucketOwner=right,
            )
            == "ok"
        )
    _, alice_id = user(shared_server, "alice", tmp_path)
    for wrong in ("111122223333", alice_id, admin_id + "foo"):
        assert (
            code(admin.list_objects_v2, Bucket="expected-owner", ExpectedBucketOwner=wrong)
            == "AccessDenied"
        ), wrong
        assert (
            code(
                admin.put_object,
                Bucket="expected-owner",
                Key="new",
                Body=b"z",
                ExpectedBucketOwner=wrong,
            )
            == "AccessDenied"
        )
        assert (
            code(admin.delete_object, Bucket="expected-owner", Key="k", ExpectedBucketOwner=wrong)
            == "AccessDenied"
        )
    assert code(admin.head_object, Bucket="expected-owner", Key="new") == "404"  # not written
    assert admin.get_object(Bucket="expected-owner", Key="k")["Body"].read() == b"x"
    # no bucket: nothing to protect, the request is answered as without the header
    missing = {"Bucket": "expected-nowhere", "ExpectedBucketOwner": "111122223333"}
    assert code(admin.list_objects_v2, **missing) == "NoSuchBucket"


def test_a_copy_checks_its_sources_owner_too(shared_server: Server, tmp_path: Path) -> None:
    admin = shared_server.client()
    admin_id = admin.list_buckets()["Owner"]["ID"]
    admin.create_bucket(Bucket="expected-source")
    admin.put_object(Bucket="expected-source", Key="src", Body=b"data")
    source = {"Bucket": "expected-source", "Key": "src"}
    copy: dict[str, Any] = {"Bucket": "expected-source", "CopySource": source}
    assert (
        code(
            admin.copy_object,
            Key="ok",
            ExpectedSourceBucketOwner=admin_id,
            ExpectedBucketOwner=admin_id,
            **copy,
        )
        == "ok"
    )
    assert (
        code(admin.copy_object, Key="no", ExpectedSourceBucketOwner="111122223333", **copy)
        == "AccessDenied"
    )
    upload = admin.create_multipart_upload(Bucket="expected-source", Key="mp")["UploadId"]
    assert (
        code(
            admin.upload_part_copy,
            Key="mp",
            UploadId=upload,
            PartNumber=1,
            ExpectedSourceBucketOwner=admin_id + "0",
            **copy,
        )
        == "AccessDenied"
    )
    assert code(admin.head_object, Bucket="expected-source", Key="no") == "404"
