"""Authentication and payload integrity, end to end: a real `egide serve`, real HTTP(S), real
clients (boto3, urllib, http.client), and requests crafted byte by byte where no client sends
the case under test (wrong trailers, tampered chunks, short bodies).

Every failure is checked on the wire: the HTTP status and the S3 error Code of the XML body.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import http.client
import socket
import ssl
import time
import urllib.error
import urllib.request
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from unittest import mock
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit
from xml.etree import ElementTree

import boto3
import pytest
import trustme
from awscrt import checksums as crt_checksums
from botocore.auth import S3SigV4Auth, S3SigV4QueryAuth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from botocore.exceptions import ClientError

ACCESS_KEY = "EGTESTACCESSKEY0001"  # as in tests/conftest.py
SECRET_KEY = "egide-test-secret-key-0001"
REGION = "us-east-1"
EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()
STREAMING_SIGNED = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD"
STREAMING_SIGNED_TRAILER = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER"
STREAMING_UNSIGNED_TRAILER = "STREAMING-UNSIGNED-PAYLOAD-TRAILER"

pytestmark = pytest.mark.timeout(120)


# --- helpers ---------------------------------------------------------------------------------


@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    body: bytes

    @property
    def error(self) -> dict[str, str]:
        """The children of <Error> (Code, Message, …) of an S3 error body."""
        root = ElementTree.fromstring(self.body)
        assert root.tag == "Error", self.body
        return {child.tag: child.text or "" for child in root}

    def expect_error(self, status: int, code: str) -> dict[str, str]:
        assert (self.status, self.error.get("Code")) == (status, code), self.body
        assert self.headers.get("content-type") == "application/xml"
        return self.error


def client_error(exc: pytest.ExceptionInfo[ClientError]) -> tuple[int, str]:
    response = exc.value.response
    return response["ResponseMetadata"]["HTTPStatusCode"], response["Error"]["Code"]


def connection(server: Any) -> http.client.HTTPConnection:
    if server.scheme == "https":
        context = ssl.create_default_context(cafile=str(server.ca_file))
        return http.client.HTTPSConnection("127.0.0.1", server.port, timeout=30, context=context)
    return http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)


def send(server: Any, method: str, path: str, headers: dict[str, str], body: bytes = b"") -> Reply:
    """One request on a fresh connection; http.client adds Host and Content-Length."""
    conn = connection(server)
    try:
        conn.request(method, path, body=body, headers=headers)
        response = conn.getresponse()
        return Reply(
            response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
        )
    finally:
        conn.close()


class _FixedPayloadSigner(S3SigV4Auth):
    """botocore's S3 SigV4 signer, with x-amz-content-sha256 chosen by the test."""

    def __init__(self, payload: str, access_key: str, secret_key: str) -> None:
        super().__init__(Credentials(access_key, secret_key), "s3", REGION)
        self._payload = payload

    def payload(self, request: AWSRequest) -> str:
        return self._payload


@dataclass
class Signed:
    headers: dict[str, str]
    amz_date: str
    signature: str


def sign(
    server: Any,
    method: str,
    path: str,
    payload: str,
    headers: dict[str, str] | None = None,
    *,
    when: datetime | None = None,
    access_key: str = ACCESS_KEY,
    secret_key: str = SECRET_KEY,
) -> Signed:
    """Headers signed by botocore's S3SigV4Auth, at `when` (default: now)."""
    request = AWSRequest(method=method, url=server.endpoint + path, headers=headers or {})
    signer = _FixedPayloadSigner(payload, access_key, secret_key)
    moment = when or datetime.now(UTC)
    with mock.patch("botocore.auth.get_current_datetime", return_value=moment):
        signer.add_auth(request)
    out = {k: v.decode() if isinstance(v, bytes) else v for k, v in request.headers.items()}
    signature = out["Authorization"].rsplit("Signature=", 1)[1]
    return Signed(out, request.context["timestamp"], signature)


