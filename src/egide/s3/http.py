"""Request and response values between the S3 app and its operation handlers."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from email.utils import formatdate
from typing import TYPE_CHECKING

from egide.auth.authorize import ANONYMOUS, Principal
from egide.web.http import Receive, RequestBody, Response
from egide.web.request import RequestHead

if TYPE_CHECKING:
    from egide.s3.access import Access

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
    #: Who asks (its user names owners of what it creates), and the owners and ACLs as this
    #: worker reads them (egide.s3.access); None only for handlers driven without an app.
    principal: Principal = ANONYMOUS
    access: Access | None = None
    #: Whether the caller's identity policies allow an action on a resource (ListBuckets
    #: shows what they let a user list); None: none to ask.
    may: Callable[[str, str], Awaitable[bool]] | None = None
    #: Returns when the client goes away (after the body was read): for a long answer whose
    #: work should stop then (S3 Select). None: not known.
    disconnected: Callable[[], Awaitable[None]] | None = None


def http_date(timestamp: float) -> str:
    """RFC 7231 date, as S3 sends Last-Modified."""
    return formatdate(timestamp, usegmt=True)
