"""Policy documents: what is accepted, what is refused as MalformedPolicy and with which reason."""

from __future__ import annotations

import json

import pytest

from egide.auth.policy import (
    BUCKET_POLICY_MAX_BYTES,
    IDENTITY_POLICY_MAX_CHARS,
    MalformedPolicy,
    PolicyKind,
    cached_policy,
    parse_policy,
)
from egide.auth.policy.principals import Caller, Match, compile_principal, user_caller

BUCKET = PolicyKind.BUCKET
IDENTITY = PolicyKind.IDENTITY
ACCOUNT = "111122223333"


def bucket_policy(*statements: dict[str, object], version: str = "2012-10-17") -> str:
    return json.dumps({"Version": version, "Statement": list(statements)})


PUBLIC_READ = {
    "Sid": "PublicRead",
    "Effect": "Allow",
    "Principal": "*",
    "Action": ["s3:GetObject", "s3:GetObjectVersion"],
    "Resource": "arn:aws:s3:::photos/*",
}


def test_a_valid_bucket_policy_compiles_its_statements() -> None:
    deny = {**PUBLIC_READ, "Sid": "NoDelete", "Effect": "Deny", "Action": "s3:Delete*"}
    policy = parse_policy(bucket_policy(PUBLIC_READ, deny), BUCKET, name="photos", bucket="photos")
    assert [s.sid for s in policy.statements] == ["PublicRead", "NoDelete"]
    assert [s.deny for s in policy.statements] == [False, True]
    assert policy.version == "2012-10-17" and policy.name == "photos"


def test_a_single_statement_object_and_the_2008_version_are_accepted() -> None:
    text = json.dumps({"Version": "2008-10-17", "Id": "p1", "Statement": PUBLIC_READ})
    policy = parse_policy(text, BUCKET, bucket="photos")
    assert len(policy.statements) == 1 and policy.id == "p1"


def test_an_identity_policy_has_no_principal() -> None:
    text = bucket_policy({"Effect": "Allow", "Action": "s3:*", "Resource": "*"})
    assert parse_policy(text, IDENTITY).statements[0].principal is None
    with pytest.raises(MalformedPolicy, match="should not specify a principal"):
        parse_policy(bucket_policy(PUBLIC_READ), IDENTITY)


def test_actions_match_case_insensitively_with_wildcards() -> None:
    text = bucket_policy(
        {"Effect": "Allow", "Action": ["s3:get*", "s3:List?ucket"], "Resource": "*"}
    )
    action = parse_policy(text, IDENTITY).statements[0].action
    assert action.matches("s3:GetObject") and action.matches("S3:GETOBJECTACL")
    assert action.matches("s3:ListBucket")
    assert not action.matches("s3:PutObject") and not action.matches("s3:ListBuckets")


def without(field: str) -> str:
    return bucket_policy({k: v for k, v in PUBLIC_READ.items() if k != field})


def changed(fields: dict[str, object]) -> str:
    return bucket_policy({**PUBLIC_READ, **fields})


USER_STAR = f"arn:aws:iam::{ACCOUNT}:user/*"
GROUP = f"arn:aws:iam::{ACCOUNT}:group/g"
MALFORMED = [
    ("not json", "This policy contains invalid Json"),
    ("[1, 2]", "the first byte must be '{'"),
    (json.dumps({"Version": "2012-10-17"}), "Missing required field Statement"),
    (json.dumps({"Version": "2012-10-17", "Statement": []}), "Statement is empty"),
    (json.dumps({"Version": "2020-01-01", "Statement": PUBLIC_READ}), "valid version string"),
    (json.dumps({"Statement": PUBLIC_READ, "Foo": 1}), "Unknown field Foo"),
    (changed({"Colour": "red"}), "Unknown field Colour"),
    (without("Principal"), "Missing required field Principal"),
    (without("Effect"), "Missing required field Effect"),
    (without("Action"), "Missing required field Action"),
    (without("Resource"), "Missing required field Resource"),
    (changed({"Effect": "Maybe"}), "Invalid effect: Maybe"),
    (changed({"Action": "GetObject"}), "Policy has invalid action"),
    (changed({"Action": []}), "Policy has invalid action"),
    (changed({"Action": ["s3:Get Object"]}), "Policy has invalid action"),
    (changed({"NotAction": "s3:PutObject"}), "both Action and NotAction"),
    (changed({"Resource": "photos/*"}), "Policy has invalid resource"),
    (changed({"Resource": "arn:aws:s3:::other/*"}), "Policy has invalid resource"),
    (changed({"Resource": "arn:aws:s3:::photosets/*"}), "Policy has invalid resource"),
    (changed({"Principal": "alice"}), "Invalid principal in policy"),
    (changed({"Principal": {"AWS": "alice"}}), "Invalid principal in policy"),
    (changed({"Principal": {"AWS": USER_STAR}}), "Invalid principal in policy"),
    (changed({"Principal": {"AWS": GROUP}}), "Invalid principal in policy"),
    (changed({"Principal": {"Nobody": "x"}}), "Invalid principal in policy"),
    (changed({"Principal": {"AWS": []}}), "Invalid principal in policy"),
    (
        changed({"Condition": {"StringEqualz": {"s3:prefix": "a"}}}),
        "Invalid Condition type : StringEqualz",
    ),
    (bucket_policy(PUBLIC_READ, {**PUBLIC_READ, "Effect": "Deny"}), "must be unique"),
]


