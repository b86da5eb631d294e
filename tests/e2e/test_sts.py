"""Temporary credentials against a real server: a user assumes a role with boto3's STS client
and works with the session's credentials through boto3's S3 client, exactly within the role's
policies (and its session policy); a session ends at its expiry, with its role, or never
opens when its token was altered."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
import requests
from botocore.config import Config
from botocore.exceptions import ClientError
from tests.conftest import ACCESS_KEY, SECRET_KEY, Server, free_port
from tests.e2e.test_identities import egide

#: Parameters unchecked by the client, so that the server is the one refusing (and a test may
#: ask for a session shorter than AWS allows, as this server allows).
ONE_TRY = Config(retries={"max_attempts": 1}, parameter_validation=False)


def sts(server: Server, access: str, secret: str, token: str | None = None) -> Any:
    return boto3.client(
        "sts", endpoint_url=server.endpoint, aws_access_key_id=access,
        aws_secret_access_key=secret, aws_session_token=token, region_name="us-east-1",
        config=ONE_TRY,
    )  # fmt: skip


def s3_of(server: Server, credentials: dict[str, Any]) -> Any:
    return boto3.client(
        "s3", endpoint_url=server.endpoint, aws_access_key_id=credentials["AccessKeyId"],
        aws_secret_access_key=credentials["SecretAccessKey"],
        aws_session_token=credentials["SessionToken"], region_name="us-east-1",
        config=Config(retries={"max_attempts": 1}, signature_version="s3v4"),
    )  # fmt: skip


def code(call: Any) -> str:
    with pytest.raises(ClientError) as caught:
        call()
    return str(caught.value.response["Error"]["Code"])


def write(root: Path, name: str, document: object) -> str:
    path = root / name
    path.write_text(json.dumps(document))
    return str(path)


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """A server whose sessions may be as short as a second; alice may assume `writer` (its
    trust policy names her, her policy grants sts:AssumeRole on it), which may read and
    write under home/ of the bucket `team`; bob may assume nothing. Each test that ends a
    role makes its own."""
    root = tmp_path_factory.mktemp("egide-sts")
    port = free_port()
    (root / "egide.toml").write_text(
        f'data_dir = "{root / "data"}"\nlisten = "127.0.0.1:{port}"\n'
        "[sts]\nmin_duration_seconds = 1\n"
        f'[[credentials]]\naccess_key = "{ACCESS_KEY}"\nsecret_key = "{SECRET_KEY}"\n'
    )
    server = Server(root / "data", root / "egide.toml", port).start()
    admin = server.client()
    admin.create_bucket(Bucket="team")
    admin.put_object(Bucket="team", Key="other/x", Body=b"not yours")
    account = json.loads(egide(server, "user", "create", "alice", "--json"))["arn"].split(":")[4]
    egide(server, "user", "create", "bob")
    roles = f"arn:aws:iam::{account}:role/*"
    may_assume = {"Statement": {"Effect": "Allow", "Action": "sts:AssumeRole", "Resource": roles}}
    egide(server, "user", "policy-put", "alice", "assume", write(root, "a.json", may_assume))
    keys = {u: json.loads(egide(server, "key", "create", u, "--json")) for u in ("alice", "bob")}
    setup = {"server": server, "account": account, "keys": keys, "root": root}
    setup["role"] = make_role(setup, "writer")
    yield setup
    server.stop()


def make_role(setup: dict[str, Any], name: str) -> str:
    """A role alice may assume, reading and writing under team/home/."""
    server, root, account = setup["server"], setup["root"], setup["account"]
    trust = {"Statement": {"Effect": "Allow", "Action": "sts:AssumeRole",
                           "Principal": {"AWS": f"arn:aws:iam::{account}:user/alice"}}}  # fmt: skip
    egide(server, "role", "create", name, write(root, f"trust-{name}.json", trust))
    rights = {"Statement": [
        {"Effect": "Allow", "Action": ["s3:GetObject", "s3:PutObject"],
         "Resource": "arn:aws:s3:::team/home/*"},
        {"Effect": "Allow", "Action": "s3:ListBucket", "Resource": "arn:aws:s3:::team"},
    ]}  # fmt: skip
    egide(server, "role", "attach-policy", name, "rw", write(root, f"rw-{name}.json", rights))
    return f"arn:aws:iam::{account}:role/{name}"


def assume(
    setup: dict[str, Any], user: str = "alice", role: str | None = None, **extra: Any
) -> dict[str, Any]:
    key = setup["keys"][user]
    answer = sts(setup["server"], key["access_key"], key["secret_key"]).assume_role(
        RoleArn=role or setup["role"], RoleSessionName="s1", **extra
    )
    return dict(answer)


def test_a_session_works_within_its_roles_policies_and_no_further(setup: dict[str, Any]) -> None:
    answer = assume(setup)
    credentials, user = answer["Credentials"], answer["AssumedRoleUser"]
    assert credentials["AccessKeyId"].startswith("ASIA")
    assert user["Arn"] == f"arn:aws:sts::{setup['account']}:assumed-role/writer/s1"
    assert user["AssumedRoleId"].startswith("AROA") and user["AssumedRoleId"].endswith(":s1")
    session = s3_of(setup["server"], credentials)
    session.put_object(Bucket="team", Key="home/a", Body=b"mine")
    assert session.get_object(Bucket="team", Key="home/a")["Body"].read() == b"mine"
    listed = [o["Key"] for o in session.list_objects_v2(Bucket="team")["Contents"]]
    assert "home/a" in listed and "other/x" in listed
    assert code(lambda: session.get_object(Bucket="team", Key="other/x")) == "AccessDenied"
    assert code(lambda: session.put_object(Bucket="team", Key="x", Body=b"")) == "AccessDenied"
    assert code(lambda: session.create_bucket(Bucket="mine")) == "AccessDenied"
    # who it is, by STS itself
    me = sts(setup["server"], credentials["AccessKeyId"], credentials["SecretAccessKey"],
             credentials["SessionToken"]).get_caller_identity()  # fmt: skip
    assert me["Arn"] == user["Arn"] and me["Account"] == setup["account"]
    # a presigned URL carries the token in its query
    url = session.generate_presigned_url("get_object", Params={"Bucket": "team", "Key": "home/a"})
    assert "X-Amz-Security-Token" in url
    assert requests.get(url, timeout=10).content == b"mine"


def test_a_session_policy_limits_the_session(setup: dict[str, Any]) -> None:
    only_read = {"Statement": {"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"}}
    session = s3_of(setup["server"], assume(setup, Policy=json.dumps(only_read))["Credentials"])
    assert code(lambda: session.put_object(Bucket="team", Key="home/b", Body=b"")) == (
        "AccessDenied"
    )
    setup["server"].client().put_object(Bucket="team", Key="home/c", Body=b"c")
    assert session.get_object(Bucket="team", Key="home/c")["Body"].read() == b"c"
    # it limits, never grants: other/x stays out of reach
    assert code(lambda: session.get_object(Bucket="team", Key="other/x")) == "AccessDenied"


def test_who_may_not_assume_is_refused_and_bad_requests_are_answered(setup: dict[str, Any]) -> None:
    assert code(lambda: assume(setup, "bob")) == "AccessDenied"  # no sts:AssumeRole
    admin = sts(setup["server"], ACCESS_KEY, SECRET_KEY)
    # the administrator may call AssumeRole, but the trust policy does not name it
    assert code(lambda: admin.assume_role(RoleArn=setup["role"], RoleSessionName="ad")) == (
        "AccessDenied"
    )
    missing = setup["role"].replace("writer", "nobody")
    assert code(lambda: admin.assume_role(RoleArn=missing, RoleSessionName="ad")) == (
        "AccessDenied"
    )
    assert code(lambda: assume(setup, DurationSeconds=7200)) == "ValidationError"  # > max
    key = setup["keys"]["alice"]
    client = sts(setup["server"], key["access_key"], key["secret_key"])
    assert code(lambda: client.assume_role(RoleArn=setup["role"], RoleSessionName="a b")) == (
        "ValidationError"
    )
    assert code(lambda: assume(setup, Policy='{"Statement": "x"}')) == "MalformedPolicyDocument"
    # a parameter Égide does not implement is refused, never ignored
    assert code(lambda: assume(setup, ExternalId="xyz")) == "NotImplemented"
    wrong = sts(setup["server"], key["access_key"], "not-the-secret")
    assert code(lambda: wrong.assume_role(RoleArn=setup["role"], RoleSessionName="s2")) == (
        "SignatureDoesNotMatch"
    )


def test_an_altered_or_borrowed_token_is_refused(setup: dict[str, Any]) -> None:
    credentials = assume(setup)["Credentials"]
    token = credentials["SessionToken"]
    flipped = token[:20] + ("A" if token[20] != "A" else "B") + token[21:]
    altered = s3_of(setup["server"], {**credentials, "SessionToken": flipped})
    assert code(lambda: altered.get_object(Bucket="team", Key="home/a")) == "InvalidToken"
    other = assume(setup)["Credentials"]
    borrowed = s3_of(setup["server"], {**credentials, "SessionToken": other["SessionToken"]})
    assert code(lambda: borrowed.list_objects_v2(Bucket="team")) == "InvalidToken"
    no_token = boto3.client(
        "s3", endpoint_url=setup["server"].endpoint, region_name="us-east-1", config=ONE_TRY,
        aws_access_key_id=credentials["AccessKeyId"],
        aws_secret_access_key=credentials["SecretAccessKey"],
    )  # fmt: skip
    assert code(lambda: no_token.list_objects_v2(Bucket="team")) == "InvalidAccessKeyId"


def test_a_session_ends_at_its_expiry(setup: dict[str, Any]) -> None:
    answer = assume(setup, DurationSeconds=2)
    session = s3_of(setup["server"], answer["Credentials"])
    assert session.list_objects_v2(Bucket="team")["KeyCount"] >= 1
    time.sleep(2.2)
    assert code(lambda: session.list_objects_v2(Bucket="team")) == "ExpiredToken"


def test_a_deleted_role_or_detached_policy_ends_its_sessions_within_a_second(
    setup: dict[str, Any],
) -> None:
    server = setup["server"]
    role = make_role(setup, "ending")
    session = s3_of(server, assume(setup, role=role)["Credentials"])
    session.put_object(Bucket="team", Key="home/d", Body=b"d")
    egide(server, "role", "detach-policy", "ending", "rw")
    since = time.monotonic()
    while time.monotonic() - since < 2.0:
        try:
            session.get_object(Bucket="team", Key="home/d")
        except ClientError as exc:
            assert exc.response["Error"]["Code"] == "AccessDenied"
            break
    else:
        pytest.fail("a detached policy still granted its rights 2 s later")
    assert time.monotonic() - since < 1.5
    again = s3_of(server, assume(setup, role=role)["Credentials"])
    egide(server, "role", "delete", "ending")
    time.sleep(1.1)
    assert code(lambda: again.list_objects_v2(Bucket="team")) == "AccessDenied"
    # made again under the same name, it is another role: the old sessions stay refused
    make_role(setup, "ending")
    time.sleep(1.1)
    assert code(lambda: again.list_objects_v2(Bucket="team")) == "AccessDenied"
    assert s3_of(server, assume(setup, role=role)["Credentials"]).list_objects_v2(Bucket="team")
