"""aws-chunked decoding: the AWS documentation's vectors, botocore's own encoder, and tampering.

Signed bodies beyond the doc examples come from a small signer written here straight from
https://docs.aws.amazon.com/AmazonS3/latest/API/sigv4-streaming.html (and -trailers.html), on top
of a seed request signed by awscrt; unsigned-trailer bodies come from botocore itself.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import io
import random
from collections.abc import AsyncIterator, Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from awscrt import auth as crt_auth
from awscrt import http as crt_http
from botocore.awsrequest import AWSPreparedRequest
from botocore.config import Config
from botocore.httpchecksum import AwsChunkedWrapper, Crc32Checksum, CrtCrc64NvmeChecksum

from egide.auth.sigv4 import AuthResult, PayloadMode, authenticate
from egide.s3 import errors
from egide.s3.auth.checksums import Checksum, ChecksumAlgorithm, requested_checksum, verify
from egide.s3.auth.streaming import ChunkedBodyDecoder
from egide.web.request import RequestHead

DOC_KEY = "AKIAIOSFODNN7EXAMPLE"
DOC_SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
SECRETS = {DOC_KEY: DOC_SECRET}
DOC_NOW = datetime(2013, 5, 24, 0, 1, tzinfo=UTC)
EMPTY = hashlib.sha256(b"").hexdigest()

# https://docs.aws.amazon.com/AmazonS3/latest/API/sigv4-streaming.html
DOC_SEED = "4f232c4386841ef735655705268965c44a0e4690baa4adea153f7db9fa80a0a9"
DOC_CHUNKS = (
    "ad80c730a21e5b8d04586a2213dd63b9a0e99e0e2307b0ade35a65485a288648",
    "0055627c9e194cb4542bae2aa5492e3c1575bbb81b612b7d234b86a503ef5497",
    "b6c6ea8a5354eaf15b3cb7646744f4275b71ea724fed81ceb9323e279d449df9",
)
# https://docs.aws.amazon.com/AmazonS3/latest/API/sigv4-streaming-trailers.html
DOC_TRAILER_SEED = "106e2a8a18243abcf37539882f36619c00e2dfc72633413f02d3b74544bfeb8e"
DOC_TRAILER_CHUNKS = (
    "b474d8862b1487a5145d686f57f013e54db672cee1c953b3010fb58501ef5aa2",
    "1c1344b170168f8e65b41376b44b20fe354e373826ccbbe2c1d40a8cae51e5c7",
    "2ca2aba2005185cf7159c6277faf83795951dd77a3a99e6e65d5c9f85863f992",
)
DOC_TRAILER_SIGNATURE = "d81f82fc3505edab99d459891051a732e8730629a2e4a59689829ca17fe2e435"
DOC_PAYLOAD = b"a" * 66560


def doc_auth(*, trailer: bool) -> AuthResult:
    """Authenticate the doc's seed request: this also checks its seed signature."""
    headers = {
        "host": "s3.amazonaws.com",
        "x-amz-date": "20130524T000000Z",
        "x-amz-storage-class": "REDUCED_REDUNDANCY",
        "content-encoding": "aws-chunked",
        "x-amz-decoded-content-length": "66560",
    }
    if trailer:
        headers["x-amz-content-sha256"] = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER"
        headers["x-amz-trailer"] = "x-amz-checksum-crc32c"
        signed = "content-encoding;host;x-amz-content-sha256;x-amz-date;"
        signed += "x-amz-decoded-content-length;x-amz-storage-class;x-amz-trailer"
        seed = DOC_TRAILER_SEED
    else:
        headers["x-amz-content-sha256"] = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD"
        headers["content-length"] = "66824"
        signed = "content-encoding;content-length;host;x-amz-content-sha256;x-amz-date;"
        signed += "x-amz-decoded-content-length;x-amz-storage-class"
        seed = DOC_SEED
    headers["authorization"] = (
        f"AWS4-HMAC-SHA256 Credential={DOC_KEY}/20130524/us-east-1/s3/aws4_request,"
        f"SignedHeaders={signed},Signature={seed}"
    )
    head = RequestHead("PUT", "/examplebucket/chunkObject.txt", headers=headers)
    result = authenticate(head, SECRETS.get, now=DOC_NOW)
    assert result is not None and result.seed_signature == seed
    return result