@pytest.mark.parametrize(("text", "reason"), MALFORMED)
def test_malformed_bucket_policy_is_refused_with_its_reason(text: str, reason: str) -> None:
    with pytest.raises(MalformedPolicy) as refused:
        parse_policy(text, BUCKET, bucket="photos")
    assert reason in refused.value.reason


def test_bucket_policy_resources_may_name_the_bucket_its_objects_or_patterns_over_it() -> None:
    for resource in [
        "arn:aws:s3:::photos",
        "arn:aws:s3:::photos/*",
        "arn:aws:s3:::photos/${aws:username}/*",
        "arn:aws:s3:::pho*",
        "arn:aws:s3:::*",
    ]:
        parse_policy(changed({"Resource": resource}), BUCKET, bucket="photos")


def test_known_actions_refuse_an_s3_action_that_names_none() -> None:
    known = frozenset({"s3:GetObject", "s3:PutObject", "s3:ListBucket"})
    ok = changed({"Action": ["s3:Get*", "s3:putobject"]})
    parse_policy(ok, BUCKET, bucket="photos", known_actions=known)
    for action in ["s3:GetObjekt", "s3:Fly*", "sqs:SendMessage"]:
        with pytest.raises(MalformedPolicy, match="Policy has invalid action"):
            parse_policy(
                changed({"Action": action}),
                BUCKET,
                bucket="photos",
                known_actions=known,
            )


def test_size_limits_are_awss() -> None:
    padding = {"Sid": "x" * (BUCKET_POLICY_MAX_BYTES + 1)}
    with pytest.raises(MalformedPolicy, match="maximum allowed document size"):
        parse_policy(changed({**padding}), BUCKET, bucket="photos")
    long_identity = bucket_policy(
        {"Effect": "Allow", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::b/" + "k" * 6200}
    )
    with pytest.raises(MalformedPolicy, match="maximum allowed document size"):
        parse_policy(long_identity, IDENTITY)
    # Whitespace does not count towards the identity limit.
    spaced = json.dumps(
        {"Statement": {"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"}}, indent=4000
    )
    assert len(spaced) > IDENTITY_POLICY_MAX_CHARS
    parse_policy(spaced, IDENTITY)


def test_principals_name_users_roles_sessions_accounts_and_everyone() -> None:
    alice = user_caller(ACCOUNT, "alice")
    assert compile_principal("*").match(alice) is Match.DIRECT
    assert compile_principal({"AWS": "*"}).match(Caller()) is Match.DIRECT
    assert compile_principal({"AWS": [alice.arn]}).match(alice) is Match.DIRECT
    assert compile_principal({"AWS": ACCOUNT}).match(alice) is Match.ACCOUNT
    assert compile_principal({"AWS": f"arn:aws:iam::{ACCOUNT}:root"}).match(alice) is Match.ACCOUNT
    assert compile_principal({"AWS": "999988887777"}).match(alice) is Match.NONE
    assert compile_principal({"AWS": alice.arn}).match(Caller()) is Match.NONE
    role = f"arn:aws:iam::{ACCOUNT}:role/auditor"
    session = Caller(
        arn=f"arn:aws:sts::{ACCOUNT}:assumed-role/auditor/s1",
        account=ACCOUNT,
        also=frozenset({role}),
    )
    assert compile_principal({"AWS": role}).match(session) is Match.DIRECT
    assert compile_principal({"AWS": session.arn}).match(session) is Match.DIRECT
    web = Caller(federated="https://id.example.org")
    assert compile_principal({"Federated": "https://id.example.org"}).match(web) is Match.DIRECT
    assert compile_principal({"Service": "logging.s3.amazonaws.com"}).match(web) is Match.NONE


def test_the_same_document_is_compiled_once() -> None:
    text = bucket_policy(PUBLIC_READ)
    first = cached_policy(text, BUCKET, name="photos", bucket="photos")
    assert cached_policy(text, BUCKET, name="photos", bucket="photos") is first
    assert cached_policy(text, BUCKET, name="other", bucket="photos") is not first


def test_a_trust_policy_names_principals_and_no_resource() -> None:
    trust = parse_policy(
        '{"Statement": {"Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::123456789012:root"},'
        ' "Action": "sts:AssumeRole"}}',
        PolicyKind.TRUST,
    )
    assert trust.kind is PolicyKind.TRUST and trust.statements[0].principal is not None
    with pytest.raises(MalformedPolicy, match="Missing required field Principal"):
        parse_policy('{"Statement": {"Effect": "Allow", "Action": "sts:*"}}', PolicyKind.TRUST)
    with pytest.raises(MalformedPolicy, match="Has prohibited field Resource"):
        parse_policy(
            '{"Statement": {"Effect": "Allow", "Principal": "*", "Action": "sts:AssumeRole",'
            ' "Resource": "*"}}',
            PolicyKind.TRUST,
        )
