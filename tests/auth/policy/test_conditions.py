"""Condition operators as AWS evaluates them: each with a case that holds and one that does not,
the IfExists suffix, the ForAnyValue/ForAllValues qualifiers, Null, and policy variables."""

from __future__ import annotations

import pytest

from egide.auth.policy import MalformedPolicy
from egide.auth.policy.conditions import compile_condition
from egide.auth.policy.patterns import ContextMapping, Values


def holds(block: dict[str, object], context: ContextMapping, variables: bool = True) -> bool:
    return compile_condition(block, variables=variables).holds(Values(context))


ACCOUNT = "arn:aws:iam::111122223333:"
ALICE = f"{ACCOUNT}user/alice"
BOB = f"{ACCOUNT}user/bob"
JAN1 = "2026-01-01T00:00:00Z"

# (operator, key, policy value(s), request value that holds, request value that does not)
CASES = [
    ("StringEquals", "s3:x-amz-acl", "public-read", "public-read", "Public-Read"),
    ("StringNotEquals", "s3:x-amz-acl", "public-read", "private", "public-read"),
    ("StringEqualsIgnoreCase", "aws:UserAgent", "Boto3", "BOTO3", "curl"),
    ("StringNotEqualsIgnoreCase", "aws:UserAgent", "Boto3", "curl", "BOTO3"),
    ("StringLike", "s3:prefix", "home/alice/*", "home/alice/docs/a", "home/bob/a"),
    ("StringLike", "s3:prefix", "f?o", "fao", "faao"),
    ("StringNotLike", "s3:prefix", "home/*", "tmp/x", "home/x"),
    ("NumericEquals", "s3:max-keys", "10", "10.0", "11"),
    ("NumericNotEquals", "s3:max-keys", "10", "11", "10"),
    ("NumericLessThan", "s3:max-keys", "10", "9", "10"),
    ("NumericLessThanEquals", "s3:max-keys", "10", "10", "11"),
    ("NumericGreaterThan", "s3:max-keys", "10", "11", "10"),
    ("NumericGreaterThanEquals", "s3:max-keys", "10", "10", "9"),
    ("DateEquals", "aws:CurrentTime", JAN1, JAN1, "2026-01-02"),
    ("DateNotEquals", "aws:CurrentTime", JAN1, "2026-01-02", "1767225600"),
    ("DateLessThan", "aws:CurrentTime", JAN1, "2025-12-31T23:59:59Z", "2026-01-01"),
    ("DateLessThanEquals", "aws:CurrentTime", JAN1, "2026-01-01", "2026-01-01T00:00:01Z"),
    ("DateGreaterThan", "aws:EpochTime", JAN1, "1767225601", "1767225600"),
    (
        "DateGreaterThanEquals",
        "aws:CurrentTime",
        "1767225600",
        "2026-01-01T00:00:00+00:00",
        "2025-12-31",
    ),
    ("Bool", "aws:SecureTransport", "true", "true", "false"),
    ("Bool", "aws:SecureTransport", False, "false", "true"),
    ("IpAddress", "aws:SourceIp", "192.0.2.0/24", "192.0.2.77", "192.0.3.1"),
    ("IpAddress", "aws:SourceIp", "2001:db8::/32", "2001:db8::1", "2001:db9::1"),
    ("IpAddress", "aws:SourceIp", "192.0.2.0/24", "192.0.2.1", "::ffff:c000:201"),
    (
        "NotIpAddress",
        "aws:SourceIp",
        ["192.0.2.0/24", "2001:db8::/32"],
        "198.51.100.1",
        "2001:db8::5",
    ),
    ("ArnEquals", "aws:PrincipalArn", ALICE, ALICE, BOB),
    ("ArnLike", "aws:PrincipalArn", "arn:aws:iam::*:user/a*", ALICE, f"{ACCOUNT}role/alice"),
    ("ArnLike", "aws:SourceArn", "arn:aws:s3:::*", "arn:aws:s3:::b/k", "arn:aws:sns:::b"),
    ("ArnNotEquals", "aws:PrincipalArn", ALICE, BOB, ALICE),
    (
        "ArnNotLike",
        "aws:PrincipalArn",
        "arn:aws:iam::*:role/*",
        f"{ACCOUNT}user/x",
        f"{ACCOUNT}role/x",
    ),
    ("BinaryEquals", "s3:content-md5", "3q2+7w==", "3q2+7w==", "AAAAAA=="),
]


