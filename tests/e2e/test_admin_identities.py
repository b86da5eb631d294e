"""Users, groups and access keys through the admin API of a real server (SigV4-signed JSON):
a key created there signs S3 requests at once, and is refused once disabled."""

from __future__ import annotations

import json
import time
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from tests.conftest import Server, ServerFactory
from tests.e2e.test_admin_api import admin, answer

pytestmark = pytest.mark.timeout(120)


def call(server: Server, method: str, path: str, document: Any = None, status: int = 200) -> Any:
    body = b"" if document is None else json.dumps(document).encode()
    return answer(admin(server, method, "/_egide/admin/" + path, body), status)


def s3_with(server: Server, key: dict[str, Any]) -> Any:
    return boto3.client(
        "s3", endpoint_url=server.endpoint, aws_access_key_id=key["access_key"],
        aws_secret_access_key=key["secret_key"], region_name="us-east-1",
    )  # fmt: skip


def test_users_groups_and_keys_through_the_admin_api(make_server: ServerFactory) -> None:
    server = make_server("workers = 1")
    created = call(server, "POST", "users", {"name": "erin"}, 201)
    lister = {"Statement": [{"Effect": "Allow", "Action": "s3:ListAllMyBuckets", "Resource": "*"}]}
    call(server, "PUT", "users/erin/policies/list", lister)  # a user has no right until granted
    listed = call(server, "GET", "users")
    assert created["arn"] == f"arn:aws:iam::{listed['account']}:user/erin"
    assert [(u["name"], u["access_keys"]) for u in listed["users"]] == [("admin", 1), ("erin", 0)]
    assert call(server, "POST", "users", {"name": "erin"}, 409)["code"] == "EntityAlreadyExists"
    assert call(server, "POST", "users", {"name": "a b"}, 400)["code"] == "ValidationError"

    key = call(server, "POST", "users/erin/keys", {"expires": time.time() + 3600}, 201)
    assert key["user"] == "erin" and key["status"] == "Active" and key["secret_key"]
    s3_with(server, key).list_buckets()
    (shown,) = call(server, "GET", "users/erin/keys")["access_keys"]
    assert "secret_key" not in shown and shown["access_key"] == key["access_key"]

    assert call(server, "POST", f"keys/{key['access_key']}/disable")["status"] == "Inactive"
    deadline = time.monotonic() + 2
    while True:  # refused within a second (one worker: at once once its cache expires)
        try:
            s3_with(server, key).list_buckets()
        except ClientError as exc:
            assert exc.response["Error"]["Code"] == "InvalidAccessKeyId"
            break
        assert time.monotonic() < deadline, "a disabled key is still accepted after 2 s"
    assert call(server, "POST", f"keys/{key['access_key']}/enable")["status"] == "Active"
    rotated = call(server, "POST", f"keys/{key['access_key']}/rotate", None, 201)
    assert rotated["user"] == "erin" and rotated["previous"] == key["access_key"]
    assert len(call(server, "GET", "users/erin/keys")["access_keys"]) == 2

    call(server, "POST", "groups", {"name": "auditors"}, 201)
    assert call(server, "PUT", "groups/auditors/members/erin")["changed"] is True
    assert call(server, "PUT", "groups/auditors/members/nobody", None, 404)["code"] == (
        "NoSuchEntity"
    )
    assert call(server, "GET", "groups")["groups"][0]["members"] == ["erin"]
    assert call(server, "DELETE", "groups/auditors/members/erin")["changed"] is True

    assert call(server, "DELETE", "users/erin", None, 409)["code"] == "DeleteConflict"
    gone = call(server, "DELETE", "users/erin?force")
    assert sorted(gone["access_keys_deleted"]) == sorted([key["access_key"], rotated["access_key"]])
    assert call(server, "DELETE", f"keys/{key['access_key']}", None, 404)["code"] == "NoSuchEntity"
    assert call(server, "DELETE", "groups/auditors")["deleted"] == "auditors"
    assert call(server, "DELETE", "users/admin?force", None, 409)["code"] == "DeleteConflict"