def signing_key(secret: str, date: str) -> bytes:
    key = ("AWS4" + secret).encode()
    for part in (date, REGION, "s3", "aws4_request"):
        key = hmac.digest(key, part.encode(), "sha256")
    return key


def signed_chunks(
    data: bytes,
    chunk_size: int,
    *,
    seed_signature: str,
    amz_date: str,
    secret: str = SECRET_KEY,
    tamper: Callable[[int, bytes], bytes] | None = None,
    trailers: dict[str, str] | None = None,
    trailer_signature: str | None = None,
) -> bytes:
    """An aws-chunked body with chunk signatures, per
    https://docs.aws.amazon.com/AmazonS3/latest/API/sigv4-streaming.html (and, with `trailers`,
    https://docs.aws.amazon.com/AmazonS3/latest/API/sigv4-streaming-trailers.html: signed
    trailers after the final chunk). `tamper(index, chunk)` may change a chunk's bytes after it
    was signed; `trailer_signature` replaces the right one."""
    key = signing_key(secret, amz_date[:8])
    scope = f"{amz_date[:8]}/{REGION}/s3/aws4_request"

    def hmac_hex(string_to_sign: str) -> str:
        return hmac.new(key, string_to_sign.encode(), "sha256").hexdigest()

    previous = seed_signature
    out = bytearray()
    pieces = [data[i : i + chunk_size] for i in range(0, len(data), chunk_size)] + [b""]
    for index, chunk in enumerate(pieces):
        chunk_sha256 = hashlib.sha256(chunk).hexdigest()
        previous = hmac_hex(
            f"AWS4-HMAC-SHA256-PAYLOAD\n{amz_date}\n{scope}\n{previous}\n{EMPTY_SHA256}\n"
            f"{chunk_sha256}"
        )
        out += f"{len(chunk):x};chunk-signature={previous}\r\n".encode()
        if chunk:
            out += (tamper(index, chunk) if tamper else chunk) + b"\r\n"
    if trailers is not None:
        canonical = "".join(f"{name}:{value}\n" for name, value in sorted(trailers.items()))
        digest = hashlib.sha256(canonical.encode()).hexdigest()
        right = hmac_hex(f"AWS4-HMAC-SHA256-TRAILER\n{amz_date}\n{scope}\n{previous}\n{digest}")
        out += "".join(f"{name}:{value}\r\n" for name, value in trailers.items()).encode()
        out += f"x-amz-trailer-signature:{trailer_signature or right}\r\n".encode()
    return bytes(out + b"\r\n")


def crc32_b64(data: bytes) -> str:
    return base64.b64encode(zlib.crc32(data).to_bytes(4, "big")).decode()


def expected_checksum(algorithm: str, data: bytes) -> str:
    if algorithm in ("SHA1", "SHA256"):
        return base64.b64encode(hashlib.new(algorithm.lower(), data).digest()).decode()
    crc = {"CRC32": crt_checksums.crc32, "CRC32C": crt_checksums.crc32c}
    if algorithm == "CRC64NVME":
        return base64.b64encode(crt_checksums.crc64nvme(data).to_bytes(8, "big")).decode()
    return base64.b64encode(crc[algorithm](data).to_bytes(4, "big")).decode()


def assert_not_stored(s3: Any, bucket: str, key: str) -> None:
    with pytest.raises(ClientError) as exc:
        s3.head_object(Bucket=bucket, Key=key)
    assert client_error(exc)[0] == 404


def bad_client(server: Any, access_key: str, secret_key: str) -> Any:
    return boto3.client(
        "s3",
        endpoint_url=server.endpoint,
        aws_access_key_id=access_key,
        aws_secret_access_key=secret_key,
        region_name=REGION,
    )


# --- credentials -----------------------------------------------------------------------------


