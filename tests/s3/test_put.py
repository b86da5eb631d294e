"""The request checks of PutObject and UploadPart that a real server cannot show: the HTTP
parser in front of the app already refuses some requests (Content-Length beside
Transfer-Encoding, a last transfer coding other than chunked); the app refuses them too, in
case a parser lets them through."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from egide.s3 import errors
from egide.s3.put import capped, check_length, check_transfer_encoding
from egide.web.request import RequestHead


def head(**headers: str) -> RequestHead:
    return RequestHead("PUT", "/b/k", headers={k.replace("_", "-"): v for k, v in headers.items()})


def test_transfer_encoding() -> None:
    check_transfer_encoding(head())
    check_transfer_encoding(head(transfer_encoding="chunked"))
    check_transfer_encoding(head(transfer_encoding=" Chunked "))
    for coding in ("gzip", "gzip, chunked", "chunked, chunked", "identity"):
        with pytest.raises(errors.NotImplementedOperation) as caught:
            check_transfer_encoding(head(transfer_encoding=coding))
        assert caught.value.fields == {"Header": "Transfer-Encoding"}
    with pytest.raises(errors.InvalidRequest, match="both Content-Length and Transfer"):
        check_transfer_encoding(head(transfer_encoding="chunked", content_length="5"))


def test_length_of_a_chunked_body_is_unknown() -> None:
    assert check_length(head(transfer_encoding="chunked")) is None
    assert check_length(head(content_length="7")) == 7
    with pytest.raises(errors.MissingContentLength):
        check_length(head())
    with pytest.raises(errors.EntityTooLarge):
        check_length(head(content_length=str(5 * 1024**3 + 1)))


async def _drain(body: AsyncIterator[bytes]) -> int:
    return sum([len(chunk) async for chunk in body])


async def _body(*chunks: bytes) -> AsyncIterator[bytes]:
    for chunk in chunks:
        yield chunk


def test_capped_cuts_past_the_limit() -> None:
    assert asyncio.run(_drain(capped(_body(b"ab", b"cd"), 4))) == 4
    with pytest.raises(errors.EntityTooLarge, match="maximum of 4 bytes for a part"):
        asyncio.run(_drain(capped(_body(b"ab", b"cde"), 4, "a part")))