def doc_body(*, trailer: bool, blank_line: bool = False) -> bytes:
    sigs = DOC_TRAILER_CHUNKS if trailer else DOC_CHUNKS
    body = (
        f"10000;chunk-signature={sigs[0]}\r\n".encode()
        + b"a" * 65536
        + f"\r\n400;chunk-signature={sigs[1]}\r\n".encode()
        + b"a" * 1024
        + f"\r\n0;chunk-signature={sigs[2]}\r\n".encode()
    )
    if not trailer:
        return body + b"\r\n"
    if blank_line:  # as printed in the AWS doc example
        body += b"\r\n"
    return (
        body
        + b"x-amz-checksum-crc32c:sOO8/Q==\r\n"
        + f"x-amz-trailer-signature:{DOC_TRAILER_SIGNATURE}\r\n\r\n".encode()
    )


def split(data: bytes, rng: random.Random, largest: int) -> list[bytes]:
    pieces, pos = [], 0
    while pos < len(data):
        size = rng.randint(1, largest)
        pieces.append(data[pos : pos + size])
        pos += size
    return pieces


def splits(data: bytes) -> Iterable[list[bytes]]:
    rng = random.Random(len(data))
    yield [data]
    yield [data[i : i + 1] for i in range(len(data))]
    yield split(data, rng, 7)
    yield split(data, rng, 1000)
    yield split(data, rng, 70_000)


async def _source(pieces: Iterable[bytes]) -> AsyncIterator[bytes]:
    for piece in pieces:
        yield piece


def decode(decoder: ChunkedBodyDecoder, pieces: Iterable[bytes]) -> bytes:
    async def run() -> bytes:
        out = bytearray()
        async for part in decoder.decode(_source(pieces)):
            out += part
        return bytes(out)

    return asyncio.run(run())


# --- the AWS documentation's examples --------------------------------------------------------


def test_aws_doc_signed_example() -> None:
    auth = doc_auth(trailer=False)
    assert auth.payload_mode is PayloadMode.STREAMING_SIGNED
    for pieces in splits(doc_body(trailer=False)):
        decoder = ChunkedBodyDecoder(auth, None, decoded_length=66560)
        assert decode(decoder, pieces) == DOC_PAYLOAD
        assert decoder.trailers == {}


@pytest.mark.parametrize("blank_line", [False, True])
def test_aws_doc_signed_trailer_example(blank_line: bool) -> None:
    auth = doc_auth(trailer=True)
    body = doc_body(trailer=True, blank_line=blank_line)
    for pieces in splits(body):
        decoder = ChunkedBodyDecoder(auth, "x-amz-checksum-crc32c", decoded_length=66560)
        assert decode(decoder, pieces) == DOC_PAYLOAD
        assert decoder.trailers == {"x-amz-checksum-crc32c": "sOO8/Q=="}
    checksum = Checksum(ChecksumAlgorithm.CRC32C)
    checksum.update(DOC_PAYLOAD)
    verify(decoder.trailers["x-amz-checksum-crc32c"], checksum)


@pytest.mark.parametrize("offset", [100, 65536 + 60, 66000])
def test_tampered_data(offset: int) -> None:
    body = bytearray(doc_body(trailer=False))
    body[offset] ^= 1
    with pytest.raises(errors.SignatureDoesNotMatch):
        decode(ChunkedBodyDecoder(doc_auth(trailer=False), None), [bytes(body)])


def test_nothing_unverified_is_passed_on() -> None:
    body = bytearray(doc_body(trailer=False))
    body[65536 + 80] ^= 1  # the last byte of the first chunk's data
    decoder = ChunkedBodyDecoder(doc_auth(trailer=False), None)
    emitted = 0
    with pytest.raises(errors.SignatureDoesNotMatch):
        for piece in split(bytes(body), random.Random(1), 4096):
            emitted += sum(len(part) for part in decoder.feed(piece))
    assert emitted == 0


@pytest.mark.parametrize("which", range(3))
def test_tampered_chunk_signature(which: int) -> None:
    good = DOC_CHUNKS[which]
    bad = good[:10] + ("0" if good[10] != "0" else "1") + good[11:]
    body = doc_body(trailer=False).replace(good.encode(), bad.encode())
    with pytest.raises(errors.SignatureDoesNotMatch):
        decode(ChunkedBodyDecoder(doc_auth(trailer=False), None), [body])


