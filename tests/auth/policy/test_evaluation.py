"""The policy matrix: principal × action × resource × condition → allowed or denied, over AWS's
documented S3 bucket policy examples, and the rules of evaluation (explicit deny wins, default
deny, identity and bucket policies, accounts, NotAction/NotResource/NotPrincipal)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from egide.auth.policy import (
    ANONYMOUS_CALLER,
    Caller,
    Policy,
    PolicyKind,
    evaluate,
    parse_policy,
    root_caller,
    user_caller,
)

ACCOUNT = "111122223333"
OTHER = "444455556666"
ALICE = user_caller(ACCOUNT, "alice", "AIDAALICE")
BOB = user_caller(ACCOUNT, "bob", "AIDABOB")
CAROL = user_caller(OTHER, "carol")
ROOT = root_caller(ACCOUNT)
ANON = ANONYMOUS_CALLER
B = "arn:aws:s3:::doc-bucket"


def bucket(*statements: dict[str, Any]) -> Policy:
    text = json.dumps({"Version": "2012-10-17", "Statement": list(statements)})
    return parse_policy(text, PolicyKind.BUCKET, name="doc-bucket", bucket="doc-bucket")


def identity(name: str, *statements: dict[str, Any]) -> Policy:
    text = json.dumps({"Version": "2012-10-17", "Statement": list(statements)})
    return parse_policy(text, PolicyKind.IDENTITY, name=name)


def context(caller: Caller, **keys: str | list[str]) -> dict[str, str | list[str]]:
    """What the request context holds by default: HTTPS, a source address, the caller's keys."""
    base: dict[str, str | list[str]] = {
        "aws:SecureTransport": "true",
        "aws:SourceIp": "192.0.2.10",
        "aws:CurrentTime": "2026-06-01T12:00:00Z",
    }
    if caller.username:
        base["aws:username"] = caller.username
    if caller.userid:
        base["aws:userid"] = caller.userid
    if caller.account:
        base["aws:PrincipalAccount"] = caller.account
    base.update({k.replace("__", ":").replace("_", "-"): v for k, v in keys.items()})
    return base


# --- AWS's documented bucket policy examples --------------------------------------------------

PUBLIC_READ = bucket(
    {
        "Sid": "PublicRead",
        "Effect": "Allow",
        "Principal": "*",
        "Action": ["s3:GetObject", "s3:GetObjectVersion"],
        "Resource": f"{B}/*",
    }
)
IP_RESTRICTED = bucket(
    {
        "Sid": "IPAllow",
        "Effect": "Allow",
        "Principal": "*",
        "Action": "s3:*",
        "Resource": [B, f"{B}/*"],
        "Condition": {"IpAddress": {"aws:SourceIp": ["192.0.2.0/24", "2001:db8::/32"]}},
    },
    {
        "Sid": "IPDenyOne",
        "Effect": "Deny",
        "Principal": "*",
        "Action": "s3:*",
        "Resource": [B, f"{B}/*"],
        "Condition": {"IpAddress": {"aws:SourceIp": "192.0.2.188/32"}},
    },
)
HTTPS_ONLY = bucket(
    {
        "Sid": "AllowAlice",
        "Effect": "Allow",
        "Principal": {"AWS": ALICE.arn},
        "Action": "s3:*",
        "Resource": [B, f"{B}/*"],
    },
    {
        "Sid": "RestrictToTLSRequestsOnly",
        "Effect": "Deny",
        "Principal": "*",
        "Action": "s3:*",
        "Resource": [B, f"{B}/*"],
        "Condition": {"Bool": {"aws:SecureTransport": "false"}},
    },
)
ENCRYPTED_ONLY = bucket(
    {
        "Sid": "AllowPuts",
        "Effect": "Allow",
        "Principal": {"AWS": [ALICE.arn, BOB.arn]},
        "Action": "s3:PutObject",
        "Resource": f"{B}/*",
    },
    {
        "Sid": "DenyUnencryptedObjectUploads",
        "Effect": "Deny",
        "Principal": "*",
        "Action": "s3:PutObject",
        "Resource": f"{B}/*",
        "Condition": {"Null": {"s3:x-amz-server-side-encryption": "true"}},
    },
    {
        "Sid": "DenyIncorrectEncryptionHeader",
        "Effect": "Deny",
        "Principal": "*",
        "Action": "s3:PutObject",
        "Resource": f"{B}/*",
        "Condition": {
            "StringNotEquals": {"s3:x-amz-server-side-encryption": ["AES256", "aws:kms"]}
        },
    },
)
HOME_FOLDERS = identity(
    "home-folders",
    {
        "Sid": "AllowListingOfUserFolder",
        "Effect": "Allow",
        "Action": "s3:ListBucket",
        "Resource": B,
        "Condition": {"StringLike": {"s3:prefix": ["", "home/", "home/${aws:username}/*"]}},
    },
    {
        "Sid": "AllowAllS3ActionsInUserFolder",
        "Effect": "Allow",
        "Action": "s3:*",
        "Resource": f"{B}/home/${{aws:username}}/*",
    },
)
CROSS_USER = bucket(
    {
        "Sid": "BobReadsAlicesShare",
        "Effect": "Allow",
        "Principal": {"AWS": BOB.arn},
        "Action": ["s3:GetObject", "s3:ListBucket"],
        "Resource": [B, f"{B}/shared/*"],
    },
    {
        "Sid": "CarolFromAnotherAccount",
        "Effect": "Allow",
        "Principal": {"AWS": OTHER},
        "Action": "s3:GetObject",
        "Resource": f"{B}/shared/*",
    },
)
ADMIN = identity("admin", {"Effect": "Allow", "Action": "*", "Resource": "*"})
NO_DELETE = bucket(
    {
        "Sid": "DenyDeletes",
        "Effect": "Deny",
        "Principal": {"AWS": ALICE.arn},
        "Action": ["s3:DeleteObject", "s3:DeleteObjectVersion", "s3:DeleteBucket"],
        "Resource": [B, f"{B}/*"],
    },
)

