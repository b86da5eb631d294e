"""Multipart uploads: Create, UploadPart, Complete, Abort, ListParts, ListMultipartUploads."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

from egide.domain import DeleteMarkerHit, NoSuchUpload, NoSuchVersion, Upload
from egide.engine.multipart import (
    ALGORITHM_HEADER,
    COMPOSITE,
    FULL_OBJECT,
    MAX_PART_SIZE,
    MAX_PARTS,
    TYPE_HEADER,
    ChecksumMismatch,
    CompletedPart,
    Digest,
    PartChecksumMissing,
    check_object_checksum,
    checksum_type,
)
from egide.engine.store import ObjectStore
from egide.s3 import bucketencryption, encryption, errors
from egide.s3.auth.checksums import Checksum, ChecksumAlgorithm
from egide.s3.body import read_small_body
from egide.s3.controls import owners_in, version_headers
from egide.s3.http import Request, Response
from egide.s3.put import (
    BodyChecks,
    capped,
    check_key,
    check_length,
    object_headers,
    write_condition,
)
from egide.s3.xml import document, element, iso8601, parse
from egide.web.request import RequestHead

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


#: Which checksum types each algorithm allows, S3's default first: a full-object checksum is
#: computed from the parts' only for CRCs (they combine), and CRC64NVME has no composite form.
_ALLOWED_TYPES = {
    ChecksumAlgorithm.CRC32: (COMPOSITE, FULL_OBJECT),
    ChecksumAlgorithm.CRC32C: (COMPOSITE, FULL_OBJECT),
    ChecksumAlgorithm.CRC64NVME: (FULL_OBJECT,),
    ChecksumAlgorithm.SHA1: (COMPOSITE,),
    ChecksumAlgorithm.SHA256: (COMPOSITE,),
}


def _checksum_mode(value: str | None) -> str | None:
    if value is not None and value.upper() not in (COMPOSITE, FULL_OBJECT):
        raise errors.InvalidRequest(f"Value for {TYPE_HEADER} header is invalid.")
    return value.upper() if value is not None else None


def upload_checksum_headers(head: RequestHead) -> dict[str, str]:
    """x-amz-checksum-algorithm and x-amz-checksum-type of a CreateMultipartUpload, checked and
    completed with S3's default type (FULL_OBJECT for CRC64NVME, COMPOSITE otherwise):
    https://docs.aws.amazon.com/AmazonS3/latest/userguide/checking-object-integrity.html"""
    algorithm = head.header(ALGORITHM_HEADER)
    kind = _checksum_mode(head.header(TYPE_HEADER))
    if algorithm is None:
        if kind is not None:
            raise errors.InvalidRequest(
                f"The {TYPE_HEADER} header can only be used with the {ALGORITHM_HEADER} header."
            )
        return {}
    try:
        chosen = ChecksumAlgorithm(algorithm.lower())
    except ValueError as exc:
        raise errors.InvalidRequest(
            "Checksum algorithm provided is unsupported. Please try again with any of the "
            "valid types: [CRC32, CRC32C, CRC64NVME, SHA1, SHA256]"
        ) from exc
    allowed = _ALLOWED_TYPES[chosen]
    kind = kind or allowed[0]
    if kind not in allowed:
        raise errors.InvalidRequest(
            f"The {kind} checksum type cannot be used with the {chosen.value} checksum algorithm."
        )
    return {ALGORITHM_HEADER: chosen.name, TYPE_HEADER: kind}


async def handle_create(req: Request, store: ObjectStore) -> Response:
    assert req.bucket is not None and req.key is not None
    check_key(req.key)
    sse = await bucketencryption.write_encryption(req.head, req.bucket, store)
    headers = object_headers(req.head) | sse.headers
    headers.update(await version_headers(req, req.bucket))
    checksum = upload_checksum_headers(req.head)
    headers.update(checksum)
    upload = await store.multipart.create(req.bucket, req.key, headers, sse.key)
    body = document(
        "InitiateMultipartUploadResult",
        element("Bucket", req.bucket) + element("Key", req.key)
        + element("UploadId", upload.upload_id.hex()),
    )  # fmt: skip
    answer = encryption.response_headers(upload.headers, sse.customer)
    return Response(200, {**_XML, **checksum, **answer}, body)


