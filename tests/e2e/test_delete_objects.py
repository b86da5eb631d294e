"""DeleteObjects (POST /bucket?delete) through boto3 and through requests signed by hand, where
no client sends the case under test (no Content-MD5, a wrong digest, a malformed document)."""

from __future__ import annotations

import base64
import hashlib
import zlib
from typing import Any

import pytest
from botocore.exceptions import ClientError
from tests.e2e.test_auth import Reply, send, sign


def _keys(s3: Any, bucket: str) -> list[str]:
    return [o["Key"] for o in s3.list_objects_v2(Bucket=bucket).get("Contents", [])]


def _delete_xml(*keys: str, quiet: bool | None = None) -> bytes:
    quiet_xml = "" if quiet is None else f"<Quiet>{str(quiet).lower()}</Quiet>"
    objects = "".join(f"<Object><Key>{key}</Key></Object>" for key in keys)
    return f"<Delete>{quiet_xml}{objects}</Delete>".encode()


def _post_delete(server: Any, bucket: str, body: bytes, headers: dict[str, str]) -> Reply:
    path = f"/{bucket}?delete"
    signed = sign(server, "POST", path, hashlib.sha256(body).hexdigest(), headers)
    return send(server, "POST", path, signed.headers, body)


def _md5(body: bytes) -> str:
    return base64.b64encode(hashlib.md5(body).digest()).decode()


def test_verbose_lists_every_key_including_missing_ones(s3: Any, bucket: str) -> None:
    for key in ("a", "b/c", "x&y <z>", "é è", "keep"):
        s3.put_object(Bucket=bucket, Key=key, Body=b"data")
    reply = s3.delete_objects(
        Bucket=bucket,
        Delete={"Objects": [{"Key": k} for k in ("a", "b/c", "x&y <z>", "é è", "never-was")]},
    )
    assert sorted(d["Key"] for d in reply["Deleted"]) == sorted(
        ["a", "b/c", "x&y <z>", "é è", "never-was"]
    )
    assert "Errors" not in reply
    assert _keys(s3, bucket) == ["keep"]


def test_quiet_lists_only_errors(s3: Any, bucket: str) -> None:
    for key in ("one", "two", "three"):
        s3.put_object(Bucket=bucket, Key=key, Body=b"x")
    reply = s3.delete_objects(
        Bucket=bucket,
        Delete={
            "Quiet": True,
            "Objects": [
                {"Key": "one"},
                {"Key": "two", "VersionId": "null"},
                {"Key": "three", "VersionId": "3HL4kqtJlcpXroDTDmJ+rmSpXd3dIbrHY"},
            ],
        },
    )
    assert "Deleted" not in reply
    assert reply["Errors"] == [
        {
            "Key": "three",
            "VersionId": "3HL4kqtJlcpXroDTDmJ+rmSpXd3dIbrHY",
            "Code": "InvalidArgument",
            "Message": "Invalid version id specified",
        }
    ]
    assert _keys(s3, bucket) == ["three"]


def test_version_null_is_the_only_version(s3: Any, bucket: str) -> None:
    s3.put_object(Bucket=bucket, Key="k", Body=b"x")
    reply = s3.delete_objects(
        Bucket=bucket, Delete={"Objects": [{"Key": "k", "VersionId": "null"}]}
    )
    assert reply["Deleted"] == [{"Key": "k", "VersionId": "null"}]
    assert _keys(s3, bucket) == []


def test_per_key_error_leaves_the_others_deleted(s3: Any, bucket: str) -> None:
    s3.put_object(Bucket=bucket, Key="ok", Body=b"x")
    reply = s3.delete_objects(
        Bucket=bucket, Delete={"Objects": [{"Key": "k" * 1025}, {"Key": "ok"}]}
    )
    assert reply["Deleted"] == [{"Key": "ok"}]
    assert [(e["Key"], e["Code"]) for e in reply["Errors"]] == [("k" * 1025, "KeyTooLongError")]


def test_keys_are_answered_in_request_order_and_repeats_act_in_turn(s3: Any, bucket: str) -> None:
    """Keys are deleted side by side, but the answer keeps the request's order, and a key named
    twice in a versioned bucket gets two delete markers, one after the other."""
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    keys = [f"k{i:03d}" for i in range(60)]
    for key in keys:
        s3.put_object(Bucket=bucket, Key=key, Body=b"x")
    named = [*keys[::-1], "k000"]
    reply = s3.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": k} for k in named]})
    assert [d["Key"] for d in reply["Deleted"]] == named
    assert all(d["DeleteMarker"] for d in reply["Deleted"])
    markers = s3.list_object_versions(Bucket=bucket, Prefix="k000")["DeleteMarkers"]
    first, second = reply["Deleted"][len(keys) - 1], reply["Deleted"][-1]
    assert first["Key"] == second["Key"] == "k000"
    assert [m["VersionId"] for m in markers] == [
        second["DeleteMarkerVersionId"],
        first["DeleteMarkerVersionId"],
    ]  # newest first: the repeat came second
    assert markers[0]["IsLatest"] and not markers[1]["IsLatest"]
    assert _keys(s3, bucket) == []


