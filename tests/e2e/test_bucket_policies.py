"""Bucket policies through real clients: put (validated, MalformedPolicy with AWS's reason),
get, delete, status; they grant other users and, with "Principal": "*", anonymous requests: a
public-read bucket serves a plain GET with no signature and refuses a plain PUT."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import boto3
import requests
from botocore.config import Config
from tests.conftest import Server
from tests.e2e.test_policies import code, new_user
from tests.e2e.test_policies import server as server  # the fixture


def public_read(bucket: str) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": [{
        "Sid": "PublicRead", "Effect": "Allow", "Principal": "*", "Action": "s3:GetObject",
        "Resource": f"arn:aws:s3:::{bucket}/*"}]})  # fmt: skip


def soon(check: Callable[[], bool]) -> None:
    """Every worker applies a changed bucket policy within a second: wait up to 2.5 s."""
    deadline = time.monotonic() + 2.5
    while not check():
        assert time.monotonic() < deadline, "the bucket policy is not applied after 2.5 s"
        time.sleep(0.05)


def fresh(server: Server, name: str) -> Any:
    s3 = server.client()
    s3.create_bucket(Bucket=name)
    s3.put_object(Bucket=name, Key="page.html", Body=b"<p>hello</p>")
    return s3


def test_put_get_delete_and_status(server: Server) -> None:
    s3 = fresh(server, "pol-cycle")
    assert code(s3.get_bucket_policy, Bucket="pol-cycle") == "NoSuchBucketPolicy"
    s3.put_bucket_policy(Bucket="pol-cycle", Policy=public_read("pol-cycle"))
    assert json.loads(s3.get_bucket_policy(Bucket="pol-cycle")["Policy"]) == json.loads(
        public_read("pol-cycle")
    )
    status = s3.get_bucket_policy_status(Bucket="pol-cycle")["PolicyStatus"]
    assert status == {"IsPublic": True}
    s3.delete_bucket_policy(Bucket="pol-cycle")
    assert code(s3.get_bucket_policy, Bucket="pol-cycle") == "NoSuchBucketPolicy"


def test_a_malformed_policy_is_refused_with_its_reason(server: Server) -> None:
    s3 = fresh(server, "pol-bad")
    from botocore.exceptions import ClientError

    try:
        s3.put_bucket_policy(Bucket="pol-bad", Policy='{"Statement": []}')
    except ClientError as exc:
        assert exc.response["Error"]["Code"] == "MalformedPolicy"
        assert exc.response["ResponseMetadata"]["HTTPStatusCode"] == 400
        assert "Statement is empty" in exc.response["Error"]["Message"]
    else:
        raise AssertionError("an empty Statement was accepted")
    other = public_read("another-bucket")
    assert code(s3.put_bucket_policy, Bucket="pol-bad", Policy=other) == "MalformedPolicy"


def test_a_public_read_bucket_serves_unsigned_gets_only(server: Server) -> None:
    s3 = fresh(server, "pol-public")
    url = f"{server.endpoint}/pol-public/page.html"
    assert requests.get(url, timeout=10).status_code == 403
    s3.put_bucket_policy(Bucket="pol-public", Policy=public_read("pol-public"))
    soon(lambda: requests.get(url, timeout=10).content == b"<p>hello</p>")  # 200, unsigned
    put = requests.put(f"{server.endpoint}/pol-public/new.html", data=b"x", timeout=10)
    assert put.status_code == 403 and b"AccessDenied" in put.content
    assert requests.get(f"{server.endpoint}/pol-public", timeout=10).status_code == 403  # list
    assert code(s3.head_object, Bucket="pol-public", Key="new.html") == "404"


def test_a_bucket_policy_grants_another_user(server: Server, tmp_path: Path) -> None:
    s3 = fresh(server, "pol-shared")
    other, _ = new_user(server, "partner", tmp_path)
    assert code(other.get_object, Bucket="pol-shared", Key="page.html") == "AccessDenied"
    account = key_account(server)
    s3.put_bucket_policy(Bucket="pol-shared", Policy=json.dumps({"Statement": [{
        "Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{account}:user/partner"},
        "Action": "s3:GetObject", "Resource": "arn:aws:s3:::pol-shared/*"}]}))  # fmt: skip
    soon(lambda: code(other.get_object, Bucket="pol-shared", Key="page.html") == "ok")
    assert code(other.put_object, Bucket="pol-shared", Key="x", Body=b"x") == "AccessDenied"


def test_the_administrator_cannot_lock_itself_out(server: Server) -> None:
    s3 = fresh(server, "pol-locked")
    s3.put_bucket_policy(Bucket="pol-locked", Policy=json.dumps({"Statement": [{
        "Effect": "Deny", "Principal": "*", "Action": "s3:*",
        "Resource": ["arn:aws:s3:::pol-locked", "arn:aws:s3:::pol-locked/*"]}]}))  # fmt: skip
    soon(lambda: code(s3.get_object, Bucket="pol-locked", Key="page.html") == "AccessDenied")
    assert code(s3.put_object, Bucket="pol-locked", Key="x", Body=b"x") == "AccessDenied"
    s3.get_bucket_policy(Bucket="pol-locked")  # the administrator can still mend it
    s3.delete_bucket_policy(Bucket="pol-locked")
    soon(lambda: code(s3.get_object, Bucket="pol-locked", Key="page.html") == "ok")


def key_account(server: Server) -> str:
    from tests.e2e.test_identities import egide

    return str(json.loads(egide(server, "user", "list", "--json"))[0]["arn"].split(":")[4])


def test_a_presigned_url_carries_its_signers_rights(server: Server, tmp_path: Path) -> None:
    fresh(server, "pol-presigned")
    s3 = server.client(signature_version="s3v4")
    _, key = new_user(server, "presigner", tmp_path)
    other = boto3.client(
        "s3", endpoint_url=server.endpoint, aws_access_key_id=key["access_key"],
        aws_secret_access_key=key["secret_key"], region_name="us-east-1",
        config=Config(signature_version="s3v4"),
    )  # fmt: skip
    params = {"Bucket": "pol-presigned", "Key": "page.html"}
    mine = s3.generate_presigned_url("get_object", Params=params, ExpiresIn=60)
    theirs = other.generate_presigned_url("get_object", Params=params, ExpiresIn=60)
    got = requests.get(mine, timeout=10)
    assert got.content == b"<p>hello</p>", got.content
    refused = requests.get(theirs, timeout=10)
    assert refused.status_code == 403 and b"AccessDenied" in refused.content
