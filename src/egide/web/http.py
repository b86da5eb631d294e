"""The HTTP values every mounted app shares: the request body as it arrives, the response."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from egide.web.errors import IncompleteBody

Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]


class RequestBody:
    """The request body as it arrives from the server, checked against Content-Length.

    One generator per request on the hot path of every upload: counting and ending are done
    here rather than in layers of wrappers.
    """

    def __init__(self, receive: Receive, expected: int | None, has_body: bool) -> None:
        self._receive = receive
        self._expected = expected
        #: Whether the whole body has been read (else the connection must not be reused).
        self.done = not has_body
        #: Bytes of the body read so far.
        self.received = 0

    async def chunks(self) -> AsyncIterator[bytes]:
        received = self.received
        while True:
            message = await self._receive()
            if message["type"] == "http.disconnect":
                raise IncompleteBody(
                    "The connection closed before the end of the body"
                    + (
                        f": {received} of {self._expected} bytes received."
                        if self._expected
                        else "."
                    )
                )
            chunk = message.get("body", b"")
            if chunk:
                received += len(chunk)
                self.received = received
                yield chunk
            if not message.get("more_body", False):
                self.done = True
                break
        if self._expected is not None and received < self._expected:
            raise IncompleteBody(
                "You did not provide the number of bytes specified by the Content-Length "
                f"HTTP header: {received} of {self._expected} bytes received."
            )

    async def disconnected(self) -> None:
        """Return when the client goes away; for an app streaming a long answer after the body
        was read (the server has no other message left for this request)."""
        while (await self._receive())["type"] != "http.disconnect":
            pass


@dataclass
class Response:
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes | AsyncIterator[bytes] = b""
