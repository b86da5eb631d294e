"""PutObject / GetObject / HeadObject / DeleteObject through boto3 against a real server."""

from __future__ import annotations

import base64
import hashlib
import http.client
import os
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from botocore.auth import S3SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from botocore.exceptions import ClientError
from tests.conftest import ACCESS_KEY, SECRET_KEY, Server

MiB = 1024 * 1024


def error_of(exc: pytest.ExceptionInfo[ClientError]) -> tuple[str, int]:
    response = exc.value.response
    return response["Error"]["Code"], response["ResponseMetadata"]["HTTPStatusCode"]


@pytest.mark.parametrize("size", [0, 1, MiB - 1, MiB, MiB + 1, 5 * MiB + 3])
def test_objects_of_every_size_read_back_identical(s3: Any, bucket: str, size: int) -> None:
    data = os.urandom(size)
    put = s3.put_object(Bucket=bucket, Key=f"obj-{size}", Body=data)
    assert put["ETag"] == f'"{hashlib.md5(data).hexdigest()}"'
    got = s3.get_object(Bucket=bucket, Key=f"obj-{size}")
    assert got["ContentLength"] == size
    assert got["Body"].read() == data
    assert got["ETag"] == put["ETag"]


@pytest.mark.timeout(300)
def test_100_mib_object_streams_through(s3: Any, bucket: str) -> None:
    data = os.urandom(100 * MiB)
    s3.put_object(Bucket=bucket, Key="big", Body=data)
    digest = hashlib.md5()
    body = s3.get_object(Bucket=bucket, Key="big")["Body"]
    for chunk in body.iter_chunks(MiB):
        digest.update(chunk)
    assert digest.hexdigest() == hashlib.md5(data).hexdigest()


@pytest.mark.parametrize(
    "first,last",
    [
        (0, 0),
        (MiB - 1, MiB - 1),  # last byte of the first block
        (MiB - 1, MiB),  # across the first block edge
        (MiB, MiB),  # first byte of the second block
        (MiB - 10, 2 * MiB + 10),  # three blocks
        (3 * MiB, 3 * MiB + 4),  # the short last block
    ],
)
def test_ranges_at_block_edges(s3: Any, bucket: str, first: int, last: int) -> None:
    data = os.urandom(3 * MiB + 5)
    s3.put_object(Bucket=bucket, Key="r", Body=data)
    got = s3.get_object(Bucket=bucket, Key="r", Range=f"bytes={first}-{last}")
    assert got["ResponseMetadata"]["HTTPStatusCode"] == 206
    assert got["ContentRange"] == f"bytes {first}-{last}/{len(data)}"
    assert got["Body"].read() == data[first : last + 1]


def test_suffix_open_and_clamped_ranges(s3: Any, bucket: str) -> None:
    data = os.urandom(2 * MiB + 3)
    s3.put_object(Bucket=bucket, Key="r", Body=data)
    assert s3.get_object(Bucket=bucket, Key="r", Range="bytes=-7")["Body"].read() == data[-7:]
    # A syntactically invalid range is ignored, as S3 does: the whole object comes back.
    assert s3.get_object(Bucket=bucket, Key="r", Range="bytes=abc-")["Body"].read() == data
    tail = s3.get_object(Bucket=bucket, Key="r", Range=f"bytes={MiB}-")["Body"].read()
    assert tail == data[MiB:]
    clamped = s3.get_object(Bucket=bucket, Key="r", Range=f"bytes=5-{10 * MiB}")
    assert clamped["Body"].read() == data[5:]


def test_unsatisfiable_range_is_416(s3: Any, bucket: str) -> None:
    s3.put_object(Bucket=bucket, Key="r", Body=b"abc")
    with pytest.raises(ClientError) as exc:
        s3.get_object(Bucket=bucket, Key="r", Range="bytes=3-5")
    assert error_of(exc) == ("InvalidRange", 416)


