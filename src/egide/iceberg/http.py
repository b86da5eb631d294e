"""The Iceberg REST catalog API, mounted by the front door under `/_iceberg/v1/`.

Requests are signed with SigV4 for the service `s3` by the same credentials as S3 (PyIceberg:
`rest.sigv4-enabled`, `rest.signing-name=s3`); the body is read (at most MAX_BODY bytes) and
its hash checked by the signature. A warehouse is a bucket: `GET /v1/config?warehouse=B`
answers the prefix `B`, under which every other path lives (`/v1/B/namespaces/…`).
Each operation is authorized as an action `iceberg:<Operation>` on the warehouse bucket
(`arn:aws:s3:::B`) or, for a table, on `arn:aws:s3:::B/<namespace levels>/<table>`.
Errors are the spec's `{"error": {"message", "type", "code"}}`.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import unquote

from pydantic import ValidationError
from pyiceberg.catalog.rest import CreateTableRequest, RegisterTableRequest, TableResponse
from pyiceberg.partitioning import UNPARTITIONED_PARTITION_SPEC
from pyiceberg.table import CommitTableRequest, CommitTableResponse
from pyiceberg.table.metadata import TableMetadata, new_table_metadata
from pyiceberg.table.sorting import UNSORTED_SORT_ORDER

from egide.auth.authorize import Authorizer, context_of
from egide.auth.credentials import SecretCache
from egide.auth.sigv4 import authenticate
from egide.catalog.tables import (
    CommitConflict,
    Namespace,
    NamespaceExists,
    NamespaceNotEmpty,
    NoSuchNamespace,
    NoSuchTable,
    TableExists,
    TableSwap,
)
from egide.domain import BucketNotFound, KeyNotFound
from egide.engine.store import ObjectStore
from egide.iceberg.tables import (
    MetadataFiles,
    default_location,
    next_metadata_location,
    prepare_commit,
    split_location,
)
from egide.web.dispatch import Call, send_response
from egide.web.errors import HttpError
from egide.web.http import Response, Send

log = logging.getLogger("egide.iceberg")

PREFIX = "/_iceberg/v1/"
#: The largest request body (a commit carries schemas and snapshots' summaries, not data).
MAX_BODY = 16 * 1024 * 1024
SEPARATOR = "\x1f"


class IcebergError(Exception):
    def __init__(self, status: int, kind: str, message: str) -> None:
        super().__init__(message)
        self.status, self.kind, self.message = status, kind, message


def _error_of(exc: Exception) -> IcebergError | None:
    if isinstance(exc, IcebergError):
        return exc
    for types, status, kind in _ERRORS:
        if isinstance(exc, types):
            return IcebergError(status, kind, str(exc))
    if isinstance(exc, HttpError):  # signature and authorization: AWS's message
        kind = "ForbiddenException" if exc.status == 403 else "NotAuthorizedException"
        return IcebergError(exc.status, kind, f"{exc.code}: {exc.message}")
    return None


_ERRORS: tuple[tuple[type[Exception] | tuple[type[Exception], ...], int, str], ...] = (
    (NoSuchNamespace, 404, "NoSuchNamespaceException"),
    (NoSuchTable, 404, "NoSuchTableException"),
    ((NamespaceExists, TableExists), 409, "AlreadyExistsException"),
    (NamespaceNotEmpty, 409, "NamespaceNotEmptyException"),
    (CommitConflict, 409, "CommitFailedException"),
    (BucketNotFound, 404, "NoSuchWarehouseException"),
    ((ValidationError, ValueError, KeyError), 400, "BadRequestException"),
)


def _json(status: int, document: object) -> Response:
    return Response(status, {"content-type": "application/json"}, json.dumps(document).encode())


def _model(status: int, model: TableResponse | CommitTableResponse) -> Response:
    body = model.model_dump_json(by_alias=True, exclude_none=True).encode()
    return Response(status, {"content-type": "application/json"}, body)


def _loaded(req: IcebergRequest, location: str, metadata: TableMetadata) -> Response:
    document = {"metadata-location": location, "metadata": metadata, "config": req.file_config()}
    return _model(200, TableResponse.model_validate(document))


def _no_content() -> Response:
    return Response(204, {}, b"")


@dataclass
class IcebergRequest:
    """What a handler gets: the call, the path's parameters, the body (JSON or None)."""

    call: Call
    params: dict[str, str]
    query: dict[str, str]
    body: Any
    app: IcebergApp
    #: Who signed the request.
    access_key: str

    @property
    def warehouse(self) -> str:
        return self.params["prefix"]

    @property
    def namespace(self) -> Namespace:
        return tuple(self.params["namespace"].split(SEPARATOR))

    @property
    def table(self) -> str:
        return self.params["table"]

    async def authorize(self, action: str, table: tuple[Namespace, str] | None) -> None:
        """Ask `action` of the caller on the warehouse bucket, or on a table of it."""
        resource = f"arn:aws:s3:::{self.params.get('prefix') or self.query['warehouse']}"
        if table is not None:
            resource = f"{resource}/{'/'.join(table[0])}/{table[1]}"
        app = self.app
        await app.authorizer.authorize(
            app.secrets.principal(self.access_key), action, resource,
            context_of(self.call, datetime.now(UTC)),
        )  # fmt: skip

    def endpoint(self) -> str:
        return f"{self.call.scheme}://{self.call.head.header('host') or 'localhost'}"

    def file_config(self) -> dict[str, str]:
        """What an engine needs to read and write the data files: Égide's own S3 endpoint
        (the caller's keys are the client's own settings; none are vended)."""
        return {
            "s3.endpoint": self.endpoint(),
            "s3.path-style-access": "true",
            "py-io-impl": "pyiceberg.io.pyarrow.PyArrowFileIO",
            "io-impl": "org.apache.iceberg.aws.s3.S3FileIO",
        }


