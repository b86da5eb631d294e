"""Small request bodies (XML documents) and their integrity headers.

Content-MD5 is parsed here for every operation; configuration documents (CORS, tagging) and
DeleteObjects must carry Content-MD5 or an x-amz-checksum-*, which is checked before the
document is used, so that a corrupted rule set or key list never takes effect.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac

from egide.s3 import errors
from egide.s3.auth.checksums import Checksum, requested_checksum, verify
from egide.s3.http import Request
from egide.web.request import RequestHead

MAX_XML_BODY = 64 * 1024


def content_md5(head: RequestHead) -> bytes | None:
    value = head.header("content-md5")
    if value is None:
        return None
    try:
        digest = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise errors.InvalidDigest() from exc
    if len(digest) != 16:
        raise errors.InvalidDigest()
    return digest


async def read_small_body(req: Request, limit: int = MAX_XML_BODY) -> bytes:
    data = bytearray()
    async for chunk in req.body:
        data += chunk
        if len(data) > limit:
            raise errors.MalformedXML(f"The XML document is larger than {limit} bytes.")
    return bytes(data)


async def read_checked_body(req: Request, limit: int = MAX_XML_BODY) -> bytes:
    """The body, after checking the Content-MD5 or x-amz-checksum-* that must come with it."""
    body = await read_small_body(req, limit)
    expected_md5 = content_md5(req.head)
    requested = requested_checksum(req.head)
    if expected_md5 is None and requested is None:
        raise errors.InvalidRequest(
            "Missing required header for this request: Content-MD5 OR x-amz-checksum-*"
        )
    actual_md5 = hashlib.md5(body).digest()
    if expected_md5 is not None and not hmac.compare_digest(expected_md5, actual_md5):
        raise errors.BadDigest(ExpectedDigest=expected_md5.hex(), CalculatedDigest=actual_md5.hex())
    if requested is not None:
        algorithm, value = requested
        expected = value if value is not None else req.trailers.get(algorithm.header)
        if expected is None:
            raise errors.InvalidRequest(f"The trailer {algorithm.header} announced was not sent.")
        checksum = Checksum(algorithm)
        checksum.update(body)
        verify(expected, checksum)
    return body