def test_tampered_trailer() -> None:
    auth = doc_auth(trailer=True)
    value = doc_body(trailer=True).replace(b"sOO8/Q==", b"AAAAAA==")
    with pytest.raises(errors.SignatureDoesNotMatch):
        decode(ChunkedBodyDecoder(auth, "x-amz-checksum-crc32c"), [value])
    signature = doc_body(trailer=True).replace(b"d81f82fc", b"d81f82fd")
    with pytest.raises(errors.SignatureDoesNotMatch):
        decode(ChunkedBodyDecoder(auth, "x-amz-checksum-crc32c"), [signature])
    unsigned = doc_body(trailer=True).replace(
        f"x-amz-trailer-signature:{DOC_TRAILER_SIGNATURE}\r\n".encode(), b""
    )
    with pytest.raises(errors.IncompleteBody):
        decode(ChunkedBodyDecoder(auth, "x-amz-checksum-crc32c"), [unsigned])


@pytest.mark.parametrize("trailer", [False, True])
def test_truncated(trailer: bool) -> None:
    body = doc_body(trailer=trailer)
    name = "x-amz-checksum-crc32c" if trailer else None
    for end in (0, 5, 90, 65536 + 88, 65536 + 90, 66600, len(body) - 40, len(body) - 3):
        with pytest.raises(errors.IncompleteBody):
            decode(ChunkedBodyDecoder(doc_auth(trailer=trailer), name), [body[:end]])


def test_final_crlf_may_be_missing() -> None:
    body = doc_body(trailer=True)[:-2]
    decoder = ChunkedBodyDecoder(doc_auth(trailer=True), "x-amz-checksum-crc32c")
    assert decode(decoder, [body]) == DOC_PAYLOAD


def test_decoded_length() -> None:
    auth, body = doc_auth(trailer=False), doc_body(trailer=False)
    for wrong in (66559, 66561, 0):
        with pytest.raises(errors.IncompleteBody):
            decode(ChunkedBodyDecoder(auth, None, decoded_length=wrong), [body])


def test_data_after_the_end() -> None:
    body = doc_body(trailer=False) + b"0\r\n"
    with pytest.raises(errors.IncompleteBody):
        decode(ChunkedBodyDecoder(doc_auth(trailer=False), None), [body])


def test_only_streaming_modes() -> None:
    auth = doc_auth(trailer=False)
    unsigned = AuthResult(DOC_KEY, PayloadMode.UNSIGNED, None, b"", "", "", "")
    with pytest.raises(ValueError):
        ChunkedBodyDecoder(unsigned, None)
    assert ChunkedBodyDecoder(auth, None).auth is auth


# --- signed bodies of any shape: awscrt seed + a signer written from the doc ------------------


def crt_seed_auth(mode: PayloadMode, trailer: str | None, decoded_length: int) -> AuthResult:
    """Sign the seed request with awscrt (an independent SigV4 implementation)."""
    headers = [
        ("Host", "localhost:9000"),
        ("Content-Encoding", "aws-chunked"),
        ("x-amz-decoded-content-length", str(decoded_length)),
    ]
    if trailer:
        headers.append(("x-amz-trailer", trailer))
    config = crt_auth.AwsSigningConfig(
        algorithm=crt_auth.AwsSigningAlgorithm.V4,
        signature_type=crt_auth.AwsSignatureType.HTTP_REQUEST_HEADERS,
        credentials_provider=crt_auth.AwsCredentialsProvider.new_static(DOC_KEY, DOC_SECRET),
        region="eu-west-3",
        service="s3",
        date=DOC_NOW,
        use_double_uri_encode=False,
        should_normalize_uri_path=False,
        signed_body_value=mode.value,
        signed_body_header_type=crt_auth.AwsSignedBodyHeaderType.X_AMZ_CONTENT_SHA_256,
    )
    request = crt_http.HttpRequest("PUT", "/bucket/key", crt_http.HttpHeaders(headers))
    signed = crt_auth.aws_sign_request(request, config).result(timeout=10)
    head = RequestHead("PUT", "/bucket/key", headers={k.lower(): v for k, v in signed.headers})
    result = authenticate(head, SECRETS.get, now=DOC_NOW)
    assert result is not None and result.payload_mode is mode
    return result


def _hmac(key: bytes, text: str) -> bytes:
    return hmac.new(key, text.encode(), hashlib.sha256).digest()


