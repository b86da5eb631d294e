"""SelectObjectContent (`POST /bucket/key?select&select-type=2`): S3 Select over one object.

The request's XML names the expression (S3 Select's SQL, translated by
egide.analytics.selectsql), the input (CSV, JSON lines or document, Parquet; GZIP for CSV and
JSON) and the output (CSV or JSON). The query runs in DuckDB's sandbox (egide.analytics.query)
in a thread of its own, reading the object through `egide://` as the caller, who may read that
one object and nothing else. The answer is AWS's event stream (egide.s3.eventstream): Records,
Progress if asked, Stats, End; an error found before the first byte is an ordinary XML error,
one found after it an error message ending the stream.
"""

from __future__ import annotations

import asyncio
import json
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from egide.analytics.access import ObjectAccess
from egide.auth.authorize import Authorizer, Principal, RequestContext
from egide.config import SqlConfig
from egide.domain import ObjectVersion
from egide.engine.store import ObjectStore
from egide.s3 import errors, eventstream
from egide.s3.body import read_small_body
from egide.s3.http import Request, Response
from egide.s3.xml import parse

#: Seconds without a record before the answer starts anyway, then between Cont keep-alives
#: (a long scan that returns little must not look like a dead connection to the client).
KEEPALIVE_SECONDS = 2.0
#: Limits of each Select query: the server's `[sql]` section (`configure`).
LIMITS = SqlConfig()


def configure(limits: SqlConfig) -> None:
    """Take the server's `[sql]` limits (egide.server.open_app)."""
    global LIMITS
    LIMITS = limits


@dataclass
class Serialization:
    kind: str  # CSV, JSON or Parquet
    options: dict[str, str] = field(default_factory=dict)
    compression: str = "NONE"


def _child(node: ET.Element | None, name: str) -> ET.Element | None:
    return None if node is None else node.find(name)


def _text(node: ET.Element | None, name: str, default: str = "") -> str:
    found = _child(node, name)
    return default if found is None or found.text is None else found.text


def _format(node: ET.Element | None, what: str, kinds: tuple[str, ...]) -> Serialization:
    if node is None:
        raise errors.MalformedXML(f"{what} is required.")
    present = [child for child in node if child.tag in kinds]
    if len(present) != 1:
        raise _select_error("InvalidDataSource" if what.startswith("Input") else
                            "InvalidRequestParameter",
                            f"{what} must name exactly one of {', '.join(kinds)}.")  # fmt: skip
    chosen = present[0]
    return Serialization(
        chosen.tag,
        {child.tag: child.text or "" for child in chosen},
        _text(node, "CompressionType", "NONE").upper(),
    )


def _select_error(code: str, message: str, status: int = 400) -> errors.S3Error:
    kind = type(code, (errors.S3Error,), {"code": code, "status": status,
                                           "default_message": message})  # fmt: skip
    error: errors.S3Error = kind(message)
    return error


@dataclass
class SelectRequest:
    expression: str
    input: Serialization
    output: Serialization
    progress: bool
    scan_range: tuple[int | None, int | None] | None


def parse_request(body: bytes) -> SelectRequest:
    root = parse(body)
    if root.tag != "SelectObjectContentRequest":
        raise errors.MalformedXML("The root element must be SelectObjectContentRequest.")
    expression_type = _text(root, "ExpressionType", "SQL")
    if expression_type.upper() != "SQL":
        raise _select_error("InvalidExpressionType", "The ExpressionType must be SQL.")
    expression = _text(root, "Expression")
    if not expression.strip():
        raise _select_error("MissingRequiredParameter", "The Expression is required.")
    source = _format(root.find("InputSerialization"), "InputSerialization",
                     ("CSV", "JSON", "Parquet"))  # fmt: skip
    if source.compression not in ("NONE", "GZIP", "BZIP2"):
        raise _select_error("InvalidCompressionFormat",
                            f"The compression {source.compression} is not supported.")  # fmt: skip
    if source.kind == "Parquet" and source.compression != "NONE":
        raise _select_error("InvalidCompressionFormat", "Parquet input takes no CompressionType.")
    if source.compression == "BZIP2":
        raise errors.NotImplementedOperation("Égide's S3 Select does not read BZIP2 input yet.")
    output = _format(root.find("OutputSerialization"), "OutputSerialization", ("CSV", "JSON"))
    progress = _text(_child(root, "RequestProgress"), "Enabled", "false").lower() == "true"
    return SelectRequest(expression, source, output, progress, _scan_range(root, source))


