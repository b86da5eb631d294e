"""GetObjectTorrent through boto3 and plain HTTP: the metainfo file of an object, its SHA-1
piece hashes checked against the data, and the refusals AWS made (SSE-C, a missing key)."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import time
from typing import Any

import botocore
import pytest
from botocore.exceptions import ClientError
from tests.conftest import Server
from tests.e2e.test_auth import send, sign

PIECE = 256 * 1024


def bdecode(data: bytes) -> Any:
    """BEP 3's decoding, strict enough for a test: the whole input is one value."""

    def value(at: int) -> tuple[Any, int]:
        lead = data[at : at + 1]
        if lead == b"i":
            end = data.index(b"e", at)
            return int(data[at + 1 : end]), end + 1
        if lead == b"l":
            items, at = [], at + 1
            while data[at : at + 1] != b"e":
                item, at = value(at)
                items.append(item)
            return items, at + 1
        if lead == b"d":
            entries, at, last = {}, at + 1, None
            while data[at : at + 1] != b"e":
                key, at = value(at)
                assert isinstance(key, bytes) and (last is None or key > last), "keys unsorted"
                entries[key], at, last = (*value(at), key)
            return entries, at + 1
        colon = data.index(b":", at)
        length = int(data[at:colon])
        return data[colon + 1 : colon + 1 + length], colon + 1 + length

    decoded, end = value(0)
    assert end == len(data)
    return decoded


def pieces_of(data: bytes) -> bytes:
    return b"".join(hashlib.sha1(data[i : i + PIECE]).digest() for i in range(0, len(data), PIECE))


def test_torrent_of_a_multi_piece_object(s3: Any, bucket: str) -> None:
    data = os.urandom(7 * 1024 * 1024 + 1000)  # 28 whole pieces and a partial one
    s3.put_object(Bucket=bucket, Key="films/Avatar.mpg", Body=data)
    response = s3.get_object_torrent(Bucket=bucket, Key="films/Avatar.mpg")
    headers = response["ResponseMetadata"]["HTTPHeaders"]
    assert headers["content-type"] == "application/x-bittorrent"
    assert headers["content-disposition"].startswith('attachment; filename="Avatar.mpg.torrent"')
    metainfo = bdecode(response["Body"].read())
    info = metainfo[b"info"]
    assert info == {
        b"name": b"Avatar.mpg",
        b"length": len(data),
        b"piece length": PIECE,
        b"pieces": pieces_of(data),
    }
    assert len(info[b"pieces"]) == 29 * 20
    assert b"announce" not in metainfo  # Égide runs no tracker


def test_torrent_of_a_multipart_object(s3: Any, bucket: str) -> None:
    parts = [os.urandom(5 * 1024 * 1024 + 7), os.urandom(300 * 1024)]
    upload = s3.create_multipart_upload(Bucket=bucket, Key="big")["UploadId"]
    done = [
        {"PartNumber": n, "ETag": s3.upload_part(
            Bucket=bucket, Key="big", UploadId=upload, PartNumber=n, Body=body)["ETag"]}
        for n, body in enumerate(parts, 1)
    ]  # fmt: skip
    s3.complete_multipart_upload(
        Bucket=bucket, Key="big", UploadId=upload, MultipartUpload={"Parts": done}
    )
    info = bdecode(s3.get_object_torrent(Bucket=bucket, Key="big")["Body"].read())[b"info"]
    assert info[b"pieces"] == pieces_of(b"".join(parts))
    assert info[b"length"] == sum(map(len, parts))


def test_torrent_of_an_empty_and_a_small_object(s3: Any, bucket: str) -> None:
    s3.put_object(Bucket=bucket, Key="empty", Body=b"")
    info = bdecode(s3.get_object_torrent(Bucket=bucket, Key="empty")["Body"].read())[b"info"]
    assert (info[b"length"], info[b"pieces"]) == (0, b"")
    s3.put_object(Bucket=bucket, Key="dir/small.txt", Body=b"bar")
    info = bdecode(s3.get_object_torrent(Bucket=bucket, Key="dir/small.txt")["Body"].read())
    assert info[b"info"][b"pieces"] == hashlib.sha1(b"bar").digest()
    assert info[b"info"][b"name"] == b"small.txt"


