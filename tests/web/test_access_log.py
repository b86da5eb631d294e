"""Redaction and the access key of egide.web.access_log."""

from __future__ import annotations

from egide.web.access_log import access_key_of, redacted_query
from egide.web.request import RequestHead


def test_signatures_and_tokens_are_redacted_whatever_their_case() -> None:
    query = (
        "X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKID%2F20261207%2Fus-east-1%2Fs3"
        "%2Faws4_request&X-Amz-Signature=abc123&x-amz-security-token=tok&Signature=v2sig&prefix=a"
    )
    assert redacted_query(query) == (
        "X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKID%2F20261207%2Fus-east-1%2Fs3"
        "%2Faws4_request&X-Amz-Signature=REDACTED&x-amz-security-token=REDACTED"
        "&Signature=REDACTED&prefix=a"
    )


def test_a_query_without_secrets_is_kept_as_sent() -> None:
    assert redacted_query("list-type=2&prefix=a%20b&versioning") == (
        "list-type=2&prefix=a%20b&versioning"
    )


def test_the_access_key_comes_from_the_header_or_the_query() -> None:
    header = RequestHead(
        "GET", "/", headers={"authorization": "AWS4-HMAC-SHA256 Credential=AKID1/2026/x, ..."}
    )
    assert access_key_of(header) == "AKID1"
    query = RequestHead("GET", "/", query=(("X-Amz-Credential", "AKID2/20261207/r/s3/x"),))
    assert access_key_of(query) == "AKID2"
    assert access_key_of(RequestHead("GET", "/")) is None