async def handle_upload_part(req: Request, store: ObjectStore) -> Response:
    number = part_number(req.head)
    length = check_length(req.head, MAX_PART_SIZE)
    key = encryption.customer_key(req.head)
    upload = await upload_of(req, store)
    encryption.refuse_write_encryption(req.head, upload.headers)
    encryption.check_customer_key(key, upload.headers, missing=encryption.MISSING_FOR_UPLOAD)
    # Parts count against quotas as they are written (decision 0033), before a byte is read;
    # a chunked part of unannounced size, as its bytes arrive.
    bucket = await store.buckets.by_id(upload.bucket_id)
    body = req.body
    if length is None:
        body = await store.quotas.metered(
            bucket, capped(body, MAX_PART_SIZE, "a part"), adding_objects=0
        )
    else:
        await store.quotas.check(bucket, adding_bytes=length, adding_objects=0)
    checks = BodyChecks(req)
    own = _part_checksum(upload, checks.requested[0] if checks.requested else None)
    if own is not None:
        checks.hashers.append(own)

    async def before_commit(etag: str) -> dict[str, str]:
        kept = await checks.verify(etag)
        if own is not None:
            kept[own.algorithm.header] = own.b64()
        return kept

    part = await store.multipart.upload_part(
        upload, number, body, hashers=checks.hashers, before_commit=before_commit,
        customer_key=key.key if key is not None else None,
    )  # fmt: skip
    sse = encryption.response_headers(upload.headers, key)
    return Response(200, {"etag": f'"{part.etag}"', **part.checksums, **sse})


def server_checksum(upload: Upload) -> Checksum | None:
    """A hasher of the upload's checksum algorithm, for a part whose checksum the server
    computes (UploadPartCopy, or a part sent without one into a FULL_OBJECT upload)."""
    name = upload.headers.get(ALGORITHM_HEADER)
    return Checksum(ChecksumAlgorithm[name]) if name is not None else None


def _part_checksum(upload: Upload, sent: ChecksumAlgorithm | None) -> Checksum | None:
    """Hold a part to its upload's algorithm, as S3 does: another algorithm is refused, and so
    is none in a COMPOSITE upload (its checksum is made of the client's part checksums); in a
    FULL_OBJECT upload the server computes the missing one (the returned hasher)."""
    own = server_checksum(upload)
    if own is None or sent is own.algorithm:
        return None
    if sent is not None or checksum_type(upload.headers) == COMPOSITE:
        raise errors.InvalidRequest(
            "Checksum Type mismatch occurred, expected checksum Type: "
            f"{own.algorithm.value}, actual checksum Type: {sent.value if sent else 'null'}"
        )
    return own


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


def _object_checksum(head: RequestHead) -> tuple[str, str] | None:
    """The client's checksum of the whole object on CompleteMultipartUpload, if it sent one."""
    given = [
        (a.header, head.headers[a.header]) for a in ChecksumAlgorithm if a.header in head.headers
    ]
    if len(given) > 1:
        raise errors.InvalidRequest(
            "Expecting a single x-amz-checksum- header. Multiple checksum Types are not allowed."
        )
    return given[0] if given else None


def _checksum_error(exc: ChecksumMismatch) -> errors.S3Error:
    algorithm = ChecksumAlgorithm(exc.header.removeprefix("x-amz-checksum-"))
    if exc.computed is None:
        return errors.InvalidRequest(
            f"The object has no {algorithm.name} checksum to compare {exc.header} with: the "
            "upload was created with another algorithm, or some parts carry none."
        )
    # BadDigest for any value, even one that is not base64 (test_multipart_checksum_sha256).
    return errors.BadDigest(
        f"The {algorithm.name} you specified did not match the calculated checksum."
    )


def _check_same_mode(upload: Upload, mode: str | None) -> None:
    created = checksum_type(upload.headers)
    if mode is not None and mode != created:
        raise errors.InvalidRequest(
            f"The upload was created using the {created or 'null'} checksum mode. The complete "
            "request must use the same checksum mode."
        )


