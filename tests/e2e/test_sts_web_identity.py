"""AssumeRoleWithWebIdentity against a real server and a real local OpenID Connect issuer:
a right ID token gets credentials that work for S3 calls within the role's policy; expired,
wrongly signed, wrong-audience and wrong-issuer tokens, and claims no rule maps to the role,
are refused with STS's codes."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore import UNSIGNED
from botocore.config import Config
from botocore.exceptions import ClientError
from joserfc.jwk import RSAKey
from tests.conftest import ACCESS_KEY, SECRET_KEY, Server, free_port
from tests.e2e.test_identities import egide
from tests.e2e.test_sts import s3_of
from tests.oidc_issuer import OidcIssuer


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """An issuer; a server trusting it, where the `groups` claim `finance` maps to the role
    finance-reader (it reads the bucket `ledger`), and the role by-trust names the provider in
    its own trust policy, for the audience egide-console only."""
    issuer = OidcIssuer()
    root = tmp_path_factory.mktemp("egide-oidc")
    port = free_port()
    (root / "egide.toml").write_text(
        f'data_dir = "{root / "data"}"\nlisten = "127.0.0.1:{port}"\n'
        f'[[oidc]]\nissuer = "{issuer.url}"\naudiences = ["egide-console"]\n'
        'roles = [{claim = "groups", value = "finance", role = "finance-reader"}]\n'
        f'[[credentials]]\naccess_key = "{ACCESS_KEY}"\nsecret_key = "{SECRET_KEY}"\n'
    )
    server = Server(root / "data", root / "egide.toml", port).start()
    admin = server.client()
    admin.create_bucket(Bucket="ledger")
    admin.put_object(Bucket="ledger", Key="2026.csv", Body=b"a,b\n")
    account = json.loads(egide(server, "user", "list", "--json"))[0]["arn"].split(":")[4]
    nobody = {"Statement": {"Effect": "Allow", "Action": "sts:AssumeRole",
                            "Principal": {"AWS": f"arn:aws:iam::{account}:root"}}}  # fmt: skip
    by_trust = {"Statement": {
        "Effect": "Allow", "Action": "sts:AssumeRoleWithWebIdentity",
        "Principal": {"Federated": issuer.url},
        "Condition": {"StringEquals": {f"{issuer.host}:aud": "egide-console"}},
    }}  # fmt: skip
    read = {"Statement": {"Effect": "Allow", "Action": "s3:GetObject",
                          "Resource": "arn:aws:s3:::ledger/*"}}  # fmt: skip
    for name, trust in (("finance-reader", nobody), ("by-trust", by_trust)):
        (root / f"{name}.json").write_text(json.dumps(trust))
        egide(server, "role", "create", name, str(root / f"{name}.json"))
        (root / "read.json").write_text(json.dumps(read))
        egide(server, "role", "attach-policy", name, "read", str(root / "read.json"))
    yield {"server": server, "issuer": issuer, "account": account}
    server.stop()
    issuer.close()


def sign_in(world: dict[str, Any], token: str, role: str = "finance-reader") -> dict[str, Any]:
    client = boto3.client(
        "sts", endpoint_url=world["server"].endpoint, region_name="us-east-1",
        config=Config(signature_version=UNSIGNED, retries={"max_attempts": 1}),
    )  # fmt: skip
    return dict(client.assume_role_with_web_identity(
        RoleArn=f"arn:aws:iam::{world['account']}:role/{role}", RoleSessionName="alice",
        WebIdentityToken=token,
    ))  # fmt: skip


def refused(world: dict[str, Any], token: str, role: str = "finance-reader") -> str:
    with pytest.raises(ClientError) as caught:
        sign_in(world, token, role)
    return str(caught.value.response["Error"]["Code"])


def test_a_right_token_gets_credentials_that_work_for_s3(world: dict[str, Any]) -> None:
    issuer = world["issuer"]
    answer = sign_in(world, issuer.token(groups=["finance"]))
    assert answer["SubjectFromWebIdentityToken"] == "alice"
    assert answer["Audience"] == "egide-console" and answer["Provider"] == issuer.host
    assert answer["AssumedRoleUser"]["Arn"].endswith(":assumed-role/finance-reader/alice")
    session = s3_of(world["server"], answer["Credentials"])
    assert session.get_object(Bucket="ledger", Key="2026.csv")["Body"].read() == b"a,b\n"
    with pytest.raises(ClientError) as caught:
        session.put_object(Bucket="ledger", Key="x", Body=b"")
    assert caught.value.response["Error"]["Code"] == "AccessDenied"
    # a role whose trust policy names the provider needs no rule
    by_trust = sign_in(world, issuer.token(groups=["staff"]), "by-trust")
    assert by_trust["Credentials"]["AccessKeyId"].startswith("ASIA")


def test_wrong_tokens_and_unmapped_claims_are_refused(world: dict[str, Any]) -> None:
    issuer = world["issuer"]
    assert refused(world, issuer.token(groups=["finance"], exp=1_000_000)) == (
        "ExpiredTokenException"
    )
    other_key = RSAKey.generate_key(2048, parameters={"kid": "test-1"})
    assert refused(world, issuer.token(groups=["finance"], key=other_key)) == (
        "InvalidIdentityToken"
    )
    assert refused(world, issuer.token(groups=["finance"], aud="other-app")) == (
        "InvalidIdentityToken"
    )
    assert refused(world, issuer.token(groups=["finance"], iss="http://127.0.0.1:9")) == (
        "InvalidIdentityToken"
    )
    assert refused(world, issuer.token(groups=["staff"])) == "AccessDenied"  # no rule maps