def test_wrong_secret_is_signature_does_not_match(shared_server: Any, bucket: str) -> None:
    client = bad_client(shared_server, ACCESS_KEY, SECRET_KEY + "x")
    with pytest.raises(ClientError) as exc:
        client.list_objects_v2(Bucket=bucket)
    assert client_error(exc) == (403, "SignatureDoesNotMatch")
    with pytest.raises(ClientError) as exc:
        client.put_object(Bucket=bucket, Key="k", Body=b"data")
    assert client_error(exc) == (403, "SignatureDoesNotMatch")


def test_unknown_access_key_is_invalid_access_key_id(shared_server: Any, bucket: str) -> None:
    client = bad_client(shared_server, "EGUNKNOWNACCESSKEY99", SECRET_KEY)
    with pytest.raises(ClientError) as exc:
        client.list_objects_v2(Bucket=bucket)
    assert client_error(exc) == (403, "InvalidAccessKeyId")
    assert exc.value.response["Error"].get("AWSAccessKeyId") == "EGUNKNOWNACCESSKEY99"


def test_anonymous_request_is_access_denied(shared_server: Any, bucket: str) -> None:
    with pytest.raises(urllib.error.HTTPError) as exc:
        urllib.request.urlopen(f"{shared_server.endpoint}/{bucket}", timeout=30)
    reply = Reply(exc.value.code, {k.lower(): v for k, v in exc.value.headers.items()},
                  exc.value.read())  # fmt: skip
    reply.expect_error(403, "AccessDenied")
    # Also with http.client, on an object path.
    send(shared_server, "GET", f"/{bucket}/some-key", {}).expect_error(403, "AccessDenied")


# --- presigned URLs --------------------------------------------------------------------------


@pytest.fixture
def presigner(shared_server: Any) -> Any:
    """boto3 presigns with SigV2 for us-east-1 unless told otherwise; Égide only does SigV4."""
    return shared_server.client(signature_version="s3v4")


def test_sigv2_presigned_url_is_refused(s3: Any, shared_server: Any, bucket: str) -> None:
    """SigV2 is deliberately not implemented. Beware: boto3 1.44 still presigns with SigV2 for
    us-east-1 when no signature_version is configured, so such URLs are refused."""
    s3.put_object(Bucket=bucket, Key="k", Body=b"x")
    sigv2 = shared_server.client(signature_version="s3")
    url = sigv2.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": "k"})
    assert "AWSAccessKeyId=" in url
    parts = urlsplit(url)
    reply = send(shared_server, "GET", f"{parts.path}?{parts.query}", {})
    reply.expect_error(400, "InvalidArgument")


def test_presigned_get_with_urllib(s3: Any, presigner: Any, bucket: str) -> None:
    data = b"presigned \x00\xff payload" * 100
    s3.put_object(Bucket=bucket, Key="dir/pre signed+é.bin", Body=data)
    url = presigner.generate_presigned_url(
        "get_object", Params={"Bucket": bucket, "Key": "dir/pre signed+é.bin"}, ExpiresIn=300
    )
    with urllib.request.urlopen(url, timeout=30) as response:
        assert response.status == 200
        assert response.read() == data


def test_presigned_url_expires(s3: Any, presigner: Any, shared_server: Any, bucket: str) -> None:
    s3.put_object(Bucket=bucket, Key="k", Body=b"x")
    url = presigner.generate_presigned_url(
        "get_object", Params={"Bucket": bucket, "Key": "k"}, ExpiresIn=1
    )
    time.sleep(2.2)
    parts = urlsplit(url)
    reply = send(shared_server, "GET", f"{parts.path}?{parts.query}", {})
    error = reply.expect_error(403, "AccessDenied")
    assert "expired" in error["Message"].lower()


def _tamper_key(url: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=parts.path + "2"))


def _tamper_expires(url: str) -> str:
    parts = urlsplit(url)
    query = [(k, "3600" if k == "X-Amz-Expires" else v) for k, v in parse_qsl(parts.query)]
    return urlunsplit(parts._replace(query=urlencode(query)))


