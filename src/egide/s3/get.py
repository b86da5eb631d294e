"""GetObject and HeadObject: conditional requests, ranges, response-* overrides, streaming."""

from __future__ import annotations

import re
from email.utils import parsedate_to_datetime

from egide.domain import ACL_HEADER, OWNER_HEADER, ObjectVersion
from egide.engine.customer_keys import FINGERPRINT_HEADER
from egide.engine.store import ObjectStore
from egide.s3 import encryption, errors, tagging
from egide.s3.http import Request, Response, http_date
from egide.s3.xml import iso8601
from egide.web.request import RequestHead

_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")
# Query parameters that override response headers (GetObject, "Overriding response header values").
_OVERRIDES = {
    "response-content-type": "content-type",
    "response-content-language": "content-language",
    "response-expires": "expires",
    "response-cache-control": "cache-control",
    "response-content-disposition": "content-disposition",
    "response-content-encoding": "content-encoding",
}


def _parse_date(value: str | None) -> float | None:
    if value is None:
        return None
    try:
        return parsedate_to_datetime(value).timestamp()
    except (TypeError, ValueError):
        return None  # an unparseable date is ignored, as HTTP says


def _etag_matches(header: str, etag: str) -> bool:
    tags = [t.strip() for t in header.split(",")]
    return "*" in tags or any(t.strip('"') == etag for t in tags)


def check_conditions(head: RequestHead, version: ObjectVersion) -> int | None:
    """304 or 412 if a precondition says so, else None. Precedence per RFC 7232 §6, as S3:
    If-Match beats If-Unmodified-Since, If-None-Match beats If-Modified-Since."""
    modified = int(version.last_modified)
    if_match = head.header("if-match")
    if if_match is not None:
        if not _etag_matches(if_match, version.etag):
            return 412
    else:
        since = _parse_date(head.header("if-unmodified-since"))
        if since is not None and modified > since:
            return 412
    if_none_match = head.header("if-none-match")
    if if_none_match is not None:
        if _etag_matches(if_none_match, version.etag):
            return 304
    else:
        since = _parse_date(head.header("if-modified-since"))
        if since is not None and modified <= since:
            return 304
    return None


def parse_range(value: str | None, size: int) -> tuple[int, int] | None:
    """(first, last) inclusive, or None for the whole object. A syntactically invalid header is
    ignored as S3 does; a valid one that selects nothing is InvalidRange (416)."""
    if value is None:
        return None
    match = _RANGE.match(value.strip())
    if match is None or match.group(1) == match.group(2) == "":
        return None
    first_s, last_s = match.groups()
    if first_s == "":
        suffix = int(last_s)
        if suffix == 0 or size == 0:
            raise _invalid_range(value, size)
        return max(size - suffix, 0), size - 1
    first = int(first_s)
    last = size - 1 if last_s == "" else min(int(last_s), size - 1)
    if last_s != "" and int(last_s) < first:
        return None
    if first >= size:
        raise _invalid_range(value, size)
    return first, last


def part_range(head: RequestHead, version: ObjectVersion) -> tuple[int, int] | None:
    """The bytes of part `partNumber` of a multipart version (None: the whole object, which
    is part 1 of an object uploaded in one piece)."""
    if head.header("range") is not None:
        raise errors.InvalidRequest(
            "Cannot specify both Range header and partNumber query parameter."
        )
    value = head.query_value("partNumber") or ""
    number = int(value) if value.isdigit() else 0
    if not 1 <= number <= 10_000:
        raise errors.InvalidArgument(
            "Part number must be an integer between 1 and 10000, inclusive",
            ArgumentName="partNumber", ArgumentValue=value,
        )  # fmt: skip
    count = len(version.parts) or 1
    if number > count:
        raise errors.InvalidPartNumber(PartNumberRequested=str(number), ActualPartCount=str(count))
    if not version.parts:
        return None
    first = sum(p.size for p in version.parts[: number - 1])
    return first, first + version.parts[number - 1].size - 1


def _invalid_range(value: str, size: int) -> errors.S3Error:
    return errors.InvalidRange(RangeRequested=value, ActualObjectSize=str(size))


def object_response_headers(version: ObjectVersion) -> dict[str, str]:
    headers = {
        name: value
        for name, value in version.headers.items()
        if not name.startswith("x-amz-checksum-")
        and name not in (tagging.HEADER, FINGERPRINT_HEADER, OWNER_HEADER, ACL_HEADER)
    }
    if count := tagging.tag_count(version.headers):
        headers[tagging.COUNT_HEADER] = str(count)
    headers["etag"] = f'"{version.etag}"'
    headers["last-modified"] = http_date(version.last_modified)
    headers["accept-ranges"] = "bytes"
    if not version.is_null:
        headers["x-amz-version-id"] = version.s3_version_id
    if version.retention_mode is not None and version.retain_until is not None:
        headers["x-amz-object-lock-mode"] = version.retention_mode
        headers["x-amz-object-lock-retain-until-date"] = iso8601(version.retain_until)
    if version.legal_hold:
        headers["x-amz-object-lock-legal-hold"] = "ON"
    return headers


async def _get_or_head(req: Request, store: ObjectStore, *, with_body: bool) -> Response:
    assert req.bucket is not None and req.key is not None
    head = req.head
    encryption.refuse_write_encryption(head)
    key = encryption.customer_key(head)
    version = await store.head_object(req.bucket, req.key, head.query_value("versionId"))
    encryption.check_customer_key(key, version.headers)
    status = check_conditions(head, version)
    headers = object_response_headers(version) | encryption.response_headers(version.headers, key)
    if status == 412:
        raise errors.PreconditionFailed(Condition="If-Match or If-Unmodified-Since")
    if status == 304:
        kept = ("etag", "last-modified", "cache-control", "expires")
        return Response(304, {n: headers[n] for n in kept if n in headers})
    for param, header in _OVERRIDES.items():
        value = head.query_value(param)
        if value is not None:
            headers[header] = value
    if head.has_query("partNumber"):
        selected = part_range(head, version)
        if version.parts:
            headers["x-amz-mp-parts-count"] = str(len(version.parts))
    else:
        selected = parse_range(head.header("range"), version.size)
    first, last = selected if selected is not None else (0, version.size - 1)
    if (head.header("x-amz-checksum-mode") or "").upper() == "ENABLED":
        # Only a response of whole data carries a checksum (a client checks it against the
        # body it receives): the object's, or with partNumber the part's.
        if selected is None:
            headers.update(
                {n: v for n, v in version.headers.items() if n.startswith("x-amz-checksum-")}
            )
        elif head.has_query("partNumber") and version.parts:
            part = version.parts[int(head.query_value("partNumber") or "1") - 1]
            headers.update(part.checksums)
            if "x-amz-checksum-type" in version.headers:
                headers["x-amz-checksum-type"] = version.headers["x-amz-checksum-type"]
    headers["content-length"] = str(last - first + 1)
    status = 200
    if selected is not None:
        status = 206
        headers["content-range"] = f"bytes {first}-{last}/{version.size}"
    if not with_body:
        return Response(status, headers)
    reader = await store.reader(version, first, last, key.key if key is not None else None)
    return Response(status, headers, reader.__aiter__())


async def handle_get_object(req: Request, store: ObjectStore) -> Response:
    return await _get_or_head(req, store, with_body=True)


async def handle_head_object(req: Request, store: ObjectStore) -> Response:
    return await _get_or_head(req, store, with_body=False)