@pytest.mark.parametrize(("op", "key", "wanted", "good", "bad"), CASES)
def test_operator_holds_for_a_matching_value_and_not_for_another(
    op: str, key: str, wanted: object, good: str, bad: str
) -> None:
    assert holds({op: {key: wanted}}, {key: good})
    assert not holds({op: {key: wanted}}, {key: bad})


def test_keys_are_case_insensitive_in_the_policy_and_the_request() -> None:
    assert holds({"Bool": {"AWS:securetransport": "true"}}, {"aws:SecureTransport": "true"})


def test_values_of_a_key_are_or_ed_and_keys_and_operators_and_ed() -> None:
    block = {
        "StringEquals": {"s3:x-amz-acl": ["private", "bucket-owner-full-control"]},
        "Bool": {"aws:SecureTransport": "true"},
    }
    assert holds(block, {"s3:x-amz-acl": "private", "aws:SecureTransport": "true"})
    assert holds(
        block, {"s3:x-amz-acl": "bucket-owner-full-control", "aws:SecureTransport": "true"}
    )
    assert not holds(block, {"s3:x-amz-acl": "private", "aws:SecureTransport": "false"})


def test_a_negated_operator_holds_only_when_no_value_matches() -> None:
    block = {"StringNotEquals": {"s3:x-amz-acl": ["private", "public-read"]}}
    assert holds(block, {"s3:x-amz-acl": "authenticated-read"})
    assert not holds(block, {"s3:x-amz-acl": "public-read"})


def test_absent_key_fails_a_positive_operator_and_passes_a_negated_one() -> None:
    assert not holds({"StringEquals": {"s3:x-amz-acl": "private"}}, {})
    assert holds({"StringNotEquals": {"s3:x-amz-acl": "private"}}, {})
    assert holds({"NotIpAddress": {"aws:SourceIp": "10.0.0.0/8"}}, {})
    assert not holds({"IpAddress": {"aws:SourceIp": "10.0.0.0/8"}}, {})


def test_if_exists_holds_on_an_absent_key_and_tests_a_present_one() -> None:
    block = {"StringEqualsIfExists": {"s3:x-amz-server-side-encryption": "AES256"}}
    assert holds(block, {})
    assert holds(block, {"s3:x-amz-server-side-encryption": "AES256"})
    assert not holds(block, {"s3:x-amz-server-side-encryption": "aws:kms"})
    assert holds({"NumericLessThanEqualsIfExists": {"s3:max-keys": "10"}}, {})
    assert not holds(
        {"NumericLessThanEqualsIfExists": {"s3:max-keys": "10"}}, {"s3:max-keys": "99"}
    )


def test_for_any_value_needs_one_request_value_and_fails_on_an_absent_key() -> None:
    block = {"ForAnyValue:StringEquals": {"aws:TagKeys": ["project", "owner"]}}
    assert holds(block, {"aws:TagKeys": ["colour", "owner"]})
    assert not holds(block, {"aws:TagKeys": ["colour", "size"]})
    assert not holds(block, {})
    assert not holds(block, {"aws:TagKeys": []})
    negated = {"ForAnyValue:StringNotEquals": {"aws:TagKeys": ["project", "owner"]}}
    assert holds(negated, {"aws:TagKeys": ["project", "colour"]})
    assert not holds(negated, {"aws:TagKeys": ["project", "owner"]})
    assert not holds(negated, {})


def test_for_all_values_needs_every_request_value_and_holds_on_an_absent_key() -> None:
    block = {"ForAllValues:StringEquals": {"aws:TagKeys": ["project", "owner"]}}
    assert holds(block, {"aws:TagKeys": ["project", "owner"]})
    assert holds(block, {"aws:TagKeys": ["owner"]})
    assert not holds(block, {"aws:TagKeys": ["owner", "colour"]})
    assert holds(block, {})
    negated = {"ForAllValues:StringNotLike": {"aws:TagKeys": ["secret*"]}}
    assert holds(negated, {"aws:TagKeys": ["a", "b"]})
    assert not holds(negated, {"aws:TagKeys": ["a", "secret-b"]})


def test_a_plain_operator_on_a_multivalued_key_matches_any_value() -> None:
    assert holds({"StringEquals": {"aws:TagKeys": "owner"}}, {"aws:TagKeys": ["a", "owner"]})
    assert not holds({"StringNotEquals": {"aws:TagKeys": "owner"}}, {"aws:TagKeys": ["a", "owner"]})