def _tamper_signature(url: str) -> str:
    parts = urlsplit(url)
    query = [
        (k, ("0" if v[0] != "0" else "1") + v[1:] if k == "X-Amz-Signature" else v)
        for k, v in parse_qsl(parts.query)
    ]
    return urlunsplit(parts._replace(query=urlencode(query)))


@pytest.mark.parametrize("tamper", [_tamper_key, _tamper_expires, _tamper_signature])
def test_tampered_presigned_url(
    s3: Any, presigner: Any, shared_server: Any, bucket: str, tamper: Callable[[str], str]
) -> None:
    s3.put_object(Bucket=bucket, Key="k", Body=b"x")
    s3.put_object(Bucket=bucket, Key="k2", Body=b"y")
    url = presigner.generate_presigned_url(
        "get_object", Params={"Bucket": bucket, "Key": "k"}, ExpiresIn=60
    )
    with urllib.request.urlopen(url, timeout=30) as response:
        assert response.read() == b"x"  # the untampered URL works
    parts = urlsplit(tamper(url))
    reply = send(shared_server, "GET", f"{parts.path}?{parts.query}", {})
    reply.expect_error(403, "SignatureDoesNotMatch")


# --- clock skew ------------------------------------------------------------------------------


@pytest.mark.parametrize("offset", [timedelta(minutes=-20), timedelta(minutes=20)])
@pytest.mark.parametrize("date_header", ["x-amz-date", "Date"])
def test_request_time_too_skewed(
    shared_server: Any, bucket: str, offset: timedelta, date_header: str
) -> None:
    path = f"/{bucket}?list-type=2"
    # botocore signs with the Date header (and no X-Amz-Date) when the request carries one.
    headers = {"Date": "placeholder"} if date_header == "Date" else {}
    # The same request signed now is accepted: only the clock makes the difference.
    ok = sign(shared_server, "GET", path, EMPTY_SHA256, dict(headers))
    assert send(shared_server, "GET", path, ok.headers).status == 200
    when = datetime.now(UTC) + offset
    skewed = sign(shared_server, "GET", path, EMPTY_SHA256, dict(headers), when=when)
    assert (date_header == "Date") == ("X-Amz-Date" not in skewed.headers)
    error = send(shared_server, "GET", path, skewed.headers).expect_error(
        403, "RequestTimeTooSkewed"
    )
    sent_time = skewed.headers["Date" if date_header == "Date" else "X-Amz-Date"]
    assert error.get("RequestTime") == sent_time
    assert error.get("MaxAllowedSkewMilliseconds") == "900000"


def test_presigned_url_not_yet_valid(shared_server: Any, s3: Any, bucket: str) -> None:
    """A presigned URL dated more than 15 minutes ahead is refused until then."""
    s3.put_object(Bucket=bucket, Key="k", Body=b"x")
    urls = []
    for ahead in (timedelta(minutes=5), timedelta(minutes=30)):
        request = AWSRequest(method="GET", url=f"{shared_server.endpoint}/{bucket}/k")
        signer = S3SigV4QueryAuth(Credentials(ACCESS_KEY, SECRET_KEY), "s3", REGION, expires=3600)
        with mock.patch(
            "botocore.auth.get_current_datetime", return_value=datetime.now(UTC) + ahead
        ):
            signer.add_auth(request)
        urls.append(urlsplit(request.url))
    soon, later = urls
    assert send(shared_server, "GET", f"{soon.path}?{soon.query}", {}).body == b"x"
    reply = send(shared_server, "GET", f"{later.path}?{later.query}", {})
    assert "not valid yet" in reply.expect_error(403, "AccessDenied")["Message"]


# --- HTTPS, aws-chunked with unsigned payload and a checksum trailer ---------------------------