async def handle_complete(req: Request, store: ObjectStore) -> Response:
    assert req.bucket is not None and req.key is not None
    wanted = upload_id(req.head)
    key = encryption.customer_key(req.head)
    expected = _object_checksum(req.head)
    mode = _checksum_mode(req.head.header(TYPE_HEADER))
    parts = _completed_parts(await read_small_body(req, MAX_COMPLETE_BODY))
    condition = write_condition(req.head)
    try:
        upload = await store.multipart.upload(req.bucket, req.key, wanted)
        encryption.refuse_write_encryption(req.head, upload.headers)
        encryption.check_customer_key(key, upload.headers, missing=encryption.MISSING_FOR_UPLOAD)
        _check_same_mode(upload, mode)
        # Its parts are counted already; the object it becomes is one more.
        bucket = await store.buckets.by_id(upload.bucket_id)
        await store.quotas.check(bucket, adding_bytes=0, adding_objects=1)
        version = await store.multipart.complete(
            upload, parts, checksum_algorithms=_CHECKSUM_FACTORIES, condition=condition,
            expected_checksum=expected,
        )  # fmt: skip
    except ChecksumMismatch as exc:
        raise _checksum_error(exc) from None
    except PartChecksumMissing as exc:
        raise errors.InvalidRequest(
            f"The upload was created using a {exc.algorithm} checksum. The complete request "
            f"must include the checksum for each part. It was missing for part {exc.number} "
            "in the request."
        ) from None
    except NoSuchUpload:
        # A retry after a lost answer: if the upload became a version of the key, completing
        # it again answers the same, as S3 does.
        try:
            version = await store.head_object(req.bucket, req.key, wanted.hex())
        except (NoSuchVersion, DeleteMarkerHit):
            raise errors.NoSuchUpload(UploadId=wanted.hex()) from None
        encryption.refuse_write_encryption(req.head, version.headers)
        encryption.check_customer_key(key, version.headers, missing=encryption.MISSING_FOR_UPLOAD)
        if expected is not None:
            try:
                check_object_checksum(version.headers, *expected, len(version.parts))
            except ChecksumMismatch as exc:
                raise _checksum_error(exc) from None
    checksums = {n: v for n, v in version.headers.items() if n.startswith("x-amz-checksum-")}
    kind = version.headers.get(TYPE_HEADER)
    body = document(
        "CompleteMultipartUploadResult",
        element("Location", f"/{req.bucket}/{req.key}") + element("Bucket", req.bucket)
        + element("Key", req.key) + element("ETag", f'"{version.etag}"')
        + checksum_elements(checksums) + (element("ChecksumType", kind) if kind else ""),
    )  # fmt: skip
    version_header = {} if version.is_null else {"x-amz-version-id": version.s3_version_id}
    sse = encryption.response_headers(version.headers, key)
    return Response(200, {**_XML, **version_header, **sse}, body)


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


def _upload_checksum_elements(upload: Upload) -> str:
    algorithm = upload.headers.get(ALGORITHM_HEADER)
    if algorithm is None:
        return ""
    return element("ChecksumAlgorithm", algorithm) + element(
        "ChecksumType", checksum_type(upload.headers)
    )


async def handle_list_parts(req: Request, store: ObjectStore) -> Response:
    assert req.bucket is not None and req.key is not None
    head = req.head
    upload = await upload_of(req, store)
    max_parts = _bounded_int(head, "max-parts", 1000, 1000)
    marker = _bounded_int(head, "part-number-marker", 0, MAX_PARTS)
    parts = await store.multipart.list_parts(upload, marker, max_parts + 1)
    truncated = len(parts) > max_parts
    parts = parts[:max_parts]
    owner = await owners_in(req)
    entries = "".join(
        "<Part>" + element("PartNumber", p.number)
        + element("LastModified", iso8601(p.last_modified))
        + element("ETag", f'"{p.etag}"') + element("Size", p.size)
        + checksum_elements(p.checksums) + "</Part>"
        for p in parts
    )  # fmt: skip
    body = document(
        "ListPartsResult",
        element("Bucket", req.bucket) + element("Key", req.key)
        + element("UploadId", upload.upload_id.hex())
        + f"<Initiator>{owner(upload.headers)}</Initiator><Owner>{owner(upload.headers)}</Owner>"
        + element("StorageClass", "STANDARD") + element("PartNumberMarker", marker)
        + element("NextPartNumberMarker", parts[-1].number if parts else marker)
        + element("MaxParts", max_parts) + element("IsTruncated", truncated)
        + _upload_checksum_elements(upload) + entries,
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
    owner = await owners_in(req)
    entries = "".join(
        "<Upload>" + element("Key", u.key) + element("UploadId", u.upload_id.hex())
        + f"<Initiator>{owner(u.headers)}</Initiator><Owner>{owner(u.headers)}</Owner>"
        + element("StorageClass", "STANDARD") + element("Initiated", iso8601(u.created))
        + _upload_checksum_elements(u) + "</Upload>"
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