def test_null_true_holds_when_the_key_is_absent_false_when_present() -> None:
    assert holds({"Null": {"s3:x-amz-server-side-encryption": "true"}}, {})
    assert not holds(
        {"Null": {"s3:x-amz-server-side-encryption": "true"}},
        {"s3:x-amz-server-side-encryption": "AES256"},
    )
    assert holds({"Null": {"aws:TokenIssueTime": False}}, {"aws:TokenIssueTime": "2026-01-01"})
    assert not holds({"Null": {"aws:TokenIssueTime": "false"}}, {})


def test_policy_variables_in_string_values_take_the_request_values() -> None:
    block = {"StringLike": {"s3:prefix": ["home/${aws:username}/*", "home/${aws:username}"]}}
    assert holds(block, {"s3:prefix": "home/alice/x", "aws:username": "alice"})
    assert not holds(block, {"s3:prefix": "home/bob/x", "aws:username": "alice"})
    # A username with a wildcard in it is substituted literally, never as a wildcard.
    assert not holds(block, {"s3:prefix": "home/alice/x", "aws:username": "*"})
    # No value and no default: the value does not match.
    assert not holds(block, {"s3:prefix": "home//x"})
    with_default = {"StringEquals": {"s3:prefix": "${aws:username, 'guest'}"}}
    assert holds(with_default, {"s3:prefix": "guest"})


def test_escapes_stand_for_the_character_itself() -> None:
    block = {"StringLike": {"s3:prefix": "a${*}b${?}${$}"}}
    assert holds(block, {"s3:prefix": "a*b?$"})
    assert not holds(block, {"s3:prefix": "axxb?$"})
    assert holds({"StringEquals": {"s3:prefix": "${*}"}}, {"s3:prefix": "*"})


def test_variables_are_literal_text_in_a_2008_policy() -> None:
    block = {"StringEquals": {"s3:prefix": "${aws:username}"}}
    assert holds(block, {"s3:prefix": "${aws:username}", "aws:username": "a"}, variables=False)
    assert not holds(block, {"s3:prefix": "a", "aws:username": "a"}, variables=False)


def test_unparsable_request_values_match_nothing() -> None:
    assert not holds({"NumericLessThan": {"s3:max-keys": "10"}}, {"s3:max-keys": "ten"})
    assert not holds({"IpAddress": {"aws:SourceIp": "0.0.0.0/0"}}, {"aws:SourceIp": "nowhere"})
    assert not holds({"DateLessThan": {"aws:CurrentTime": "2030-01-01"}}, {"aws:CurrentTime": "x"})


@pytest.mark.parametrize(
    ("block", "reason"),
    [
        ({"StringEqualz": {"s3:prefix": "a"}}, "Invalid Condition type : StringEqualz"),
        ({"NullIfExists": {"s3:prefix": "true"}}, "Invalid Condition type : NullIfExists"),
        ({"ForSomeValues:StringEquals": {"s3:prefix": "a"}}, "Invalid Condition type"),
        ({"StringEquals": {"prefix": "a"}}, "Policy has an invalid condition key"),
        ({"NumericLessThan": {"s3:max-keys": "ten"}}, "Invalid numeric value"),
        ({"DateLessThan": {"aws:CurrentTime": "someday"}}, "Invalid date value"),
        ({"IpAddress": {"aws:SourceIp": "300.1.1.1/8"}}, "Invalid IP address or CIDR"),
        ({"Bool": {"aws:SecureTransport": "yes"}}, "Invalid Bool value"),
        ({"Null": {"aws:SecureTransport": "maybe"}}, "Invalid Null value"),
        ({"BinaryEquals": {"s3:x": "not base64!"}}, "Invalid base64 value"),
        ({"StringEquals": {"s3:prefix": {"a": 1}}}, "Invalid Condition value"),
        ({"StringEquals": {"s3:prefix": []}}, "Invalid Condition value"),
        ({"StringEquals": "s3:prefix"}, "must map keys to values"),
        (["StringEquals"], "Condition must be an object"),
    ],
)
def test_malformed_condition_is_refused_with_its_reason(block: object, reason: str) -> None:
    with pytest.raises(MalformedPolicy) as refused:
        compile_condition(block, variables=True)
    assert reason in refused.value.reason
    assert refused.value.code == "MalformedPolicy" and refused.value.status == 400


def test_a_tag_key_after_the_slash_keeps_its_case() -> None:
    block = {"StringEquals": {"s3:ExistingObjectTag/Project": "apollo"}}
    assert holds(block, {"S3:existingobjecttag/Project": "apollo"})
    assert not holds(block, {"s3:ExistingObjectTag/project": "apollo"})
