"""The ASGI application: route, authenticate, decode the body, dispatch, answer errors as XML.

Every request goes the same way: RequestHead → Route (501 for anything unknown) → SigV4
(before a byte of the body is read) → body pipeline for the payload mode → one handler.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import re
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from egide.admin.http import handle_admin, is_admin_request
from egide.catalog.base import Catalog
from egide.crypto.keyring import Keyring
from egide.domain import DomainError
from egide.engine.events import asking
from egide.engine.store import ObjectStore
from egide.s3 import (
    bucket,
    copy,
    cors,
    delete,
    errors,
    get,
    lifecycle,
    list,
    multipart,
    object_lock,
    post,
    put,
    tagging,
    versioning,
)
from egide.s3.access_log import Exchange, entry
from egide.s3.auth.checksums import requested_checksum
from egide.s3.auth.sigv4 import AuthResult, PayloadMode, authenticate
from egide.s3.auth.streaming import ChunkedBodyDecoder, SignedPayloadVerifier
from egide.s3.http import Receive, Request, RequestBody, Response
from egide.s3.request import RequestHead
from egide.s3.router import Endpoint, Route, route
from egide.s3.translate import to_s3_error
from egide.s3.xml import DECLARATION, element

log = logging.getLogger("egide.s3")
Send = Callable[[dict[str, Any]], Awaitable[None]]
Handler = Callable[[Request, ObjectStore], Awaitable[Response]]

HANDLERS: dict[Endpoint, Handler] = {
    Endpoint.LIST_BUCKETS: bucket.handle_list_buckets,
    Endpoint.CREATE_BUCKET: bucket.handle_create_bucket,
    Endpoint.HEAD_BUCKET: bucket.handle_head_bucket,
    Endpoint.DELETE_BUCKET: bucket.handle_delete_bucket,
    Endpoint.GET_BUCKET_LOCATION: bucket.handle_get_bucket_location,
    Endpoint.LIST_OBJECTS: list.handle_list_objects,
    Endpoint.LIST_OBJECTS_V2: list.handle_list_objects_v2,
    Endpoint.PUT_OBJECT: put.handle_put_object,
    Endpoint.GET_OBJECT: get.handle_get_object,
    Endpoint.HEAD_OBJECT: get.handle_head_object,
    Endpoint.DELETE_OBJECT: delete.handle_delete_object,
    Endpoint.CREATE_MULTIPART_UPLOAD: multipart.handle_create,
    Endpoint.UPLOAD_PART: multipart.handle_upload_part,
    Endpoint.COMPLETE_MULTIPART_UPLOAD: multipart.handle_complete,
    Endpoint.ABORT_MULTIPART_UPLOAD: multipart.handle_abort,
    Endpoint.LIST_PARTS: multipart.handle_list_parts,
    Endpoint.LIST_MULTIPART_UPLOADS: multipart.handle_list_uploads,
    Endpoint.COPY_OBJECT: copy.handle_copy_object,
    Endpoint.UPLOAD_PART_COPY: copy.handle_upload_part_copy,
    Endpoint.DELETE_OBJECTS: delete.handle_delete_objects,
    Endpoint.PUT_BUCKET_CORS: cors.handle_put_bucket_cors,
    Endpoint.GET_BUCKET_CORS: cors.handle_get_bucket_cors,
    Endpoint.DELETE_BUCKET_CORS: cors.handle_delete_bucket_cors,
    Endpoint.PUT_BUCKET_TAGGING: tagging.handle_put_bucket_tagging,
    Endpoint.GET_BUCKET_TAGGING: tagging.handle_get_bucket_tagging,
    Endpoint.DELETE_BUCKET_TAGGING: tagging.handle_delete_bucket_tagging,
    Endpoint.PUT_BUCKET_LIFECYCLE: lifecycle.handle_put_bucket_lifecycle,
    Endpoint.GET_BUCKET_LIFECYCLE: lifecycle.handle_get_bucket_lifecycle,
    Endpoint.DELETE_BUCKET_LIFECYCLE: lifecycle.handle_delete_bucket_lifecycle,
    Endpoint.PUT_OBJECT_TAGGING: tagging.handle_put_object_tagging,
    Endpoint.GET_OBJECT_TAGGING: tagging.handle_get_object_tagging,
    Endpoint.DELETE_OBJECT_TAGGING: tagging.handle_delete_object_tagging,
    Endpoint.GET_BUCKET_VERSIONING: versioning.handle_get_bucket_versioning,
    Endpoint.PUT_BUCKET_VERSIONING: versioning.handle_put_bucket_versioning,
    Endpoint.LIST_OBJECT_VERSIONS: versioning.handle_list_object_versions,
    Endpoint.PUT_OBJECT_LOCK_CONFIGURATION: object_lock.handle_put_configuration,
    Endpoint.GET_OBJECT_LOCK_CONFIGURATION: object_lock.handle_get_configuration,
    Endpoint.PUT_OBJECT_RETENTION: object_lock.handle_put_retention,
    Endpoint.GET_OBJECT_RETENTION: object_lock.handle_get_retention,
    Endpoint.PUT_OBJECT_LEGAL_HOLD: object_lock.handle_put_legal_hold,
    Endpoint.GET_OBJECT_LEGAL_HOLD: object_lock.handle_get_legal_hold,
}

_CREDENTIAL = re.compile(r"Credential=([^/,\s]+)/")


def error_body(exc: errors.S3Error, resource: str, request_id: str) -> bytes:
    extra = "".join(element(name, value) for name, value in exc.fields.items())
    return (
        f"{DECLARATION}<Error>{element('Code', exc.code)}{element('Message', exc.message)}"
        f"{extra}{element('Resource', resource)}{element('RequestId', request_id)}</Error>"
    ).encode()


def _has_body(head: RequestHead) -> bool:
    length = head.header("content-length")
    return bool(head.header("transfer-encoding")) or (length is not None and length != "0")


class S3App:
    def __init__(
        self,
        store: ObjectStore,
        catalog: Catalog,
        keyring: Keyring,
        domains: Sequence[str] = (),
        spool_dir: Path | None = None,
        background: Sequence[Callable[[], Coroutine[Any, Any, None]]] = (),
        access_log: logging.Logger | None = None,
    ) -> None:
        self.store = store
        #: Loops run beside the server while it is up (maintenance jobs).
        self.background = tuple(background)
        self.catalog = catalog
        self.keyring = keyring
        #: Domains under which `<bucket>.<domain>` addresses a bucket (virtual-hosted style).
        self.domains = tuple(domains)
        #: Where browser form uploads are spooled while they arrive (None: the system's).
        self.spool_dir = spool_dir
        self._secrets: dict[str, str] = {}
        #: Where one JSON line per request goes (egide.s3.access_log), if anywhere.
        self.access_log = access_log
        self._unimplemented: set[str] = set()
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
                loops = [self.store.run_housekeeping, *self.background]
                self._tasks = tuple(asyncio.create_task(loop()) for loop in loops)
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                for task in self._tasks:
                    task.cancel()
                for task in self._tasks:
                    with contextlib.suppress(asyncio.CancelledError):
                        await task
                await self.catalog.close()
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def _secret(self, head: RequestHead) -> None:
        """Load the secret of the request's access key into the cache (the signature check
        itself is synchronous)."""
        header = head.header("authorization") or ""
        match = _CREDENTIAL.search(header)
        access_key = match.group(1) if match else (head.query_value("X-Amz-Credential") or "")
        access_key = access_key.split("/", 1)[0]
        if access_key and access_key not in self._secrets:
            sealed = await self.catalog.get_credential(access_key)
            if sealed is not None:
                self._secrets[access_key] = self.keyring.open_secret(access_key, sealed).decode()

    @staticmethod
    def _body(
        head: RequestHead, raw: RequestBody, auth: AuthResult
    ) -> tuple[AsyncIterator[bytes], dict[str, str]]:
        """The payload, decoded and verified as the signature's payload mode says, and the
        trailers an aws-chunked body will fill in once read."""
        mode = auth.payload_mode
        trailers: dict[str, str] = {}
        body: AsyncIterator[bytes] = raw.chunks()
        if mode.streaming:
            trailer = head.header("x-amz-trailer")
            decoded = head.header("x-amz-decoded-content-length")
            decoder = ChunkedBodyDecoder(
                auth,
                trailer,
                decoded_length=int(decoded) if decoded and decoded.isdigit() else None,
            )
            trailers = decoder.trailers
            body = decoder.decode(body)  # type: ignore[assignment]
        elif mode is PayloadMode.SIGNED and auth.payload_sha256 is not None:
            body = SignedPayloadVerifier(auth.payload_sha256).wrap(body)
        return body, trailers

    async def _http(self, scope: dict[str, Any], receive: Receive, send: Send) -> None:
        request_id = os.urandom(8).hex().upper()
        head = RequestHead.from_asgi(scope)
        length = head.header("content-length")
        raw = RequestBody(
            receive, int(length) if length and length.isdigit() else None, _has_body(head)
        )
        exchange = Exchange(time.monotonic())
        access_log = self.access_log
        if access_log is None:
            await self._serve(head, raw, request_id, scope, send, exchange)
            return

        async def counted(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                exchange.status = message["status"]
            else:
                exchange.bytes_out += len(message.get("body", b""))
            await send(message)

        try:
            await self._serve(head, raw, request_id, scope, counted, exchange)
        finally:
            client = scope.get("client")
            access_log.info(
                entry(
                    head, exchange, remote=f"{client[0]}:{client[1]}" if client else "-",
                    request_id=request_id, bytes_in=raw.received,
                    duration=time.monotonic() - exchange.started,
                )
            )  # fmt: skip

    async def _serve(
        self,
        head: RequestHead,
        raw: RequestBody,
        request_id: str,
        scope: dict[str, Any],
        send: Send,
        exchange: Exchange,
    ) -> None:
        target: Route | None = None
        if is_admin_request(head, self.domains):
            exchange.operation = "Admin"
            # Égide's JSON admin API (egide.admin.http): no bucket name can start with "_".
            response = await handle_admin(head, raw, self.store, self._secret, self._secrets.get)
            if not raw.done:
                response.headers["connection"] = "close"
            await self._send(response, head, request_id, send)
            return
        try:
            if head.unreadable:
                raise errors.InvalidURI(
                    f"Couldn't parse the specified URI: {head.unreadable} is not UTF-8."
                )
            target = route(head, self.domains)
            exchange.operation = target.endpoint.value
            if target.endpoint is Endpoint.PREFLIGHT:
                # Browsers send preflights without credentials (Fetch standard): they are
                # answered from the bucket's CORS rules alone, with no signature to check.
                response = await cors.handle_preflight(head, target, self.store)
            elif target.endpoint is Endpoint.POST_OBJECT:
                # A form upload carries its authorization in the body: post.py verifies the
                # signed policy as the form streams in.
                req = Request(head, target.bucket, target.key, raw.chunks(), request_id)
                scheme = str(scope.get("scheme", "http"))
                response = await post.handle_post_object(
                    req, self.store, spool_dir=self.spool_dir, scheme=scheme
                )
            else:
                await self._secret(head)
                auth = authenticate(head, self._secrets.get, now=datetime.now(UTC))
                if auth is None:
                    raise errors.AccessDenied(
                        "Anonymous access is not allowed: sign your requests."
                    )
                asking.set(auth.access_key)  # who asked, in the engine's events
                if head.header("x-amz-trailer") or head.header("x-amz-sdk-checksum-algorithm"):
                    requested_checksum(head)  # validate early, before reading the body
                handler = HANDLERS.get(target.endpoint)
                if handler is None:
                    raise errors.NotImplementedOperation(
                        f"Égide does not implement {target.endpoint.value} yet."
                    )
                body, trailers = self._body(head, raw, auth)
                req = Request(
                    head, target.bucket, target.key, body, request_id, auth.access_key, trailers
                )
                response = await handler(req, self.store)
        except errors.S3Error as exc:
            response = self._error(exc, head, request_id, exchange)
        except DomainError as exc:
            response = self._error(to_s3_error(exc, target), head, request_id, exchange)
        except Exception:
            log.exception("internal error on %s %s", head.method, head.raw_path)
            response = self._error(errors.S3Error(), head, request_id, exchange)
        if not raw.done:
            # The body was not read (an error came first): the rest of it would be taken for
            # the next request on this connection, so close it instead.
            response.headers["connection"] = "close"
        await cors.add_cors_headers(response, head, target, self.store)
        await self._send(response, head, request_id, send)

    def _error(
        self, exc: errors.S3Error, head: RequestHead, request_id: str, exchange: Exchange
    ) -> Response:
        exchange.error = exc.code
        # Only the server's own failures are the operator's warnings. What clients ask for that
        # Égide lacks is said once per process at INFO (a fuzzer made 2,598 lines in 2 min);
        # every other client error only at DEBUG (the access log has them all).
        level = logging.DEBUG
        if exc.status >= 500 and exc.status != 501:
            level = logging.WARNING
        elif exc.status == 501 and exc.message not in self._unimplemented:
            if len(self._unimplemented) < 1000:
                self._unimplemented.add(exc.message)
            level = logging.INFO
        log.log(level, "%s %s → %s: %s", head.method, head.raw_path, exc.code, exc.message)
        body = b"" if head.method == "HEAD" else error_body(exc, head.path, request_id)
        return Response(exc.status, {"content-type": "application/xml", **exc.headers}, body)

    async def _send(self, response: Response, head: RequestHead, request_id: str,
                    send: Send) -> None:  # fmt: skip
        headers = dict(response.headers)
        headers["x-amz-request-id"] = request_id
        headers["server"] = "Egide"
        body = response.body
        if isinstance(body, bytes):
            headers.setdefault("content-length", str(len(body)))
        raw_headers = [
            (n.encode("latin-1"), v.encode("latin-1", "replace")) for n, v in headers.items()
        ]
        await send(
            {"type": "http.response.start", "status": response.status, "headers": raw_headers}
        )
        if isinstance(body, bytes) or head.method == "HEAD":
            await send(
                {"type": "http.response.body", "body": body if isinstance(body, bytes) else b""}
            )
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
