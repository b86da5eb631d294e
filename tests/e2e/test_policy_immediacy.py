"""A change of rights made through a worker applies on that worker at once (and on the others:
tests/e2e/test_rights_everywhere.py): its caches of bucket policies, identity policies and
secrets listen to the engine's events, and check the catalog's rights counter. Each change is
undone and made again 20 times, each time followed at once by a request, so that a cache kept a
moment too long would show."""

from __future__ import annotations

import json
from typing import Any

from tests.conftest import Server, ServerFactory
from tests.e2e.test_admin_identities import call, s3_with
from tests.e2e.test_policies import allow, code, policy

ROUNDS = 20


def one_worker(make_server: ServerFactory) -> tuple[Server, Any]:
    server = make_server("workers = 1")
    s3 = server.client()
    s3.create_bucket(Bucket="now")
    s3.put_object(Bucket="now", Key="x", Body=b"x")
    return server, s3


def test_a_bucket_policy_applies_at_once(make_server: ServerFactory) -> None:
    _, s3 = one_worker(make_server)
    deny = {"Version": "2012-10-17", "Statement": [{"Effect": "Deny", "Principal": "*",
            "Action": "s3:GetObject", "Resource": "arn:aws:s3:::now/*"}]}  # fmt: skip
    for _ in range(ROUNDS):
        s3.put_bucket_policy(Bucket="now", Policy=json.dumps(deny))
        assert code(s3.get_object, Bucket="now", Key="x") == "AccessDenied"
        s3.delete_bucket_policy(Bucket="now")
        assert code(s3.get_object, Bucket="now", Key="x") == "ok"


def test_an_identity_policy_applies_at_once(make_server: ServerFactory) -> None:
    server, _ = one_worker(make_server)
    call(server, "POST", "users", {"name": "flip"}, 201)
    call(server, "POST", "groups", {"name": "flippers"}, 201)
    user = s3_with(server, call(server, "POST", "users/flip/keys", {}, 201))
    read = policy(allow("s3:GetObject", resource="arn:aws:s3:::now/*"))
    for _ in range(ROUNDS):
        call(server, "PUT", "users/flip/policies/read", read)
        assert code(user.get_object, Bucket="now", Key="x") == "ok"
        call(server, "DELETE", "users/flip/policies/read")
        assert code(user.get_object, Bucket="now", Key="x") == "AccessDenied"
    call(server, "PUT", "groups/flippers/policies/read", read)
    for _ in range(ROUNDS):  # a membership decides the group's policies at once too
        call(server, "PUT", "groups/flippers/members/flip")
        assert code(user.get_object, Bucket="now", Key="x") == "ok"
        call(server, "DELETE", "groups/flippers/members/flip")
        assert code(user.get_object, Bucket="now", Key="x") == "AccessDenied"


def test_a_disabled_key_is_refused_at_once(make_server: ServerFactory) -> None:
    server, _ = one_worker(make_server)
    call(server, "POST", "users", {"name": "keyflip"}, 201)
    everything = policy(allow("s3:*"))
    call(server, "PUT", "users/keyflip/policies/all", everything)
    key = call(server, "POST", "users/keyflip/keys", {}, 201)
    user = s3_with(server, key)
    for _ in range(ROUNDS):
        call(server, "POST", f"keys/{key['access_key']}/disable")
        assert code(user.get_object, Bucket="now", Key="x") == "InvalidAccessKeyId"
        call(server, "POST", f"keys/{key['access_key']}/enable")
        assert code(user.get_object, Bucket="now", Key="x") == "ok"
