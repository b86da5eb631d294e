"""The S3 API: route, authenticate, authorize, decode the body, dispatch, answer errors as XML.

Every request goes the same way: RequestHead → Route (501 for anything unknown) → SigV4
(before a byte of the body is read) → authorize → body pipeline for the payload mode → one
handler. The front door (egide.web.dispatch) mounts it for every path outside /_egide/.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path

from egide.auth.authorize import (
    ANONYMOUS,
    Authorizer,
    Decision,
    Principal,
    RequestContext,
    context_of,
)
from egide.auth.credentials import SecretCache
from egide.auth.errors import AccessDenied
from egide.auth.sigv4 import AuthResult, PayloadMode, SignedPayloadVerifier, authenticate
from egide.auth.sts.app import is_sts_request
from egide.domain import DomainError
from egide.engine.events import asking
from egide.engine.store import ObjectStore
from egide.s3 import (
    actions,
    attributes,
    bucket,
    bucketencryption,
    bucketpolicy,
    controls,
    copy,
    cors,
    delete,
    denials,
    errors,
    get,
    lifecycle,
    list,
    multipart,
    object_lock,
    post,
    put,
    select,
    tagging,
    torrent,
    versioning,
)
from egide.s3.access import Access
from egide.s3.auth.checksums import requested_checksum
from egide.s3.auth.streaming import ChunkedBodyDecoder
from egide.s3.http import Request, RequestBody, Response
from egide.s3.router import Endpoint, Route, route
from egide.s3.translate import from_http_error, to_s3_error
from egide.s3.xml import DECLARATION, element
from egide.web.access_log import Exchange
from egide.web.dispatch import App, Call, send_response
from egide.web.errors import HttpError
from egide.web.http import Send
from egide.web.request import RequestHead

log = logging.getLogger("egide.s3")
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
    Endpoint.GET_OBJECT_ATTRIBUTES: attributes.handle_get_object_attributes,
    Endpoint.GET_OBJECT_TORRENT: torrent.handle_get_object_torrent,
    Endpoint.SELECT_OBJECT_CONTENT: select.handle_select_object_content,
    Endpoint.DELETE_OBJECT: delete.handle_delete_object,
    Endpoint.CREATE_MULTIPART_UPLOAD: multipart.handle_create,
    Endpoint.UPLOAD_PART: multipart.handle_upload_part,
    Endpoint.COMPLETE_MULTIPART_UPLOAD: multipart.handle_complete,
    Endpoint.ABORT_MULTIPART_UPLOAD: multipart.handle_abort,
    Endpoint.LIST_PARTS: multipart.handle_list_parts,
    Endpoint.LIST_MULTIPART_UPLOADS: multipart.handle_list_uploads,
    Endpoint.COPY_OBJECT: copy.handle_copy_object,
    Endpoint.UPLOAD_PART_COPY: copy.handle_upload_part_copy,
    Endpoint.PUT_BUCKET_CORS: cors.handle_put_bucket_cors,
    Endpoint.GET_BUCKET_CORS: cors.handle_get_bucket_cors,
    Endpoint.DELETE_BUCKET_CORS: cors.handle_delete_bucket_cors,
    Endpoint.PUT_BUCKET_ENCRYPTION: bucketencryption.handle_put,
    Endpoint.GET_BUCKET_ENCRYPTION: bucketencryption.handle_get,
    Endpoint.DELETE_BUCKET_ENCRYPTION: bucketencryption.handle_delete,
    Endpoint.PUT_BUCKET_TAGGING: tagging.handle_put_bucket_tagging,
    Endpoint.GET_BUCKET_TAGGING: tagging.handle_get_bucket_tagging,
    Endpoint.DELETE_BUCKET_TAGGING: tagging.handle_delete_bucket_tagging,
    Endpoint.PUT_BUCKET_LIFECYCLE: lifecycle.handle_put_bucket_lifecycle,
    Endpoint.GET_BUCKET_LIFECYCLE: lifecycle.handle_get_bucket_lifecycle,
    Endpoint.PUT_BUCKET_POLICY: bucketpolicy.handle_put_bucket_policy,
    Endpoint.GET_BUCKET_POLICY: bucketpolicy.handle_get_bucket_policy,
    Endpoint.DELETE_BUCKET_POLICY: bucketpolicy.handle_delete_bucket_policy,
    Endpoint.GET_BUCKET_POLICY_STATUS: bucketpolicy.handle_get_bucket_policy_status,
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
    Endpoint.GET_BUCKET_ACL: controls.handle_get_bucket_acl,
    Endpoint.PUT_BUCKET_ACL: controls.handle_put_bucket_acl,
    Endpoint.GET_OBJECT_ACL: controls.handle_get_object_acl,
    Endpoint.PUT_OBJECT_ACL: controls.handle_put_object_acl,
    Endpoint.GET_OWNERSHIP_CONTROLS: controls.handle_get_ownership_controls,
    Endpoint.PUT_OWNERSHIP_CONTROLS: controls.handle_put_ownership_controls,
    Endpoint.DELETE_OWNERSHIP_CONTROLS: controls.handle_delete_ownership_controls,
    Endpoint.GET_PUBLIC_ACCESS_BLOCK: controls.handle_get_public_access_block,
    Endpoint.PUT_PUBLIC_ACCESS_BLOCK: controls.handle_put_public_access_block,
    Endpoint.DELETE_PUBLIC_ACCESS_BLOCK: controls.handle_delete_public_access_block,
}


def error_body(exc: errors.S3Error, resource: str, request_id: str) -> bytes:
    extra = "".join(element(name, value) for name, value in exc.fields.items())
    return (
        f"{DECLARATION}<Error>{element('Code', exc.code)}{element('Message', exc.message)}"
        f"{extra}{element('Resource', resource)}{element('RequestId', request_id)}</Error>"
    ).encode()


class S3App:
    def __init__(
        self,
        store: ObjectStore,
        secrets: SecretCache,
        authorizer: Authorizer,
        domains: tuple[str, ...] = (),
        spool_dir: Path | None = None,
        sts: App | None = None,
        access: Access | None = None,
        identity_allows: Decision | None = None,
    ) -> None:
        self.store = store
        #: Owners, ACLs and bucket controls (the same the Authorizer's decision reads).
        self.access = access or Access(store, clock=store.clock)
        #: Whether a caller's identity policies allow an action (ListBuckets' filter).
        self.identity_allows = identity_allows
        #: Secrets of access keys, shared with the other mounted apps.
        self.secrets = secrets
        self.authorizer = authorizer
        #: Domains under which `<bucket>.<domain>` addresses a bucket (virtual-hosted style).
        self.domains = tuple(domains)
        #: Where browser form uploads are spooled while they arrive (None: the system's).
        self.spool_dir = spool_dir
        self._unimplemented: set[str] = set()
        #: The STS API, answered at the endpoint's root (egide.auth.sts.app), if served.
        self.sts = sts

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

    async def serve(self, call: Call, send: Send) -> None:
        head, raw, request_id, exchange = call.head, call.body, call.request_id, call.exchange
        if self.sts is not None and is_sts_request(head, self.domains):
            await self.sts.serve(call, send)
            return
        target: Route | None = None
        try:
            if head.unreadable:
                raise errors.InvalidURI(
                    f"Couldn't parse the specified URI: {head.unreadable} is not UTF-8."
                )
            put.check_transfer_encoding(head)
            target = route(head, self.domains)
            exchange.operation = target.endpoint.value
            now = datetime.now(UTC)
            if target.endpoint is Endpoint.PREFLIGHT:
                # Browsers send preflights without credentials (Fetch standard): they are
                # answered from the bucket's CORS rules alone, with no signature to check.
                await self.authorizer.authorize(
                    ANONYMOUS, actions.action(target, head),
                    actions.resource(target.bucket, target.key), context_of(call, now),
                )  # fmt: skip
                response = await cors.handle_preflight(head, target, self.store)
            elif target.endpoint is Endpoint.POST_OBJECT:
                # A form upload carries its authorization in the body: post.py verifies the
                # signed policy as the form streams in, then authorizes its signer.
                await self._expect_owners(target, head, ANONYMOUS)
                req = Request(head, target.bucket, target.key, raw.chunks(), request_id)
                req.access = self.access
                response = await post.handle_post_object(
                    req, self.store, spool_dir=self.spool_dir, scheme=call.scheme,
                    secrets=self.secrets, authorize=self._post_authorizer(call, now),
                )  # fmt: skip
            else:
                await self.secrets.load(head)
                auth = authenticate(head, self.secrets.get, now=now)
                # An unsigned request is the anonymous caller: allowed only where a bucket
                # policy allows everyone (egide.auth.decide).
                principal = ANONYMOUS if auth is None else self.secrets.principal(auth.access_key)
                signed = (
                    None
                    if auth is None
                    else ("header" if head.header("authorization") else "query")
                )
                context = context_of(call, now)
                context.keys.update(actions.condition_keys(target, head, signed))
                await self._expect_owners(target, head, principal)
                asked = [] if target.endpoint is Endpoint.DELETE_OBJECTS else [  # key by key
                    (actions.action(target, head), actions.resource(target.bucket, target.key))
                ]  # fmt: skip
                for action, resource in asked + actions.also_asked(target, head):
                    await self._authorize(principal, action, resource, context)
                access_key = None if auth is None else auth.access_key
                asking.set(access_key)  # who asked, in the engine's events (None: anonymous)
                if head.header("x-amz-trailer") or head.header("x-amz-sdk-checksum-algorithm"):
                    requested_checksum(head)  # validate early, before reading the body
                handler = HANDLERS.get(target.endpoint)
                if target.endpoint is Endpoint.DELETE_OBJECTS:
                    handler = functools.partial(
                        delete.handle_delete_objects,
                        allowed=self._key_authorizer(principal, context),
                    )
                if handler is None:
                    raise errors.NotImplementedOperation(
                        f"Égide does not implement {target.endpoint.value} yet."
                    )
                body, trailers = (raw.chunks(), {}) if auth is None else self._body(head, raw, auth)
                req = Request(
                    head, target.bucket, target.key, body, request_id, access_key, trailers,
                    principal, self.access, self._may(principal, context),
                    raw.disconnected,
                )  # fmt: skip
                response = await handler(req, self.store)
        except errors.S3Error as exc:
            response = self._error(exc, head, request_id, exchange)
        except HttpError as exc:
            response = self._error(from_http_error(exc), head, request_id, exchange)
        except DomainError as exc:
            response = self._error(to_s3_error(exc, target), head, request_id, exchange)
        except Exception:
            log.exception("internal error on %s %s", head.method, head.raw_path)
            response = self._error(errors.S3Error(), head, request_id, exchange)
        await cors.add_cors_headers(response, head, target, self.store)
        await send_response(response, call, send)

    async def _authorize(
        self, principal: Principal, action: str, resource: str, context: RequestContext
    ) -> None:
        """Authorize; a refusal is answered 404 where S3 answers it (egide.s3.denials)."""
        try:
            await self.authorizer.authorize(principal, action, resource, context)
        except AccessDenied:
            absent = await denials.explain(
                self.store, self.authorizer, principal, action, resource, context
            )
            if absent is None:
                raise
            raise absent from None

    async def _expect_owners(self, target: Route, head: RequestHead, principal: Principal) -> None:
        """x-amz-expected-bucket-owner (x-amz-source-expected-bucket-owner: a copy's source)
        must name the bucket's owner, or nothing is done: 403 AccessDenied, as S3 answers."""
        expected = head.header("x-amz-expected-bucket-owner")
        creator = principal if target.endpoint is Endpoint.CREATE_BUCKET else None
        if (
            expected is not None
            and target.bucket is not None
            and not await self.access.is_owner(target.bucket, expected.strip(), creator)
        ):
            raise AccessDenied("The bucket is not owned by x-amz-expected-bucket-owner.")
        source = head.header("x-amz-source-expected-bucket-owner")
        if source is not None and head.header("x-amz-copy-source") is not None:
            bucket = copy.copy_source(head)[0]
            if not await self.access.is_owner(bucket, source.strip(), None):
                raise AccessDenied(
                    "The source bucket is not owned by x-amz-source-expected-bucket-owner."
                )

    def _may(
        self, principal: Principal, context: RequestContext
    ) -> Callable[[str, str], Awaitable[bool]] | None:
        allows = self.identity_allows
        if allows is None:
            return None

        async def may(action: str, resource: str) -> bool:
            assert allows is not None
            return await allows(principal, action, resource, context)

        return may

    def _post_authorizer(
        self, call: Call, now: datetime
    ) -> Callable[[str | None, str, str, actions.ConditionKeys], Awaitable[None]]:
        async def authorize(
            access_key: str | None, bucket: str, key: str, keys: actions.ConditionKeys
        ) -> None:
            principal = ANONYMOUS if access_key is None else self.secrets.principal(access_key)
            context = context_of(call, now)
            context.keys.update(keys)
            await self.authorizer.authorize(
                principal, actions.ACTIONS[Endpoint.POST_OBJECT],
                actions.resource(bucket, key), context,
            )  # fmt: skip

        return authorize

    def _key_authorizer(
        self, principal: Principal, context: RequestContext
    ) -> delete.KeyAuthorizer:
        """Whether `principal` may delete one key of a DeleteObjects request."""

        async def allowed(bucket: str, key: str, version_id: str | None) -> bool:
            keys = dict(context.keys)
            if version_id is not None:
                keys["s3:VersionId"] = version_id
            try:
                await self.authorizer.authorize(
                    principal, actions.delete_action(version_id), actions.resource(bucket, key),
                    dataclasses.replace(context, keys=keys),
                )  # fmt: skip
            except AccessDenied:
                return False
            return True

        return allowed

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