Handler = Callable[[IcebergRequest], Awaitable[Response]]


@dataclass(frozen=True)
class Operation:
    action: str  # iceberg:…
    handler: Handler


@dataclass(frozen=True)
class Route:
    pattern: str
    #: What the action is asked on: "warehouse" (the bucket), "table" (the path's table, an
    #: object prefix of the bucket), or "body": the handler asks it of each table the body
    #: names (create, register, rename, transactions).
    resource: str
    methods: dict[str, Operation]

    def match(self, path: str) -> dict[str, str] | None:
        found = _compiled(self.pattern).fullmatch(path)
        if found is None:
            return None
        return {name: unquote(value) for name, value in found.groupdict().items()}


@functools.lru_cache(maxsize=64)
def _compiled(pattern: str) -> re.Pattern[str]:
    return re.compile(re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", pattern))


class IcebergApp:
    def __init__(self, store: ObjectStore, secrets: SecretCache, authorizer: Authorizer) -> None:
        self.store = store
        self.secrets = secrets
        self.authorizer = authorizer
        self.files = MetadataFiles(store)

    async def serve(self, call: Call, send: Send) -> None:
        call.exchange.operation = "Iceberg"
        try:
            response = await self._answer(call)
        except Exception as exc:
            error = _error_of(exc)
            if error is None:
                log.error("iceberg: internal error on %s", call.head.raw_path, exc_info=exc)
                error = IcebergError(500, "ServiceFailureException", "internal error (see log)")
            response = _json(
                error.status,
                {"error": {"message": error.message, "type": error.kind, "code": error.status}},
            )
        await send_response(response, call, send)

    async def _read_body(self, call: Call) -> bytes:
        data = bytearray()
        async for chunk in call.body.chunks():
            data += chunk
            if len(data) > MAX_BODY:
                raise IcebergError(400, "BadRequestException", f"a body is at most {MAX_BODY}")
        return bytes(data)

    async def _answer(self, call: Call) -> Response:
        head = call.head
        now = datetime.now(UTC)
        await self.secrets.load(head)
        raw = await self._read_body(call)
        auth = authenticate(
            head, self.secrets.get, now=now, body_sha256=hashlib.sha256(raw).hexdigest()
        )
        if auth is None:
            raise IcebergError(401, "NotAuthorizedException", "sign requests with SigV4 (s3)")
        path = head.raw_path
        relative = path[len(PREFIX) :].strip("/") if path.startswith(PREFIX) else ""
        query = dict(head.query)
        matched = False
        for route in ROUTES:
            params = route.match(relative)
            if params is None:
                continue
            matched = True
            operation = route.methods.get(head.method)
            if operation is None:
                continue
            warehouse = params.get("prefix") or query.get("warehouse", "")
            if not warehouse:
                raise IcebergError(400, "BadRequestException", "name a warehouse (a bucket)")
            await self.store.bucket(warehouse)  # NoSuchWarehouse before anything else
            request = IcebergRequest(call, params, query, None, self, auth.access_key)
            if route.resource == "warehouse":
                await request.authorize(operation.action, None)
            elif route.resource == "table":
                await request.authorize(operation.action, (request.namespace, request.table))
            try:
                body: Any = json.loads(raw) if raw else None
            except ValueError as exc:
                raise IcebergError(400, "BadRequestException", f"not JSON: {exc}") from None
            return await operation.handler(
                IcebergRequest(call, params, query, body, self, auth.access_key)
            )
        if matched:
            raise IcebergError(405, "BadRequestException", f"{head.method} is not allowed here")
        raise IcebergError(404, "NotFoundException", f"no such resource: {path}")


# ---- handlers ----------------------------------------------------------------------------


async def _config(req: IcebergRequest) -> Response:
    warehouse = req.query["warehouse"]
    return _json(
        200,
        {
            "defaults": req.file_config(),
            "overrides": {"prefix": warehouse},
            "endpoints": ENDPOINTS,
        },
    )


def _name_of(value: object) -> str:
    """A namespace level or a table name: it becomes a level of object keys, so no `/`."""
    if not isinstance(value, str) or not value or value in (".", ".."):
        raise ValueError(f"not a name: {value!r}")
    if "/" in value or SEPARATOR in value:
        raise ValueError(f"a name holds no '/' and no U+001F: {value!r}")
    return value


def _namespace_of(value: object) -> Namespace:
    if not isinstance(value, list) or not value:
        raise ValueError("a namespace is a non-empty list of names")
    return tuple(_name_of(v) for v in value)


async def _list_namespaces(req: IcebergRequest) -> Response:
    parent = req.query.get("parent")
    levels: Namespace = tuple(parent.split(SEPARATOR)) if parent else ()
    catalog = req.app.store.catalog
    if levels and await catalog.namespace_properties(req.warehouse, levels) is None:
        raise NoSuchNamespace(".".join(levels))
    found = await catalog.namespaces(req.warehouse, levels)
    return _json(200, {"namespaces": [list(n) for n in found]})


async def _create_namespace(req: IcebergRequest) -> Response:
    body = req.body or {}
    namespace = _namespace_of(body.get("namespace"))
    properties = {str(k): str(v) for k, v in (body.get("properties") or {}).items()}
    await req.app.store.catalog.create_namespace(req.warehouse, namespace, properties)
    return _json(200, {"namespace": list(namespace), "properties": properties})


async def _load_namespace(req: IcebergRequest) -> Response:
    found = await req.app.store.catalog.namespace_properties(req.warehouse, req.namespace)
    if found is None:
        raise NoSuchNamespace(".".join(req.namespace))
    if req.call.head.method == "HEAD":
        return _no_content()
    return _json(200, {"namespace": list(req.namespace), "properties": found})


async def _drop_namespace(req: IcebergRequest) -> Response:
    await req.app.store.catalog.drop_namespace(req.warehouse, req.namespace)
    return _no_content()


async def _update_namespace(req: IcebergRequest) -> Response:
    body = req.body or {}
    removals = [str(r) for r in body.get("removals") or []]
    updates = {str(k): str(v) for k, v in (body.get("updates") or {}).items()}
    if set(removals) & set(updates):
        raise ValueError("a property is both removed and updated")
    catalog = req.app.store.catalog
    before = await catalog.namespace_properties(req.warehouse, req.namespace)
    if before is None:
        raise NoSuchNamespace(".".join(req.namespace))
    await catalog.update_namespace(req.warehouse, req.namespace, removals, updates)
    return _json(
        200,
        {
            "updated": sorted(updates),
            "removed": sorted(r for r in removals if r in before),
            "missing": sorted(r for r in removals if r not in before),
        },
    )


async def _list_tables(req: IcebergRequest) -> Response:
    names = await req.app.store.catalog.tables(req.warehouse, req.namespace)
    return _json(
        200, {"identifiers": [{"namespace": list(req.namespace), "name": n} for n in names]}
    )


def _check_location(req: IcebergRequest, location: str) -> None:
    bucket, _ = split_location(location)
    if bucket != req.warehouse:
        raise IcebergError(
            400, "BadRequestException", f"{location} is not in the warehouse {req.warehouse}"
        )


async def _create_table(req: IcebergRequest) -> Response:
    optional = {"location": None, "partition-spec": None, "write-order": None}
    request = CreateTableRequest.model_validate({**optional, **(req.body or {})})
    _name_of(request.name)
    await req.authorize("iceberg:CreateTable", (req.namespace, request.name))
    if request.stage_create:
        raise IcebergError(
            406, "UnsupportedOperationException", "staged creation is not supported yet"
        )
    catalog = req.app.store.catalog
    if await catalog.namespace_properties(req.warehouse, req.namespace) is None:
        raise NoSuchNamespace(".".join(req.namespace))
    if await catalog.table(req.warehouse, req.namespace, request.name) is not None:
        raise TableExists(".".join((*req.namespace, request.name)))
    location = request.location or default_location(req.warehouse, req.namespace, request.name)
    _check_location(req, location)
    metadata = new_table_metadata(
        request.table_schema,
        request.partition_spec or UNPARTITIONED_PARTITION_SPEC,
        request.write_order or UNSORTED_SORT_ORDER,
        location.rstrip("/"),
        request.properties,
    )
    metadata_location = next_metadata_location(metadata, None)
    await req.app.files.write(metadata_location, metadata)
    try:
        await catalog.create_table(req.warehouse, req.namespace, request.name, metadata_location)
    except (TableExists, NoSuchNamespace):
        await req.app.files.forget(metadata_location)
        raise
    return _loaded(req, metadata_location, metadata)


async def _register_table(req: IcebergRequest) -> Response:
    request = RegisterTableRequest.model_validate({"overwrite": False, **(req.body or {})})
    _name_of(request.name)
    await req.authorize("iceberg:RegisterTable", (req.namespace, request.name))
    if request.overwrite:
        raise IcebergError(406, "UnsupportedOperationException", "overwrite is not supported")
    _check_location(req, request.metadata_location)
    try:
        metadata = await req.app.files.read(request.metadata_location)
    except KeyNotFound:
        raise IcebergError(
            400, "BadRequestException", f"no metadata file at {request.metadata_location}"
        ) from None
    await req.app.store.catalog.create_table(
        req.warehouse, req.namespace, request.name, request.metadata_location
    )
    return _loaded(req, request.metadata_location, metadata)


async def _current(req: IcebergRequest) -> str:
    location = await req.app.store.catalog.table(req.warehouse, req.namespace, req.table)
    if location is None:
        raise NoSuchTable(".".join((*req.namespace, req.table)))
    return location


async def _load_table(req: IcebergRequest) -> Response:
    location = await _current(req)
    if req.call.head.method == "HEAD":
        return _no_content()
    metadata = await req.app.files.read(location)
    return _loaded(req, location, metadata)


async def _drop_table(req: IcebergRequest) -> Response:
    purge = req.query.get("purgeRequested", "false").lower() == "true"
    location = await _current(req)
    metadata = await req.app.files.read(location) if purge else None
    await req.app.store.catalog.drop_table(req.warehouse, req.namespace, req.table)
    if metadata is not None:
        await _purge(req, metadata.location)
    return _no_content()


async def _purge(req: IcebergRequest, location: str) -> None:
    """Delete every object under the table's location (its data and metadata files)."""
    bucket, prefix = split_location(location.rstrip("/") + "/")
    if bucket != req.warehouse:
        return  # a registered table living elsewhere: not ours to delete
    store = req.app.store
    while True:
        listing = await store.list_objects(bucket, prefix=prefix)
        for version in listing.objects:
            await req.app.files.forget(f"s3://{bucket}/{version.key}")
        if not listing.truncated:
            return


async def _rename_table(req: IcebergRequest) -> Response:
    body = req.body or {}
    source, destination = body.get("source") or {}, body.get("destination") or {}
    src = (_namespace_of(source.get("namespace")), _name_of(source.get("name")))
    dst = (_namespace_of(destination.get("namespace")), _name_of(destination.get("name")))
    for table in (src, dst):
        await req.authorize("iceberg:RenameTable", table)
    await req.app.store.catalog.rename_table(req.warehouse, src, dst)
    return _no_content()


async def _commit_table(req: IcebergRequest) -> Response:
    body = dict(req.body or {})
    body.setdefault("identifier", {"namespace": list(req.namespace), "name": req.table})
    request = CommitTableRequest.model_validate(body)
    if (tuple(request.identifier.namespace.root), request.identifier.name) != (
        req.namespace,
        req.table,
    ):
        raise ValueError("the body's identifier is not the path's table")
    _swaps, metadata, location = await _commit(req, [request])
    document = {"metadata": metadata[0], "metadata-location": location[0]}
    return _model(200, CommitTableResponse.model_validate(document))


async def _commit_transaction(req: IcebergRequest) -> Response:
    changes = (req.body or {}).get("table-changes")
    if not isinstance(changes, list) or not changes:
        raise ValueError("table-changes is a non-empty list")
    requests = [CommitTableRequest.model_validate(change) for change in changes]
    for request in requests:
        table = (tuple(request.identifier.namespace.root), request.identifier.name)
        await req.authorize("iceberg:UpdateTable", table)
    await _commit(req, requests)
    return _no_content()


async def _commit(
    req: IcebergRequest, requests: list[CommitTableRequest]
) -> tuple[list[TableSwap], list[Any], list[str]]:
    """Prepare every table's next metadata file, then swap them all in one catalog
    transaction; on any failure the files written are deleted."""
    app, catalog = req.app, req.app.store.catalog
    swaps: list[TableSwap] = []
    metadata: list[Any] = []
    locations: list[str] = []
    try:
        for request in requests:
            namespace = tuple(request.identifier.namespace.root)
            current = await catalog.table(req.warehouse, namespace, request.identifier.name)
            swap, updated, location = await prepare_commit(app.files, current, request)
            swaps.append(swap)
            metadata.append(updated)
            locations.append(location)
        await catalog.swap_tables(req.warehouse, swaps)
    except BaseException:
        for location in locations:
            await app.files.forget(location)
        raise
    return swaps, metadata, locations


_NS = "{prefix}/namespaces/{namespace}"
_T = _NS + "/tables/{table}"

ROUTES: tuple[Route, ...] = (
    Route("config", "warehouse", {"GET": Operation("iceberg:GetConfig", _config)}),
    Route("{prefix}/namespaces", "warehouse", {
        "GET": Operation("iceberg:ListNamespaces", _list_namespaces),
        "POST": Operation("iceberg:CreateNamespace", _create_namespace),
    }),
    Route(_NS, "warehouse", {
        "GET": Operation("iceberg:GetNamespace", _load_namespace),
        "HEAD": Operation("iceberg:GetNamespace", _load_namespace),
        "DELETE": Operation("iceberg:DropNamespace", _drop_namespace),
    }),
    Route(_NS + "/properties", "warehouse", {
        "POST": Operation("iceberg:UpdateNamespaceProperties", _update_namespace),
    }),
    Route(_NS + "/tables", "warehouse", {
        "GET": Operation("iceberg:ListTables", _list_tables),
    }),
    Route(_NS + "/tables", "body", {
        "POST": Operation("iceberg:CreateTable", _create_table),
    }),
    Route(_NS + "/register", "body", {
        "POST": Operation("iceberg:RegisterTable", _register_table),
    }),
    Route(_T, "table", {
        "GET": Operation("iceberg:LoadTable", _load_table),
        "HEAD": Operation("iceberg:LoadTable", _load_table),
        "POST": Operation("iceberg:UpdateTable", _commit_table),
        "DELETE": Operation("iceberg:DropTable", _drop_table),
    }),
    Route("{prefix}/tables/rename", "body", {
        "POST": Operation("iceberg:RenameTable", _rename_table),
    }),
    Route("{prefix}/transactions/commit", "body", {
        "POST": Operation("iceberg:CommitTransaction", _commit_transaction),
    }),
)  # fmt: skip

ENDPOINTS = [
    f"{method} /v1/{{prefix}}/{route.pattern.removeprefix('{prefix}/')}"
    for route in ROUTES[1:]
    for method in route.methods
]
