"""A change of rights holds on every worker before it is acknowledged (decision 0035): against a
real two-worker server, a bucket policy, a bucket ACL, an access key or a bucket is changed
through one worker, and at once — no sleep — a client on each of many connections (spread over
both workers by SO_REUSEPORT) asks again: none is ever answered by the old rights. Each change
is made right after every worker has cached the old rights, and made again several times."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import boto3
import requests
from botocore import UNSIGNED
from botocore.config import Config
from tests.conftest import ACCESS_KEY, SECRET_KEY, Server, ServerFactory
from tests.e2e.test_admin_identities import call
from tests.e2e.test_policies import code

#: Clients, each on its own connection: all on one of two workers is 1 chance in 512.
CONNECTIONS = 10
ROUNDS = 3


def clients(server: Server, key: dict[str, Any] | None) -> list[Any]:
    """CONNECTIONS clients of `key` (None: anonymous), each keeping its own connection."""
    signed = {} if key is None else {
        "aws_access_key_id": key["access_key"], "aws_secret_access_key": key["secret_key"]
    }  # fmt: skip
    config = Config(
        retries={"max_attempts": 1}, signature_version=UNSIGNED if key is None else None
    )
    endpoint = server.endpoint
    return [
        boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1", config=config, **signed)
        for _ in range(CONNECTIONS)
    ]


def answers(each: list[Any], ask: Callable[[Any], object]) -> list[str]:
    """ "ok" or the error code of `ask` on every client, in turn."""
    return [code(ask, one) for one in each]


def two_workers(make_server: ServerFactory) -> tuple[Server, Any, dict[str, Any]]:
    """A two-worker server with a bucket `shared` holding `x`, and a user `alice` without any
    right of her own (her key)."""
    server = make_server("workers = 2")
    admin = server.client()
    admin.create_bucket(Bucket="shared")
    admin.put_object(Bucket="shared", Key="x", Body=b"x")
    call(server, "POST", "users", {"name": "alice"}, 201)
    return server, admin, call(server, "POST", "users/alice/keys", {}, 201)


def grant(bucket: str, *actions: str) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow", "Principal": {"AWS": "*"}, "Action": list(actions),
        "Resource": [f"arn:aws:s3:::{bucket}", f"arn:aws:s3:::{bucket}/*"],
    }]})  # fmt: skip


def get_x(bucket: str = "shared") -> Callable[[Any], object]:
    return lambda s3: s3.get_object(Bucket=bucket, Key="x")["Body"].read()


def test_a_bucket_policy_granted_then_removed_holds_everywhere_at_once(
    make_server: ServerFactory,
) -> None:
    server, admin, key = two_workers(make_server)
    alice = clients(server, key)
    assert set(answers(alice, get_x())) == {"AccessDenied"}
    for _ in range(ROUNDS):
        admin.put_bucket_policy(Bucket="shared", Policy=grant("shared", "s3:GetObject"))
        assert answers(alice, get_x()) == ["ok"] * CONNECTIONS
        admin.delete_bucket_policy(Bucket="shared")
        assert answers(alice, get_x()) == ["AccessDenied"] * CONNECTIONS


def test_a_public_read_acl_removed_holds_everywhere_at_once(make_server: ServerFactory) -> None:
    server, admin, _ = two_workers(make_server)
    admin.create_bucket(Bucket="open", ObjectOwnership="BucketOwnerPreferred")
    anyone = clients(server, None)

    def listing(s3: Any) -> object:
        return s3.list_objects_v2(Bucket="open")

    for _ in range(ROUNDS):
        admin.put_bucket_acl(Bucket="open", ACL="public-read")
        assert answers(anyone, listing) == ["ok"] * CONNECTIONS
        admin.put_bucket_acl(Bucket="open", ACL="private")
        assert answers(anyone, listing) == ["AccessDenied"] * CONNECTIONS


def test_an_access_key_deleted_is_refused_everywhere_at_once(make_server: ServerFactory) -> None:
    server, admin, _ = two_workers(make_server)
    admin.put_bucket_policy(Bucket="shared", Policy=grant("shared", "s3:GetObject"))
    for _ in range(ROUNDS):
        key = call(server, "POST", "users/alice/keys", {}, 201)
        alice = clients(server, key)
        assert answers(alice, get_x()) == ["ok"] * CONNECTIONS  # every worker knows the key
        call(server, "POST", f"keys/{key['access_key']}/disable")
        assert answers(alice, get_x()) == ["InvalidAccessKeyId"] * CONNECTIONS
        call(server, "POST", f"keys/{key['access_key']}/enable")
        assert answers(alice, get_x()) == ["ok"] * CONNECTIONS
        call(server, "DELETE", f"keys/{key['access_key']}")
        assert answers(alice, get_x()) == ["InvalidAccessKeyId"] * CONNECTIONS


def test_a_bucket_deleted_and_made_again_keeps_none_of_its_rights(
    make_server: ServerFactory,
) -> None:
    """The old bucket's policy let alice read; the new bucket of the same name has none."""
    server, admin, key = two_workers(make_server)
    alice = clients(server, key)
    for _ in range(ROUNDS):
        admin.create_bucket(Bucket="reborn")
        admin.put_object(Bucket="reborn", Key="x", Body=b"old")
        admin.put_bucket_policy(Bucket="reborn", Policy=grant("reborn", "s3:GetObject"))
        assert answers(alice, get_x("reborn")) == ["ok"] * CONNECTIONS
        admin.delete_object(Bucket="reborn", Key="x")
        admin.delete_bucket(Bucket="reborn")
        assert answers(alice, get_x("reborn")) == ["NoSuchBucket"] * CONNECTIONS
        admin.create_bucket(Bucket="reborn")
        admin.put_object(Bucket="reborn", Key="x", Body=b"new, not shared")
        assert answers(alice, get_x("reborn")) == ["AccessDenied"] * CONNECTIONS
        admin.delete_object(Bucket="reborn", Key="x")
        admin.delete_bucket(Bucket="reborn")


