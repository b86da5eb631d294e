"""PUT and UploadPart with HTTP/1.1 `Transfer-Encoding: chunked` and no Content-Length (curl
-T -, streaming clients), on real sockets: stored byte-exact, held to the size limits, quotas
and digests as a sized body is; other transfer codings and Content-Length beside
Transfer-Encoding refused; a body cut short stores nothing."""

from __future__ import annotations

import base64
import hashlib
import http.client
import os
import socket
import time
from collections.abc import Iterator
from typing import Any

import pytest
from botocore.exceptions import ClientError
from tests.conftest import Server, ServerFactory
from tests.e2e.test_auth import Reply, sign
from tests.e2e.test_quotas import put_quota

pytestmark = pytest.mark.timeout(180)
MiB = 1024 * 1024
UNSIGNED = "UNSIGNED-PAYLOAD"


def pieces(data: bytes, size: int = 100_003) -> Iterator[bytes]:
    """Uneven chunks, as a streaming client sends them."""
    for at in range(0, len(data), size):
        yield data[at : at + size]


def chunked_put(
    server: Server, path: str, data: bytes, headers: dict[str, str] | None = None
) -> Reply:
    """A signed PUT whose body is sent in chunked transfer coding, without Content-Length."""
    signed = sign(server, "PUT", path, UNSIGNED, headers)
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=60)
    try:
        conn.request(
            "PUT", path, body=pieces(data),
            headers={**signed.headers, "Transfer-Encoding": "chunked"}, encode_chunked=True,
        )  # fmt: skip
        response = conn.getresponse()
        return Reply(
            response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
        )
    finally:
        conn.close()


def raw(server: Server, request: bytes, *, close_after: bool = False) -> bytes:
    """Bytes sent as they are on a fresh connection; the answer, or b"" if `close_after`."""
    with socket.create_connection(("127.0.0.1", server.port), timeout=30) as sock:
        sock.sendall(request)
        if close_after:
            return b""
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
            if b"\r\n\r\n" in answer and b"</Error>" in answer:
                break
        return answer


def head_bytes(server: Server, method: str, path: str, headers: dict[str, str]) -> bytes:
    signed = sign(server, method, path, UNSIGNED, headers)
    lines = [f"{method} {path} HTTP/1.1", f"Host: 127.0.0.1:{server.port}"]
    lines += [f"{name}: {value}" for name, value in signed.headers.items()]
    return ("\r\n".join(lines) + "\r\n").encode()


def test_chunked_put_of_several_mib_reads_back_exact(
    shared_server: Server, s3: Any, bucket: str
) -> None:
    data = os.urandom(6 * MiB + 12345)
    reply = chunked_put(shared_server, f"/{bucket}/streamed", data)
    assert reply.status == 200, reply.body
    assert reply.headers["etag"] == f'"{hashlib.md5(data).hexdigest()}"'
    got = s3.get_object(Bucket=bucket, Key="streamed")
    assert got["ContentLength"] == len(data)
    assert got["Body"].read() == data


def test_small_chunked_puts(shared_server: Server, s3: Any, bucket: str) -> None:
    for size in (0, 1, 3, 300 * 1024):  # packed or not, whatever the size turns out to be
        data = os.urandom(size)
        reply = chunked_put(shared_server, f"/{bucket}/small-{size}", data)
        assert reply.status == 200, reply.body
        assert s3.get_object(Bucket=bucket, Key=f"small-{size}")["Body"].read() == data


def test_boto3_with_transfer_encoding_chunked(s3: Any, bucket: str) -> None:
    """What ceph/s3-tests' test_object_write_with_chunked_transfer_encoding sends."""

    def add_te(request: Any, **_: Any) -> None:
        request.headers.add_header("Transfer-Encoding", "chunked")

    s3.meta.events.register_first("before-sign.*.*", add_te)
    try:
        response = s3.put_object(Bucket=bucket, Key="foo", Body=b"bar")
    finally:
        s3.meta.events.unregister("before-sign.*.*", add_te)
    assert response["ResponseMetadata"]["HTTPStatusCode"] == 200
    assert s3.get_object(Bucket=bucket, Key="foo")["Body"].read() == b"bar"


def test_content_md5_and_checksum_of_a_chunked_body(
    shared_server: Server, s3: Any, bucket: str
) -> None:
    data = os.urandom(MiB + 7)
    md5 = base64.b64encode(hashlib.md5(data).digest()).decode()
    sha256 = base64.b64encode(hashlib.sha256(data).digest()).decode()
    good = {"Content-MD5": md5, "x-amz-checksum-sha256": sha256}
    assert chunked_put(shared_server, f"/{bucket}/checked", data, good).status == 200
    head = s3.head_object(Bucket=bucket, Key="checked", ChecksumMode="ENABLED")
    assert head["ChecksumSHA256"] == sha256
    wrong = {"Content-MD5": base64.b64encode(hashlib.md5(b"other").digest()).decode()}
    chunked_put(shared_server, f"/{bucket}/bad", data, wrong).expect_error(400, "BadDigest")
    with pytest.raises(ClientError):
        s3.head_object(Bucket=bucket, Key="bad")