@pytest.fixture(scope="module")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    """A throw-away CA and a certificate for 127.0.0.1: (cert chain, key, CA) PEM files."""
    root = tmp_path_factory.mktemp("tls")
    ca = trustme.CA()
    leaf = ca.issue_cert("127.0.0.1")
    cert, key, ca_file = root / "cert.pem", root / "key.pem", root / "ca.pem"
    cert.write_bytes(b"".join(blob.bytes() for blob in leaf.cert_chain_pems))
    leaf.private_key_pem.write_to_path(str(key))
    key.chmod(0o600)  # a key other users can read is refused
    ca.cert_pem.write_to_path(str(ca_file))
    return cert, key, ca_file


@pytest.fixture
def tls_server(make_server: Any, tls_files: tuple[Path, Path, Path]) -> Any:
    server = make_server(tls=tls_files)
    assert server.endpoint.startswith("https://")
    return server


def _recording_client(server: Any) -> tuple[Any, list[dict[str, str]]]:
    client = server.client()
    sent: list[dict[str, str]] = []

    def record(request: Any, **_: Any) -> None:
        sent.append(
            {
                k.lower(): v.decode() if isinstance(v, bytes) else v
                for k, v in request.headers.items()
            }
        )

    client.meta.events.register("before-send.s3.PutObject", record)
    return client, sent


@pytest.mark.timeout(180)
def test_https_boto3_streaming_unsigned_payload_trailer(tls_server: Any) -> None:
    client, sent = _recording_client(tls_server)
    client.create_bucket(Bucket="tls")
    sizes = [0, 1, 3 * 1024 * 1024 + 7]
    for size in sizes:
        data = bytes(i % 251 for i in range(size))
        sent.clear()
        result = client.put_object(Bucket="tls", Key=f"obj-{size}", Body=data)
        (headers,) = sent
        assert headers["x-amz-content-sha256"] == STREAMING_UNSIGNED_TRAILER, (size, headers)
        assert headers["content-encoding"] == "aws-chunked", (size, headers)
        assert headers["x-amz-decoded-content-length"] == str(size)
        assert headers["x-amz-trailer"] == "x-amz-checksum-crc32"
        assert result["ChecksumCRC32"] == crc32_b64(data)
        got = client.get_object(Bucket="tls", Key=f"obj-{size}")
        assert got["Body"].read() == data, size
        assert got["ContentLength"] == size
        # aws-chunked is the framing of the request, never an encoding of the object.
        assert "ContentEncoding" not in got
        assert result["ETag"] == f'"{hashlib.md5(data).hexdigest()}"'

    data = bytes(range(256)) * 4099 + b"tail"
    for algorithm in ("CRC32C", "SHA256", "CRC64NVME", "SHA1"):
        sent.clear()
        key = f"sum-{algorithm}"
        result = client.put_object(Bucket="tls", Key=key, Body=data, ChecksumAlgorithm=algorithm)
        (headers,) = sent
        assert headers["x-amz-content-sha256"] == STREAMING_UNSIGNED_TRAILER
        assert headers["x-amz-trailer"] == f"x-amz-checksum-{algorithm.lower()}"
        assert result[f"Checksum{algorithm}"] == expected_checksum(algorithm, data)
        assert client.get_object(Bucket="tls", Key=key)["Body"].read() == data, algorithm


def _unsigned_trailer_put(
    server: Any, path: str, data: bytes, checksum: str, *, framing: bytes | None = None
) -> Reply:
    signed = sign(
        server,
        "PUT",
        path,
        STREAMING_UNSIGNED_TRAILER,
        {
            "Content-Encoding": "aws-chunked",
            "x-amz-trailer": "x-amz-checksum-crc32",
            "x-amz-decoded-content-length": str(len(data)),
        },
    )
    body = framing or (
        f"{len(data):x}\r\n".encode()
        + data
        + f"\r\n0\r\nx-amz-checksum-crc32:{checksum}\r\n\r\n".encode()
    )
    return send(server, "PUT", path, signed.headers, body)


