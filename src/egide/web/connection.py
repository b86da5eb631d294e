"""One HTTP connection: uvicorn's httptools protocol, with the bounds a public endpoint needs.

uvicorn bounds neither the request head (httptools keeps an unfinished header line in memory:
twenty clients each sending an unfinished 50 MB header took two workers to 700 MB), nor the
time a client takes to send a head or a body, nor the number of connections (once the file
descriptors are gone, libuv accepts each new connection and closes it at once, so every
request fails and nothing is logged). This subclass of `HttpToolsProtocol` adds, per
connection (`[http]` settings):

- the head (request line and headers, counted as it arrives) and each header line are bounded,
  and so is the number of headers: 400 RequestHeaderSectionTooLarge, then close;
- a head must be whole within `header_timeout_seconds` of the connection or of its first byte
  (slowloris); a body may not stall, unread by the server's fault excepted, longer than
  `body_timeout_seconds`: 400 RequestTimeout, then close;
- at most `max_connections` per process: a new one closes the connection idle longest (no
  request being served), or is answered 503 SlowDown when all are busy; logged, rate-limited,
  and so is a connection given a descriptor near the process's limit.

Keep-alive idle time is uvicorn's own `timeout_keep_alive`.
"""

from __future__ import annotations

import logging
import os
import resource
import time
from http import HTTPStatus
from typing import Any, ClassVar
from xml.sax.saxutils import escape

import httptools
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from egide.config import HttpConfig
from egide.web import errors

log = logging.getLogger("egide.http")

#: File descriptors kept for everything but client connections (sites, catalog, packs …).
FD_RESERVE = 256


class _HeadTooLarge(Exception):
    """Raised from a parser callback to stop parsing a head over the bounds."""


class RateLimitedLog:
    """One line per `every` seconds at most; the lines left out are counted in the next."""

    def __init__(self, every: float = 10.0) -> None:
        self.every = every
        self._last = -every
        self._skipped = 0

    def warning(self, message: str, *args: object) -> None:
        now = time.monotonic()
        if now - self._last < self.every:
            self._skipped += 1
            return
        if self._skipped:
            message += f" ({self._skipped} more since the last such line)"
        self._last, self._skipped = now, 0
        log.warning(message, *args)


def descriptor_limit() -> int:
    """This process's open-file limit, raised to its hard limit first."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != hard:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
            soft = hard
        except (ValueError, OSError):
            pass
    return soft if soft != resource.RLIM_INFINITY else 1 << 20


def connection_cap(wanted: int, soft: int) -> int:
    """`wanted` connections, kept below the open-file limit `soft` so that accepting never
    runs out of file descriptors."""
    room = max(soft - FD_RESERVE, soft // 2)
    if wanted > room:
        log.warning(
            "http.max_connections %d is above what %d open files allow: %d connections per "
            "process (raise `ulimit -n` for more)",
            wanted,
            soft,
            room,
        )
    return min(wanted, room)


def error_response(exc: errors.HttpError) -> bytes:
    """An error as a whole HTTP response that closes the connection. It comes before any app
    has the request, so it is in the dialect most clients speak: S3's XML error document."""
    body = (
        f'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>{escape(exc.code)}</Code>'
        f"<Message>{escape(exc.message)}</Message>"
        f"<RequestId>{os.urandom(8).hex().upper()}</RequestId></Error>"
    ).encode()
    return (
        f"HTTP/1.1 {exc.status} {HTTPStatus(exc.status).phrase}\r\n"
        "content-type: application/xml\r\nserver: Egide\r\nconnection: close\r\n"
        f"content-length: {len(body)}\r\n\r\n"
    ).encode() + body


