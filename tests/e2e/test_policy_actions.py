"""The rights a request needs besides its own action, as AWS asks them, through real clients:
DeleteObjects is authorized key by key, a copy needs to read its source, GetObjectAttributes
needs both its action and GetObject."""

from __future__ import annotations

from pathlib import Path

from tests.conftest import Server
from tests.e2e.test_policies import allow, code, new_user, policy
from tests.e2e.test_policies import server as server  # the fixture


def test_delete_objects_is_authorized_per_key(server: Server, tmp_path: Path) -> None:
    admin = server.client()
    admin.create_bucket(Bucket="perkey")
    for key in ("tmp/a", "keep/b"):
        admin.put_object(Bucket="perkey", Key=key, Body=b"x")
    s3, _ = new_user(
        server, "tmpcleaner", tmp_path,
        scratch=policy(allow("s3:DeleteObject", resource="arn:aws:s3:::perkey/tmp/*")),
    )  # fmt: skip
    answer = s3.delete_objects(
        Bucket="perkey", Delete={"Objects": [{"Key": "tmp/a"}, {"Key": "keep/b"}]}
    )
    assert [d["Key"] for d in answer.get("Deleted", [])] == ["tmp/a"]
    assert [(e["Key"], e["Code"]) for e in answer["Errors"]] == [("keep/b", "AccessDenied")]
    left = [o["Key"] for o in admin.list_objects_v2(Bucket="perkey")["Contents"]]
    assert left == ["keep/b"]


def test_delete_objects_with_a_version_id_needs_delete_object_version(
    server: Server, tmp_path: Path
) -> None:
    admin = server.client()
    admin.create_bucket(Bucket="perversion")
    admin.put_bucket_versioning(Bucket="perversion", VersioningConfiguration={"Status": "Enabled"})
    version = admin.put_object(Bucket="perversion", Key="v", Body=b"x")["VersionId"]
    s3, _ = new_user(
        server, "versioncleaner", tmp_path,
        plain=policy(allow("s3:DeleteObject", resource="arn:aws:s3:::perversion/*")),
    )  # fmt: skip
    answer = s3.delete_objects(
        Bucket="perversion", Delete={"Objects": [{"Key": "v", "VersionId": version}]}
    )
    assert [(e["Key"], e["Code"]) for e in answer["Errors"]] == [("v", "AccessDenied")]
    assert admin.head_object(Bucket="perversion", Key="v", VersionId=version)["VersionId"]
    # The plain delete (a delete marker) is allowed by s3:DeleteObject.
    answer = s3.delete_objects(Bucket="perversion", Delete={"Objects": [{"Key": "v"}]})
    assert [d["Key"] for d in answer["Deleted"]] == ["v"] and "Errors" not in answer
    assert code(s3.delete_object, Bucket="perversion", Key="v", VersionId=version) == (
        "AccessDenied"
    )
