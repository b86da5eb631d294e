"""PutObject: validate headers, stream the body into the store, check digests before commit."""

from __future__ import annotations

from collections.abc import AsyncIterator

from egide.domain import ObjectVersion, WriteCondition
from egide.engine.store import ObjectStore
from egide.engine.writer import Hasher
from egide.s3 import bucketencryption, encryption, errors
from egide.s3.auth.checksums import Checksum, requested_checksum, verify
from egide.s3.body import content_md5
from egide.s3.controls import version_headers
from egide.s3.http import Request, Response
from egide.s3.object_lock import lock_request
from egide.s3.tagging import stored_tagging
from egide.web.request import RequestHead

CHECKSUM_TYPE = "x-amz-checksum-type"
MAX_OBJECT_SIZE = 5 * 1024**3  # a single PUT; larger objects need multipart upload
MAX_KEY_BYTES = 1024
MAX_METADATA_BYTES = 2 * 1024
#: Standard headers kept with the object and returned on GET/HEAD.
STORED_HEADERS = (
    "content-type",
    "cache-control",
    "content-disposition",
    "content-encoding",
    "content-language",
    "expires",
)
DEFAULT_CONTENT_TYPE = "binary/octet-stream"


def check_key(key: str) -> None:
    if len(key.encode()) > MAX_KEY_BYTES:
        raise errors.KeyTooLongError(
            f"Your key is too long: {len(key.encode())} bytes, the limit is {MAX_KEY_BYTES}.",
            Size=str(len(key.encode())),
            MaxSizeAllowed=str(MAX_KEY_BYTES),
        )


def payload_length(head: RequestHead) -> int | None:
    """The object size the client announces: decoded length for aws-chunked, else Content-Length."""
    streaming = (head.header("x-amz-content-sha256") or "").startswith("STREAMING-")
    if streaming:
        value = head.header("x-amz-decoded-content-length")
        if value is None:
            raise errors.MissingContentLength(
                "You must provide x-amz-decoded-content-length with an aws-chunked body."
            )
    else:
        value = head.header("content-length")
    if value is None:
        return None
    try:
        length = int(value)
    except ValueError as exc:
        raise errors.InvalidArgument(f"Invalid content length {value!r}.") from exc
    if length < 0:
        raise errors.InvalidArgument(f"Invalid content length {value!r}.")
    return length


def object_headers(head: RequestHead) -> dict[str, str]:
    """Headers stored with the object: the standard ones and x-amz-meta-* (size-limited)."""
    stored = {name: head.headers[name] for name in STORED_HEADERS if name in head.headers}
    stored.setdefault("content-type", DEFAULT_CONTENT_TYPE)
    if "content-encoding" in stored:
        # aws-chunked is the transfer framing of the request, not an encoding of the object.
        codings = [c.strip() for c in stored["content-encoding"].split(",")]
        kept = [c for c in codings if c and c != "aws-chunked"]
        if not kept:
            del stored["content-encoding"]
        elif len(kept) < len(codings):
            stored["content-encoding"] = ", ".join(kept)
        # else: kept exactly as the client sent it
    meta = {name: value for name, value in head.headers.items() if name.startswith("x-amz-meta-")}
    size = sum(len(name) - len("x-amz-meta-") + len(value.encode()) for name, value in meta.items())
    if size > MAX_METADATA_BYTES:
        raise errors.MetadataTooLarge(
            f"Your metadata headers are {size} bytes; the limit is {MAX_METADATA_BYTES}.",
            Size=str(size),
            MaxSizeAllowed=str(MAX_METADATA_BYTES),
        )
    stored.update(meta)
    stored.update(stored_tagging(head))
    stored.update(lock_request(head))
    return stored


class BodyChecks:
    """Content-MD5 and x-amz-checksum-* of a request body: the hashers to feed with it, and
    the comparison to run once it is complete, before anything is committed."""

    def __init__(self, req: Request) -> None:
        self.req = req
        self.expected_md5 = content_md5(req.head)
        self.requested = requested_checksum(req.head)
        self.checksum = Checksum(self.requested[0]) if self.requested else None
        self.hashers: list[Hasher] = [self.checksum] if self.checksum else []

    async def verify(self, etag: str) -> dict[str, str]:
        """Raise BadDigest (or InvalidRequest) on a mismatch; else the checksum header to keep
        with the data, if the client sent one."""
        if self.expected_md5 is not None and self.expected_md5.hex() != etag:
            raise errors.BadDigest(
                "The Content-MD5 you specified did not match what we received.",
                ExpectedDigest=self.expected_md5.hex(),
                CalculatedDigest=etag,
            )
        if self.requested is None or self.checksum is None:
            return {}
        algorithm, value = self.requested
        name = f"x-amz-checksum-{algorithm.value}"
        expected = value if value is not None else self.req.trailers.get(name)
        if expected is None:
            raise errors.InvalidRequest(f"The trailer {name} announced was not sent.")
        verify(expected, self.checksum)
        return {name: expected}