def _error(exc: pytest.ExceptionInfo[ClientError]) -> tuple[int, str, str]:
    response = exc.value.response
    return (
        response["ResponseMetadata"]["HTTPStatusCode"],
        response["Error"]["Code"],
        response["Error"]["Message"],
    )


def test_missing_key_is_no_such_key(s3: Any, bucket: str) -> None:
    with pytest.raises(ClientError) as caught:
        s3.get_object_torrent(Bucket=bucket, Key="absent")
    assert _error(caught)[:2] == (404, "NoSuchKey")


def test_sse_c_objects_have_no_torrent(shared_server: Server, s3: Any, bucket: str) -> None:
    key = os.urandom(32)
    sse_c = {
        "SSECustomerAlgorithm": "AES256",
        "SSECustomerKey": key,  # boto3 encodes it and adds its MD5
    }
    s3.put_object(Bucket=bucket, Key="secret", Body=b"x" * 1000, **sse_c)
    with pytest.raises(ClientError) as caught:
        s3.get_object_torrent(Bucket=bucket, Key="secret")
    status, code, message = _error(caught)
    assert (status, code) == (400, "InvalidRequest")
    assert "customer-provided key" in message
    # Sending the key does not unlock it: the headers are refused, never ignored, on any object.
    headers = {
        "x-amz-server-side-encryption-customer-algorithm": "AES256",
        "x-amz-server-side-encryption-customer-key": base64.b64encode(key).decode(),
        "x-amz-server-side-encryption-customer-key-md5": base64.b64encode(
            hashlib.md5(key).digest()
        ).decode(),
    }
    s3.put_object(Bucket=bucket, Key="plain", Body=b"y")
    for name in ("secret", "plain"):
        path = f"/{bucket}/{name}?torrent"
        signed = sign(shared_server, "GET", path, hashlib.sha256(b"").hexdigest(), headers)
        error = send(shared_server, "GET", path, signed.headers).expect_error(400, "InvalidRequest")
        assert "takes no customer-provided key" in error["Message"]


def test_a_version_id_is_refused(shared_server: Server, s3: Any, bucket: str) -> None:
    """GetObjectTorrent takes no versionId: asked with one, it is refused, never answered for
    the current version."""
    s3.put_object(Bucket=bucket, Key="k", Body=b"x")
    path = f"/{bucket}/k?torrent&versionId=null"
    signed = sign(shared_server, "GET", path, hashlib.sha256(b"").hexdigest())
    send(shared_server, "GET", path, signed.headers).expect_error(400, "InvalidArgument")


def test_s3_get_object_torrent_is_its_own_action(
    shared_server: Server, s3: Any, bucket: str
) -> None:
    """Anonymous callers allowed s3:GetObjectTorrent, and nothing else, get the torrent but
    not the object; refused it, they get neither."""
    anonymous = shared_server.client(signature_version=botocore.UNSIGNED)
    s3.put_object(Bucket=bucket, Key="shared.bin", Body=b"z" * 5000)
    with pytest.raises(ClientError) as caught:
        anonymous.get_object_torrent(Bucket=bucket, Key="shared.bin")
    assert _error(caught)[:2] == (403, "AccessDenied")
    s3.put_bucket_policy(Bucket=bucket, Policy=json.dumps({"Statement": [{
        "Effect": "Allow", "Principal": "*", "Action": "s3:GetObjectTorrent",
        "Resource": f"arn:aws:s3:::{bucket}/*"}]}))  # fmt: skip
    deadline = time.monotonic() + 2.5  # every worker applies a policy within a second
    while True:
        try:
            body = anonymous.get_object_torrent(Bucket=bucket, Key="shared.bin")["Body"].read()
            break
        except ClientError:
            assert time.monotonic() < deadline
            time.sleep(0.05)
    assert bdecode(body)[b"info"][b"pieces"] == hashlib.sha1(b"z" * 5000).digest()
    with pytest.raises(ClientError) as caught:
        anonymous.get_object(Bucket=bucket, Key="shared.bin")
    assert _error(caught)[:2] == (403, "AccessDenied")