def test_https_trailer_checksum_mismatch_is_bad_digest(tls_server: Any) -> None:
    s3 = tls_server.client()
    s3.create_bucket(Bucket="trailer")
    data = b"some bytes that are checked by the trailer" * 50
    wrong = crc32_b64(data + b"!")
    assert wrong != crc32_b64(data)

    # The crafted request is right when its trailer is.
    reply = _unsigned_trailer_put(tls_server, "/trailer/good", data, crc32_b64(data))
    assert reply.status == 200, reply.body
    assert reply.headers["x-amz-checksum-crc32"] == crc32_b64(data)
    assert s3.get_object(Bucket="trailer", Key="good")["Body"].read() == data

    reply = _unsigned_trailer_put(tls_server, "/trailer/bad", data, wrong)
    reply.expect_error(400, "BadDigest")
    assert_not_stored(s3, "trailer", "bad")

    # A wrong trailer must not replace an existing object either.
    reply = _unsigned_trailer_put(tls_server, "/trailer/good", b"other" * 10, wrong)
    reply.expect_error(400, "BadDigest")
    assert s3.get_object(Bucket="trailer", Key="good")["Body"].read() == data


def test_header_checksum_mismatch_is_bad_digest(shared_server: Any, s3: Any, bucket: str) -> None:
    data = b"header checksum" * 100
    for key, value, status in (("good", crc32_b64(data), 200), ("bad", crc32_b64(b"x"), 400)):
        path = f"/{bucket}/{key}"
        signed = sign(shared_server, "PUT", path, "UNSIGNED-PAYLOAD",
                      {"x-amz-checksum-crc32": value})  # fmt: skip
        reply = send(shared_server, "PUT", path, signed.headers, data)
        if status == 200:
            assert reply.status == 200, reply.body
        else:
            reply.expect_error(400, "BadDigest")
    assert s3.get_object(Bucket=bucket, Key="good")["Body"].read() == data
    assert_not_stored(s3, bucket, "bad")


# --- STREAMING-AWS4-HMAC-SHA256-PAYLOAD (chunk signatures) -------------------------------------


def test_chunk_signer_matches_the_aws_example() -> None:
    """Our chunk signer reproduces the example of the AWS documentation (so that a failure
    below is the server's, not the test's)."""
    body = signed_chunks(
        b"a" * 66560,
        65536,
        seed_signature="4f232c4386841ef735655705268965c44a0e4690baa4adea153f7db9fa80a0a9",
        amz_date="20130524T000000Z",
        secret="wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
    )
    assert body.startswith(
        b"10000;chunk-signature=ad80c730a21e5b8d04586a2213dd63b9a0e99e0e2307b0ade35a65485a288648"
        b"\r\n"
    )
    assert (
        b"\r\n400;chunk-signature=0055627c9e194cb4542bae2aa5492e3c1575bbb81b612b7d234b86a503ef5497"
        b"\r\n" in body
    )
    assert body.endswith(
        b"\r\n0;chunk-signature=b6c6ea8a5354eaf15b3cb7646744f4275b71ea724fed81ceb9323e279d449df9"
        b"\r\n\r\n"
    )


def _streaming_signed_put(
    server: Any,
    path: str,
    data: bytes,
    *,
    decoded_length: int | None = None,
    chunk_size: int = 64 * 1024,
    tamper: Callable[[int, bytes], bytes] | None = None,
    edit: Callable[[bytes], bytes] | None = None,
    trailers: dict[str, str] | None = None,
    trailer_signature: str | None = None,
) -> Reply:
    headers = {
        "Content-Encoding": "aws-chunked",
        "x-amz-decoded-content-length": str(
            len(data) if decoded_length is None else decoded_length
        ),
    }
    mode = STREAMING_SIGNED
    if trailers is not None:
        mode = STREAMING_SIGNED_TRAILER
        headers["x-amz-trailer"] = ",".join(trailers)
    signed = sign(server, "PUT", path, mode, headers)
    body = signed_chunks(
        data,
        chunk_size,
        seed_signature=signed.signature,
        amz_date=signed.amz_date,
        tamper=tamper,
        trailers=trailers,
        trailer_signature=trailer_signature,
    )
    return send(server, "PUT", path, signed.headers, edit(body) if edit else body)