def chunked(head: RequestHead) -> bool:
    """Whether the body comes in HTTP/1.1 chunked transfer coding (its size known at its end
    only). Any other transfer coding is refused before this (`check_transfer_encoding`)."""
    return head.header("transfer-encoding") is not None


def check_transfer_encoding(head: RequestHead) -> None:
    """HTTP/1.1 chunked transfer coding is taken on any request; another transfer coding
    (gzip, a chain ending in chunked …) is 501 NotImplemented, as AWS answers, never stored
    still encoded; Content-Length beside Transfer-Encoding is 400 (RFC 9112 §6.3: such a
    message may be a request smuggling attempt)."""
    value = head.header("transfer-encoding")
    if value is None:
        return
    if value.strip().lower() != "chunked":
        raise errors.NotImplementedOperation(
            "A header you provided implies functionality that is not implemented: "
            f"Transfer-Encoding {value!r} (only chunked is).",
            Header="Transfer-Encoding",
        )
    if head.header("content-length") is not None:
        raise errors.InvalidRequest(
            "A request may not carry both Content-Length and Transfer-Encoding."
        )


async def capped(
    body: AsyncIterator[bytes], limit: int, what: str = "a single PUT; use multipart upload"
) -> AsyncIterator[bytes]:
    """A body whose size no header announced, cut with EntityTooLarge past `limit` bytes."""
    received = 0
    async for chunk in body:
        received += len(chunk)
        if received > limit:
            raise errors.EntityTooLarge(
                f"Your upload passed the maximum of {limit} bytes for {what}.",
                MaxSizeAllowed=str(limit),
            )
        yield chunk


def check_length(head: RequestHead, limit: int = MAX_OBJECT_SIZE) -> int | None:
    """The announced body length, at most `limit`; None for a chunked body (no size
    announced: the caller holds the body to `limit` with `capped`). A body of neither is
    411 MissingContentLength, as S3 answers."""
    length = payload_length(head)
    if length is None:
        if chunked(head):
            return None
        raise errors.MissingContentLength()
    if length > limit:
        raise errors.EntityTooLarge(
            f"Your proposed upload of {length} bytes exceeds the maximum of {limit} "
            "bytes for a single PUT; use multipart upload.",
            ProposedSize=str(length),
            MaxSizeAllowed=str(limit),
        )
    return length


def write_condition(head: RequestHead) -> WriteCondition | None:
    """If-None-Match: * / If-Match: "etag" on PutObject and CompleteMultipartUpload."""
    if_none_match = head.header("if-none-match")
    if_match = head.header("if-match")
    if if_none_match is None and if_match is None:
        return None

    def etag(value: str | None) -> str | None:
        return value.strip().strip('"') if value is not None else None

    return WriteCondition(if_none_match=etag(if_none_match), if_match=etag(if_match))


def written_headers(version: ObjectVersion) -> dict[str, str]:
    """Response headers of a write: ETag, the checksum kept, the version id."""
    headers = {"etag": f'"{version.etag}"'}
    headers.update({n: v for n, v in version.headers.items() if n.startswith("x-amz-checksum-")})
    headers.update(encryption.response_headers(version.headers))
    if not version.is_null:
        headers["x-amz-version-id"] = version.s3_version_id
    return headers


async def handle_put_object(req: Request, store: ObjectStore) -> Response:
    assert req.bucket is not None and req.key is not None
    check_key(req.key)
    sse = await bucketencryption.write_encryption(req.head, req.bucket, store)
    length = check_length(req.head)
    condition = write_condition(req.head)
    headers = object_headers(req.head) | sse.headers
    headers.update(await version_headers(req, req.bucket))
    checks = BodyChecks(req)

    async def before_commit(etag: str) -> None:
        kept = await checks.verify(etag)
        if kept:
            # A checksum of the whole body, as S3 reports for a single PUT.
            kept[CHECKSUM_TYPE] = "FULL_OBJECT"
        headers.update(kept)

    version = await store.put_object(
        req.bucket,
        req.key,
        req.body if length is not None else capped(req.body, MAX_OBJECT_SIZE),
        size=length,
        headers=headers,
        hashers=checks.hashers,
        before_commit=before_commit,
        condition=condition,
        customer_key=sse.key,
    )
    answer = written_headers(version) | encryption.response_headers(version.headers, sse.customer)
    return Response(200, answer)
