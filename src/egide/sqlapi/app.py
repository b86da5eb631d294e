"""`POST /_egide/sql`: SQL over stored objects, answered as a stream (docs/analytics.md).

SigV4-signed with the S3 credentials, as every call; the caller is the request's principal
and every object the query opens is checked through the authorization hook as that caller
(egide.analytics.access). The body is the SQL, as text or as JSON `{"sql": …}`; `Accept`
chooses the answer: an Arrow IPC stream, JSON lines (the default) or CSV, sent batch by batch
and ended by the row count and timing (egide.analytics.answer). The query runs in a thread of
its own (egide.analytics.stream); a client that goes away cancels it.

Errors before the first byte are JSON `{"code", "message"}` with their status: 400
InvalidQuery (bad SQL, a sandbox refusal), 403 AccessDenied (naming the object), 406
NotAcceptable, 501 NotImplemented (the analytics extra is not installed).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

from egide.analytics.access import ObjectAccess
from egide.auth import errors as auth_errors
from egide.auth.authorize import Authorizer, context_of
from egide.auth.credentials import SecretCache
from egide.auth.sigv4 import AuthResult, PayloadMode, SignedPayloadVerifier, authenticate
from egide.config import SqlConfig
from egide.engine.store import ObjectStore
from egide.web.dispatch import Call, json_response, send_response
from egide.web.errors import HttpError
from egide.web.http import Response, Send

PATH = "/_egide/sql"
#: The longest SQL text taken.
MAX_SQL_BYTES = 1024 * 1024


class SqlError(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


def _error(exc: Exception) -> Response:
    if isinstance(exc, (SqlError, HttpError)):
        status, code, message = exc.status, exc.code, exc.message
    else:
        from egide.analytics.stream import error_code

        status, code, message = error_code(exc)
    return json_response(status, {"code": code, "message": message})


class SqlApp:
    def __init__(
        self, store: ObjectStore, secrets: SecretCache, authorizer: Authorizer, config: SqlConfig
    ) -> None:
        self.store = store
        self.secrets = secrets
        self.authorizer = authorizer
        self.config = config

    async def serve(self, call: Call, send: Send) -> None:
        call.exchange.operation = "Sql"
        started = False

        async def tracked(message: dict[str, Any]) -> None:
            nonlocal started
            started = True
            await send(message)

        try:
            await self._answer(call, tracked)
        except Exception as exc:
            if started:  # the answer's own end record told the client; only the log is left
                raise
            call.exchange.error = getattr(exc, "code", type(exc).__name__)
            await send_response(_error(exc), call, send)

    async def _answer(self, call: Call, send: Send) -> None:
        head = call.head
        now = datetime.now(UTC)
        await self.secrets.load(head)
        auth = authenticate(head, self.secrets.get, now=now)
        if auth is None:
            raise auth_errors.AccessDenied("POST /_egide/sql needs a signed request (SigV4).")
        if head.path.rstrip("/") != PATH:
            raise SqlError(404, "NotFound", f"no such resource: {head.path}")
        if head.method != "POST":
            raise SqlError(405, "MethodNotAllowed", f"{head.method} is not allowed here: POST")
        try:
            from egide.analytics import answer
            from egide.analytics.bridge import Bridge
            from egide.analytics.filesystem import EgideFileSystem
            from egide.analytics.query import Limits
            from egide.analytics.stream import StreamedQuery
        except ImportError as exc:
            raise SqlError(
                501, "NotImplemented", f"SQL needs the analytics extra (egide[analytics]): {exc}"
            ) from None
        fmt = answer.choose(head.header("accept"))
        if fmt is None:
            served = ", ".join(answer.MEDIA_TYPES)
            raise SqlError(406, "NotAcceptable", f"the answer can be one of: {served}")
        sql = _sql_of(await _read_body(call, auth), head.header("content-type"))
        principal = self.secrets.principal(auth.access_key)
        access = ObjectAccess(self.store, self.authorizer, principal, context_of(call, now))
        loop = asyncio.get_running_loop()
        fs = EgideFileSystem(access, Bridge(loop))
        limits = Limits(self.config.memory_limit, self.config.threads, self.config.timeout_seconds)
        encoder = answer.encoder(fmt)
        query = StreamedQuery(fs, limits, sql, encoder, loop)
        watcher = asyncio.create_task(_watch_disconnect(call, query))
        try:
            first = await query.start()
            assert first is not None  # no timeout: the first piece or the error

            async def body() -> AsyncIterator[bytes]:
                yield first
                async for piece in query.rest():
                    yield piece

            headers = {"content-type": encoder.media_type, "cache-control": "no-store"}
            await send_response(Response(200, headers, body()), call, send)
        finally:
            watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watcher
            query.cancel()  # a no-op once it has ended
            await query.wait()


async def _watch_disconnect(call: Call, query: Any) -> None:
    """Cancel `query` when the client goes away."""
    await call.body.disconnected()
    query.cancel()


async def _read_body(call: Call, auth: AuthResult) -> bytes:
    if auth.payload_mode.streaming:
        raise SqlError(400, "InvalidRequest", "send the SQL in one signed body, not chunked")
    body = call.body.chunks()
    if auth.payload_mode is PayloadMode.SIGNED and auth.payload_sha256 is not None:
        body = SignedPayloadVerifier(auth.payload_sha256).wrap(body)
    data = bytearray()
    async for chunk in body:
        data += chunk
        if len(data) > MAX_SQL_BYTES:
            raise SqlError(400, "InvalidRequest", f"the SQL is at most {MAX_SQL_BYTES} bytes")
    return bytes(data)


def _sql_of(data: bytes, content_type: str | None) -> str:
    """The SQL of a text body, or of a JSON one's "sql" field."""
    try:
        text = data.decode()
    except UnicodeDecodeError:
        raise SqlError(400, "InvalidRequest", "the SQL is not UTF-8 text") from None
    media = (content_type or "").split(";")[0].strip().lower()
    if media == "application/json":
        try:
            document = json.loads(text)
        except ValueError as exc:
            raise SqlError(400, "InvalidRequest", f"the body is not JSON: {exc}") from None
        if not isinstance(document, dict) or not isinstance(document.get("sql"), str):
            raise SqlError(400, "InvalidRequest", 'a JSON body is {"sql": "SELECT …"}')
        if set(document) - {"sql"}:
            unknown = ", ".join(sorted(set(document) - {"sql"}))
            raise SqlError(400, "InvalidRequest", f"unknown fields: {unknown}")
        text = document["sql"]
    elif media not in ("", "text/plain", "application/sql"):
        raise SqlError(
            415, "UnsupportedMediaType", "send the SQL as text/plain or application/json"
        )
    if not text.strip():
        raise SqlError(400, "InvalidQuery", "no SQL in the body")
    return text