def test_streaming_signed_payload(shared_server: Any, s3: Any, bucket: str) -> None:
    data = bytes((i * 7) % 256 for i in range(200 * 1024))
    reply = _streaming_signed_put(shared_server, f"/{bucket}/chunked", data)
    assert reply.status == 200, reply.body
    assert reply.headers["etag"] == f'"{hashlib.md5(data).hexdigest()}"'
    got = s3.get_object(Bucket=bucket, Key="chunked")
    assert got["Body"].read() == data
    assert "ContentEncoding" not in got


@pytest.mark.parametrize("chunk", [0, 3], ids=["first", "last-with-data"])
def test_streaming_tampered_chunk(shared_server: Any, s3: Any, bucket: str, chunk: int) -> None:
    data = bytes((i * 7) % 256 for i in range(200 * 1024))

    def flip(index: int, piece: bytes) -> bytes:
        """One byte changed after the chunk was signed."""
        if index != chunk:
            return piece
        return piece[:100] + bytes([piece[100] ^ 1]) + piece[101:]

    reply = _streaming_signed_put(shared_server, f"/{bucket}/t", data, tamper=flip)
    reply.expect_error(403, "SignatureDoesNotMatch")
    assert_not_stored(s3, bucket, "t")
    # Nor does it replace an object already there.
    s3.put_object(Bucket=bucket, Key="kept", Body=b"before")
    reply = _streaming_signed_put(shared_server, f"/{bucket}/kept", data, tamper=flip)
    reply.expect_error(403, "SignatureDoesNotMatch")
    assert s3.get_object(Bucket=bucket, Key="kept")["Body"].read() == b"before"


def test_streaming_empty_body(shared_server: Any, s3: Any, bucket: str) -> None:
    reply = _streaming_signed_put(shared_server, f"/{bucket}/empty", b"")
    assert reply.status == 200, reply.body
    assert s3.get_object(Bucket=bucket, Key="empty")["Body"].read() == b""


def test_streaming_small_chunk_before_the_last(shared_server: Any, s3: Any, bucket: str) -> None:
    """Only the last chunk with data may be under 8 KiB (the doc's rule, which S3 enforces)."""
    data = bytes(30 * 1024)
    reply = _streaming_signed_put(shared_server, f"/{bucket}/small", data, chunk_size=4096)
    reply.expect_error(403, "InvalidChunkSizeError")
    assert_not_stored(s3, bucket, "small")
    reply = _streaming_signed_put(shared_server, f"/{bucket}/ok", data, chunk_size=8192)
    assert reply.status == 200, reply.body  # 8 KiB chunks, then a last one of 6 KiB


def test_streaming_signed_payload_with_signed_trailer(
    shared_server: Any, s3: Any, bucket: str
) -> None:
    """STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER: chunk signatures, then a checksum trailer
    signed by x-amz-trailer-signature."""
    data = bytes((i * 13) % 256 for i in range(150 * 1024))
    right = {"x-amz-checksum-crc32": crc32_b64(data)}
    reply = _streaming_signed_put(shared_server, f"/{bucket}/good", data, trailers=right)
    assert reply.status == 200, reply.body
    assert reply.headers["x-amz-checksum-crc32"] == crc32_b64(data)
    assert s3.get_object(Bucket=bucket, Key="good")["Body"].read() == data

    reply = _streaming_signed_put(
        shared_server, f"/{bucket}/badsig", data, trailers=right, trailer_signature="0" * 64
    )
    reply.expect_error(403, "SignatureDoesNotMatch")
    assert_not_stored(s3, bucket, "badsig")

    # A correctly signed trailer whose checksum does not match the data.
    wrong = {"x-amz-checksum-crc32": crc32_b64(data + b"!")}
    reply = _streaming_signed_put(shared_server, f"/{bucket}/badsum", data, trailers=wrong)
    reply.expect_error(400, "BadDigest")
    assert_not_stored(s3, bucket, "badsum")