def test_metadata_and_standard_headers_round_trip(s3: Any, bucket: str) -> None:
    s3.put_object(
        Bucket=bucket,
        Key="doc",
        Body=b"x",
        ContentType="text/plain; charset=utf-8",
        CacheControl="max-age=60",
        ContentDisposition='attachment; filename="a.txt"',
        ContentLanguage="fr",
        Metadata={"project": "egide", "owner": "city"},
    )
    head = s3.head_object(Bucket=bucket, Key="doc")
    assert head["ContentType"] == "text/plain; charset=utf-8"
    assert head["CacheControl"] == "max-age=60"
    assert head["ContentDisposition"] == 'attachment; filename="a.txt"'
    assert head["ContentLanguage"] == "fr"
    assert head["Metadata"] == {"project": "egide", "owner": "city"}
    assert head["ContentLength"] == 1
    assert head["AcceptRanges"] == "bytes"


def test_default_content_type(s3: Any, bucket: str) -> None:
    s3.put_object(Bucket=bucket, Key="k", Body=b"x")
    assert s3.head_object(Bucket=bucket, Key="k")["ContentType"] == "binary/octet-stream"


def test_response_overrides(s3: Any, bucket: str) -> None:
    s3.put_object(Bucket=bucket, Key="k", Body=b"x", ContentType="text/plain")
    got = s3.get_object(
        Bucket=bucket,
        Key="k",
        ResponseContentType="application/json",
        ResponseContentDisposition="inline",
        ResponseCacheControl="no-cache",
        ResponseContentLanguage="de",
        ResponseContentEncoding="identity",
    )
    assert got["ContentType"] == "application/json"
    assert got["ContentDisposition"] == "inline"
    assert got["CacheControl"] == "no-cache"
    assert got["ContentLanguage"] == "de"
    assert got["ContentEncoding"] == "identity"


@pytest.mark.parametrize("key", ["été/über/東京/🙂.txt", "a b+c%d&e=f", "x" * 1024, "a//b/../c"])
def test_unusual_keys(s3: Any, bucket: str, key: str) -> None:
    s3.put_object(Bucket=bucket, Key=key, Body=key.encode())
    assert s3.get_object(Bucket=bucket, Key=key)["Body"].read() == key.encode()
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"]]
    assert keys == [key]


def test_overwrite_replaces_whole_object(s3: Any, bucket: str) -> None:
    s3.put_object(Bucket=bucket, Key="k", Body=b"old" * MiB, Metadata={"v": "1"})
    s3.put_object(Bucket=bucket, Key="k", Body=b"new", Metadata={"v": "2"})
    got = s3.get_object(Bucket=bucket, Key="k")
    assert got["Body"].read() == b"new"
    assert got["Metadata"] == {"v": "2"}


def test_delete_object_and_missing_key(s3: Any, bucket: str) -> None:
    s3.put_object(Bucket=bucket, Key="k", Body=b"x")
    assert s3.delete_object(Bucket=bucket, Key="k")["ResponseMetadata"]["HTTPStatusCode"] == 204
    with pytest.raises(ClientError) as exc:
        s3.get_object(Bucket=bucket, Key="k")
    assert error_of(exc) == ("NoSuchKey", 404)
    # Deleting what does not exist succeeds, as in S3.
    assert s3.delete_object(Bucket=bucket, Key="k")["ResponseMetadata"]["HTTPStatusCode"] == 204
    with pytest.raises(ClientError) as exc:
        s3.head_object(Bucket=bucket, Key="k")
    assert error_of(exc) == ("404", 404)


def test_no_such_bucket(s3: Any) -> None:
    with pytest.raises(ClientError) as exc:
        s3.put_object(Bucket="no-such-bucket-here", Key="k", Body=b"x")
    assert error_of(exc) == ("NoSuchBucket", 404)
    with pytest.raises(ClientError) as exc:
        s3.get_object(Bucket="no-such-bucket-here", Key="k")
    assert error_of(exc) == ("NoSuchBucket", 404)


