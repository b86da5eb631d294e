"""Users and access keys against a real two-worker server, changed with the real `egide`
command (another process) while it serves: a disabled or deleted key is refused by every
worker from the next request on (the catalog's rights counter, decision 0035), while another
key goes on working."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError
from tests.conftest import ACCESS_KEY, InProcessFactory, Server, ServerFactory

from egide.auth.authorize import Authorizer, Principal

#: Clients per key, each keeping its own connection: SO_REUSEPORT spread them over the
#: workers (all on one of two: 1 chance in 2048).
CONNECTIONS = 12


def egide(server: Server, *args: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "egide", *args, "--config", str(server.config)],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def client(server: Server, access: str, secret: str) -> Any:
    return boto3.client(
        "s3", endpoint_url=server.endpoint, aws_access_key_id=access,
        aws_secret_access_key=secret, region_name="us-east-1",
        config=Config(retries={"max_attempts": 1}),
    )  # fmt: skip


def answers(clients: list[Any]) -> list[str]:
    """What each client gets for ListBuckets: "ok" or the error code."""
    found = []
    for each in clients:
        try:
            each.list_buckets()
            found.append("ok")
        except ClientError as exc:
            found.append(exc.response["Error"]["Code"])
    return found


def test_a_disabled_then_deleted_key_is_refused_by_every_worker_at_once(
    make_server: ServerFactory, tmp_path: Path
) -> None:
    server = make_server("workers = 2")
    egide(server, "user", "create", "alice")
    lister = tmp_path / "list.json"  # a user has no right until a policy grants it
    lister.write_text('{"Statement": {"Effect": "Allow", "Action": "s3:*", "Resource": "*"}}')
    egide(server, "user", "policy-put", "alice", "list", str(lister))
    first = json.loads(egide(server, "key", "create", "alice", "--json"))
    second = json.loads(egide(server, "key", "create", "alice", "--json"))
    ones, twos = (
        [client(server, k["access_key"], k["secret_key"]) for _ in range(CONNECTIONS)]
        for k in (first, second)
    )
    assert answers(ones) == answers(twos) == ["ok"] * CONNECTIONS  # cached by every worker

    egide(server, "key", "disable", first["access_key"])
    assert answers(ones) == ["InvalidAccessKeyId"] * CONNECTIONS
    assert answers(twos) == ["ok"] * CONNECTIONS  # the other key still works

    egide(server, "key", "enable", first["access_key"])
    assert answers(ones) == ["ok"] * CONNECTIONS

    egide(server, "key", "delete", second["access_key"])
    assert answers(twos) == ["InvalidAccessKeyId"] * CONNECTIONS
    assert answers(ones) == ["ok"] * CONNECTIONS


def test_authorize_is_told_the_user_its_arn_and_groups(
    make_inprocess_server: InProcessFactory,
) -> None:
    asked: list[Principal] = []

    async def record(principal: Principal, action: str, resource: str, _: object) -> bool:
        asked.append(principal)
        return True

    server = make_inprocess_server(Authorizer(record))
    egide(server, "user", "create", "dana")
    egide(server, "group", "create", "readers")
    egide(server, "group", "add", "readers", "dana")
    key = json.loads(egide(server, "key", "create", "dana", "--json"))
    client(server, key["access_key"], key["secret_key"]).list_buckets()
    server.client().list_buckets()  # the configured key: the admin's
    account = json.loads(egide(server, "user", "list", "--json"))[0]["arn"].split(":")[4]
    assert [(p.access_key, p.user, p.arn, p.groups) for p in asked] == [
        (key["access_key"], "dana", f"arn:aws:iam::{account}:user/dana", frozenset({"readers"})),
        (ACCESS_KEY, "admin", f"arn:aws:iam::{account}:user/admin", frozenset()),
    ]
