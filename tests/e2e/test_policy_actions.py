"""The rights a request needs besides its own action, as AWS asks them, through real clients:
DeleteObjects is authorized key by key, a copy needs to read its source, GetObjectAttributes
needs both its action and GetObject."""

from __future__ import annotations

import json
from pathlib import Path

from tests.conftest import Server
from tests.e2e.test_bucket_policies import soon
from tests.e2e.test_identities import egide
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


def test_a_copy_needs_to_read_its_source(server: Server, tmp_path: Path) -> None:
    admin = server.client()
    for name in ("copy-from", "copy-to"):
        admin.create_bucket(Bucket=name)
    admin.put_object(Bucket="copy-from", Key="x", Body=b"secret figures")
    write = policy(allow("s3:PutObject", resource="arn:aws:s3:::copy-to/*"))
    s3, _ = new_user(server, "copier", tmp_path, write=write)
    source = {"Bucket": "copy-from", "Key": "x"}
    assert code(s3.copy_object, Bucket="copy-to", Key="y", CopySource=source) == "AccessDenied"
    upload = s3.create_multipart_upload(Bucket="copy-to", Key="z")["UploadId"]
    assert code(
        s3.upload_part_copy, Bucket="copy-to", Key="z", UploadId=upload, PartNumber=1,
        CopySource=source,
    ) == "AccessDenied"  # fmt: skip
    assert code(admin.head_object, Bucket="copy-to", Key="y") == "404"
    path = tmp_path / "read.json"
    path.write_text(json.dumps(policy(allow("s3:GetObject", resource="arn:aws:s3:::copy-from/x"))))
    egide(server, "user", "policy-put", "copier", "read", str(path))
    soon(lambda: code(s3.copy_object, Bucket="copy-to", Key="y", CopySource=source) == "ok")
    assert admin.get_object(Bucket="copy-to", Key="y")["Body"].read() == b"secret figures"
    part = s3.upload_part_copy(
        Bucket="copy-to", Key="z", UploadId=upload, PartNumber=1, CopySource=source
    )
    assert part["CopyPartResult"]["ETag"]


def test_a_copy_of_a_version_needs_get_object_version(server: Server, tmp_path: Path) -> None:
    admin = server.client()
    admin.create_bucket(Bucket="copy-versions")
    admin.put_bucket_versioning(
        Bucket="copy-versions", VersioningConfiguration={"Status": "Enabled"}
    )
    version = admin.put_object(Bucket="copy-versions", Key="x", Body=b"v1")["VersionId"]
    s3, _ = new_user(
        server, "versioncopier", tmp_path,
        rights=policy(allow("s3:PutObject", "s3:GetObject",
                            resource="arn:aws:s3:::copy-versions/*")),
    )  # fmt: skip
    source = {"Bucket": "copy-versions", "Key": "x", "VersionId": version}
    assert code(s3.copy_object, Bucket="copy-versions", Key="y", CopySource=source) == (
        "AccessDenied"
    )
    s3.copy_object(Bucket="copy-versions", Key="y", CopySource={"Bucket": "copy-versions",
                                                                "Key": "x"})  # fmt: skip


def test_get_object_attributes_needs_both_actions(server: Server, tmp_path: Path) -> None:
    admin = server.client()
    admin.create_bucket(Bucket="attrs")
    admin.put_bucket_versioning(Bucket="attrs", VersioningConfiguration={"Status": "Enabled"})
    version = admin.put_object(Bucket="attrs", Key="x", Body=b"abc")["VersionId"]
    resource = "arn:aws:s3:::attrs/*"
    attributes_only, _ = new_user(
        server, "attrsonly", tmp_path,
        a=policy(allow("s3:GetObjectAttributes", "s3:GetObjectVersionAttributes",
                       resource=resource)),
    )  # fmt: skip
    get_only, _ = new_user(
        server, "getonly", tmp_path, g=policy(allow("s3:GetObject", resource=resource))
    )
    both, _ = new_user(
        server, "attrsandget", tmp_path,
        b=policy(allow("s3:GetObjectAttributes", "s3:GetObject", resource=resource)),
    )  # fmt: skip
    ask = {"Bucket": "attrs", "Key": "x", "ObjectAttributes": ["ObjectSize"]}
    assert code(attributes_only.get_object_attributes, **ask) == "AccessDenied"
    assert code(get_only.get_object_attributes, **ask) == "AccessDenied"
    assert both.get_object_attributes(**ask)["ObjectSize"] == 3
    # A version: s3:GetObjectVersion and s3:GetObjectVersionAttributes.
    assert code(both.get_object_attributes, VersionId=version, **ask) == "AccessDenied"
