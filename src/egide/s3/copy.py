"""CopyObject and UploadPartCopy: the source is streamed through the reader into a new
version (or part), re-sealed under the target's own data key; it is never held in memory."""

from __future__ import annotations

import re

from egide.domain import DeleteMarkerHit, ObjectVersion
from egide.engine.store import ObjectStore
from egide.s3 import bucketencryption, encryption, errors
from egide.s3.controls import version_headers, with_version_headers
from egide.s3.get import check_conditions
from egide.s3.http import Request, Response
from egide.s3.multipart import checksum_elements, part_number, server_checksum, upload_of
from egide.s3.object_lock import lock_request
from egide.s3.put import (
    MAX_OBJECT_SIZE,
    check_key,
    object_headers,
    write_condition,
    written_headers,
)
from egide.s3.tagging import HEADER as TAGGING
from egide.s3.tagging import stored_tagging
from egide.s3.xml import document, element, iso8601
from egide.web.request import RequestHead, decode_component

_RANGE = re.compile(r"^bytes=(\d+)-(\d+)$")
_XML = {"content-type": "application/xml"}
#: Precondition headers of the copy source, and the name each has on a GET.
_SOURCE_CONDITIONS = {
    "x-amz-copy-source-if-match": "if-match",
    "x-amz-copy-source-if-none-match": "if-none-match",
    "x-amz-copy-source-if-modified-since": "if-modified-since",
    "x-amz-copy-source-if-unmodified-since": "if-unmodified-since",
}


def copy_source(head: RequestHead) -> tuple[str, str, str | None]:
    """(bucket, key, version id) of x-amz-copy-source: `bucket/key` or `/bucket/key`,
    URL-encoded, with an optional `?versionId=`."""
    value = head.header("x-amz-copy-source") or ""
    path, _, query = value.partition("?")
    try:
        decoded = decode_component(path.encode("latin-1"))
    except UnicodeDecodeError:
        raise errors.InvalidArgument(
            "Invalid copy source encoding: the source name is not UTF-8.",
            ArgumentName="x-amz-copy-source", ArgumentValue=value,
        ) from None  # fmt: skip
    bucket, _, key = decoded.lstrip("/").partition("/")
    if not bucket or not key:
        raise errors.InvalidArgument(
            "Copy Source must mention the source bucket and key: sourcebucket/sourcekey",
            ArgumentName="x-amz-copy-source",
            ArgumentValue=value,
        )
    version: str | None = None
    if query:
        name, _, version = query.partition("=")
        if name != "versionId":
            raise errors.InvalidArgument(
                "The copy source may only name a versionId after '?'.",
                ArgumentName="x-amz-copy-source", ArgumentValue=value,
            )  # fmt: skip
    return bucket, key, version


async def source_version(req: Request, store: ObjectStore) -> tuple[ObjectVersion, bytes | None]:
    """The source version, after its x-amz-copy-source-if-* conditions (412 if one fails), and
    the customer key it is stored under (SSE-C: the x-amz-copy-source-…-customer-* headers)."""
    bucket, key, version_id = copy_source(req.head)
    source_key = encryption.customer_key(req.head, encryption.COPY_SOURCE)
    try:
        version = await store.head_object(bucket, key, version_id)
    except DeleteMarkerHit as exc:
        # A delete marker cannot be copied: S3 answers 400 here, not GET's 405.
        raise errors.InvalidRequest(
            "The source of a copy request may not specifically refer to a delete marker by "
            "version id."
        ) from exc
    conditions = {
        plain: req.head.headers[name]
        for name, plain in _SOURCE_CONDITIONS.items()
        if name in req.head.headers
    }
    if conditions and check_conditions(RequestHead("GET", "/", headers=conditions), version):
        # A copy has no 304: any failed source condition is 412.
        raise errors.PreconditionFailed(Condition=", ".join(sorted(conditions)))
    encryption.check_customer_key(source_key, version.headers)
    return version, source_key.key if source_key is not None else None


def _directive(head: RequestHead, name: str) -> str:
    value = (head.header(name) or "COPY").upper()
    if value not in ("COPY", "REPLACE"):
        raise errors.InvalidArgument(
            f"Unknown {name} value.", ArgumentName=name, ArgumentValue=value
        )
    return value


