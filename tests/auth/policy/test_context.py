"""The condition keys a request gives its policies, from RequestContext and the caller."""

from __future__ import annotations

from datetime import UTC, datetime

from egide.auth.authorize import RequestContext
from egide.auth.policy import ANONYMOUS_CALLER, Values, user_caller
from egide.auth.policy.context import condition_keys

MOMENT = datetime(2026, 6, 1, 12, 30, 5, tzinfo=UTC)


def test_global_keys_come_from_the_request_and_the_caller() -> None:
    request = RequestContext(
        request_time=MOMENT,
        source_ip="192.0.2.1",
        secure_transport=True,
        user_agent="aws-cli/2",
        keys={"s3:prefix": "home/"},
    )
    keys = condition_keys(
        request, user_caller("111122223333", "alice", "AIDA1"), {"aws:TagKeys": ["a", "b"]}
    )
    assert keys == {
        "aws:CurrentTime": "2026-06-01T12:30:05Z",
        "aws:EpochTime": str(int(MOMENT.timestamp())),
        "aws:SecureTransport": "true",
        "aws:SourceIp": "192.0.2.1",
        "aws:UserAgent": "aws-cli/2",
        "aws:PrincipalArn": "arn:aws:iam::111122223333:user/alice",
        "aws:PrincipalAccount": "111122223333",
        "aws:PrincipalType": "User",
        "aws:username": "alice",
        "aws:userid": "AIDA1",
        "s3:prefix": "home/",
        "aws:TagKeys": ["a", "b"],
    }


def test_keys_a_request_lacks_are_absent_not_empty() -> None:
    keys = condition_keys(RequestContext(request_time=MOMENT), ANONYMOUS_CALLER)
    values = Values(keys)
    assert values.get("aws:username") == () and values.get("aws:sourceip") == ()
    assert keys["aws:SecureTransport"] == "false" and keys["aws:PrincipalType"] == "Anonymous"
