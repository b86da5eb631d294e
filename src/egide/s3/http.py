"""Request and response values between the S3 app and its operation handlers."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from email.utils import formatdate

from egide.web.http import Receive, RequestBody, Response
from egide.web.request import RequestHead

__all__ = ["Receive", "Request", "RequestBody", "Response", "http_date"]


@dataclass
class Request:
    head: RequestHead
    bucket: str | None
    key: str | None
    body: AsyncIterator[bytes]
    request_id: str
    access_key: str | None = None
    #: Trailing headers of an aws-chunked body, filled once the body has been read.
    trailers: dict[str, str] = field(default_factory=dict)


def http_date(timestamp: float) -> str:
    """RFC 7231 date, as S3 sends Last-Modified."""
    return formatdate(timestamp, usegmt=True)
