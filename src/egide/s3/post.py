"""PostObject: the HTML form upload (POST /bucket, multipart/form-data), authorized by the
signed POST policy in the form rather than by request headers.

https://docs.aws.amazon.com/AmazonS3/latest/API/RESTObjectPOST.html
The body is parsed as it streams in: fields before `file` are kept (they are small and
bounded), the policy is verified as soon as the file part begins, and the file's bytes go to
disk one received chunk at a time.
"""

from __future__ import annotations

import asyncio
import tempfile
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import IO
from urllib.parse import quote, urlencode

from python_multipart.exceptions import MultipartParseError
from python_multipart.multipart import MultipartParser, parse_options_header

from egide.auth.credentials import SecretCache
from egide.engine.store import ObjectStore
from egide.s3 import actions, bucketencryption, encryption, errors
from egide.s3.auth import post_policy
from egide.s3.auth.post_policy import PostPolicy
from egide.s3.controls import version_headers
from egide.s3.http import Request, Response
from egide.s3.put import CHECKSUM_TYPE, MAX_OBJECT_SIZE, BodyChecks, check_key, object_headers
from egide.s3.tagging import MAX_OBJECT_TAGS, parse_tagging, with_tags
from egide.s3.xml import DECLARATION, element
from egide.web.request import RequestHead

CHUNK = 1024 * 1024
#: Fields around the file (the policy, the key, metadata…): far below this in practice, and
#: bounded so that a form cannot make the server hold an unbounded amount of text.
MAX_FIELDS_BYTES = 64 * 1024
SUCCESS_STATUSES = {"200": 200, "201": 201, "204": 204}


class _Form:
    """Drives python-multipart's streaming parser over the body.

    Keeps the fields and the file part's name; the file's bytes of the last chunk fed wait in
    `pending` until the caller takes them. S3 ignores the fields after `file`.
    """

    def __init__(self, boundary: bytes) -> None:
        self.fields: dict[str, str] = {}
        self.filename = ""
        self.in_file = False
        self.file_done = False
        self.ended = False
        self.pending: list[bytes] = []
        self._headers: dict[str, str] = {}
        self._header_name = bytearray()
        self._header_value = bytearray()
        self._name = ""
        self._value = bytearray()
        self._skip = False
        self._text_bytes = 0
        self._parser = MultipartParser(
            boundary,
            callbacks={
                "on_part_begin": self._part_begin,
                "on_header_field": lambda data, start, end: self._header_name.extend(
                    data[start:end]
                ),
                "on_header_value": lambda data, start, end: self._header_value.extend(
                    data[start:end]
                ),
                "on_header_end": self._header_end,
                "on_headers_finished": self._headers_finished,
                "on_part_data": self._part_data,
                "on_part_end": self._part_end,
                "on_end": self._end,
            },
        )

    def feed(self, chunk: bytes) -> None:
        try:
            self._parser.write(chunk)
        except MultipartParseError as exc:
            raise errors.MalformedPOSTRequest() from exc

    def take(self) -> bytes:
        data = b"".join(self.pending)
        self.pending.clear()
        return data

    def _part_begin(self) -> None:
        self._headers.clear()
        self._value.clear()

    def _header_end(self) -> None:
        name = self._header_name.decode("latin-1").strip().lower()
        # Bytes kept as they are (parse_options_header gives them back as latin-1 bytes); the
        # parameters are read as UTF-8, strictly, once parsed.
        self._headers[name] = self._header_value.decode("latin-1").strip()
        self._header_name.clear()
        self._header_value.clear()

    def _headers_finished(self) -> None:
        kind, params = parse_options_header(self._headers.get("content-disposition", ""))
        if kind != b"form-data" or b"name" not in params:
            raise errors.MalformedPOSTRequest()
        try:  # names are never mapped: `${filename}` may become the key
            self._name = params[b"name"].decode().lower()
            raw = params.get(b"filename", b"").decode()
        except UnicodeDecodeError as exc:
            raise errors.MalformedPOSTRequest() from exc
        self._skip = self.file_done
        if self._name == "file" and not self.file_done:
            self.in_file = True
            # Browsers send a base name; old ones sent a whole client-side path.
            self.filename = raw.replace("\\", "/").rsplit("/", 1)[-1]

    def _part_data(self, data: bytes, start: int, end: int) -> None:
        if self.in_file:
            self.pending.append(data[start:end])
            return
        self._text_bytes += end - start
        if self._text_bytes > MAX_FIELDS_BYTES:
            raise errors.MaxPostPreDataLengthExceededError()
        if not self._skip:
            self._value += data[start:end]

    def _part_end(self) -> None:
        if self.in_file:
            self.in_file = False
            self.file_done = True
        elif not self._skip:
            try:
                self.fields[self._name] = self._value.decode()
            except UnicodeDecodeError as exc:
                raise errors.MalformedPOSTRequest() from exc

    def _end(self) -> None:
        self.ended = True