class TestConditionals:
    def put(self, s3: Any, bucket: str) -> tuple[str, datetime]:
        etag = s3.put_object(Bucket=bucket, Key="c", Body=b"body")["ETag"]
        modified = s3.head_object(Bucket=bucket, Key="c")["LastModified"]
        return etag, modified

    def test_if_match(self, s3: Any, bucket: str) -> None:
        etag, _ = self.put(s3, bucket)
        assert s3.get_object(Bucket=bucket, Key="c", IfMatch=etag)["Body"].read() == b"body"
        with pytest.raises(ClientError) as exc:
            s3.get_object(Bucket=bucket, Key="c", IfMatch='"0000"')
        assert error_of(exc) == ("PreconditionFailed", 412)

    def test_if_none_match(self, s3: Any, bucket: str) -> None:
        etag, _ = self.put(s3, bucket)
        with pytest.raises(ClientError) as exc:
            s3.get_object(Bucket=bucket, Key="c", IfNoneMatch=etag)
        assert error_of(exc) == ("304", 304)
        assert s3.get_object(Bucket=bucket, Key="c", IfNoneMatch='"other"')["Body"].read()

    def test_if_modified_since(self, s3: Any, bucket: str) -> None:
        _, modified = self.put(s3, bucket)
        with pytest.raises(ClientError) as exc:
            s3.get_object(Bucket=bucket, Key="c", IfModifiedSince=modified)
        assert error_of(exc) == ("304", 304)
        earlier = modified - timedelta(days=1)
        assert s3.get_object(Bucket=bucket, Key="c", IfModifiedSince=earlier)["Body"].read()

    def test_if_unmodified_since(self, s3: Any, bucket: str) -> None:
        _, modified = self.put(s3, bucket)
        assert s3.get_object(Bucket=bucket, Key="c", IfUnmodifiedSince=modified)["Body"].read()
        with pytest.raises(ClientError) as exc:
            s3.get_object(Bucket=bucket, Key="c", IfUnmodifiedSince=modified - timedelta(days=1))
        assert error_of(exc) == ("PreconditionFailed", 412)

    def test_if_match_wins_over_if_unmodified_since(self, s3: Any, bucket: str) -> None:
        etag, modified = self.put(s3, bucket)
        got = s3.get_object(
            Bucket=bucket, Key="c", IfMatch=etag, IfUnmodifiedSince=modified - timedelta(days=1)
        )
        assert got["Body"].read() == b"body"


def test_content_md5(s3: Any, bucket: str) -> None:
    data = b"checked"
    good = base64.b64encode(hashlib.md5(data).digest()).decode()
    s3.put_object(Bucket=bucket, Key="ok", Body=data, ContentMD5=good)
    wrong = base64.b64encode(hashlib.md5(b"other").digest()).decode()
    with pytest.raises(ClientError) as exc:
        s3.put_object(Bucket=bucket, Key="bad", Body=data, ContentMD5=wrong)
    assert error_of(exc) == ("BadDigest", 400)
    with pytest.raises(ClientError) as exc:
        s3.put_object(Bucket=bucket, Key="bad", Body=data, ContentMD5="not-base64!")
    assert error_of(exc) == ("InvalidDigest", 400)
    with pytest.raises(ClientError):
        s3.head_object(Bucket=bucket, Key="bad")  # nothing stored


def test_key_too_long_and_metadata_too_large(s3: Any, bucket: str) -> None:
    with pytest.raises(ClientError) as exc:
        s3.put_object(Bucket=bucket, Key="k" * 1025, Body=b"x")
    assert error_of(exc) == ("KeyTooLongError", 400)
    with pytest.raises(ClientError) as exc:
        s3.put_object(Bucket=bucket, Key="m", Body=b"x", Metadata={"big": "v" * 2100})
    assert error_of(exc) == ("MetadataTooLarge", 400)


class UnsignedPayloadAuth(S3SigV4Auth):
    """SigV4 with UNSIGNED-PAYLOAD, which botocore sends only over HTTPS on its own."""

    def _should_sha256_sign_payload(self, request: AWSRequest) -> bool:
        return False


def raw_put(
    server: Server, path: str, headers: dict[str, str], body: bytes = b""
) -> tuple[int, bytes]:
    """A PUT signed by botocore but framed by hand, for what SDKs refuse to send."""
    request = AWSRequest(method="PUT", url=f"{server.endpoint}{path}", headers=headers)
    UnsignedPayloadAuth(Credentials(ACCESS_KEY, SECRET_KEY), "s3", "us-east-1").add_auth(request)
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    conn.putrequest("PUT", path, skip_accept_encoding=True)
    for name, value in request.headers.items():
        conn.putheader(name, value)
    conn.endheaders()
    if body:
        conn.send(body)
    response = conn.getresponse()
    return response.status, response.read()


