"""Multipart uploads: Create, UploadPart, Complete, Abort, ListParts, ListMultipartUploads."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

from egide.domain import KeyNotFound, NoSuchUpload, Upload
from egide.engine.multipart import (
    MAX_PART_SIZE,
    MAX_PARTS,
    CompletedPart,
    Digest,
)
from egide.engine.store import ObjectStore
from egide.s3 import errors
from egide.s3.auth.checksums import Checksum, ChecksumAlgorithm
from egide.s3.body import read_small_body
from egide.s3.bucket import OWNER
from egide.s3.http import Request, Response
from egide.s3.put import BodyChecks, check_key, check_length, object_headers
from egide.s3.request import RequestHead
from egide.s3.xml import document, element, iso8601, parse

#: A CompleteMultipartUpload document names at most 10,000 parts of ~150 bytes.
MAX_COMPLETE_BODY = 4 * 1024 * 1024
_CHECKSUM_ELEMENTS = {f"Checksum{a.name}": a for a in ChecksumAlgorithm}
_CHECKSUM_FACTORIES: dict[str, Callable[[], Digest]] = {
    a.header: partial(Checksum, a) for a in ChecksumAlgorithm
}
_XML = {"content-type": "application/xml"}


def upload_id(head: RequestHead) -> bytes:
    """The uploadId query parameter; anything that is not one of ours is NoSuchUpload."""
    value = head.query_value("uploadId") or ""
    try:
        raw = bytes.fromhex(value)
    except ValueError:
        raw = b""
    if len(raw) != 16:
        raise errors.NoSuchUpload(UploadId=value)
    return raw


def part_number(head: RequestHead) -> int:
    value = head.query_value("partNumber") or ""
    number = int(value) if value.isdigit() else 0
    if not 1 <= number <= MAX_PARTS:
        raise errors.InvalidArgument(
            f"Part number must be an integer between 1 and {MAX_PARTS}, inclusive",
            ArgumentName="partNumber",
            ArgumentValue=value,
        )
    return number


def checksum_elements(values: dict[str, str]) -> str:
    return "".join(
        element(f"Checksum{a.name}", values[a.header])
        for a in ChecksumAlgorithm
        if a.header in values
    )


async def upload_of(req: Request, store: ObjectStore) -> Upload:
    assert req.bucket is not None and req.key is not None
    return await store.multipart.upload(req.bucket, req.key, upload_id(req.head))


async def handle_create(req: Request, store: ObjectStore) -> Response:
    assert req.bucket is not None and req.key is not None
    check_key(req.key)
    headers = object_headers(req.head)
    algorithm = req.head.header("x-amz-checksum-algorithm")
    if algorithm is not None:
        try:
            headers["x-amz-checksum-algorithm"] = ChecksumAlgorithm(algorithm.lower()).name
        except ValueError as exc:
            raise errors.InvalidRequest(
                "Checksum algorithm provided is unsupported. Please try again with any of the "
                "valid types: [CRC32, CRC32C, CRC64NVME, SHA1, SHA256]"
            ) from exc
    upload = await store.multipart.create(req.bucket, req.key, headers)
    body = document(
        "InitiateMultipartUploadResult",
        element("Bucket", req.bucket) + element("Key", req.key)
        + element("UploadId", upload.upload_id.hex()),
    )  # fmt: skip
    response = dict(_XML)
    if algorithm is not None:
        response["x-amz-checksum-algorithm"] = headers["x-amz-checksum-algorithm"]
    return Response(200, response, body)


async def handle_upload_part(req: Request, store: ObjectStore) -> Response:
    number = part_number(req.head)
    check_length(req.head, MAX_PART_SIZE)
    upload = await upload_of(req, store)
    checks = BodyChecks(req)
    part = await store.multipart.upload_part(
        upload, number, req.body, hashers=checks.hashers, before_commit=checks.verify
    )
    return Response(200, {"etag": f'"{part.etag}"', **part.checksums})


def _completed_parts(body: bytes) -> list[CompletedPart]:
    root = parse(body)
    if root.tag != "CompleteMultipartUpload":
        raise errors.MalformedXML()
    parts = []
    for node in root.findall("Part"):
        number = node.findtext("PartNumber", "")
        etag = node.findtext("ETag")
        if not number.strip().isdigit() or etag is None:
            raise errors.MalformedXML()
        checksums = {
            _CHECKSUM_ELEMENTS[child.tag].header: (child.text or "").strip()
            for child in node
            if child.tag in _CHECKSUM_ELEMENTS
        }
        parts.append(CompletedPart(int(number), etag.strip(), checksums))
    if not parts:
        raise errors.MalformedXML(
            "The XML you provided was not well-formed or did not validate against our "
            "published schema: it lists no parts."
        )
    return parts


async def handle_complete(req: Request, store: ObjectStore) -> Response:
    assert req.bucket is not None and req.key is not None
    wanted = upload_id(req.head)
    parts = _completed_parts(await read_small_body(req, MAX_COMPLETE_BODY))
    try:
        upload = await store.multipart.upload(req.bucket, req.key, wanted)
        version = await store.multipart.complete(
            upload, parts, checksum_algorithms=_CHECKSUM_FACTORIES
        )
    except NoSuchUpload:
        # A retry after a lost answer: if the upload is now the key's current version,
        # completing it again answers the same, as S3 does.
        try:
            current = await store.head_object(req.bucket, req.key)
        except KeyNotFound:
            raise errors.NoSuchUpload(UploadId=wanted.hex()) from None
        if current.version_id != wanted:
            raise
        version = current
    checksums = {n: v for n, v in version.headers.items() if n.startswith("x-amz-checksum-")}
    body = document(
        "CompleteMultipartUploadResult",
        element("Location", f"/{req.bucket}/{req.key}") + element("Bucket", req.bucket)
        + element("Key", req.key) + element("ETag", f'"{version.etag}"')
        + checksum_elements(checksums),
    )  # fmt: skip
    return Response(200, dict(_XML), body)


async def handle_abort(req: Request, store: ObjectStore) -> Response:
    upload = await upload_of(req, store)
    await store.multipart.abort(upload)
    return Response(204)


def _bounded_int(head: RequestHead, name: str, default: int, limit: int) -> int:
    value = head.query_value(name)
    if value is None:
        return default
    if not value.isdigit():
        raise errors.InvalidArgument(
            f"Provided {name} not an integer or within integer range",
            ArgumentName=name,
            ArgumentValue=value,
        )
    return min(int(value), limit)


async def handle_list_parts(req: Request, store: ObjectStore) -> Response:
    assert req.bucket is not None and req.key is not None
    head = req.head
    upload = await upload_of(req, store)
    max_parts = _bounded_int(head, "max-parts", 1000, 1000)
    marker = _bounded_int(head, "part-number-marker", 0, MAX_PARTS)
    parts = await store.multipart.list_parts(upload, marker, max_parts + 1)
    truncated = len(parts) > max_parts
    parts = parts[:max_parts]
    entries = "".join(
        "<Part>" + element("PartNumber", p.number)
        + element("LastModified", iso8601(p.last_modified))
        + element("ETag", f'"{p.etag}"') + element("Size", p.size)
        + checksum_elements(p.checksums) + "</Part>"
        for p in parts
    )  # fmt: skip
    algorithm = upload.headers.get("x-amz-checksum-algorithm")
    body = document(
        "ListPartsResult",
        element("Bucket", req.bucket) + element("Key", req.key)
        + element("UploadId", upload.upload_id.hex())
        + f"<Initiator>{OWNER}</Initiator><Owner>{OWNER}</Owner>"
        + element("StorageClass", "STANDARD") + element("PartNumberMarker", marker)
        + element("NextPartNumberMarker", parts[-1].number if parts else marker)
        + element("MaxParts", max_parts) + element("IsTruncated", truncated)
        + (element("ChecksumAlgorithm", algorithm) if algorithm else "") + entries,
    )  # fmt: skip
    return Response(200, dict(_XML), body)


async def handle_list_uploads(req: Request, store: ObjectStore) -> Response:
    assert req.bucket is not None
    head = req.head
    prefix = head.query_value("prefix") or ""
    delimiter = head.query_value("delimiter") or ""
    key_marker = head.query_value("key-marker") or ""
    id_marker = head.query_value("upload-id-marker") or ""
    max_uploads = _bounded_int(head, "max-uploads", 1000, 1000)
    after: tuple[str, bytes] | None = None
    if key_marker:
        # Without an upload-id-marker, listing resumes after every upload of key-marker.
        try:
            after = (key_marker, bytes.fromhex(id_marker)) if id_marker else None
        except ValueError:
            after = None
        if after is None:
            after = (key_marker + "\0", b"")
    service = store.multipart
    uploads: list[Upload] = []
    prefixes: list[str] = []
    truncated = False
    last: tuple[str, str] = ("", "")
    while not truncated:
        batch = await service.list_uploads(req.bucket, prefix, after, 1000)
        for upload in batch:
            common = None
            if delimiter:
                pos = upload.key.find(delimiter, len(prefix))
                common = upload.key[: pos + len(delimiter)] if pos >= 0 else None
            if common is not None and prefixes and prefixes[-1] == common:
                continue
            if len(uploads) + len(prefixes) == max_uploads:
                truncated = True
                break
            if common is not None:
                prefixes.append(common)
                last = (common, "")
            else:
                uploads.append(upload)
                last = (upload.key, upload.upload_id.hex())
        if len(batch) < 1000:
            break
        after = (batch[-1].key, batch[-1].upload_id)
    entries = "".join(
        "<Upload>" + element("Key", u.key) + element("UploadId", u.upload_id.hex())
        + f"<Initiator>{OWNER}</Initiator><Owner>{OWNER}</Owner>"
        + element("StorageClass", "STANDARD") + element("Initiated", iso8601(u.created))
        + "</Upload>"
        for u in uploads
    )  # fmt: skip
    entries += "".join(f"<CommonPrefixes>{element('Prefix', p)}</CommonPrefixes>" for p in prefixes)
    next_markers = (
        element("NextKeyMarker", last[0]) + element("NextUploadIdMarker", last[1])
        if truncated
        else ""
    )
    body = document(
        "ListMultipartUploadsResult",
        element("Bucket", req.bucket) + element("KeyMarker", key_marker)
        + element("UploadIdMarker", id_marker) + next_markers
        + (element("Delimiter", delimiter) if delimiter else "") + element("Prefix", prefix)
        + element("MaxUploads", max_uploads) + element("IsTruncated", truncated) + entries,
    )  # fmt: skip
    return Response(200, dict(_XML), body)