# (case, caller, identity policies, bucket policy, action, resource, extra context, allowed)
Case = tuple[str, Caller, tuple[Policy, ...], Policy | None, str, str, dict[str, Any], bool]
MATRIX: list[Case] = [
    ("public read: anonymous GET", ANON, (), PUBLIC_READ, "s3:GetObject", f"{B}/a.jpg", {}, True),
    ("public read: any user GET", BOB, (), PUBLIC_READ, "s3:GetObject", f"{B}/a.jpg", {}, True),
    ("public read: anonymous PUT", ANON, (), PUBLIC_READ, "s3:PutObject", f"{B}/a.jpg", {}, False),
    ("public read: anonymous list", ANON, (), PUBLIC_READ, "s3:ListBucket", B, {}, False),
    (
        "public read: another bucket",
        ANON,
        (),
        PUBLIC_READ,
        "s3:GetObject",
        "arn:aws:s3:::x/a",
        {},
        False,
    ),
    ("ip: inside the range", ANON, (), IP_RESTRICTED, "s3:GetObject", f"{B}/k", {}, True),
    (
        "ip: IPv6 inside",
        ANON,
        (),
        IP_RESTRICTED,
        "s3:PutObject",
        f"{B}/k",
        {"aws__SourceIp": "2001:db8::9"},
        True,
    ),
    (
        "ip: outside the range",
        ANON,
        (),
        IP_RESTRICTED,
        "s3:GetObject",
        f"{B}/k",
        {"aws__SourceIp": "198.51.100.7"},
        False,
    ),
    (
        "ip: the one denied",
        ANON,
        (),
        IP_RESTRICTED,
        "s3:GetObject",
        f"{B}/k",
        {"aws__SourceIp": "192.0.2.188"},
        False,
    ),
    (
        "ip: no address known",
        ANON,
        (),
        IP_RESTRICTED,
        "s3:GetObject",
        f"{B}/k",
        {"aws__SourceIp": []},
        False,
    ),
    ("https: over TLS", ALICE, (), HTTPS_ONLY, "s3:GetObject", f"{B}/k", {}, True),
    (
        "https: plain HTTP denied",
        ALICE,
        (),
        HTTPS_ONLY,
        "s3:GetObject",
        f"{B}/k",
        {"aws__SecureTransport": "false"},
        False,
    ),
    (
        "https: admin over HTTP",
        BOB,
        (ADMIN,),
        HTTPS_ONLY,
        "s3:GetObject",
        f"{B}/k",
        {"aws__SecureTransport": "false"},
        False,
    ),
    ("https: bob not named", BOB, (), HTTPS_ONLY, "s3:GetObject", f"{B}/k", {}, False),
    (
        "sse: AES256 header",
        ALICE,
        (),
        ENCRYPTED_ONLY,
        "s3:PutObject",
        f"{B}/k",
        {"s3__x_amz_server_side_encryption": "AES256"},
        True,
    ),
    (
        "sse: KMS header",
        BOB,
        (),
        ENCRYPTED_ONLY,
        "s3:PutObject",
        f"{B}/k",
        {"s3__x_amz_server_side_encryption": "aws:kms"},
        True,
    ),
    ("sse: no header", ALICE, (), ENCRYPTED_ONLY, "s3:PutObject", f"{B}/k", {}, False),
    (
        "sse: wrong header",
        ALICE,
        (),
        ENCRYPTED_ONLY,
        "s3:PutObject",
        f"{B}/k",
        {"s3__x_amz_server_side_encryption": "rot13"},
        False,
    ),
    (
        "sse: admin without header",
        BOB,
        (ADMIN,),
        ENCRYPTED_ONLY,
        "s3:PutObject",
        f"{B}/k",
        {},
        False,
    ),
    (
        "home: list the root",
        ALICE,
        (HOME_FOLDERS,),
        None,
        "s3:ListBucket",
        B,
        {"s3__prefix": ""},
        True,
    ),
    (
        "home: list home/",
        ALICE,
        (HOME_FOLDERS,),
        None,
        "s3:ListBucket",
        B,
        {"s3__prefix": "home/"},
        True,
    ),
    (
        "home: list own folder",
        ALICE,
        (HOME_FOLDERS,),
        None,
        "s3:ListBucket",
        B,
        {"s3__prefix": "home/alice/2026/"},
        True,
    ),
    (
        "home: list bob's folder",
        ALICE,
        (HOME_FOLDERS,),
        None,
        "s3:ListBucket",
        B,
        {"s3__prefix": "home/bob/"},
        False,
    ),
    ("home: list without prefix", ALICE, (HOME_FOLDERS,), None, "s3:ListBucket", B, {}, False),
    (
        "home: put in own folder",
        ALICE,
        (HOME_FOLDERS,),
        None,
        "s3:PutObject",
        f"{B}/home/alice/cv.pdf",
        {},
        True,
    ),
    (
        "home: bob in own folder",
        BOB,
        (HOME_FOLDERS,),
        None,
        "s3:GetObject",
        f"{B}/home/bob/x",
        {},
        True,
    ),
    (
        "home: get bob's file",
        ALICE,
        (HOME_FOLDERS,),
        None,
        "s3:GetObject",
        f"{B}/home/bob/x",
        {},
        False,
    ),
    (
        "home: nameless caller",
        ROOT,
        (HOME_FOLDERS,),
        None,
        "s3:GetObject",
        f"{B}/home//x",
        {},
        False,
    ),
    (
        "cross-user: bob reads shared",
        BOB,
        (),
        CROSS_USER,
        "s3:GetObject",
        f"{B}/shared/r.csv",
        {},
        True,
    ),
    ("cross-user: bob lists", BOB, (), CROSS_USER, "s3:ListBucket", B, {}, True),
    (
        "cross-user: bob outside shared",
        BOB,
        (),
        CROSS_USER,
        "s3:GetObject",
        f"{B}/private/r.csv",
        {},
        False,
    ),
    ("cross-user: bob writes", BOB, (), CROSS_USER, "s3:PutObject", f"{B}/shared/r.csv", {}, False),
    (
        "cross-user: alice not named",
        ALICE,
        (),
        CROSS_USER,
        "s3:GetObject",
        f"{B}/shared/r.csv",
        {},
        False,
    ),
    (
        "deny wins: admin deletes",
        ALICE,
        (ADMIN,),
        NO_DELETE,
        "s3:DeleteObject",
        f"{B}/k",
        {},
        False,
    ),
    ("deny wins: admin reads", ALICE, (ADMIN,), NO_DELETE, "s3:GetObject", f"{B}/k", {}, True),
    ("deny wins: bob deletes", BOB, (ADMIN,), NO_DELETE, "s3:DeleteObject", f"{B}/k", {}, True),
    ("default deny: nothing", ALICE, (), None, "s3:GetObject", f"{B}/k", {}, False),
    ("default deny: anonymous", ANON, (), None, "s3:GetObject", f"{B}/k", {}, False),
]