def test_identity_policies_are_attached_listed_and_detached(make_server: ServerFactory) -> None:
    server = make_server("workers = 1")
    call(server, "POST", "users", {"name": "gail"}, 201)
    call(server, "POST", "groups", {"name": "readers"}, 201)
    policy = {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::b/*"},
    ]}  # fmt: skip
    put = call(server, "PUT", "users/gail/policies/read", policy)
    assert put == {"user": "gail", "policies": {"read": policy}}
    call(server, "PUT", "groups/readers/policies/all", policy)
    assert call(server, "GET", "users/gail/policies")["policies"] == {"read": policy}
    assert call(server, "GET", "groups/readers/policies")["policies"] == {"all": policy}
    assert call(server, "GET", "users/nobody/policies", None, 404)["code"] == "NoSuchEntity"
    assert call(server, "PUT", "users/nobody/policies/p", policy, 404)["code"] == "NoSuchEntity"
    big = {"Statement": ["x" * 7000]}
    assert call(server, "PUT", "users/gail/policies/big", big, 400)["code"] == "ValidationError"
    assert call(server, "DELETE", "users/gail/policies/read")["policies"] == {}
    assert call(server, "DELETE", "users/gail/policies/read", None, 404)["code"] == "NoSuchEntity"


def test_a_malformed_identity_policy_is_refused_and_not_stored(
    make_server: ServerFactory,
) -> None:
    server = make_server("workers = 1")
    call(server, "POST", "users", {"name": "hank"}, 201)
    call(server, "POST", "groups", {"name": "hanks"}, 201)
    bad = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:GetObject"}]}
    for path in ("users/hank/policies/p", "groups/hanks/policies/p"):
        refused = call(server, "PUT", path, bad, 400)
        assert refused["code"] == "MalformedPolicyDocument"
        assert "Resource" in refused["message"]
    unknown = {"Statement": [{"Effect": "Maybe", "Action": "s3:*", "Resource": "*"}]}
    refused = call(server, "PUT", "users/hank/policies/p", unknown, 400)
    assert refused["code"] == "MalformedPolicyDocument" and "Maybe" in refused["message"]
    assert call(server, "GET", "users/hank/policies")["policies"] == {}
    assert call(server, "GET", "groups/hanks/policies")["policies"] == {}


def test_roles_through_the_admin_api(make_server: ServerFactory) -> None:
    server = make_server("workers = 1")
    account = call(server, "GET", "users")["account"]
    trust = {"Statement": {"Effect": "Allow", "Action": "sts:AssumeRole",
                           "Principal": {"AWS": f"arn:aws:iam::{account}:root"}}}  # fmt: skip
    created = call(server, "POST", "roles", {"name": "reader", "trust_policy": trust,
                                             "max_session_duration": 7200}, 201)  # fmt: skip
    assert created["arn"] == f"arn:aws:iam::{account}:role/reader"
    assert created["id"].startswith("AROA") and created["max_session_duration"] == 7200
    no_principal = {"Statement": {"Effect": "Allow", "Action": "sts:AssumeRole"}}
    refused = call(server, "POST", "roles", {"name": "x", "trust_policy": no_principal}, 400)
    assert refused["code"] == "MalformedPolicyDocument"
    assert call(server, "POST", "roles", {"name": "reader", "trust_policy": trust}, 409)[
        "code"] == "EntityAlreadyExists"  # fmt: skip
    read = {"Statement": {"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"}}
    call(server, "PUT", "roles/reader/policies/read", read)
    shown = call(server, "GET", "roles/reader")
    assert shown["policies"] == {"read": read} and shown["trust_policy"] == trust
    assert [r["name"] for r in call(server, "GET", "roles")["roles"]] == ["reader"]
    call(server, "DELETE", "roles/reader/policies/read")
    assert call(server, "GET", "roles/reader/policies")["policies"] == {}
    call(server, "DELETE", "roles/reader")
    assert call(server, "GET", "roles/reader", status=404)["code"] == "NoSuchEntity"