def test_cors_rules_and_default_encryption_hold_everywhere_at_once(
    make_server: ServerFactory,
) -> None:
    """Bucket settings that are not rights but are cached per worker as rights are: a browser's
    preflight and a write that asks for no encryption see the bucket's new settings at once."""
    server, admin, _ = two_workers(make_server)
    origin = {"Origin": "https://app.example", "Access-Control-Request-Method": "GET"}
    rules = {"CORSRules": [{"AllowedOrigins": ["https://app.example"], "AllowedMethods": ["GET"]}]}

    def preflights() -> list[int]:  # a new connection each time: both workers answer some
        url = f"{server.endpoint}/shared/x"
        return [requests.options(url, headers=origin, timeout=10).status_code for _ in range(12)]

    admins = clients(server, {"access_key": ACCESS_KEY, "secret_key": SECRET_KEY})

    def encryptions() -> list[str | None]:
        return [
            s3.put_object(Bucket="shared", Key="w", Body=b"w").get("ServerSideEncryption")
            for s3 in admins
        ]

    kms = {"Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "aws:kms"}}]}
    for _ in range(ROUNDS):
        assert set(preflights()) == {403}  # every worker holds "no rules"
        admin.put_bucket_cors(Bucket="shared", CORSConfiguration=rules)
        assert set(preflights()) == {200}
        admin.delete_bucket_cors(Bucket="shared")
        assert set(preflights()) == {403}
        assert encryptions() == [None] * CONNECTIONS  # every worker holds "no default"
        admin.put_bucket_encryption(Bucket="shared", ServerSideEncryptionConfiguration=kms)
        assert encryptions() == ["aws:kms"] * CONNECTIONS
        admin.delete_bucket_encryption(Bucket="shared")
        assert encryptions() == [None] * CONNECTIONS
