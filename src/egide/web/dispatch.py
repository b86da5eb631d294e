"""The front door: one ASGI application that owns the server's life and mounts every API.

A request is read once (head, body counter, request id), handed to the app mounted for its
path, and answered by that app; the access log and the response's common headers are written
here, so they are the same for every app. The dispatcher imports no app: `egide.server`
assembles it from the mounts (see MOUNTS in egide.server).

Paths under `/_egide/` belong to Égide's own APIs. No bucket can shadow them (bucket names
cannot contain `_`), and a virtual-hosted request (`<bucket>.<domain>/_egide/…`) stays S3's:
there the path is an object key. A path in the reserved space that no app is mounted on is
answered a JSON 404.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import time
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from egide.domain import DomainError
from egide.telemetry import Metrics
from egide.web.access_log import Exchange, entry
from egide.web.hosts import bucket_from_host
from egide.web.http import Receive, RequestBody, Response, Send
from egide.web.request import RequestHead

log = logging.getLogger("egide.web")

#: Paths under these prefixes are never S3: reserved for Égide's own APIs (and the Iceberg
#: REST catalog, at the path its clients are given).
RESERVED_PREFIXES = ("/_egide/", "/_iceberg/")


@dataclass
class Call:
    """One request as every mounted app receives it."""

    head: RequestHead
    body: RequestBody
    request_id: str
    #: The client's (address, port), when the server knows it.
    client: tuple[str, int] | None
    #: "http" or "https".
    scheme: str
    #: What the access log says of it: the app fills in `operation` and `error`.
    exchange: Exchange


class App(Protocol):
    """An API the front door mounts: it answers a call (with `send_response`)."""

    async def serve(self, call: Call, send: Send) -> None: ...


@dataclass(frozen=True)
class Mount:
    """`app` answers every path-style request whose decoded path starts with `prefix`."""

    prefix: str
    app: App


def is_reserved(head: RequestHead, domains: Sequence[str]) -> bool:
    """A path-style request under /_egide/ or /_iceberg/ (see the module docstring)."""
    return head.raw_path.startswith(RESERVED_PREFIXES) and (
        bucket_from_host(head.header("host"), domains) is None
    )


def json_response(status: int, document: object) -> Response:
    body = json.dumps(document, ensure_ascii=False, indent=2).encode() + b"\n"
    return Response(status, {"content-type": "application/json"}, body)


class NotMounted:
    """The reserved space where no app is mounted (yet): a JSON 404, nothing to sign for."""

    async def serve(self, call: Call, send: Send) -> None:
        call.exchange.operation = "NotFound"
        response = json_response(
            404, {"code": "NotFound", "message": f"no such resource: {call.head.path}"}
        )
        await send_response(response, call, send)


def _has_body(head: RequestHead) -> bool:
    length = head.header("content-length")
    return bool(head.header("transfer-encoding")) or (length is not None and length != "0")


class FrontDoor:
    """The ASGI application of one server process."""

    def __init__(
        self,
        default: App,
        mounts: Sequence[Mount] = (),
        *,
        domains: Sequence[str] = (),
        background: Sequence[Callable[[], Coroutine[Any, Any, None]]] = (),
        closers: Sequence[Callable[[], Awaitable[None]]] = (),
        access_log: logging.Logger | None = None,
        before_each: Callable[[], Awaitable[None]] | None = None,
        metrics: Metrics | None = None,
    ) -> None:
        #: The S3 API: every request not in the reserved space.
        self.default = default
        self.mounts = tuple(mounts)
        #: Domains under which `<bucket>.<domain>` addresses a bucket (virtual-hosted style).
        self.domains = tuple(domains)
        #: Loops run beside the server while it is up (housekeeping, maintenance jobs).
        self.background = tuple(background)
        #: What to close once they have stopped (the catalog).
        self.closers = tuple(closers)
        #: Where one JSON line per request goes (egide.web.access_log), if anywhere.
        self.access_log = access_log
        #: Awaited before each request reaches its app, whatever the app: the rights watch
        #: (egide.auth.rights), so that no app decides a request by rights that changed.
        self.before_each = before_each
        #: Requests, latency and bytes by operation (egide.telemetry), if counted.
        self.metrics = metrics
        self.not_mounted = NotMounted()
        self._tasks: tuple[asyncio.Task[None], ...] = ()

    async def __call__(self, scope: dict[str, Any], receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
        elif scope["type"] == "http":
            await self._http(scope, receive, send)

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                self._tasks = tuple(asyncio.create_task(loop()) for loop in self.background)
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                for task in self._tasks:
                    task.cancel()
                for task in self._tasks:
                    with contextlib.suppress(asyncio.CancelledError):
                        await task
                for close in self.closers:
                    await close()
                await send({"type": "lifespan.shutdown.complete"})
                return

    def app_for(self, head: RequestHead) -> App:
        if not is_reserved(head, self.domains):
            return self.default
        path = head.path
        for mount in self.mounts:
            if path.startswith(mount.prefix):
                return mount.app
        return self.not_mounted

    async def _http(self, scope: dict[str, Any], receive: Receive, send: Send) -> None:
        head = RequestHead.from_asgi(scope)
        length = head.header("content-length")
        raw = RequestBody(
            receive, int(length) if length and length.isdigit() else None, _has_body(head)
        )
        client = scope.get("client")
        call = Call(
            head, raw, os.urandom(8).hex().upper(),
            (str(client[0]), int(client[1])) if client else None,
            str(scope.get("scheme", "http")), Exchange(time.monotonic()),
        )  # fmt: skip
        app = self.app_for(head)
        if self.before_each is not None:
            await self.before_each()
        access_log, metrics = self.access_log, self.metrics
        if access_log is None and metrics is None:
            await app.serve(call, send)
            return
        exchange = call.exchange

        async def counted(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                exchange.status = message["status"]
            else:
                exchange.bytes_out += len(message.get("body", b""))
            await send(message)

        try:
            await app.serve(call, counted)
        finally:
            duration = time.monotonic() - exchange.started
            if metrics is not None:
                metrics.request(
                    exchange.operation, exchange.status, duration, raw.received, exchange.bytes_out
                )
            if access_log is not None:
                access_log.info(
                    entry(
                        head, exchange,
                        remote=f"{client[0]}:{client[1]}" if client else "-",
                        request_id=call.request_id, bytes_in=raw.received, duration=duration,
                    )
                )  # fmt: skip


async def send_response(response: Response, call: Call, send: Send) -> None:
    """Send `response` with the headers every answer carries; stream its body if it has one."""
    head = call.head
    headers = dict(response.headers)
    if not call.body.done:
        # The body was not read (an error came first): the rest of it would be taken for the
        # next request on this connection, so close it instead.
        headers["connection"] = "close"
    headers["x-amz-request-id"] = call.request_id
    headers["server"] = "Egide"
    body = response.body
    if isinstance(body, bytes):
        headers.setdefault("content-length", str(len(body)))
    raw_headers = [
        (n.encode("latin-1"), v.encode("latin-1", "replace")) for n, v in headers.items()
    ]
    await send({"type": "http.response.start", "status": response.status, "headers": raw_headers})
    if isinstance(body, bytes) or head.method == "HEAD":
        await send({"type": "http.response.body", "body": body if isinstance(body, bytes) else b""})
        return
    try:
        async for chunk in body:
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
    except DomainError as exc:
        # Headers are gone: the only honest thing left is to cut the connection, so the
        # client sees a short body, never wrong bytes.
        log.error("aborting response of %s: %s", head.path, exc)
        raise
    await send({"type": "http.response.body", "body": b""})
