"""POST policy rules, on documents and signatures built here by hand (not by the server code)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from egide.s3 import errors
from egide.s3.auth.post_policy import PostPolicy, credential, verify_signature

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"


def encode(conditions: list[Any], expiration: str = "2026-11-23T13:00:00.000Z") -> str:
    return base64.b64encode(
        json.dumps({"expiration": expiration, "conditions": conditions}).encode()
    ).decode()


def hand_signature(policy: str, date: str = "20261123", region: str = "eu-west-3") -> str:
    key = ("AWS4" + SECRET).encode()
    for part in (date, region, "s3", "aws4_request"):
        key = hmac.digest(key, part.encode(), "sha256")
    return hmac.new(key, policy.encode(), hashlib.sha256).hexdigest()


def form(policy: str, **extra: str) -> dict[str, str]:
    return {
        "key": "user/alice/photo.jpg",
        "policy": policy,
        "x-amz-algorithm": "AWS4-HMAC-SHA256",
        "x-amz-credential": "AKID/20261123/eu-west-3/s3/aws4_request",
        "x-amz-date": "20261123T120000Z",
        "x-amz-signature": hand_signature(policy),
        "bucket": "photos",
        **extra,
    }


AUTH_CONDITIONS: list[Any] = [
    {"x-amz-algorithm": "AWS4-HMAC-SHA256"},
    {"x-amz-credential": "AKID/20261123/eu-west-3/s3/aws4_request"},
    {"x-amz-date": "20261123T120000Z"},
]


def test_signature_of_a_valid_form() -> None:
    fields = form(encode([{"bucket": "photos"}]))
    cred = credential(fields)
    assert (cred.access_key, cred.date, cred.region) == ("AKID", "20261123", "eu-west-3")
    verify_signature(fields, cred, SECRET)
    with pytest.raises(errors.SignatureDoesNotMatch):
        verify_signature(fields, cred, SECRET + "x")
    tampered = {**fields, "policy": encode([{"bucket": "other"}])}
    with pytest.raises(errors.SignatureDoesNotMatch):
        verify_signature(tampered, cred, SECRET)


@pytest.mark.parametrize(
    "change",
    [
        {"x-amz-algorithm": "AWS4-HMAC-SHA512"},
        {"x-amz-credential": "AKID/20261123/eu-west-3/sqs/aws4_request"},
        {"x-amz-credential": "AKID/20261124/eu-west-3/s3/aws4_request"},  # not x-amz-date's day
        {"x-amz-credential": "AKID/20261123/s3/aws4_request"},
        {"x-amz-date": ""},
        {"x-amz-signature": ""},
    ],
)
def test_malformed_credentials_are_invalid_argument(change: dict[str, str]) -> None:
    with pytest.raises(errors.InvalidArgument):
        credential({**form(encode([])), **change})


def test_all_condition_kinds_pass() -> None:
    conditions = [
        *AUTH_CONDITIONS,
        {"bucket": "photos"},
        ["starts-with", "$key", "user/alice/"],
        ["eq", "$Content-Type", "image/jpeg"],
        ["starts-with", "$x-amz-meta-tag", ""],
        ["content-length-range", 1, 1024],
    ]
    policy = PostPolicy.decode(encode(conditions))
    fields = form("", **{"content-type": "image/jpeg", "x-amz-meta-tag": "anything"})
    policy.check(fields, NOW)
    assert policy.length_range() == (1, 1024)
    policy.check_length(1)
    policy.check_length(1024)


@pytest.mark.parametrize(
    "condition,message",
    [
        ({"bucket": "elsewhere"}, 'Policy Condition failed: ["eq", "$bucket", "elsewhere"]'),
        (["eq", "$key", "user/bob/photo.jpg"], 'Condition failed: ["eq", "$key", "user/bob/'),
        (["starts-with", "$key", "user/bob/"], '["starts-with", "$key", "user/bob/"]'),
        ({"acl": "public-read"}, '["eq", "$acl", "public-read"]'),  # field not in the form
    ],
)
def test_a_failed_condition_is_access_denied(condition: Any, message: str) -> None:
    policy = PostPolicy.decode(encode([*AUTH_CONDITIONS, ["starts-with", "$key", ""], condition]))
    with pytest.raises(errors.AccessDenied) as exc:
        policy.check(form(""), NOW)
    assert exc.value.message.startswith("Invalid according to Policy: Policy Condition failed")
    assert message in exc.value.message


def test_every_field_must_be_covered() -> None:
    policy = PostPolicy.decode(encode([*AUTH_CONDITIONS, {"key": "user/alice/photo.jpg"}]))
    policy.check(form("", **{"x-ignore-submit": "Upload"}), NOW)
    with pytest.raises(errors.AccessDenied) as exc:
        policy.check(form("", **{"x-amz-meta-a": "1", "success_action_status": "201"}), NOW)
    assert exc.value.message == (
        "Invalid according to Policy: Extra input fields: x-amz-meta-a, success_action_status"
    )


def test_condition_names_are_case_insensitive() -> None:
    policy = PostPolicy.decode(encode([*AUTH_CONDITIONS, {"KEY": "user/alice/photo.jpg"}]))
    policy.check(form(""), NOW)


def test_expiry() -> None:
    policy = PostPolicy.decode(encode([], expiration="2026-11-23T12:00:00Z"))
    policy.check({}, NOW - timedelta(seconds=1))
    with pytest.raises(errors.AccessDenied) as exc:
        policy.check({}, NOW)
    assert exc.value.message == "Invalid according to Policy: Policy expired."


def test_length_range() -> None:
    policy = PostPolicy.decode(
        encode([["content-length-range", 10, 100], ["content-length-range", "20", "200"]])
    )
    assert policy.length_range() == (20, 100)
    with pytest.raises(errors.EntityTooSmall) as small:
        policy.check_length(19)
    assert small.value.fields == {"ProposedSize": "19", "MinSizeAllowed": "20"}
    with pytest.raises(errors.EntityTooLarge) as large:
        policy.check_length(101)
    assert large.value.fields == {"ProposedSize": "101", "MaxSizeAllowed": "100"}
    assert PostPolicy.decode(encode([])).length_range() is None
    PostPolicy.decode(encode([])).check_length(10**12)


@pytest.mark.parametrize(
    "encoded",
    [
        "not base64!",
        base64.b64encode(b"{not json").decode(),
        base64.b64encode(b"[1, 2]").decode(),
        base64.b64encode(json.dumps({"conditions": []}).encode()).decode(),  # no expiration
        base64.b64encode(json.dumps({"expiration": "2026-11-23T13:00:00Z"}).encode()).decode(),
        encode([], expiration="tomorrow"),
        encode([["in", "$key", "a"]]),
        encode([["eq", "key", "a"]]),  # no "$"
        encode([["eq", "$key"]]),
        encode([{"key": 5}]),
        encode([["content-length-range", 10, 5]]),
        encode([["content-length-range", "a", 5]]),
    ],
)
def test_invalid_documents(encoded: str) -> None:
    with pytest.raises(errors.InvalidPolicyDocument):
        PostPolicy.decode(encoded)
