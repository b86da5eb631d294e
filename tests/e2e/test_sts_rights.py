"""A session's request is decided as a user's (decision 0037): its role's policies see the
object's tags (s3:ExistingObjectTag/<key>), and ACL grants reach it as AWS's reach an
assumed-role session: grants to groups (AllUsers, AuthenticatedUsers) do, grants to canonical
IDs (a user, the account's administrator) and bucket ownership do not — those reach the
account's principals only through their identity policies."""

from __future__ import annotations

import json
from typing import Any

from tests.e2e.test_identities import egide
from tests.e2e.test_sts import assume, code, s3_of, setup, write

__all__ = ["setup"]  # the module's server, shared with test_sts's fixture


def role(setup: dict[str, Any], name: str, rights: dict[str, Any]) -> str:
    """A role alice may assume, with `rights` as its one policy."""
    server, root, account = setup["server"], setup["root"], setup["account"]
    trust = {"Statement": {"Effect": "Allow", "Action": "sts:AssumeRole",
                           "Principal": {"AWS": f"arn:aws:iam::{account}:user/alice"}}}  # fmt: skip
    egide(server, "role", "create", name, write(root, f"trust-{name}.json", trust))
    egide(server, "role", "attach-policy", name, "p", write(root, f"p-{name}.json", rights))
    return f"arn:aws:iam::{account}:role/{name}"