CHECKSUM_PREFIX = "x-amz-checksum-"


def _checks_head(fields: dict[str, str]) -> RequestHead:
    """A form's integrity fields as the headers of a PutObject: `x-amz-checksum-<algorithm>`
    and `content-md5` are the headers of that name; `x-amz-checksum-algorithm` is a PUT's
    x-amz-sdk-checksum-algorithm (it must name the algorithm of the value given)."""
    headers = {
        name: value
        for name, value in fields.items()
        if name == "content-md5"
        or (name.startswith(CHECKSUM_PREFIX) and name != "x-amz-checksum-algorithm")
    }
    if "x-amz-checksum-algorithm" in fields:
        headers["x-amz-sdk-checksum-algorithm"] = fields["x-amz-checksum-algorithm"]
    return RequestHead("POST", "/", headers=headers)


def _boundary(head: RequestHead) -> bytes:
    kind, params = parse_options_header(head.header("content-type"))
    if kind != b"multipart/form-data" or not params.get(b"boundary"):
        raise errors.MalformedPOSTRequest(
            "Bucket POST must be of the enclosure-type multipart/form-data."
        )
    return params[b"boundary"]


async def _verify(
    fields: dict[str, str], bucket: str, secrets: SecretCache
) -> tuple[PostPolicy | None, str | None]:
    """Signature, expiry and conditions of the form's policy (the size is checked later), and
    the access key that signed it; (None, None) for an unsigned form (the anonymous caller,
    allowed only where a bucket policy or ACL lets everyone write)."""
    if not any(name in fields for name in ("policy", "x-amz-signature", "x-amz-credential")):
        return None, None
    if not fields.get("policy"):
        raise post_policy.missing_field("policy")
    credential = post_policy.credential(fields)
    # A session's form carries its token as a field: checked as the header is (InvalidToken,
    # ExpiredToken), then its secret and principal are the token's for this request.
    await secrets.load_key(credential.access_key, fields.get("x-amz-security-token"))
    secret = secrets.get(credential.access_key)
    if secret is None:
        raise errors.InvalidAccessKeyId(AWSAccessKeyId=credential.access_key)
    post_policy.verify_signature(fields, credential, secret)
    policy = PostPolicy.decode(fields["policy"])
    policy.check({**fields, "bucket": bucket}, datetime.now(UTC))
    return policy, credential.access_key


async def _spool(form: _Form, chunks: AsyncIterator[bytes], spool: IO[bytes], limit: int) -> int:
    """Write the file to `spool` as it arrives, and read the body to its end; the size."""
    size = 0
    while True:
        data = form.take()
        if data:
            size += len(data)
            if size > limit:
                raise errors.EntityTooLarge(
                    "Your proposed upload exceeds the maximum allowed size",
                    ProposedSize=str(size), MaxSizeAllowed=str(limit),
                )  # fmt: skip
            await asyncio.to_thread(spool.write, data)
        if form.ended:
            return size
        chunk = await anext(chunks, None)
        if chunk is None:
            raise errors.MalformedPOSTRequest(
                "The body of your POST request ended before the closing multipart boundary."
            )
        form.feed(chunk)


async def _read(spool: IO[bytes]) -> AsyncIterator[bytes]:
    while chunk := await asyncio.to_thread(spool.read, CHUNK):
        yield chunk


def _success(req: Request, fields: dict[str, str], key: str, etag: str, scheme: str) -> Response:
    assert req.bucket is not None
    host = req.head.header("host", "") or ""
    # Path style posts to /bucket, virtual-hosted style to / under the bucket's host name.
    location = f"{scheme}://{host}{req.head.raw_path.rstrip('/')}/{quote(key)}"
    headers = {"etag": etag, "location": location}
    redirect = fields.get("success_action_redirect") or fields.get("redirect")
    if redirect:
        query = urlencode({"bucket": req.bucket, "key": key, "etag": etag})
        headers["location"] = f"{redirect}{'&' if '?' in redirect else '?'}{query}"
        return Response(303, headers)
    status = SUCCESS_STATUSES.get(fields.get("success_action_status", ""), 204)
    if status != 201:
        return Response(status, headers)
    # The one S3 document without the S3 namespace: AWS answers a bare <PostResponse>, and
    # clients (ceph/s3-tests among them) read its elements unqualified.
    inner = (
        element("Location", location)
        + element("Bucket", req.bucket)
        + element("Key", key)
        + element("ETag", etag)
    )
    body = f"{DECLARATION}<PostResponse>{inner}</PostResponse>".encode()
    return Response(201, {**headers, "content-type": "application/xml"}, body)