def test_a_thousand_keys_pass_and_more_is_malformed(s3: Any, bucket: str) -> None:
    keys = [f"k{i:04d}" for i in range(1001)]
    with pytest.raises(ClientError) as exc:
        s3.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": k} for k in keys]})
    assert exc.value.response["Error"]["Code"] == "MalformedXML"
    assert exc.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    s3.put_object(Bucket=bucket, Key="k0999", Body=b"x")
    reply = s3.delete_objects(
        Bucket=bucket, Delete={"Objects": [{"Key": k} for k in keys[:1000]], "Quiet": True}
    )
    assert "Errors" not in reply and "Deleted" not in reply
    assert _keys(s3, bucket) == []


def test_missing_bucket_is_no_such_bucket(s3: Any) -> None:
    with pytest.raises(ClientError) as exc:
        s3.delete_objects(Bucket="no-such-bucket-here", Delete={"Objects": [{"Key": "k"}]})
    assert exc.value.response["Error"]["Code"] == "NoSuchBucket"
    assert exc.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404


def test_content_md5_alone_is_accepted(shared_server: Any, s3: Any, bucket: str) -> None:
    s3.put_object(Bucket=bucket, Key="gone", Body=b"x")
    body = _delete_xml("gone")
    reply = _post_delete(shared_server, bucket, body, {"Content-MD5": _md5(body)})
    assert reply.status == 200, reply.body
    assert b"<Deleted><Key>gone</Key></Deleted>" in reply.body
    assert _keys(s3, bucket) == []


def test_without_md5_or_checksum_is_invalid_request(
    shared_server: Any, s3: Any, bucket: str
) -> None:
    s3.put_object(Bucket=bucket, Key="stays", Body=b"x")
    reply = _post_delete(shared_server, bucket, _delete_xml("stays"), {})
    error = reply.expect_error(400, "InvalidRequest")
    assert error["Message"] == (
        "Missing required header for this request: Content-MD5 OR x-amz-checksum-*"
    )
    assert _keys(s3, bucket) == ["stays"]


@pytest.mark.parametrize("header", ["Content-MD5", "x-amz-checksum-crc32"])
def test_wrong_digest_is_bad_digest(shared_server: Any, s3: Any, bucket: str, header: str) -> None:
    s3.put_object(Bucket=bucket, Key="stays", Body=b"x")
    body = _delete_xml("stays")
    other = _delete_xml("other")
    value = (
        _md5(other)
        if header == "Content-MD5"
        else base64.b64encode(zlib.crc32(other).to_bytes(4, "big")).decode()
    )
    reply = _post_delete(shared_server, bucket, body, {header: value})
    reply.expect_error(400, "BadDigest")
    assert _keys(s3, bucket) == ["stays"]


@pytest.mark.parametrize(
    "body",
    [
        b"<Delete><Object><Key>a</Key>",  # not well-formed
        b"<Delete></Delete>",  # no object
        b"<Remove><Object><Key>a</Key></Object></Remove>",  # wrong root
        b"<Delete><Object><VersionId>null</VersionId></Object></Delete>",  # no key
        b"<Delete><Quiet>maybe</Quiet><Object><Key>a</Key></Object></Delete>",
    ],
)
def test_malformed_documents(shared_server: Any, bucket: str, body: bytes) -> None:
    reply = _post_delete(shared_server, bucket, body, {"Content-MD5": _md5(body)})
    reply.expect_error(400, "MalformedXML")


def test_namespaced_document_with_crc32(shared_server: Any, s3: Any, bucket: str) -> None:
    """The document boto3 sends carries the S3 namespace; both forms are accepted."""
    s3.put_object(Bucket=bucket, Key="n", Body=b"x")
    body = (
        b'<Delete xmlns="http://s3.amazonaws.com/doc/2006-03-01/">'
        b"<Object><Key>n</Key></Object><Quiet>false</Quiet></Delete>"
    )
    crc = base64.b64encode(zlib.crc32(body).to_bytes(4, "big")).decode()
    reply = _post_delete(shared_server, bucket, body, {"x-amz-checksum-crc32": crc})
    assert reply.status == 200, reply.body
    assert _keys(s3, bucket) == []
