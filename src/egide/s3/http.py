"""Request and response values between the ASGI app and the operation handlers."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from email.utils import formatdate
from typing import Any

from egide.s3.request import RequestHead

Receive = Callable[[], Awaitable[dict[str, Any]]]


class ClientDisconnected(Exception):
    """The client went away before sending the whole body."""


async def receive_body(receive: Receive) -> AsyncIterator[bytes]:
    """The raw request body as it arrives from the server."""
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientDisconnected("client disconnected before the end of the body")
        chunk = message.get("body", b"")
        if chunk:
            yield chunk
        if not message.get("more_body", False):
            return


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


@dataclass
class Response:
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes | AsyncIterator[bytes] = b""


def http_date(timestamp: float) -> str:
    """RFC 7231 date, as S3 sends Last-Modified."""
    return formatdate(timestamp, usegmt=True)