def test_chunked_upload_part(shared_server: Server, s3: Any, bucket: str) -> None:
    parts = [os.urandom(5 * MiB + 1), os.urandom(777)]
    upload = s3.create_multipart_upload(Bucket=bucket, Key="mp")["UploadId"]
    etags = []
    for number, data in enumerate(parts, 1):
        path = f"/{bucket}/mp?partNumber={number}&uploadId={upload}"
        reply = chunked_put(shared_server, path, data)
        assert reply.status == 200, reply.body
        assert reply.headers["etag"] == f'"{hashlib.md5(data).hexdigest()}"'
        etags.append(reply.headers["etag"])
    listed = s3.list_parts(Bucket=bucket, Key="mp", UploadId=upload)["Parts"]
    assert [p["Size"] for p in listed] == [len(p) for p in parts]
    s3.complete_multipart_upload(
        Bucket=bucket, Key="mp", UploadId=upload,
        MultipartUpload={"Parts": [{"PartNumber": n, "ETag": e} for n, e in enumerate(etags, 1)]},
    )  # fmt: skip
    assert s3.get_object(Bucket=bucket, Key="mp")["Body"].read() == b"".join(parts)


@pytest.mark.parametrize("coding", ["gzip", "gzip, chunked", "identity"])
def test_other_transfer_codings_are_not_implemented(
    shared_server: Server, s3: Any, bucket: str, coding: str
) -> None:
    head = head_bytes(shared_server, "PUT", f"/{bucket}/coded", {})
    body = b"3\r\nbar\r\n0\r\n\r\n" if coding.endswith("chunked") else b"bar"
    answer = raw(shared_server, head + f"Transfer-Encoding: {coding}\r\n\r\n".encode() + body)
    status = answer.split(b" ", 2)[1]
    # "gzip" alone and "identity" leave the body unframed: the HTTP parser itself refuses them
    # (400); a chain ending in chunked reaches S3's check, 501 NotImplemented.
    assert status in (b"400", b"501"), answer
    if coding == "gzip, chunked":
        assert status == b"501" and b"<Code>NotImplemented</Code>" in answer, answer
    with pytest.raises(ClientError):
        s3.head_object(Bucket=bucket, Key="coded")


def test_content_length_beside_transfer_encoding_is_refused(
    shared_server: Server, s3: Any, bucket: str
) -> None:
    """RFC 9112 §6.3: such a request may be smuggling a second one; refused, never guessed."""
    head = head_bytes(shared_server, "PUT", f"/{bucket}/both", {})
    smuggled = b"GET /other HTTP/1.1\r\nHost: x\r\n\r\n"
    body = b"0\r\n\r\n" + smuggled
    request = (
        head + f"Content-Length: {len(body)}\r\nTransfer-Encoding: chunked\r\n\r\n".encode() + body
    )
    answer = raw(shared_server, request)
    assert answer.startswith(b"HTTP/1.1 400 "), answer
    assert answer.count(b"HTTP/1.1 ") == 1, answer  # nothing answered for the smuggled request
    with pytest.raises(ClientError):
        s3.head_object(Bucket=bucket, Key="both")


def site_files(server: Server) -> set[str]:
    return {str(f) for d in server.site_dirs() for f in d.rglob("*") if f.is_file()}


def test_an_interrupted_chunked_body_stores_nothing(make_server: ServerFactory) -> None:
    server = make_server("workers = 1\n")
    s3 = server.client()
    s3.create_bucket(Bucket="cut")
    before = site_files(server)
    for size in (1000, 3 * MiB):  # a body that would be packed, and one streamed to the sites
        head = head_bytes(server, "PUT", "/cut/half", {})
        first = os.urandom(size)
        body = f"{len(first):x}\r\n".encode() + first + b"\r\n" + b"100000\r\n" + b"x" * 1000
        raw(server, head + b"Transfer-Encoding: chunked\r\n\r\n" + body, close_after=True)
        time.sleep(0.5)
        with pytest.raises(ClientError) as caught:
            s3.head_object(Bucket="cut", Key="half")
        assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404
    # Nothing of them left on the sites (the aborted writes removed their files), and the
    # server serves on.
    deadline = time.monotonic() + 10
    while site_files(server) != before:
        assert time.monotonic() < deadline, site_files(server) - before
        time.sleep(0.2)
    s3.put_object(Bucket="cut", Key="after", Body=b"fine")
    assert s3.get_object(Bucket="cut", Key="after")["Body"].read() == b"fine"
    assert "Contents" not in s3.list_objects_v2(Bucket="cut", Prefix="half")


def test_chunked_puts_are_held_to_quotas(make_server: ServerFactory) -> None:
    server = make_server("workers = 1\n")
    s3 = server.client()
    s3.create_bucket(Bucket="quota-c")
    put_quota(server, "/_egide/admin/buckets/quota-c/quota", max_bytes=2 * MiB, max_objects=None)
    assert chunked_put(server, "/quota-c/fits", os.urandom(MiB)).status == 200
    # 1 MiB left: a chunked body is cut once it passes it, and nothing of it is kept.
    error = chunked_put(server, "/quota-c/big", os.urandom(MiB + 1)).expect_error(
        403, "QuotaExceeded"
    )
    assert "bucket quota-c" in error["Message"]
    upload = s3.create_multipart_upload(Bucket="quota-c", Key="mp")["UploadId"]
    path = f"/quota-c/mp?partNumber=1&uploadId={upload}"
    chunked_put(server, path, os.urandom(MiB + 1)).expect_error(403, "QuotaExceeded")
    assert s3.list_parts(Bucket="quota-c", Key="mp", UploadId=upload).get("Parts", []) == []
    assert [o["Key"] for o in s3.list_objects_v2(Bucket="quota-c")["Contents"]] == ["fits"]
    assert chunked_put(server, "/quota-c/small", os.urandom(1000)).status == 200