@pytest.mark.parametrize(
    ("caller", "policies", "bucket_policy", "action", "resource", "keys", "allowed"),
    [case[1:] for case in MATRIX],
    ids=[case[0] for case in MATRIX],
)
def test_policy_matrix(
    caller: Caller,
    policies: tuple[Policy, ...],
    bucket_policy: Policy | None,
    action: str,
    resource: str,
    keys: dict[str, Any],
    allowed: bool,
) -> None:
    verdict = evaluate(
        caller,
        action,
        resource,
        context(caller, **keys),
        identity_policies=policies,
        bucket_policy=bucket_policy,
        resource_account=ACCOUNT,
    )
    assert verdict.allowed is allowed


def test_an_explicit_deny_names_its_statement() -> None:
    verdict = evaluate(
        ALICE, "s3:DeleteObject", f"{B}/k", context(ALICE), identity_policies=(ADMIN,),
        bucket_policy=NO_DELETE,
    )  # fmt: skip
    assert (verdict.allowed, verdict.explicit) == (False, True)
    assert (verdict.policy, verdict.sid, verdict.statement) == ("doc-bucket", "DenyDeletes", 0)
    assert verdict.reason == "explicitly denied by statement 'DenyDeletes' of doc-bucket"


def test_an_allow_names_its_statement_and_an_implicit_deny_none() -> None:
    allowed = evaluate(ALICE, "s3:GetObject", f"{B}/k", context(ALICE), identity_policies=(ADMIN,))
    assert (allowed.allowed, allowed.explicit, allowed.policy, allowed.statement) == (
        True, True, "admin", 0,
    )  # fmt: skip
    assert allowed.reason == "allowed by statement #0 of admin"
    denied = evaluate(ALICE, "s3:GetObject", f"{B}/k", context(ALICE))
    assert (denied.allowed, denied.explicit, denied.sid) == (False, False, None)