def _metadata(
    req: Request, source: ObjectVersion, same_object: bool, sse: encryption.WriteEncryption
) -> dict[str, str]:
    """The target's headers under x-amz-metadata-directive and x-amz-tagging-directive, with
    the encryption the copy request asks for (`sse`: never the source's, as in S3)."""
    head = req.head
    metadata = _directive(head, "x-amz-metadata-directive")
    tagging = _directive(head, "x-amz-tagging-directive")
    if same_object and metadata == "COPY" and tagging == "COPY" and not sse.asked:
        raise errors.InvalidRequest(
            "This copy request is illegal because it is trying to copy an object to itself "
            "without changing the object's metadata, storage class, website redirect location "
            "or encryption attributes."
        )
    if metadata == "REPLACE":
        headers = object_headers(head)
    else:
        headers = {n: v for n, v in source.headers.items() if not n.startswith("x-amz-")}
        headers.update((n, v) for n, v in source.headers.items() if n.startswith("x-amz-meta-"))
    headers.pop(TAGGING, None)
    tags = stored_tagging(head) if tagging == "REPLACE" else {}
    if tagging == "COPY" and TAGGING in source.headers:
        tags = {TAGGING: source.headers[TAGGING]}
    headers.update(tags)
    # The copy's own Object Lock request applies whatever the directives (never the source's).
    headers.update(lock_request(head))
    if not source.parts:
        # The same bytes: a full-object checksum still holds (a multipart source's composite
        # checksum names its parts, and does not).
        headers.update((n, v) for n, v in source.headers.items() if n.startswith("x-amz-checksum-"))
    headers.update(sse.headers)
    return headers


async def handle_copy_object(req: Request, store: ObjectStore) -> Response:
    assert req.bucket is not None and req.key is not None
    check_key(req.key)
    sse = await bucketencryption.write_encryption(req.head, req.bucket, store)
    source, source_key = await source_version(req, store)
    if source.size > MAX_OBJECT_SIZE:
        raise errors.InvalidRequest(
            "The specified copy source is larger than the maximum allowable size for a copy "
            f"source: {MAX_OBJECT_SIZE}; copy it with UploadPartCopy."
        )
    target = await store.bucket(req.bucket, cached=True)
    same = target.id == source.bucket_id and req.key == source.key
    # A source under a customer key copied onto itself changes its encryption whatever the
    # request asks (another key, or none): not the refused copy of an object to itself.
    headers = _metadata(req, source, same and source_key is None, sse)
    headers = with_version_headers(headers, await version_headers(req, req.bucket))
    reader = await store.reader(source, 0, source.size - 1, source_key)
    version = await store.put_object(
        req.bucket, req.key, reader.__aiter__(), size=source.size, headers=headers,
        condition=write_condition(req.head), customer_key=sse.key,
    )  # fmt: skip
    checksums = {n: v for n, v in version.headers.items() if n.startswith("x-amz-checksum-")}
    body = document(
        "CopyObjectResult",
        element("LastModified", iso8601(version.last_modified))
        + element("ETag", f'"{version.etag}"')
        + checksum_elements(checksums),
    )
    response = {
        **_XML, **written_headers(version),
        **encryption.response_headers(version.headers, sse.customer),
    }  # fmt: skip
    del response["etag"]
    if not source.is_null:
        response["x-amz-copy-source-version-id"] = source.s3_version_id
    return Response(200, response, body)


def _source_range(head: RequestHead, size: int) -> tuple[int, int]:
    value = head.header("x-amz-copy-source-range")
    if value is None:
        return 0, size - 1
    match = _RANGE.match(value.strip())
    if match is None:
        raise errors.InvalidArgument(
            "The x-amz-copy-source-range value must be of the form bytes=first-last where "
            "first and last are the zero-based offsets of the first and last bytes to copy",
            ArgumentName="x-amz-copy-source-range",
            ArgumentValue=value,
        )
    first, last = int(match.group(1)), int(match.group(2))
    if first > last or last >= size:
        raise errors.InvalidRange(
            f"Range specified is not valid for source object of size: {size}",
            RangeRequested=value,
            ActualObjectSize=str(size),
        )
    return first, last


async def handle_upload_part_copy(req: Request, store: ObjectStore) -> Response:
    number = part_number(req.head)
    encryption.refuse_write_encryption(req.head)
    key = encryption.customer_key(req.head)
    upload = await upload_of(req, store)
    encryption.check_customer_key(key, upload.headers, missing=encryption.MISSING_FOR_UPLOAD)
    source, source_key = await source_version(req, store)
    first, last = _source_range(req.head, source.size)
    bucket = await store.buckets.by_id(upload.bucket_id)
    await store.quotas.check(bucket, adding_bytes=last - first + 1, adding_objects=0)
    reader = await store.reader(source, first, last, source_key)
    # The server computes the part's checksum in the upload's algorithm, so that the object
    # completed from copied parts has its checksum too.
    own = server_checksum(upload)

    async def before_commit(etag: str) -> dict[str, str]:
        return {own.algorithm.header: own.b64()} if own is not None else {}

    part = await store.multipart.upload_part(
        upload, number, reader.__aiter__(), hashers=[own] if own is not None else [],
        before_commit=before_commit, customer_key=key.key if key is not None else None,
    )  # fmt: skip
    result = document(
        "CopyPartResult",
        element("LastModified", iso8601(part.last_modified))
        + element("ETag", f'"{part.etag}"')
        + checksum_elements(part.checksums),
    )
    return Response(200, {**_XML, **encryption.response_headers(upload.headers, key)}, result)