def _scan_range(root: ET.Element, source: Serialization) -> tuple[int | None, int | None] | None:
    scan = root.find("ScanRange")
    if scan is None:
        return None
    bounds: list[int | None] = []
    for name in ("Start", "End"):
        text = _text(scan, name).strip()
        if text and not text.isdigit():
            raise _select_error("InvalidScanRange", f"ScanRange {name} must be a whole number.")
        bounds.append(int(text) if text else None)
    start, end = bounds
    if start is not None and end is not None and start > end:
        raise _select_error("InvalidScanRange", "ScanRange Start is after its End.")
    lines = source.kind == "JSON" and source.options.get("Type", "").upper() == "LINES"
    if source.compression != "NONE" or not (source.kind == "CSV" or lines):
        raise _select_error(
            "UnsupportedScanRangeInput",
            "ScanRange applies to uncompressed CSV and JSON LINES objects only.",
        )
    if source.kind == "CSV" and source.options.get("AllowQuotedRecordDelimiter", "").upper() == (
        "TRUE"
    ):
        raise _select_error(
            "UnsupportedScanRangeInput",
            "ScanRange cannot be combined with AllowQuotedRecordDelimiter.",
        )
    return start, end


def _sql_string(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def source_sql(request: SelectRequest, path: str, positions: int) -> str:
    """The DuckDB table function reading the object as the input serialization says."""
    options = request.input.options
    compression = "gzip" if request.input.compression == "GZIP" else "none"
    if request.input.kind == "Parquet":
        return f"read_parquet({_sql_string(path)})"
    if request.input.kind == "JSON":
        kind = options.get("Type", "DOCUMENT").upper()
        if kind not in ("DOCUMENT", "LINES"):
            raise _select_error("InvalidJsonType", f"The JSON Type {kind} is not valid.")
        fmt = "newline_delimited" if kind == "LINES" else "auto"
        return (f"read_json({_sql_string(path)}, format = '{fmt}', "
                f"compression = '{compression}')")  # fmt: skip
    header = options.get("FileHeaderInfo", "NONE").upper()
    if header not in ("USE", "IGNORE", "NONE"):
        raise _select_error("InvalidFileHeaderInfo", f"FileHeaderInfo {header} is not valid.")
    args = [
        _sql_string(path),
        f"header = {'true' if header in ('USE', 'IGNORE') else 'false'}",
        "all_varchar = true",
        f"compression = '{compression}'",
        f"delim = {_sql_string(options.get('FieldDelimiter') or ',')}",
        f"quote = {_sql_string(options.get('QuoteCharacter') or chr(34))}",
        f"escape = {_sql_string(options.get('QuoteEscapeCharacter') or chr(34))}",
    ]
    if options.get("RecordDelimiter") not in (None, "", "\n", "\r\n"):
        args.append(f"new_line = {_sql_string(options['RecordDelimiter'])}")
    if options.get("Comments"):
        args.append(f"comment = {_sql_string(options['Comments'])}")
    if header != "USE" and positions:
        names = ", ".join(f"'_{n}'" for n in range(1, positions + 1))
        args.append(f"names = [{names}]")
    return f"read_csv({', '.join(args)})"


class SelectEncoder:
    """Each batch as a Records event of the output serialization; Stats and End at the end."""

    media_type = "application/octet-stream"

    def __init__(self, output: Serialization, scanned: int, progress: bool) -> None:
        self.output = output
        self.scanned = scanned
        self.progress = progress
        self.returned = 0
        options = output.options
        self.record = options.get("RecordDelimiter") or "\n"
        self.field = options.get("FieldDelimiter") or ","
        self.quote = options.get("QuoteCharacter") or '"'
        self.escape = options.get("QuoteEscapeCharacter") or self.quote
        self.always = options.get("QuoteFields", "ASNEEDED").upper() == "ALWAYS"

    def start(self, schema: Any) -> bytes:
        return b""

    def _csv_field(self, value: object) -> str:
        if value is None:
            return ""
        text = value if isinstance(value, str) else json.dumps(value, default=str).strip('"')
        if isinstance(value, bool):
            text = "true" if value else "false"
        needs = self.always or any(c in text for c in (self.field, self.quote, "\n", "\r"))
        if needs:
            return self.quote + text.replace(self.quote, self.escape + self.quote) + self.quote
        return text

    def batch(self, batch: Any) -> bytes:
        rows = batch.to_pylist()
        if self.output.kind == "JSON":
            text = "".join(
                json.dumps(row, ensure_ascii=False, default=str) + self.record for row in rows
            )
        else:
            text = "".join(
                self.field.join(self._csv_field(v) for v in row.values()) + self.record
                for row in rows
            )
        payload = text.encode()
        if not payload:
            return b""
        self.returned += len(payload)
        return eventstream.records(payload)

    def end(self, rows: int, seconds: float) -> bytes:
        counts = (self.scanned, self.scanned, self.returned)
        head = eventstream.progress(*counts) if self.progress else b""
        return head + eventstream.stats(*counts) + eventstream.end()

    def error(self, code: str, message: str) -> bytes:
        return eventstream.error(code, message)


class _OneObject:
    """The only right a Select query has: s3:GetObject on its one object (the app checked
    the caller's right to it before the handler ran)."""

    def __init__(self, resource: str) -> None:
        self.resource = resource

    async def __call__(
        self, principal: Principal, action: str, resource: str, context: RequestContext
    ) -> bool:
        return action == "s3:GetObject" and resource == self.resource


async def handle_select_object_content(req: Request, store: ObjectStore) -> Response:
    assert req.bucket is not None and req.key is not None
    if req.head.query_value("select-type") != "2":
        raise errors.InvalidArgument(
            "select-type must be 2.", ArgumentName="select-type",
            ArgumentValue=req.head.query_value("select-type") or "",
        )  # fmt: skip
    request = parse_request(await read_small_body(req))
    try:
        from egide.analytics.bridge import Bridge
        from egide.analytics.filesystem import EgideFileSystem
        from egide.analytics.query import Limits
        from egide.analytics.selectsql import SOURCE, SelectSqlError, translate
        from egide.analytics.stream import StreamedQuery
    except ImportError as exc:
        raise errors.NotImplementedOperation(
            f"S3 Select needs the analytics extra (egide[analytics]): {exc}"
        ) from None
    try:
        translated = translate(request.expression)
    except SelectSqlError as exc:
        raise _select_error(exc.code, exc.message) from None
    version: ObjectVersion = await store.head_object(req.bucket, req.key)
    path = f"egide://{req.bucket}/{req.key}"
    sql = translated.sql.replace(SOURCE, source_sql(request, path, translated.positions), 1)
    resource = f"arn:aws:s3:::{req.bucket}/{req.key}"
    access = ObjectAccess(store, Authorizer(_OneObject(resource)), req.principal,
                          RequestContext(request_time=datetime.now(UTC)))  # fmt: skip
    loop = asyncio.get_running_loop()
    fs = EgideFileSystem(access, Bridge(loop))
    if request.scan_range is not None:
        from egide.analytics.scanrange import ScanRangeFileSystem

        first_byte, last_byte = request.scan_range
        if first_byte is None:  # only End: the last End bytes, as on AWS
            first_byte, last_byte = max(0, version.size - (last_byte or 0)), version.size - 1
        header = request.input.options.get("FileHeaderInfo", "NONE").upper() in ("USE", "IGNORE")
        fs = ScanRangeFileSystem(
            access, Bridge(loop), path=path, start=first_byte,
            end=version.size - 1 if last_byte is None else last_byte,
            header=request.input.kind == "CSV" and header,
        )  # fmt: skip
    limits = Limits(LIMITS.memory_limit, LIMITS.threads, LIMITS.timeout_seconds)
    encoder = SelectEncoder(request.output, version.size, request.progress)
    query = StreamedQuery(fs, limits, sql, encoder, loop)

    async def watch() -> None:
        if req.disconnected is not None:
            await req.disconnected()
            query.cancel()  # the client went away: stop scanning for it

    watcher = asyncio.create_task(watch())
    try:
        first = await query.start(KEEPALIVE_SECONDS)
    except Exception as exc:
        watcher.cancel()
        await query.wait()
        raise _select_error(*_query_error(exc)) from None

    async def body() -> Any:
        try:
            yield first if first is not None else eventstream.cont()
            async for piece in query.rest(KEEPALIVE_SECONDS, eventstream.cont()):
                yield piece
        finally:
            watcher.cancel()
            query.cancel()

    return Response(200, {"content-type": "application/octet-stream"}, body())


def _query_error(exc: Exception) -> tuple[str, str]:
    message = str(exc)
    if "Conversion Error" in message or "Could not convert" in message:
        return "CastFailed", message
    if "Parser Error" in message or "Binder Error" in message:
        return "InvalidQuery" if "Binder" in message else "ParseUnexpectedToken", message
    return "InvalidTextEncoding" if "UTF" in message else "InvalidQuery", message