def test_an_account_named_in_a_bucket_policy_grants_its_users_nothing_by_itself() -> None:
    policy = bucket(
        {"Effect": "Allow", "Principal": {"AWS": ACCOUNT}, "Action": "s3:*", "Resource": f"{B}/*"}
    )
    ctx = context(ALICE)
    assert not evaluate(ALICE, "s3:GetObject", f"{B}/k", ctx, bucket_policy=policy).allowed
    assert evaluate(ROOT, "s3:GetObject", f"{B}/k", context(ROOT), bucket_policy=policy).allowed


def test_across_accounts_both_the_identity_and_the_bucket_policy_must_allow() -> None:
    reader = identity("reader", {"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"})
    key = f"{B}/shared/r.csv"

    def allowed(policies: tuple[Policy, ...], bucket_policy: Policy | None) -> bool:
        return evaluate(
            CAROL, "s3:GetObject", key, context(CAROL), identity_policies=policies,
            bucket_policy=bucket_policy, resource_account=ACCOUNT,
        ).allowed  # fmt: skip

    assert allowed((reader,), CROSS_USER)
    assert not allowed((), CROSS_USER)  # the bucket trusts the account, which granted nothing
    assert not allowed((reader,), None)  # her own account cannot grant another's bucket
    bob_only = bucket(
        {"Effect": "Allow", "Principal": {"AWS": BOB.arn}, "Action": "s3:*", "Resource": f"{B}/*"}
    )
    assert not allowed((reader,), bob_only)
    assert allowed((reader,), PUBLIC_READ)  # anyone, her included


def test_an_account_named_in_a_deny_covers_its_users() -> None:
    policy = bucket(
        {"Effect": "Deny", "Principal": {"AWS": OTHER}, "Action": "s3:*", "Resource": f"{B}/*"}
    )
    reader = identity("reader", {"Effect": "Allow", "Action": "s3:*", "Resource": "*"})
    verdict = evaluate(
        CAROL, "s3:GetObject", f"{B}/k", context(CAROL), identity_policies=(reader,),
        bucket_policy=policy,
    )  # fmt: skip
    assert verdict.explicit and not verdict.allowed


def test_not_action_allows_everything_but_what_it_names() -> None:
    policy = identity(
        "all-but-delete", {"Effect": "Allow", "NotAction": "s3:Delete*", "Resource": "*"}
    )
    assert evaluate(ALICE, "s3:PutObject", f"{B}/k", {}, identity_policies=(policy,)).allowed
    assert not evaluate(ALICE, "s3:DeleteObject", f"{B}/k", {}, identity_policies=(policy,)).allowed