def test_streaming_wrong_final_chunk_signature(shared_server: Any, s3: Any, bucket: str) -> None:
    data = bytes(100 * 1024)

    def break_final(body: bytes) -> bytes:
        head, sep, _ = body[:-4].rpartition(b"0;chunk-signature=")
        return head + sep + (b"0" * 64) + b"\r\n\r\n"

    reply = _streaming_signed_put(shared_server, f"/{bucket}/f", data, edit=break_final)
    reply.expect_error(403, "SignatureDoesNotMatch")
    assert_not_stored(s3, bucket, "f")


def test_streaming_body_shorter_than_decoded_length(
    shared_server: Any, s3: Any, bucket: str
) -> None:
    data = bytes(200 * 1024)
    # Well framed and correctly signed, but x-amz-decoded-content-length announces more.
    reply = _streaming_signed_put(shared_server, f"/{bucket}/short", data,
                                  decoded_length=len(data) + 10)  # fmt: skip
    reply.expect_error(400, "IncompleteBody")
    assert_not_stored(s3, bucket, "short")


def test_streaming_body_cut_short_by_the_client(shared_server: Any, s3: Any, bucket: str) -> None:
    """The client announces a Content-Length, sends part of the body and half-closes."""
    data = bytes(200 * 1024)
    path = f"/{bucket}/cut"
    signed = sign(shared_server, "PUT", path, STREAMING_SIGNED,
                  {"Content-Encoding": "aws-chunked",
                   "x-amz-decoded-content-length": str(len(data))})  # fmt: skip
    body = signed_chunks(data, 64 * 1024, seed_signature=signed.signature, amz_date=signed.amz_date)
    head = f"PUT {path} HTTP/1.1\r\nHost: 127.0.0.1:{shared_server.port}\r\n"
    head += "".join(f"{k}: {v}\r\n" for k, v in signed.headers.items())
    head += f"Content-Length: {len(body)}\r\n\r\n"
    with socket.create_connection(("127.0.0.1", shared_server.port), timeout=30) as sock:
        sock.sendall(head.encode() + body[: len(body) // 2])
        sock.shutdown(socket.SHUT_WR)
        answer = b""
        try:
            while chunk := sock.recv(65536):
                answer += chunk
        except ConnectionResetError:
            pass
    # The server may not be able to answer a client that went away; if it does, the answer
    # is IncompleteBody.
    if answer:
        status_line, _, rest = answer.partition(b"\r\n")
        assert b" 400 " in status_line, answer[:500]
        assert b"<Code>IncompleteBody</Code>" in rest, answer[:1000]
    assert_not_stored(s3, bucket, "cut")


# --- x-amz-content-sha256 with the body's real sha256 ------------------------------------------


def test_signed_payload_sha256_mismatch(shared_server: Any, s3: Any, bucket: str) -> None:
    data = b"the signed body" * 1000
    digest = hashlib.sha256(data).hexdigest()
    good = sign(shared_server, "PUT", f"/{bucket}/good", digest)
    assert send(shared_server, "PUT", f"/{bucket}/good", good.headers, data).status == 200

    altered = data[:-1] + b"?"
    bad = sign(shared_server, "PUT", f"/{bucket}/bad", digest)
    reply = send(shared_server, "PUT", f"/{bucket}/bad", bad.headers, altered)
    error = reply.expect_error(400, "XAmzContentSHA256Mismatch")
    assert error.get("ClientComputedContentSHA256") == digest
    assert error.get("S3ComputedContentSHA256") == hashlib.sha256(altered).hexdigest()
    assert_not_stored(s3, bucket, "bad")
    assert s3.get_object(Bucket=bucket, Key="good")["Body"].read() == data
