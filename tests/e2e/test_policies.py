"""Rights decided by policies, through real boto3 clients against a real server: a user has no
right until an identity policy (its own or a group's) grants it; an explicit Deny wins; the
administrator may do everything; admin API actions are policy actions too."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError
from tests.conftest import Server
from tests.e2e.test_admin_api import admin
from tests.e2e.test_identities import client, egide


def new_user(server: Server, name: str, tmp: Path, **policies: dict[str, Any]) -> Any:
    """A user with a key and the identity policies given (name → document); its client."""
    egide(server, "user", "create", name)
    for policy, document in policies.items():
        path = tmp / f"{name}-{policy}.json"
        path.write_text(json.dumps(document))
        egide(server, "user", "policy-put", name, policy, str(path))
    key = json.loads(egide(server, "key", "create", name, "--json"))
    return client(server, key["access_key"], key["secret_key"]), key


def allow(*actions: str, resource: str = "*", effect: str = "Allow") -> dict[str, Any]:
    return {"Effect": effect, "Action": list(actions), "Resource": resource}


def policy(*statements: dict[str, Any]) -> dict[str, Any]:
    return {"Version": "2012-10-17", "Statement": list(statements)}


def code(call: Any, *args: Any, **kwargs: Any) -> str:
    """ "ok" or the S3 error code of one call."""
    try:
        call(*args, **kwargs)
    except ClientError as exc:
        return str(exc.response["Error"]["Code"])
    return "ok"


@pytest.fixture
def server(shared_server: Server) -> Server:
    s3 = shared_server.client()
    if code(s3.head_bucket, Bucket="team") != "ok":
        s3.create_bucket(Bucket="team")
        s3.put_object(Bucket="team", Key="report.txt", Body=b"figures")
    return shared_server


def test_a_user_without_policy_can_do_nothing(server: Server, tmp_path: Path) -> None:
    s3, _ = new_user(server, "nobody", tmp_path)
    assert code(s3.list_buckets) == "AccessDenied"
    assert code(s3.list_objects_v2, Bucket="team") == "AccessDenied"
    assert code(s3.get_object, Bucket="team", Key="report.txt") == "AccessDenied"
    assert code(s3.put_object, Bucket="team", Key="mine.txt", Body=b"x") == "AccessDenied"
    assert code(s3.delete_object, Bucket="team", Key="report.txt") == "AccessDenied"
    assert code(s3.delete_bucket, Bucket="team") == "AccessDenied"
    assert code(s3.create_bucket, Bucket="nobodys") == "AccessDenied"
    # The administrator's key still does everything, and nothing was changed.
    body = server.client().get_object(Bucket="team", Key="report.txt")["Body"].read()
    assert body == b"figures"


def test_a_get_object_grant_reads_and_cannot_write(server: Server, tmp_path: Path) -> None:
    read = policy(allow("s3:GetObject", resource="arn:aws:s3:::team/*"))
    s3, _ = new_user(server, "reader", tmp_path, read=read)
    assert s3.get_object(Bucket="team", Key="report.txt")["Body"].read() == b"figures"
    assert code(s3.put_object, Bucket="team", Key="report.txt", Body=b"x") == "AccessDenied"
    assert code(s3.delete_object, Bucket="team", Key="report.txt") == "AccessDenied"
    assert code(s3.list_objects_v2, Bucket="team") == "AccessDenied"


def test_a_group_policy_grants_its_members(server: Server, tmp_path: Path) -> None:
    s3, _ = new_user(server, "member", tmp_path)
    assert code(s3.list_objects_v2, Bucket="team") == "AccessDenied"
    egide(server, "group", "create", "listers")
    path = tmp_path / "list.json"
    path.write_text(json.dumps(policy(allow("s3:ListBucket", resource="arn:aws:s3:::team"))))
    egide(server, "group", "policy-put", "listers", "list", str(path))
    egide(server, "group", "add", "listers", "member")
    deadline = time.monotonic() + 2.5  # every worker sees it within a second
    while code(s3.list_objects_v2, Bucket="team") != "ok":
        assert time.monotonic() < deadline, "a group's policy is not applied after 2.5 s"
    assert code(s3.get_object, Bucket="team", Key="report.txt") == "AccessDenied"


def test_an_explicit_deny_overrides_an_allow(server: Server, tmp_path: Path) -> None:
    s3, _ = new_user(
        server, "denied", tmp_path,
        everything=policy(allow("s3:*")),
        nodelete=policy(allow("s3:DeleteObject", "s3:DeleteBucket", effect="Deny")),
    )  # fmt: skip
    s3.put_object(Bucket="team", Key="denied.txt", Body=b"mine")
    assert s3.get_object(Bucket="team", Key="denied.txt")["Body"].read() == b"mine"
    assert code(s3.delete_object, Bucket="team", Key="denied.txt") == "AccessDenied"
    assert code(s3.delete_bucket, Bucket="team") == "AccessDenied"


def test_an_auditor_reads_everything_and_changes_nothing(server: Server, tmp_path: Path) -> None:
    s3, key = new_user(
        server, "auditor", tmp_path,
        audit=policy(allow("s3:Get*", "s3:List*", "egide:Get*", "egide:List*")),
    )  # fmt: skip
    assert "team" in [b["Name"] for b in s3.list_buckets()["Buckets"]]
    assert [o["Key"] for o in s3.list_objects_v2(Bucket="team")["Contents"]][:1] != []
    assert s3.get_object(Bucket="team", Key="report.txt")["Body"].read() == b"figures"
    assert code(s3.put_object, Bucket="team", Key="audit.txt", Body=b"x") == "AccessDenied"
    assert code(s3.delete_object, Bucket="team", Key="report.txt") == "AccessDenied"
    assert code(s3.put_bucket_versioning, Bucket="team",
                VersioningConfiguration={"Status": "Enabled"}) == "AccessDenied"  # fmt: skip
    signing = {"access_key": key["access_key"], "secret_key": key["secret_key"]}
    assert admin(server, "GET", "/_egide/admin/users", **signing).status == 200
    assert admin(server, "GET", "/_egide/admin/jobs", **signing).status == 200
    created = admin(server, "POST", "/_egide/admin/users", b'{"name": "mallory"}', **signing)
    assert created.status == 403
    assert json.loads(created.body)["code"] == "AccessDenied"


def test_a_disabled_key_is_refused_whatever_its_policies(server: Server, tmp_path: Path) -> None:
    s3, key = new_user(server, "paused", tmp_path, everything=policy(allow("s3:*")))
    assert code(s3.list_buckets) == "ok"
    egide(server, "key", "disable", key["access_key"])
    deadline = time.monotonic() + 2.5
    while code(s3.list_buckets) != "InvalidAccessKeyId":
        assert time.monotonic() < deadline, "a disabled key is still accepted after 2.5 s"


def test_a_user_lists_only_its_home_prefix(server: Server, tmp_path: Path) -> None:
    home = policy(
        {"Effect": "Allow", "Action": "s3:ListBucket", "Resource": "arn:aws:s3:::team",
         "Condition": {"StringLike": {"s3:prefix": "home/${aws:username}/*"}}},
    )  # fmt: skip
    s3, _ = new_user(server, "homer", tmp_path, home=home)
    assert code(s3.list_objects_v2, Bucket="team", Prefix="home/homer/") == "ok"
    assert code(s3.list_objects_v2, Bucket="team", Prefix="home/marge/") == "AccessDenied"
    assert code(s3.list_objects_v2, Bucket="team") == "AccessDenied"


def test_a_policy_can_refuse_plain_http_and_other_source_ips(
    server: Server, tmp_path: Path
) -> None:
    everything = allow("s3:*")
    tls = policy(everything, {"Effect": "Deny", "Action": "s3:*", "Resource": "*",
                              "Condition": {"Bool": {"aws:SecureTransport": "false"}}})  # fmt: skip
    s3, _ = new_user(server, "tlsonly", tmp_path, tls=tls)
    assert code(s3.get_object, Bucket="team", Key="report.txt") == "AccessDenied"  # plain http
    elsewhere = {"NotIpAddress": {"aws:SourceIp": "10.0.0.0/8"}}
    office = policy(everything, {"Effect": "Deny", "Action": "s3:*", "Resource": "*",
                                 "Condition": elsewhere})  # fmt: skip
    s3, _ = new_user(server, "office", tmp_path, office=office)
    assert code(s3.get_object, Bucket="team", Key="report.txt") == "AccessDenied"  # 127.0.0.1
    local = policy(allow("s3:GetObject", resource="arn:aws:s3:::team/*"), {
        "Effect": "Deny", "Action": "s3:*", "Resource": "*",
        "Condition": {"NotIpAddress": {"aws:SourceIp": "127.0.0.0/8"}}})  # fmt: skip
    s3, _ = new_user(server, "local", tmp_path, local=local)
    assert s3.get_object(Bucket="team", Key="report.txt")["Body"].read() == b"figures"