class BoundedHttpProtocol(HttpToolsProtocol):
    """Use `protocol_class(config)`: the class attributes below are per server process."""

    limits: ClassVar[HttpConfig]
    max_connections: ClassVar[int]
    #: Connections serving no request (idle, or a head still arriving), oldest first.
    waiting: ClassVar[dict[BoundedHttpProtocol, None]]
    refusals: ClassVar[RateLimitedLog]
    #: A connection given a descriptor at or above this is logged: the limit is near.
    fd_alarm: ClassVar[int]
    fd_warnings: ClassVar[RateLimitedLog]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._in_head = True
        self._head_bytes = 0
        #: Bytes of the request line and headers parsed (`_head_bytes`: received meanwhile).
        self._parsed = 0
        self._header_count = 0
        self._head_timer: Any = None
        self._body_timer: Any = None
        self._body_seen = 0.0
        self._too_large = ""

    # -- connections ------------------------------------------------------------------------

    def connection_made(self, transport: Any) -> None:
        super().connection_made(transport)
        sock = transport.get_extra_info("socket")
        if sock is not None and sock.fileno() >= self.fd_alarm:
            self.fd_warnings.warning(
                "file descriptor %d given to a connection: near this process's limit (%d "
                "connections open); raise `ulimit -n` or lower http.max_connections",
                sock.fileno(),
                len(self.connections),
            )
        if len(self.connections) > self.max_connections:
            victim = next(iter(self.waiting), None)
            if victim is None:
                self.refusals.warning(
                    "connection limit reached (%d per process, all busy): refusing a new "
                    "connection with 503 SlowDown",
                    self.max_connections,
                )
                self._refuse(errors.SlowDown())
                return
            self.refusals.warning(
                "connection limit reached (%d per process): closing the connection idle "
                "longest for a new one",
                self.max_connections,
            )
            victim._close()
        self.waiting[self] = None
        self._head_timer = self.loop.call_later(
            self.limits.header_timeout_seconds, self._head_timeout
        )

    def connection_lost(self, exc: Exception | None) -> None:
        self._forget()
        super().connection_lost(exc)

    def _forget(self) -> None:
        self.waiting.pop(self, None)
        self.connections.discard(self)
        for timer in (self._head_timer, self._body_timer):
            if timer is not None:
                timer.cancel()
        self._head_timer = self._body_timer = None

    def _close(self) -> None:
        self._forget()
        if not self.transport.is_closing():
            self.transport.close()

    def _refuse(self, exc: errors.HttpError) -> None:
        """Answer `exc` (unless a response is under way) and close; the app, if it is waiting
        for the body, is told the client is gone."""
        cycle = self.cycle
        answerable = cycle is None or not cycle.response_started or cycle.response_complete
        if answerable and not self.transport.is_closing():
            self.transport.write(error_response(exc))
        if cycle is not None and not cycle.response_complete:
            cycle.disconnected = True
            cycle.message_event.set()
        self._close()

    # -- the head ---------------------------------------------------------------------------

    def data_received(self, data: bytes) -> None:
        self._unset_keepalive_if_required()
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self._refuse(errors.NotImplementedOperation("Égide does not upgrade connections."))
            return
        except httptools.HttpParserError as exc:
            if self._too_large:
                log.debug("request head refused: %s", self._too_large)
                self._refuse(errors.RequestHeaderSectionTooLarge(self._too_large))
            else:
                log.debug("invalid HTTP request: %s", exc)
                self._refuse(errors.BadRequest("Invalid HTTP request."))
            return
        if self._in_head:
            self._head_bytes += len(data)
            if self._head_bytes > self.limits.max_header_bytes:
                self._refuse(
                    errors.RequestHeaderSectionTooLarge(
                        "Your request header section exceeds the maximum allowed size "
                        f"({self.limits.max_header_bytes} bytes)."
                    )
                )

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._in_head, self._head_bytes, self._header_count, self._parsed = True, 0, 0, 0
        if self._head_timer is None:
            self._head_timer = self.loop.call_later(
                self.limits.header_timeout_seconds, self._head_timeout
            )

    def on_url(self, url: bytes) -> None:
        self._parsed += len(url)
        self._check_head_total()
        super().on_url(url)

    def _check_head_total(self) -> None:
        """The head's parsed size: the bound holds for a head that arrived in one read too."""
        if self._parsed > self.limits.max_header_bytes:
            self._too_large = (
                "Your request header section exceeds the maximum allowed size "
                f"({self.limits.max_header_bytes} bytes)."
            )
            raise _HeadTooLarge(self._too_large)

    def on_header(self, name: bytes, value: bytes) -> None:
        self._header_count += 1
        self._parsed += len(name) + len(value) + 4
        self._check_head_total()
        if len(name) + len(value) + 4 > self.limits.max_header_line_bytes:
            self._too_large = (
                "A header line exceeds the maximum allowed size "
                f"({self.limits.max_header_line_bytes} bytes)."
            )
        elif self._header_count > self.limits.max_headers:
            self._too_large = f"More than {self.limits.max_headers} headers."
        if self._too_large:
            raise _HeadTooLarge(self._too_large)
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        self._in_head = False
        self.waiting.pop(self, None)
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None
        super().on_headers_complete()
        self._body_seen = self.loop.time()
        self._arm_body_timer(self.limits.body_timeout_seconds)

    def _head_timeout(self) -> None:
        self._head_timer = None
        if self._in_head and not self.transport.is_closing():
            if self._head_bytes:
                log.debug("request head not received within the timeout: closing")
                self._refuse(errors.RequestTimeout())
            else:
                self._close()  # connected, and never sent a byte

    # -- the body ---------------------------------------------------------------------------

    def on_body(self, body: bytes) -> None:
        self._body_seen = self.loop.time()
        super().on_body(body)

    def on_message_complete(self) -> None:
        if self._body_timer is not None:
            self._body_timer.cancel()
            self._body_timer = None
        super().on_message_complete()

    def _arm_body_timer(self, delay: float) -> None:
        if self._body_timer is not None:
            self._body_timer.cancel()
        self._body_timer = self.loop.call_later(delay, self._body_timeout)

    def _body_timeout(self) -> None:
        self._body_timer = None
        cycle = self.cycle
        if self.transport.is_closing() or cycle is None or not cycle.more_body:
            return
        now = self.loop.time()
        if self.flow.read_paused or cycle.response_complete or cycle.waiting_for_100_continue:
            # The server is not reading (its own pace, it has answered, or the client waits
            # for its 100 Continue): not the client's stall. Measure again from when it reads.
            self._body_seen = now
        idle = now - self._body_seen
        if idle < self.limits.body_timeout_seconds:
            self._arm_body_timer(self.limits.body_timeout_seconds - idle)
            return
        log.debug("request body stalled for %.0f s: closing", idle)
        self._refuse(errors.RequestTimeout())

    # -- between requests -------------------------------------------------------------------

    def on_response_complete(self) -> None:
        super().on_response_complete()
        idle = self.cycle is None or self.cycle.response_complete  # no pipelined request
        if idle and not self.transport.is_closing():
            self.waiting.pop(self, None)
            self.waiting[self] = None


def protocol_class(config: HttpConfig) -> type[BoundedHttpProtocol]:
    """The protocol of one server process: `config`'s bounds and its own connection table."""
    limit = descriptor_limit()
    return type(
        "EgideHttpProtocol",
        (BoundedHttpProtocol,),
        {
            "limits": config,
            "max_connections": connection_cap(config.max_connections, limit),
            "waiting": {},
            "refusals": RateLimitedLog(),
            "fd_alarm": limit * 9 // 10,
            "fd_warnings": RateLimitedLog(),
        },
    )