def test_entity_too_large_is_refused_before_reading(
    shared_server: Server, s3: Any, bucket: str
) -> None:
    status, body = raw_put(
        shared_server, f"/{bucket}/huge", {"Content-Length": str(5 * 1024**3 + 1)}
    )
    assert status == 400 and b"<Code>EntityTooLarge</Code>" in body


def test_missing_content_length(shared_server: Server, s3: Any, bucket: str) -> None:
    """Neither Content-Length nor chunked coding (chunked bodies: test_chunked_transfer.py)."""
    status, body = raw_put(shared_server, f"/{bucket}/nolength", {})
    assert status == 411 and b"<Code>MissingContentLength</Code>" in body


def test_incomplete_body_stores_nothing(shared_server: Server, s3: Any, bucket: str) -> None:
    request = AWSRequest(
        method="PUT",
        url=f"{shared_server.endpoint}/{bucket}/short",
        headers={"Content-Length": "100000"},
    )
    UnsignedPayloadAuth(Credentials(ACCESS_KEY, SECRET_KEY), "s3", "us-east-1").add_auth(request)
    conn = http.client.HTTPConnection("127.0.0.1", shared_server.port, timeout=30)
    conn.putrequest("PUT", f"/{bucket}/short", skip_accept_encoding=True)
    for name, value in request.headers.items():
        conn.putheader(name, value)
    conn.endheaders()
    conn.send(b"x" * 1000)
    conn.sock.shutdown(1)  # the client stops sending: the body is short
    conn.close()
    time.sleep(0.5)
    with pytest.raises(ClientError) as exc:
        s3.head_object(Bucket=bucket, Key="short")
    assert error_of(exc) == ("404", 404)


def test_last_modified_is_now(s3: Any, bucket: str) -> None:
    s3.put_object(Bucket=bucket, Key="t", Body=b"x")
    modified = s3.head_object(Bucket=bucket, Key="t")["LastModified"]
    assert abs((datetime.now(UTC) - modified).total_seconds()) < 60


def test_unknown_version_id_never_reaches_the_current_version(s3: Any, bucket: str) -> None:
    """Without versioning only "null" names a version; any other id must not act on the
    current one (a DELETE with it used to delete the object)."""
    s3.put_object(Bucket=bucket, Key="k", Body=b"keep")
    for call in (s3.get_object, s3.head_object, s3.delete_object):
        with pytest.raises(ClientError) as exc:
            call(Bucket=bucket, Key="k", VersionId="3HL4kqtJlcpXroDTDmJ")
        assert error_of(exc)[1] == 400
    assert s3.get_object(Bucket=bucket, Key="k", VersionId="null")["Body"].read() == b"keep"


@pytest.mark.parametrize(
    ("method", "query"),
    [("DELETE", "metadataTable"), ("PUT", "renameObject"), ("DELETE", "annotation")],
)
def test_unknown_query_parameters_are_not_implemented(
    shared_server: Server, s3: Any, bucket: str, method: str, query: str
) -> None:
    """A parameter that may name a newer S3 operation is 501, never the plain operation."""
    s3.put_object(Bucket=bucket, Key="k", Body=b"keep")
    request = AWSRequest(
        method=method,
        url=f"{shared_server.endpoint}/{bucket}/k?{query}",
        headers={"x-amz-content-sha256": "UNSIGNED-PAYLOAD"},
    )
    S3SigV4Auth(Credentials(ACCESS_KEY, SECRET_KEY), "s3", "us-east-1").add_auth(request)
    conn = http.client.HTTPConnection("127.0.0.1", shared_server.port)
    conn.request(method, f"/{bucket}/k?{query}", headers=dict(request.headers.items()))
    response = conn.getresponse()
    assert response.status == 501
    assert b"<Code>NotImplemented</Code>" in response.read()
    assert s3.get_object(Bucket=bucket, Key="k")["Body"].read() == b"keep"
