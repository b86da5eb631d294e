"""The pieces of egide.web.connection that need no server (the rest: tests/e2e/test_http_limits)."""

from __future__ import annotations

import logging

import pytest

from egide.web import errors
from egide.web.connection import RateLimitedLog, connection_cap, error_response


def test_a_rate_limited_log_counts_the_lines_it_leaves_out(
    caplog: pytest.LogCaptureFixture,
) -> None:
    limited = RateLimitedLog(every=3600)
    with caplog.at_level(logging.WARNING, logger="egide.http"):
        for _ in range(5):
            limited.warning("refused %d", 1)
        limited.every = 0
        limited.warning("refused %d", 2)
    assert [r.getMessage() for r in caplog.records] == [
        "refused 1",
        "refused 2 (4 more since the last such line)",
    ]


def test_the_connection_cap_stays_under_the_file_limit() -> None:
    assert connection_cap(1000, 1 << 20) == 1000
    assert connection_cap(1000, 1024) == 768
    assert connection_cap(1000, 256) == 128


def test_an_error_the_protocol_answers_is_a_whole_s3_response() -> None:
    reply = error_response(errors.RequestTimeout())
    head, body = reply.split(b"\r\n\r\n", 1)
    assert head.startswith(b"HTTP/1.1 400 Bad Request\r\n")
    assert b"connection: close" in head and f"content-length: {len(body)}".encode() in head
    assert b"<Code>RequestTimeout</Code>" in body