def test_not_resource_denies_everything_outside_what_it_names() -> None:
    policy = identity(
        "only-doc-bucket",
        {"Effect": "Allow", "Action": "s3:*", "Resource": "*"},
        {"Effect": "Deny", "Action": "s3:*", "NotResource": [B, f"{B}/*"]},
    )
    assert evaluate(ALICE, "s3:GetObject", f"{B}/k", {}, identity_policies=(policy,)).allowed
    other = evaluate(ALICE, "s3:GetObject", "arn:aws:s3:::x/k", {}, identity_policies=(policy,))
    assert other.explicit and not other.allowed


def test_not_principal_denies_everyone_but_those_it_names() -> None:
    policy = bucket(
        {"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject", "Resource": f"{B}/*"},
        {
            "Effect": "Deny",
            "NotPrincipal": {"AWS": [ALICE.arn, f"arn:aws:iam::{ACCOUNT}:root"]},
            "Action": "s3:*",
            "Resource": f"{B}/*",
        },
    )
    assert evaluate(ALICE, "s3:GetObject", f"{B}/k", context(ALICE), bucket_policy=policy).allowed
    assert not evaluate(BOB, "s3:GetObject", f"{B}/k", context(BOB), bucket_policy=policy).allowed
    assert not evaluate(ANON, "s3:GetObject", f"{B}/k", {}, bucket_policy=policy).allowed


def test_resource_wildcards_cross_slashes_and_are_case_sensitive() -> None:
    policy = identity(
        "patterns",
        {"Effect": "Allow", "Action": "s3:GetObject", "Resource": f"{B}/*/report-????.pdf"},
    )

    def allowed(key: str) -> bool:
        return evaluate(
            ALICE, "s3:GetObject", f"{B}/{key}", {}, identity_policies=(policy,)
        ).allowed

    assert allowed("2026/q1/report-0001.pdf")
    assert not allowed("2026/q1/report-01.pdf")
    assert not allowed("2026/q1/Report-0001.pdf")
    assert not allowed("report-0001.pdf")


def test_actions_are_case_insensitive_in_the_request_too() -> None:
    assert evaluate(ALICE, "S3:getobject", f"{B}/k", {}, identity_policies=(ADMIN,)).allowed
    policy = identity("get", {"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"})
    assert evaluate(ALICE, "s3:GETOBJECT", f"{B}/k", {}, identity_policies=(policy,)).allowed


def test_a_2008_policy_reads_variables_as_literal_text() -> None:
    text = json.dumps(
        {
            "Version": "2008-10-17",
            "Statement": {
                "Effect": "Allow",
                "Action": "s3:*",
                "Resource": f"{B}/${{aws:username}}",
            },
        }
    )
    policy = parse_policy(text, PolicyKind.IDENTITY)
    literal = f"{B}/${{aws:username}}"
    assert evaluate(
        ALICE, "s3:GetObject", literal, context(ALICE), identity_policies=(policy,)
    ).allowed
    assert not evaluate(
        ALICE, "s3:GetObject", f"{B}/alice", context(ALICE), identity_policies=(policy,)
    ).allowed


def test_a_resource_list_mixing_fixed_patterns_and_variables_matches_either() -> None:
    HOME = f"{B}/home/${{aws:username}}/*"
    policy = identity(
        "mixed",
        {"Effect": "Allow", "Action": "s3:GetObject", "Resource": [f"{B}/public/*", HOME]},
        {"Effect": "Allow", "Action": "s3:PutObject", "Resource": HOME},
    )

    def allowed(action: str, key: str) -> bool:
        return evaluate(
            ALICE, action, f"{B}/{key}", context(ALICE), identity_policies=(policy,)
        ).allowed

    assert allowed("s3:GetObject", "public/a") and allowed("s3:GetObject", "home/alice/a")
    assert allowed("s3:PutObject", "home/alice/a")
    assert not allowed("s3:GetObject", "home/bob/a") and not allowed("s3:PutObject", "public/a")
    # The same policy asked again answers from its plan for the action, identically.
    assert allowed("s3:GetObject", "home/alice/b") and not allowed("s3:GetObject", "private/a")
