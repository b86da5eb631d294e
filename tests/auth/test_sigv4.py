"""SigV4 verification against requests signed by real clients: boto3/botocore and awscrt.

Requests are captured from a real boto3 client just before they would hit the network, turned
into a RequestHead the way the ASGI server does, and fed to `authenticate`.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator, Iterable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import boto3
import pytest
from awscrt import auth as crt_auth
from awscrt import http as crt_http
from botocore.auth import S3SigV4Auth, S3SigV4QueryAuth
from botocore.awsrequest import AWSPreparedRequest, AWSRequest
from botocore.config import Config
from botocore.credentials import Credentials

from egide.auth import errors
from egide.auth.sigv4 import AuthResult, PayloadMode, SignedPayloadVerifier, authenticate
from egide.web.request import RequestHead

ACCESS_KEY = "AKIDEGIDETEST0000001"
SECRET = "egide/secret+key/0123456789abcdefghijklmn"
SECRETS = {ACCESS_KEY: SECRET, "AKIAIOSFODNN7EXAMPLE": "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"}
ENDPOINT = "http://localhost:9000"
DOC_NOW = datetime(2013, 5, 24, 0, 5, tzinfo=UTC)


def head_from(
    method: str, url: str, headers: dict[str, str], encoding: str = "latin-1"
) -> RequestHead:
    """Build the RequestHead the server would see for this request on the wire."""
    parts = urlsplit(url)
    wire = {k.lower(): v for k, v in headers.items()}
    wire.setdefault("host", parts.netloc)
    scope: dict[str, object] = {
        "method": method,
        "path": parts.path,
        "raw_path": parts.path.encode("latin-1"),
        "query_string": parts.query.encode("latin-1"),
        # http.client sends str header values as latin-1.
        "headers": [(k.encode("latin-1"), v.encode(encoding)) for k, v in wire.items()],
    }
    return RequestHead.from_asgi(scope)


def head_of(request: AWSPreparedRequest | AWSRequest) -> RequestHead:
    headers = {k: v.decode() if isinstance(v, bytes) else v for k, v in request.headers.items()}
    return head_from(request.method, request.url, headers)


class _Captured(Exception):
    def __init__(self, request: AWSPreparedRequest) -> None:
        self.request = request


@pytest.fixture
def s3() -> Iterator[Any]:
    yield make_client(ENDPOINT)


def make_client(endpoint: str, secret: str = SECRET, key: str = ACCESS_KEY) -> Any:
    client = boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name="eu-west-3",
        aws_access_key_id=key,
        aws_secret_access_key=secret,
        config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1}),
    )

    def stop(request: AWSPreparedRequest, **_: Any) -> None:
        raise _Captured(request)

    client.meta.events.register("before-send.s3", stop)
    return client


def capture(client: Any, operation: str, **kwargs: Any) -> AWSPreparedRequest:
    with pytest.raises(_Captured) as caught:
        getattr(client, operation)(**kwargs)
    return caught.value.request


def auth(head: RequestHead, *, now: datetime | None = None) -> AuthResult | None:
    return authenticate(head, SECRETS.get, now=now or datetime.now(UTC))


# --- requests signed by boto3 ------------------------------------------------------------------


@pytest.mark.parametrize(
    "key",
    ["plain.txt", "with space/and+plus.txt", "unicodé/ключ/キー.bin", "odd!'()*,;=@$&:~_.-[]"],
)
def test_put_object_signed_payload(s3: Any, key: str) -> None:
    body = b"hello egide\n" * 100
    request = capture(s3, "put_object", Bucket="bucket", Key=key, Body=body)
    head = head_of(request)
    assert head.path == f"/bucket/{key}"
    result = auth(head)
    assert result is not None
    assert result.access_key == ACCESS_KEY
    assert result.payload_mode is PayloadMode.SIGNED
    assert result.payload_sha256 == hashlib.sha256(body).hexdigest()
    assert result.scope.endswith("/eu-west-3/s3/aws4_request")
    assert result.amz_date == head.headers["x-amz-date"]


@pytest.mark.parametrize(
    "params",
    [
        {"Prefix": "a/b", "Delimiter": "/"},
        {"Prefix": "x+y z/é", "Delimiter": "/", "StartAfter": "a=b&c"},
        {"Prefix": "100% sure?", "MaxKeys": 7, "ContinuationToken": "tok/en+=="},
    ],
)
def test_list_objects_query(s3: Any, params: dict[str, Any]) -> None:
    request = capture(s3, "list_objects_v2", Bucket="bucket", **params)
    head = head_of(request)
    assert head.has_query("list-type")
    assert auth(head) is not None


def test_query_plus_is_literal(s3: Any) -> None:
    request = capture(s3, "list_objects_v2", Bucket="bucket", Prefix="a+b c")
    assert "prefix=a%2Bb%20c" in urlsplit(request.url).query
    assert auth(head_of(request)) is not None


def test_subresource_without_value(s3: Any) -> None:
    request = capture(s3, "get_bucket_acl", Bucket="bucket")
    assert urlsplit(request.url).query == "acl"
    assert auth(head_of(request)) is not None


def test_non_ascii_header_bytes() -> None:
    # botocore's S3 client refuses non-ASCII metadata, but its signer hashes header values as
    # UTF-8: a client sending those UTF-8 bytes on the wire must verify (AWS hashes raw bytes).
    request = AWSRequest(method="PUT", url=f"{ENDPOINT}/b/k", headers={"x-amz-meta-n": "café"})
    S3SigV4Auth(Credentials(ACCESS_KEY, SECRET), "s3", "us-east-1").add_auth(request)
    headers = {k: v for k, v in request.headers.items()}
    assert auth(head_from("PUT", request.url, headers, encoding="utf-8")) is not None


def test_presigned_get(s3: Any) -> None:
    url = s3.generate_presigned_url(
        "get_object", Params={"Bucket": "bucket", "Key": "dir/a b+c é.txt"}, ExpiresIn=300
    )
    result = auth(head_from("GET", url, {}))
    assert result is not None
    assert result.payload_mode is PayloadMode.UNSIGNED
    assert result.payload_sha256 is None


def test_presigned_with_query_auth_signer() -> None:
    url = f"{ENDPOINT}/bucket?list-type=2&prefix=a%2Fb%20c&delimiter=%2F"
    request = AWSRequest(method="GET", url=url)
    S3SigV4QueryAuth(Credentials(ACCESS_KEY, SECRET), "s3", "us-east-1", 900).add_auth(request)
    head = head_from("GET", request.url, {})
    assert head.query_value("prefix") == "a/b c"
    result = auth(head)
    assert result is not None and result.payload_mode is PayloadMode.UNSIGNED


def test_presigned_put_with_signed_header(s3: Any) -> None:
    url = s3.generate_presigned_url(
        "put_object", Params={"Bucket": "bucket", "Key": "k", "ContentType": "text/plain"}
    )
    assert auth(head_from("PUT", url, {"content-type": "text/plain"})) is not None
    with pytest.raises(errors.SignatureDoesNotMatch):
        auth(head_from("PUT", url, {"content-type": "text/html"}))


def test_anonymous_is_none() -> None:
    assert auth(head_from("GET", "http://localhost:9000/bucket/key?list-type=2", {})) is None


def test_date_header_instead_of_x_amz_date() -> None:
    request = AWSRequest(method="GET", url=f"{ENDPOINT}/bucket/key", headers={"Date": "x"})
    request.context["payload_signing_enabled"] = True
    S3SigV4Auth(Credentials(ACCESS_KEY, SECRET), "s3", "us-east-1").add_auth(request)
    assert "X-Amz-Date" not in request.headers
    assert auth(head_of(request)) is not None


# --- independent signer: awscrt (aws-c-auth) -----------------------------------------------------


def crt_sign(
    method: str, path: str, headers: list[tuple[str, str]], body_value: str, *, query: bool
) -> crt_http.HttpRequest:
    request = crt_http.HttpRequest(method, path, crt_http.HttpHeaders(headers))
    config = crt_auth.AwsSigningConfig(
        algorithm=crt_auth.AwsSigningAlgorithm.V4,
        signature_type=crt_auth.AwsSignatureType.HTTP_REQUEST_QUERY_PARAMS
        if query
        else crt_auth.AwsSignatureType.HTTP_REQUEST_HEADERS,
        credentials_provider=crt_auth.AwsCredentialsProvider.new_static(ACCESS_KEY, SECRET),
        region="us-east-1",
        service="s3",
        date=datetime.now(UTC),
        use_double_uri_encode=False,
        should_normalize_uri_path=False,
        signed_body_value=body_value,
        signed_body_header_type=crt_auth.AwsSignedBodyHeaderType.NONE
        if query
        else crt_auth.AwsSignedBodyHeaderType.X_AMZ_CONTENT_SHA_256,
        expiration_in_seconds=600 if query else None,
    )
    return crt_auth.aws_sign_request(request, config).result(timeout=10)


def crt_head(signed: crt_http.HttpRequest) -> RequestHead:
    headers = {name: value for name, value in signed.headers}
    return head_from(signed.method, f"http://localhost:9000{signed.path}", headers)


@pytest.mark.parametrize(
    "mode",
    [
        PayloadMode.UNSIGNED,
        PayloadMode.STREAMING_SIGNED,
        PayloadMode.STREAMING_SIGNED_TRAILER,
        PayloadMode.STREAMING_UNSIGNED_TRAILER,
    ],
)
def test_awscrt_header_signing(mode: PayloadMode) -> None:
    headers = [("Host", "localhost:9000"), ("x-amz-meta-a", "  two   spaces ")]
    signed = crt_sign("PUT", "/bucket/a%20b/c%2Bd?uploadId=x%2By", headers, mode.value, query=False)
    result = auth(crt_head(signed))
    assert result is not None and result.payload_mode is mode


def test_awscrt_query_signing() -> None:
    host = [("Host", "localhost:9000")]
    signed = crt_sign("GET", "/bucket/k%C3%A9y?versionId=1", host, "UNSIGNED-PAYLOAD", query=True)
    assert auth(crt_head(signed)) is not None


# --- AWS documentation vectors ---------------------------------------------------------------


def test_aws_doc_get_object_example() -> None:
    # https://docs.aws.amazon.com/AmazonS3/latest/API/sig-v4-header-based-auth.html
    headers = {
        "host": "examplebucket.s3.amazonaws.com",
        "range": "bytes=0-9",
        "x-amz-content-sha256": hashlib.sha256(b"").hexdigest(),
        "x-amz-date": "20130524T000000Z",
        "authorization": "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/"
        "aws4_request,SignedHeaders=host;range;x-amz-content-sha256;x-amz-date,Signature="
        "f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41",
    }
    assert auth(RequestHead("GET", "/test.txt", headers=headers), now=DOC_NOW) is not None


def test_aws_doc_presigned_example() -> None:
    # https://docs.aws.amazon.com/AmazonS3/latest/API/sigv4-query-string-auth.html
    url = (
        "https://examplebucket.s3.amazonaws.com/test.txt?X-Amz-Algorithm=AWS4-HMAC-SHA256"
        "&X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F20130524%2Fus-east-1%2Fs3%2Faws4_request"
        "&X-Amz-Date=20130524T000000Z&X-Amz-Expires=86400&X-Amz-SignedHeaders=host"
        "&X-Amz-Signature=aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404"
    )
    assert auth(head_from("GET", url, {}), now=DOC_NOW) is not None
    with pytest.raises(errors.AccessDenied, match="Request has expired"):
        auth(head_from("GET", url, {}), now=DOC_NOW + timedelta(days=2))


# --- refusals --------------------------------------------------------------------------------


def test_wrong_secret() -> None:
    client = make_client(ENDPOINT, secret="not-the-secret")
    request = capture(client, "get_object", Bucket="b", Key="k")
    with pytest.raises(errors.SignatureDoesNotMatch) as caught:
        auth(head_of(request))
    fields = caught.value.fields
    assert fields["AWSAccessKeyId"] == ACCESS_KEY
    assert fields["StringToSign"].startswith("AWS4-HMAC-SHA256\n")
    assert fields["CanonicalRequest"].startswith("GET\n/b/k\n")
    assert len(fields["SignatureProvided"]) == 64


def test_unknown_key() -> None:
    request = capture(make_client(ENDPOINT, key="AKIDUNKNOWN"), "get_object", Bucket="b", Key="k")
    with pytest.raises(errors.InvalidAccessKeyId):
        auth(head_of(request))


def test_altered_header(s3: Any) -> None:
    request = capture(s3, "put_object", Bucket="b", Key="k", Body=b"x", Metadata={"a": "1"})
    head = head_of(request)
    head.headers["x-amz-meta-a"] = "2"
    with pytest.raises(errors.SignatureDoesNotMatch):
        auth(head)


def test_altered_path(s3: Any) -> None:
    request = capture(s3, "get_object", Bucket="b", Key="k1")
    good = head_of(request)
    for path in ("/b/k2", "/b/k1/", "/b//k1", "/b/K1"):
        with pytest.raises(errors.SignatureDoesNotMatch):
            auth(RequestHead(good.method, path, good.query, good.headers, good.raw_query))


def test_altered_query(s3: Any) -> None:
    request = capture(s3, "list_objects_v2", Bucket="b", Prefix="p")
    head = head_of(request)
    query = head.raw_query.replace("prefix=p", "prefix=q")
    with pytest.raises(errors.SignatureDoesNotMatch):
        auth(RequestHead(head.method, head.raw_path, (), head.headers, query))


def test_removed_signed_header(s3: Any) -> None:
    request = capture(s3, "put_object", Bucket="b", Key="k", Body=b"x", ContentType="a/b")
    head = head_of(request)
    del head.headers["content-type"]
    with pytest.raises(errors.SignatureDoesNotMatch):
        auth(head)


def test_unsigned_amz_header(s3: Any) -> None:
    request = capture(s3, "get_object", Bucket="b", Key="k")
    head = head_of(request)
    head.headers["x-amz-copy-source"] = "/other/key"
    with pytest.raises(errors.AccessDenied) as caught:
        auth(head)
    assert caught.value.fields["HeadersNotSigned"] == "x-amz-copy-source"


@pytest.mark.parametrize("offset", [timedelta(minutes=16), -timedelta(minutes=16)])
def test_skewed_date(s3: Any, offset: timedelta) -> None:
    head = head_of(capture(s3, "get_object", Bucket="b", Key="k"))
    assert auth(head, now=datetime.now(UTC) + timedelta(minutes=14)) is not None
    with pytest.raises(errors.RequestTimeTooSkewed) as caught:
        auth(head, now=datetime.now(UTC) + offset)
    assert caught.value.fields["MaxAllowedSkewMilliseconds"] == "900000"
    assert caught.value.fields["RequestTime"] == head.headers["x-amz-date"]


def test_expired_presign(s3: Any) -> None:
    url = s3.generate_presigned_url("get_object", Params={"Bucket": "b", "Key": "k"}, ExpiresIn=60)
    head = head_from("GET", url, {})
    assert auth(head, now=datetime.now(UTC) + timedelta(seconds=50)) is not None
    with pytest.raises(errors.AccessDenied, match="Request has expired"):
        auth(head, now=datetime.now(UTC) + timedelta(seconds=120))


def test_presign_of_zero_seconds_has_expired_at_once() -> None:
    request = AWSRequest(method="GET", url="http://127.0.0.1:9000/b/k")
    S3SigV4QueryAuth(Credentials(ACCESS_KEY, SECRET), "s3", "us-east-1", 0).add_auth(request)
    head = head_from("GET", str(request.url), {})
    signed_at = datetime.strptime(head.query_value("X-Amz-Date") or "", "%Y%m%dT%H%M%SZ").replace(
        tzinfo=UTC
    )
    # Even in the second it was signed: valid for no time at all.
    with pytest.raises(errors.AccessDenied, match="Request has expired"):
        auth(head, now=signed_at)


def test_presign_over_a_week(s3: Any) -> None:
    url = s3.generate_presigned_url(
        "get_object", Params={"Bucket": "b", "Key": "k"}, ExpiresIn=604801
    )
    with pytest.raises(errors.AuthorizationQueryParametersError):
        auth(head_from("GET", url, {}))


def test_presign_tampered_signature(s3: Any) -> None:
    url = s3.generate_presigned_url("get_object", Params={"Bucket": "b", "Key": "k"})
    last = url[-1]
    with pytest.raises(errors.SignatureDoesNotMatch):
        auth(head_from("GET", url[:-1] + ("0" if last != "0" else "1"), {}))


def test_sigv2_refused() -> None:
    head = RequestHead("GET", "/b/k", headers={"authorization": "AWS AKID:c2lnbmF0dXJl"})
    with pytest.raises(errors.InvalidArgument, match="Version 2"):
        auth(head)
    query = "AWSAccessKeyId=AKID&Expires=1700000000&Signature=abc%3D"
    with pytest.raises(errors.InvalidArgument, match="Version 2"):
        auth(RequestHead("GET", "/b/k", raw_query=query))


def test_header_and_query_auth_together(s3: Any) -> None:
    head = head_of(capture(s3, "get_object", Bucket="b", Key="k"))
    query = "X-Amz-Signature=" + "0" * 64
    with pytest.raises(errors.InvalidArgument):
        auth(RequestHead("GET", head.raw_path, (), head.headers, query))


def test_missing_content_sha256(s3: Any) -> None:
    head = head_of(capture(s3, "get_object", Bucket="b", Key="k"))
    del head.headers["x-amz-content-sha256"]
    with pytest.raises(errors.InvalidRequest, match="x-amz-content-sha256"):
        auth(head)


@pytest.mark.parametrize(
    ("credential", "error"),
    [
        ("AKID/20130524/us-east-1/iam/aws4_request", errors.AuthorizationHeaderMalformed),
        ("AKID/20130524/us-east-1/s3/aws5_request", errors.AuthorizationHeaderMalformed),
        ("AKID/20130524/s3/aws4_request", errors.AuthorizationHeaderMalformed),
        ("AKID/20130525/us-east-1/s3/aws4_request", errors.AuthorizationHeaderMalformed),
    ],
)
def test_malformed_credential(credential: str, error: type[errors.AuthError]) -> None:
    headers = {
        "host": "h",
        "x-amz-date": "20130524T000000Z",
        "x-amz-content-sha256": "UNSIGNED-PAYLOAD",
        "authorization": f"AWS4-HMAC-SHA256 Credential={credential}, SignedHeaders=host, "
        f"Signature={'0' * 64}",
    }
    with pytest.raises(error):
        auth(RequestHead("GET", "/", headers=headers), now=DOC_NOW)


def test_other_algorithm_refused() -> None:
    headers = {"authorization": "AWS4-ECDSA-P256-SHA256 Credential=a/b/c/s3/aws4_request"}
    with pytest.raises(errors.InvalidArgument):
        auth(RequestHead("GET", "/", headers=headers))


# --- x-amz-content-sha256 with a hex digest ----------------------------------------------------


async def _source(pieces: Iterable[bytes]) -> AsyncIterator[bytes]:
    for piece in pieces:
        yield piece


def test_signed_payload_verifier() -> None:
    body = [b"hello ", b"world"]
    good = SignedPayloadVerifier(hashlib.sha256(b"hello world").hexdigest().upper())

    async def drain(verifier: SignedPayloadVerifier) -> bytes:
        return b"".join([piece async for piece in verifier.wrap(_source(body))])

    assert asyncio.run(drain(good)) == b"hello world"
    bad = SignedPayloadVerifier(hashlib.sha256(b"hello world!").hexdigest())
    with pytest.raises(errors.XAmzContentSHA256Mismatch) as caught:
        asyncio.run(drain(bad))
    assert (
        caught.value.fields["S3ComputedContentSHA256"] == hashlib.sha256(b"hello world").hexdigest()
    )