def test_a_role_reads_only_objects_tagged_for_it(setup: dict[str, Any]) -> None:
    admin = setup["server"].client()
    admin.put_object(Bucket="team", Key="t/tagged", Body=b"for x", Tagging="team=x")
    admin.put_object(Bucket="team", Key="t/other", Body=b"for y", Tagging="team=y")
    admin.put_object(Bucket="team", Key="t/plain", Body=b"untagged")
    arn = role(setup, "tagged-reader", {"Statement": {
        "Effect": "Allow", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::team/*",
        "Condition": {"StringEquals": {"s3:ExistingObjectTag/team": "x"}}}})  # fmt: skip
    session = s3_of(setup["server"], assume(setup, role=arn)["Credentials"])
    assert session.get_object(Bucket="team", Key="t/tagged")["Body"].read() == b"for x"
    assert code(lambda: session.get_object(Bucket="team", Key="t/other")) == "AccessDenied"
    assert code(lambda: session.get_object(Bucket="team", Key="t/plain")) == "AccessDenied"


def test_a_session_policy_on_tags_limits_the_role(setup: dict[str, Any]) -> None:
    """The session policy sees the tags too: it may narrow a role that reads everything."""
    admin = setup["server"].client()
    admin.put_object(Bucket="team", Key="home/tx", Body=b"x", Tagging="team=x")
    admin.put_object(Bucket="team", Key="home/ty", Body=b"y", Tagging="team=y")
    limit = {"Statement": {
        "Effect": "Allow", "Action": "s3:GetObject", "Resource": "*",
        "Condition": {"StringEquals": {"s3:ExistingObjectTag/team": "x"}}}}  # fmt: skip
    answer = assume(setup, Policy=json.dumps(limit))  # the role `writer` reads home/*
    session = s3_of(setup["server"], answer["Credentials"])
    assert session.get_object(Bucket="team", Key="home/tx")["Body"].read() == b"x"
    assert code(lambda: session.get_object(Bucket="team", Key="home/ty")) == "AccessDenied"


def test_acl_grants_reach_a_session_as_aws_decides(setup: dict[str, Any]) -> None:
    """Group grants reach the session; a grant to the user who assumed the role, or to the
    account's administrator (who owns the bucket), does not, as on AWS, where an ACL grant
    to an account reaches its roles only through their identity policies."""
    server = setup["server"]
    admin = server.client()
    admin.create_bucket(Bucket="shared", ObjectOwnership="ObjectWriter")
    key = setup["keys"]["alice"]
    alice = s3_of(server, {"AccessKeyId": key["access_key"],
                           "SecretAccessKey": key["secret_key"], "SessionToken": None})  # fmt: skip
    lists = {"Statement": {"Effect": "Allow", "Action": "s3:ListAllMyBuckets", "Resource": "*"}}
    egide(server, "user", "policy-put", "alice", "lists", write(setup["root"], "l.json", lists))
    alice_id = alice.list_buckets()["Owner"]["ID"]
    admin.put_object(Bucket="shared", Key="signed", Body=b"s", ACL="authenticated-read")
    admin.put_object(Bucket="shared", Key="public", Body=b"p", ACL="public-read")
    admin.put_object(Bucket="shared", Key="alices", Body=b"a", GrantRead=f"id={alice_id}")
    admin.put_object(Bucket="shared", Key="private", Body=b"-")
    # `writer` may read and write under team/home/ only: nothing here by its policies
    session = s3_of(server, assume(setup)["Credentials"])
    assert session.get_object(Bucket="shared", Key="signed")["Body"].read() == b"s"
    assert session.get_object(Bucket="shared", Key="public")["Body"].read() == b"p"
    assert session.head_object(Bucket="shared", Key="signed")["ContentLength"] == 1
    # the user's own grant reaches the user, not the session it opened
    assert alice.get_object(Bucket="shared", Key="alices")["Body"].read() == b"a"
    assert code(lambda: session.get_object(Bucket="shared", Key="alices")) == "AccessDenied"
    # the administrator's ownership (the account's) reaches no session
    assert code(lambda: session.get_object(Bucket="shared", Key="private")) == "AccessDenied"
    assert code(lambda: session.list_objects_v2(Bucket="shared")) == "AccessDenied"
    assert code(lambda: session.put_object(Bucket="shared", Key="new", Body=b"")) == (
        "AccessDenied"
    )
    # a bucket grant to every signed request reaches it too
    admin.put_bucket_acl(Bucket="shared", ACL="authenticated-read")
    listed = session.list_objects_v2(Bucket="shared")["Contents"]
    assert {o["Key"] for o in listed} == {"signed", "public", "alices", "private"}


def test_a_session_policy_limits_what_a_grant_gives(setup: dict[str, Any]) -> None:
    """A session policy limits every right of the session, those of ACL grants too."""
    server = setup["server"]
    admin = server.client()
    admin.create_bucket(Bucket="shared2", ObjectOwnership="ObjectWriter")
    admin.put_object(Bucket="shared2", Key="signed", Body=b"s", ACL="authenticated-read")
    only_list = {"Statement": {"Effect": "Allow", "Action": "s3:ListBucket", "Resource": "*"}}
    session = s3_of(server, assume(setup, Policy=json.dumps(only_list))["Credentials"])
    assert code(lambda: session.get_object(Bucket="shared2", Key="signed")) == "AccessDenied"


def test_list_buckets_shows_a_session_what_its_role_may_list(setup: dict[str, Any]) -> None:
    """As a user's: the buckets its policies let it list, not every bucket (it owns none)."""
    admin = setup["server"].client()
    admin.create_bucket(Bucket="unlisted")
    arn = role(setup, "lister", {"Statement": [
        {"Effect": "Allow", "Action": "s3:ListAllMyBuckets", "Resource": "*"},
        {"Effect": "Allow", "Action": "s3:ListBucket", "Resource": "arn:aws:s3:::team"},
    ]})  # fmt: skip
    session = s3_of(setup["server"], assume(setup, role=arn)["Credentials"])
    assert [b["Name"] for b in session.list_buckets()["Buckets"]] == ["team"]
    limit = {"Statement": {"Effect": "Allow", "Action": "s3:ListAllMyBuckets", "Resource": "*"}}
    limited = s3_of(
        setup["server"], assume(setup, role=arn, Policy=json.dumps(limit))["Credentials"]
    )
    assert limited.list_buckets()["Buckets"] == []  # its session policy lists no bucket