async def handle_post_object(
    req: Request,
    store: ObjectStore,
    *,
    spool_dir: Path | None,
    scheme: str,
    secrets: SecretCache,
    authorize: Callable[[str | None, str, str, actions.ConditionKeys], Awaitable[None]],
) -> Response:
    """`spool_dir` receives the file while it arrives (see below); `scheme` makes the
    object's Location URL; `authorize(access_key, bucket, key, condition_keys)` is asked once
    the policy's signature holds, for the key the form names."""
    assert req.bucket is not None
    form = _Form(_boundary(req.head))
    chunks = aiter(req.body)
    while not (form.in_file or form.file_done or form.ended):
        chunk = await anext(chunks, None)
        if chunk is None:
            break
        form.feed(chunk)
    fields = form.fields
    if not (form.in_file or form.file_done):
        raise errors.InvalidArgument(
            "POST requires exactly one file upload per request.",
            ArgumentName="file", ArgumentValue="0",
        )  # fmt: skip
    if "key" not in fields:
        raise post_policy.missing_field("key")
    policy, access_key = await _verify(fields, req.bucket, secrets)
    key = fields["key"].replace("${filename}", form.filename)
    if not key:
        raise errors.InvalidArgument(
            "User key must have a length greater than 0.", ArgumentName="key", ArgumentValue=""
        )
    check_key(key)
    # A Tagging XML document: the x-amz-tagging of a PUT, for the policy as for the store.
    tags = parse_tagging(fields["tagging"].encode(), MAX_OBJECT_TAGS) if "tagging" in fields else {}
    await authorize(
        access_key,
        req.bucket,
        key,
        actions.form_condition_keys(fields, tags, access_key is not None),
    )
    form_head = RequestHead("POST", "/", headers=dict(fields))
    sse = await bucketencryption.write_encryption(form_head, req.bucket, store)
    headers = object_headers(form_head) | sse.headers
    if tags:
        headers = with_tags(headers, tags)
    # x-amz-checksum-* fields are PutObject's headers, checked by the same BodyChecks.
    checks = BodyChecks(Request(_checks_head(fields), req.bucket, key, req.body, req.request_id))
    await store.bucket(req.bucket)  # fail before receiving the file, not after
    # The form's signer owns what it uploads; its `acl` field is the x-amz-acl of a PUT.
    if access_key is not None:
        req.principal = secrets.principal(access_key)
    acl = {"x-amz-acl": fields["acl"]} if "acl" in fields else {}
    headers.update(await version_headers(req, req.bucket, RequestHead("POST", "/", headers=acl)))
    bounds = policy.length_range() if policy is not None else None
    limit = min(bounds[1], MAX_OBJECT_SIZE) if bounds else MAX_OBJECT_SIZE
    # store.put_object needs the size before the first byte, and a form does not say how
    # large its file is (Content-Length covers the whole form, and what follows the file is
    # not known before it is read). So the file is spooled to an unnamed temporary file on
    # the data disk (never in memory beyond one chunk, never in a RAM-backed /tmp), its size
    # checked against content-length-range as it grows, then streamed into the store.
    with tempfile.TemporaryFile(dir=spool_dir) as spool:
        size = await _spool(form, chunks, spool, limit)
        if policy is not None:
            policy.check_length(size)
        spool.seek(0)

        async def before_commit(etag: str) -> None:
            kept = await checks.verify(etag)
            if kept:  # a checksum of the whole file, as PutObject's
                kept[CHECKSUM_TYPE] = "FULL_OBJECT"
            headers.update(kept)

        version = await store.put_object(
            req.bucket, key, _read(spool), size=size, headers=headers, customer_key=sse.key,
            hashers=checks.hashers, before_commit=before_commit,
        )  # fmt: skip
    response = _success(req, fields, key, f'"{version.etag}"', scheme)
    response.headers.update(
        {n: v for n, v in version.headers.items() if n.startswith(CHECKSUM_PREFIX)}
    )
    response.headers.update(encryption.response_headers(version.headers, sse.customer))
    return response