def sign_body(
    auth: AuthResult,
    payload: bytes,
    sizes: list[int],
    trailer: tuple[str, str] | None = None,
) -> bytes:
    """aws-chunked encode and sign `payload` as an SDK would, from the AWS doc's recipe."""
    date, region, _, _ = auth.scope.split("/")
    key = ("AWS4" + DOC_SECRET).encode()
    for part in (date, region, "s3", "aws4_request"):
        key = _hmac(key, part)
    head = f"{auth.amz_date}\n{auth.scope}\n"
    previous, out, pos = auth.seed_signature, bytearray(), 0
    for size in [*sizes, 0]:
        chunk = payload[pos : pos + size]
        pos += size
        to_sign = f"AWS4-HMAC-SHA256-PAYLOAD\n{head}{previous}\n{EMPTY}\n"
        previous = _hmac(key, to_sign + hashlib.sha256(chunk).hexdigest()).hex()
        out += f"{size:x};chunk-signature={previous}\r\n".encode() + chunk
        if size or trailer is None:
            out += b"\r\n"
    assert pos == len(payload)
    if trailer is not None:
        canonical = f"{trailer[0]}:{trailer[1]}\n"
        to_sign = f"AWS4-HMAC-SHA256-TRAILER\n{head}{previous}\n"
        signature = _hmac(key, to_sign + hashlib.sha256(canonical.encode()).hexdigest()).hex()
        out += f"{trailer[0]}:{trailer[1]}\r\nx-amz-trailer-signature:{signature}\r\n\r\n".encode()
    return bytes(out)


def chunk_sizes(total: int, rng: random.Random) -> list[int]:
    sizes = []
    while total > 0:
        size = min(total, rng.randint(8192, 200_000))
        sizes.append(size)
        total -= size
    return sizes


@pytest.mark.parametrize("seed", range(4))
def test_signed_random_bodies(seed: int) -> None:
    rng = random.Random(seed)
    payload = rng.randbytes(rng.randint(0, 700_000))
    auth = crt_seed_auth(PayloadMode.STREAMING_SIGNED, None, len(payload))
    body = sign_body(auth, payload, chunk_sizes(len(payload), rng))
    for largest in (1 << 16, 13, 300_000):
        decoder = ChunkedBodyDecoder(auth, None, decoded_length=len(payload))
        assert decode(decoder, split(body, rng, largest)) == payload


@pytest.mark.parametrize("seed", range(4))
def test_signed_trailer_random_bodies(seed: int) -> None:
    rng = random.Random(seed)
    payload = rng.randbytes(rng.randint(1, 500_000))
    name = "x-amz-checksum-crc64nvme"
    auth = crt_seed_auth(PayloadMode.STREAMING_SIGNED_TRAILER, name, len(payload))
    checksum = Checksum(ChecksumAlgorithm.CRC64NVME)
    checksum.update(payload)
    body = sign_body(auth, payload, chunk_sizes(len(payload), rng), (name, checksum.b64()))
    decoder = ChunkedBodyDecoder(auth, name, decoded_length=len(payload))
    output = decode(decoder, split(body, rng, 1 << 16))
    assert output == payload
    computed = Checksum(ChecksumAlgorithm.CRC64NVME)
    computed.update(output)
    verify(decoder.trailers[name], computed)


def test_small_chunk_before_the_last() -> None:
    payload = bytes(20_000)
    auth = crt_seed_auth(PayloadMode.STREAMING_SIGNED, None, len(payload))
    body = sign_body(auth, payload, [10_000, 100, 9_900])
    with pytest.raises(errors.InvalidChunkSizeError) as caught:
        decode(ChunkedBodyDecoder(auth, None), [body])
    assert caught.value.fields == {"Chunk": "3", "BadChunkSize": "100"}
    assert decode(ChunkedBodyDecoder(auth, None), [sign_body(auth, payload, [19_000, 1000])])


def test_oversized_signed_chunk() -> None:
    payload = bytes(50_000)
    auth = crt_seed_auth(PayloadMode.STREAMING_SIGNED, None, len(payload))
    body = sign_body(auth, payload, [50_000])
    with pytest.raises(errors.InvalidRequest):
        decode(ChunkedBodyDecoder(auth, None, max_chunk_size=40_000), [body])


def test_missing_chunk_signature() -> None:
    auth = doc_auth(trailer=False)
    body = doc_body(trailer=False).replace(f";chunk-signature={DOC_CHUNKS[0]}".encode(), b"")
    with pytest.raises(errors.IncompleteBody):
        decode(ChunkedBodyDecoder(auth, None), [body])


# --- unsigned trailers, encoded by botocore --------------------------------------------------


def unsigned_auth(decoded_length: int) -> AuthResult:
    return crt_seed_auth(
        PayloadMode.STREAMING_UNSIGNED_TRAILER, "x-amz-checksum-crc32", decoded_length
    )


@pytest.mark.parametrize("size", [0, 1, 65536, 65537, 1_000_000])
def test_botocore_unsigned_trailer(size: int) -> None:
    payload = random.Random(size).randbytes(size)
    name = "x-amz-checksum-crc32"
    wrapper = AwsChunkedWrapper(io.BytesIO(payload), Crc32Checksum, name, chunk_size=65536)
    body = wrapper.read()
    auth = unsigned_auth(size)
    for pieces in splits(body) if size <= 65537 else [split(body, random.Random(0), 1 << 16)]:
        decoder = ChunkedBodyDecoder(auth, " X-Amz-Checksum-CRC32 ,", decoded_length=size)
        output = decode(decoder, pieces)
        assert output == payload
        checksum = Checksum(ChecksumAlgorithm.CRC32)
        checksum.update(output)
        verify(decoder.trailers[name], checksum)


def test_botocore_unsigned_trailer_wrong_checksum() -> None:
    payload = b"x" * 100_000
    name = "x-amz-checksum-crc64nvme"
    body = AwsChunkedWrapper(io.BytesIO(payload), CrtCrc64NvmeChecksum, name, 65536).read()
    decoder = ChunkedBodyDecoder(unsigned_auth(len(payload)), name)
    output = decode(decoder, [body])
    checksum = Checksum(ChecksumAlgorithm.CRC64NVME)
    checksum.update(output + b"y")
    with pytest.raises(errors.BadDigest, match="The CRC64NVME you specified did not match"):
        verify(decoder.trailers[name], checksum)


def test_unsigned_trailer_malformed() -> None:
    name = "x-amz-checksum-crc32"
    body = AwsChunkedWrapper(io.BytesIO(b"z" * 9000), Crc32Checksum, name, 65536).read()
    auth = unsigned_auth(9000)
    with pytest.raises(errors.MalformedTrailerError):  # announced trailer missing
        decode(ChunkedBodyDecoder(auth, "x-amz-checksum-crc32c"), [body])
    with pytest.raises(errors.IncompleteBody):  # no trailer at all
        decode(ChunkedBodyDecoder(auth, name), [body[: body.index(b"0\r\nx-amz") + 3] + b"\r\n"])
    extra = body[:-2] + b"x-amz-meta-a:b\r\n\r\n"
    with pytest.raises(errors.MalformedTrailerError):
        decode(ChunkedBodyDecoder(auth, name), [extra])
    for broken in (b"zz" + body[4:], body.replace(b"\r\n", b"\n", 1), body[:-4]):
        with pytest.raises((errors.IncompleteBody, errors.MalformedTrailerError)):
            decode(ChunkedBodyDecoder(auth, name), [broken])


class _Captured(Exception):
    def __init__(self, request: AWSPreparedRequest) -> None:
        self.request = request


def test_boto3_put_object_over_https() -> None:
    """The whole path for what boto3 sends by default: auth, checksum request, body."""
    client: Any = boto3.client(
        "s3",
        endpoint_url="https://localhost:9443",
        region_name="us-east-1",
        aws_access_key_id=DOC_KEY,
        aws_secret_access_key=DOC_SECRET,
        config=Config(s3={"addressing_style": "path"}),
    )

    def stop(request: AWSPreparedRequest, **_: Any) -> None:
        raise _Captured(request)

    client.meta.events.register("before-send.s3", stop)
    payload = random.Random(3).randbytes(2_500_000)
    with pytest.raises(_Captured) as caught:
        client.put_object(Bucket="b", Key="dir/k ey", Body=io.BytesIO(payload))
    request = caught.value.request
    headers = {
        k.lower(): v.decode() if isinstance(v, bytes) else v for k, v in request.headers.items()
    }
    headers["host"] = "localhost:9443"
    head = RequestHead("PUT", request.url.split("9443", 1)[1], headers=headers)
    auth = authenticate(head, SECRETS.get, now=datetime.now(UTC) + timedelta(seconds=1))
    assert auth is not None and auth.payload_mode is PayloadMode.STREAMING_UNSIGNED_TRAILER
    requested = requested_checksum(head)
    assert requested == (ChecksumAlgorithm.CRC32, None)
    decoder = ChunkedBodyDecoder(
        auth, headers["x-amz-trailer"], decoded_length=int(headers["x-amz-decoded-content-length"])
    )
    body = request.body.read()
    output = decode(decoder, split(body, random.Random(4), 1 << 16))
    assert output == payload
    checksum = Checksum(ChecksumAlgorithm.CRC32)
    checksum.update(output)
    verify(decoder.trailers["x-amz-checksum-crc32"], checksum)
