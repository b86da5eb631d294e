"""Browser form uploads (POST /bucket, multipart/form-data) against a real server.

Forms come from boto3's generate_presigned_post and are posted by `requests`, or are signed
here by hand (an expired policy, a tampered one) and posted with urllib or http.client, the
way a browser sends them: every field first, the file last.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import urllib.error
import urllib.request
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit
from xml.etree import ElementTree

import boto3
import pytest
import requests
from botocore.config import Config
from botocore.exceptions import ClientError
from tests.conftest import ACCESS_KEY, SECRET_KEY, Server
from tests.e2e.test_auth import Reply, send

MiB = 1024 * 1024


@pytest.fixture
def poster(shared_server: Server) -> Any:
    """boto3 signs POST policies with SigV2 for us-east-1 unless told otherwise."""
    return shared_server.client(signature_version="s3v4")


def _reply(response: requests.Response) -> Reply:
    return Reply(
        response.status_code, {k.lower(): v for k, v in response.headers.items()}, response.content
    )


def _post(
    post: dict[str, Any], data: bytes, filename: str = "local.bin", **extra: str
) -> requests.Response:
    fields = {**post["fields"], **extra}
    return requests.post(
        post["url"], data=fields, files={"file": (filename, data)}, timeout=60,
        allow_redirects=False,
    )  # fmt: skip


def _hand_signed(
    bucket: str, conditions: list[Any], *, expires: timedelta = timedelta(minutes=10)
) -> dict[str, str]:
    """A SigV4 form signed here, independently of botocore and of the server's code."""
    now = datetime.now(UTC)
    date = now.strftime("%Y%m%d")
    credential = f"{ACCESS_KEY}/{date}/eu-west-3/s3/aws4_request"
    auth = {
        "x-amz-algorithm": "AWS4-HMAC-SHA256",
        "x-amz-credential": credential,
        "x-amz-date": now.strftime("%Y%m%dT%H%M%SZ"),
    }
    document = {
        "expiration": (now + expires).strftime("%Y-%m-%dT%H:%M:%S.000Z"),
        "conditions": [{"bucket": bucket}, *({k: v} for k, v in auth.items()), *conditions],
    }
    policy = base64.b64encode(json.dumps(document).encode()).decode()
    key = ("AWS4" + SECRET_KEY).encode()
    for part in (date, "eu-west-3", "s3", "aws4_request"):
        key = hmac.digest(key, part.encode(), "sha256")
    signature = hmac.new(key, policy.encode(), hashlib.sha256).hexdigest()
    return {**auth, "policy": policy, "x-amz-signature": signature}


def _multipart(
    fields: list[tuple[str, str]],
    file: bytes,
    *,
    after: list[tuple[str, str]] = (),  # type: ignore[assignment]
    close: bool = True,
) -> tuple[bytes, str]:
    """A multipart/form-data body built by hand: fields, the file, then `after`."""
    boundary = uuid.uuid4().hex
    out = bytearray()
    for name, value in fields:
        out += f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n'.encode()
        out += value.encode() + b"\r\n"
    out += (
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="f.txt"\r\n'
        "Content-Type: text/plain\r\n\r\n"
    ).encode()
    out += file + b"\r\n"
    for name, value in after:
        out += f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n'.encode()
        out += value.encode() + b"\r\n"
    if close:
        out += f"--{boundary}--\r\n".encode()
    return bytes(out), f"multipart/form-data; boundary={boundary}"


def _urllib_post(url: str, body: bytes, content_type: str) -> tuple[int, bytes]:
    request = urllib.request.Request(
        url, data=body, method="POST", headers={"Content-Type": content_type}
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


# --- success -----------------------------------------------------------------------------------


def test_presigned_post_stores_the_file(s3: Any, poster: Any, bucket: str) -> None:
    data = os.urandom(300_000)
    post = poster.generate_presigned_post(
        bucket,
        "uploads/${filename}",
        Fields={"Content-Type": "image/png", "x-amz-meta-owner": "alice"},
        Conditions=[{"Content-Type": "image/png"}, {"x-amz-meta-owner": "alice"}],
        ExpiresIn=300,
    )
    response = _post(post, data, filename="holiday photo.png")
    assert response.status_code == 204, response.content
    etag = f'"{hashlib.md5(data).hexdigest()}"'
    assert response.headers["etag"] == etag
    assert response.headers["location"].endswith(f"/{bucket}/uploads/holiday%20photo.png")
    got = s3.get_object(Bucket=bucket, Key="uploads/holiday photo.png")
    assert got["Body"].read() == data
    assert got["ContentType"] == "image/png"
    assert got["Metadata"] == {"owner": "alice"}


def test_default_content_type_and_empty_file(s3: Any, poster: Any, bucket: str) -> None:
    post = poster.generate_presigned_post(bucket, "empty", ExpiresIn=300)
    assert _post(post, b"").status_code == 204
    got = s3.get_object(Bucket=bucket, Key="empty")
    assert got["ContentLength"] == 0 and got["ContentType"] == "binary/octet-stream"


def test_status_201_returns_post_response(s3: Any, poster: Any, bucket: str) -> None:
    post = poster.generate_presigned_post(
        bucket, "k&<1>", Fields={"success_action_status": "201"},
        Conditions=[{"success_action_status": "201"}], ExpiresIn=300,
    )  # fmt: skip
    response = _post(post, b"created")
    assert response.status_code == 201, response.content
    # AWS's PostResponse has no XML namespace (unlike its other documents); clients and
    # ceph/s3-tests read `Key` unqualified.
    root = ElementTree.fromstring(response.content)
    assert root.tag == "PostResponse"
    assert root.findtext("Bucket") == bucket
    assert root.findtext("Key") == "k&<1>"
    assert root.findtext("ETag") == f'"{hashlib.md5(b"created").hexdigest()}"'
    assert (root.findtext("Location") or "").endswith(f"/{bucket}/k%26%3C1%3E")


@pytest.mark.parametrize("status,expected", [("200", 200), ("204", 204), ("302", 204)])
def test_other_statuses(poster: Any, bucket: str, status: str, expected: int) -> None:
    post = poster.generate_presigned_post(
        bucket, "k", Fields={"success_action_status": status},
        Conditions=[{"success_action_status": status}], ExpiresIn=300,
    )  # fmt: skip
    response = _post(post, b"x")
    assert response.status_code == expected and response.content == b""


def test_success_action_redirect(poster: Any, bucket: str) -> None:
    target = "https://app.example.org/done?from=form"
    post = poster.generate_presigned_post(
        bucket, "r/k", Fields={"success_action_redirect": target},
        Conditions=[{"success_action_redirect": target}], ExpiresIn=300,
    )  # fmt: skip
    response = _post(post, b"redirected")
    assert response.status_code == 303
    location = urlsplit(response.headers["location"])
    assert f"{location.scheme}://{location.netloc}{location.path}" == "https://app.example.org/done"
    query = parse_qs(location.query)
    assert query["from"] == ["form"] and query["bucket"] == [bucket] and query["key"] == ["r/k"]
    assert query["etag"] == [f'"{hashlib.md5(b"redirected").hexdigest()}"']


def test_large_file_is_streamed_and_leaves_no_spool(
    shared_server: Server, s3: Any, poster: Any, bucket: str
) -> None:
    data = os.urandom(12 * MiB + 7)
    before = set(shared_server.data_dir.iterdir())
    post = poster.generate_presigned_post(bucket, "big", ExpiresIn=300)
    assert _post(post, data).status_code == 204
    digest = hashlib.md5(s3.get_object(Bucket=bucket, Key="big")["Body"].read()).hexdigest()
    assert digest == hashlib.md5(data).hexdigest()
    assert set(shared_server.data_dir.iterdir()) == before


def test_fields_after_the_file_are_ignored_urllib(
    shared_server: Server, s3: Any, bucket: str
) -> None:
    signed = _hand_signed(bucket, [["starts-with", "$key", "in/"]])
    body, content_type = _multipart(
        [("key", "in/${filename}"), *signed.items()],
        b"hello from urllib",
        after=[("x-amz-meta-late", "not covered, after the file"), ("key", "elsewhere")],
    )
    status, reply = _urllib_post(f"{shared_server.endpoint}/{bucket}", body, content_type)
    assert status == 204, reply
    got = s3.get_object(Bucket=bucket, Key="in/f.txt")
    assert got["Body"].read() == b"hello from urllib" and got["Metadata"] == {}


def test_field_names_are_case_insensitive(shared_server: Server, s3: Any, bucket: str) -> None:
    signed = _hand_signed(bucket, [{"key": "k"}, {"content-type": "text/csv"}])
    fields = [("Key", "k"), ("Content-Type", "text/csv")]
    fields += [(name.upper() if name != "policy" else "Policy", v) for name, v in signed.items()]
    body, content_type = _multipart(fields, b"a,b\n")
    status, reply = _urllib_post(f"{shared_server.endpoint}/{bucket}", body, content_type)
    assert status == 204, reply
    assert s3.head_object(Bucket=bucket, Key="k")["ContentType"] == "text/csv"


# --- policy violations -------------------------------------------------------------------------


def _expect(response: requests.Response, status: int, code: str) -> dict[str, str]:
    return _reply(response).expect_error(status, code)


def _assert_empty(s3: Any, bucket: str) -> None:
    assert "Contents" not in s3.list_objects_v2(Bucket=bucket)


def test_exact_key_condition(s3: Any, poster: Any, bucket: str) -> None:
    post = poster.generate_presigned_post(bucket, "fixed/key", ExpiresIn=300)
    error = _expect(_post(post, b"x", key="other/key"), 403, "AccessDenied")
    assert error["Message"] == (
        'Invalid according to Policy: Policy Condition failed: ["eq", "$key", "fixed/key"]'
    )
    _assert_empty(s3, bucket)


def test_eq_condition(s3: Any, poster: Any, bucket: str) -> None:
    post = poster.generate_presigned_post(
        bucket, "k", Fields={"Content-Type": "image/png"},
        Conditions=[["eq", "$Content-Type", "image/png"]], ExpiresIn=300,
    )  # fmt: skip
    error = _expect(_post(post, b"x", **{"Content-Type": "text/html"}), 403, "AccessDenied")
    assert error["Message"] == (
        'Invalid according to Policy: Policy Condition failed: ["eq", "$content-type", "image/png"]'
    )
    _assert_empty(s3, bucket)


def test_starts_with_condition(s3: Any, poster: Any, bucket: str) -> None:
    post = poster.generate_presigned_post(bucket, "user/alice/${filename}", ExpiresIn=300)
    assert _post(post, b"ok", filename="a.txt").status_code == 204
    error = _expect(_post(post, b"x", key="user/bob/a.txt"), 403, "AccessDenied")
    assert "Policy Condition failed" in error["Message"] and "user/alice/" in error["Message"]
    assert [o["Key"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"]] == ["user/alice/a.txt"]


def test_bucket_condition(s3: Any, poster: Any, bucket: str) -> None:
    other = bucket[:-6] + "other"
    s3.create_bucket(Bucket=other)
    post = poster.generate_presigned_post(bucket, "k", ExpiresIn=300)
    post["url"] = post["url"].replace(f"/{bucket}", f"/{other}")
    error = _expect(_post(post, b"x"), 403, "AccessDenied")
    assert f'["eq", "$bucket", "{bucket}"]' in error["Message"]
    _assert_empty(s3, other)


@pytest.mark.parametrize(
    "size,code,detail",
    [(9, "EntityTooSmall", "MinSizeAllowed"), (101, "EntityTooLarge", "MaxSizeAllowed")],
)
def test_content_length_range(
    s3: Any, poster: Any, bucket: str, size: int, code: str, detail: str
) -> None:
    post = poster.generate_presigned_post(
        bucket, "sized", Conditions=[["content-length-range", 10, 100]], ExpiresIn=300
    )
    error = _expect(_post(post, b"x" * size), 400, code)
    assert error["ProposedSize"] == str(size)
    assert error[detail] == ("10" if code == "EntityTooSmall" else "100")
    _assert_empty(s3, bucket)
    assert _post(post, b"x" * 10).status_code == 204
    assert _post(post, b"x" * 100).status_code == 204


def test_too_large_is_refused_while_it_arrives(s3: Any, poster: Any, bucket: str) -> None:
    """A file far over the range is cut off without being received whole."""
    post = poster.generate_presigned_post(
        bucket, "huge", Conditions=[["content-length-range", 0, MiB]], ExpiresIn=300
    )
    error = _expect(_post(post, os.urandom(3 * MiB)), 400, "EntityTooLarge")
    assert error["MaxSizeAllowed"] == str(MiB)
    assert int(error["ProposedSize"]) <= 2 * MiB  # refused before the end of the file
    _assert_empty(s3, bucket)


def test_extra_field(s3: Any, poster: Any, bucket: str) -> None:
    post = poster.generate_presigned_post(bucket, "k", ExpiresIn=300)
    error = _expect(_post(post, b"x", **{"x-amz-meta-sneaky": "1"}), 403, "AccessDenied")
    assert error["Message"] == "Invalid according to Policy: Extra input fields: x-amz-meta-sneaky"
    assert _post(post, b"x", **{"x-ignore-submit": "Upload"}).status_code == 204


def test_expired_policy(shared_server: Server, s3: Any, bucket: str) -> None:
    signed = _hand_signed(bucket, [{"key": "late"}], expires=timedelta(seconds=-1))
    body, content_type = _multipart([("key", "late"), *signed.items()], b"x")
    status, reply = _urllib_post(f"{shared_server.endpoint}/{bucket}", body, content_type)
    assert status == 403
    assert b"<Code>AccessDenied</Code>" in reply
    assert b"<Message>Invalid according to Policy: Policy expired.</Message>" in reply
    _assert_empty(s3, bucket)


def test_bad_signature(s3: Any, poster: Any, bucket: str) -> None:
    post = poster.generate_presigned_post(bucket, "k", ExpiresIn=300)
    signature = post["fields"]["x-amz-signature"]
    post["fields"]["x-amz-signature"] = ("0" if signature[0] != "0" else "1") + signature[1:]
    _expect(_post(post, b"x"), 403, "SignatureDoesNotMatch")
    _assert_empty(s3, bucket)


def test_policy_changed_after_signing(shared_server: Server, s3: Any, bucket: str) -> None:
    signed = _hand_signed(bucket, [{"key": "k"}])
    widened = _hand_signed(bucket, [["starts-with", "$key", ""]])
    signed["policy"] = widened["policy"]  # the old signature over a wider policy
    body, content_type = _multipart([("key", "anything"), *signed.items()], b"x")
    status, reply = _urllib_post(f"{shared_server.endpoint}/{bucket}", body, content_type)
    assert status == 403 and b"<Code>SignatureDoesNotMatch</Code>" in reply
    _assert_empty(s3, bucket)


def test_unknown_access_key(shared_server: Server, bucket: str) -> None:
    stranger = boto3.client(
        "s3", endpoint_url=shared_server.endpoint, aws_access_key_id="EGUNKNOWNKEY0000000",
        aws_secret_access_key=SECRET_KEY, region_name="us-east-1",
        config=Config(signature_version="s3v4"),
    )  # fmt: skip
    post = stranger.generate_presigned_post(bucket, "k", ExpiresIn=300)
    _expect(_post(post, b"x"), 403, "InvalidAccessKeyId")


# --- malformed forms ---------------------------------------------------------------------------


def test_anonymous_form_is_access_denied(shared_server: Server, bucket: str) -> None:
    """Unsigned: the anonymous caller, which no policy or ACL of this bucket lets write."""
    body, content_type = _multipart([("key", "k")], b"x")
    status, reply = _urllib_post(f"{shared_server.endpoint}/{bucket}", body, content_type)
    assert status == 403 and b"<Code>AccessDenied</Code>" in reply


def test_missing_key_field(poster: Any, bucket: str) -> None:
    post = poster.generate_presigned_post(bucket, "k", ExpiresIn=300)
    del post["fields"]["key"]
    error = _expect(_post(post, b"x"), 400, "InvalidArgument")
    assert error["ArgumentName"] == "key"


def test_missing_file(poster: Any, bucket: str) -> None:
    post = poster.generate_presigned_post(bucket, "k", ExpiresIn=300)
    fields = {k: (None, v) for k, v in post["fields"].items()}
    response = requests.post(post["url"], files=fields, timeout=30)
    error = _expect(response, 400, "InvalidArgument")
    assert error["Message"] == "POST requires exactly one file upload per request."


def test_not_a_form(shared_server: Server, bucket: str) -> None:
    reply = send(shared_server, "POST", f"/{bucket}", {"Content-Type": "application/json"}, b"{}")
    reply.expect_error(400, "MalformedPOSTRequest")


def test_body_without_closing_boundary_stores_nothing(
    shared_server: Server, s3: Any, bucket: str
) -> None:
    signed = _hand_signed(bucket, [{"key": "cut"}])
    body, content_type = _multipart([("key", "cut"), *signed.items()], b"cut short", close=False)
    reply = send(shared_server, "POST", f"/{bucket}", {"Content-Type": content_type}, body)
    reply.expect_error(400, "MalformedPOSTRequest")
    _assert_empty(s3, bucket)


def test_missing_bucket(poster: Any) -> None:
    post = poster.generate_presigned_post("no-such-bucket-for-post", "k", ExpiresIn=300)
    _expect(_post(post, b"x"), 404, "NoSuchBucket")


# --- names (issue 13, item 4) ------------------------------------------------------------------


def test_utf8_file_name_becomes_the_key_unchanged(s3: Any, poster: Any, bucket: str) -> None:
    """Browsers send the file name as raw UTF-8 (HTML5): it is read as such, not mangled."""
    post = poster.generate_presigned_post(bucket, "in/${filename}", ExpiresIn=300)
    assert _post(post, b"ok", filename="café.txt").status_code == 204
    keys = [item["Key"] for item in s3.list_objects_v2(Bucket=bucket)["Contents"]]
    assert keys == ["in/café.txt"]


def test_file_name_that_is_not_utf8_is_refused(
    shared_server: Server, s3: Any, poster: Any, bucket: str
) -> None:
    post = poster.generate_presigned_post(bucket, "in/${filename}", ExpiresIn=300)
    boundary = uuid.uuid4().hex
    body = bytearray()
    for name, value in post["fields"].items():
        body += f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n'.encode()
        body += value.encode() + b"\r\n"
    body += f"--{boundary}\r\n".encode()
    body += b'Content-Disposition: form-data; name="file"; filename="caf\xff.txt"\r\n\r\nok\r\n'
    body += f"--{boundary}--\r\n".encode()
    status, reply = _urllib_post(
        post["url"], bytes(body), f"multipart/form-data; boundary={boundary}"
    )
    assert status == 400 and b"<Code>MalformedPOSTRequest</Code>" in reply
    assert s3.list_objects_v2(Bucket=bucket).get("KeyCount") == 0


def test_tagging_field_tags_the_object(s3: Any, poster: Any, bucket: str) -> None:
    """The form's `tagging` field (a Tagging XML document) is the x-amz-tagging of a PUT:
    read, checked, stored; never ignored."""
    tagging = (
        "<Tagging><TagSet><Tag><Key>team</Key><Value>blue</Value></Tag>"
        "<Tag><Key>cost centre</Key><Value>42</Value></Tag></TagSet></Tagging>"
    )
    post = poster.generate_presigned_post(
        bucket, "tagged", Fields={"tagging": tagging}, Conditions=[{"tagging": tagging}],
        ExpiresIn=300,
    )  # fmt: skip
    assert _post(post, b"x").status_code == 204
    tags = s3.get_object_tagging(Bucket=bucket, Key="tagged")["TagSet"]
    assert sorted((t["Key"], t["Value"]) for t in tags) == [("cost centre", "42"), ("team", "blue")]
    bad = "<Tagging><TagSet><Tag><Key>aws:no</Key><Value>x</Value></Tag></TagSet></Tagging>"
    post = poster.generate_presigned_post(
        bucket, "badly-tagged", Fields={"tagging": bad}, Conditions=[{"tagging": bad}],
        ExpiresIn=300,
    )  # fmt: skip
    _expect(_post(post, b"x"), 400, "InvalidTag")
    _expect(_post(post, b"x", tagging="<NotTagging/>"), 403, "AccessDenied")  # not as signed
    garbled = "<Tagging><TagSet>"
    post = poster.generate_presigned_post(
        bucket, "garbled", Fields={"tagging": garbled}, Conditions=[{"tagging": garbled}],
        ExpiresIn=300,
    )  # fmt: skip
    _expect(_post(post, b"x"), 400, "MalformedXML")
    assert code_of(s3, bucket, "badly-tagged") == code_of(s3, bucket, "garbled") == "404"


def code_of(s3: Any, bucket: str, key: str) -> str:
    try:
        s3.head_object(Bucket=bucket, Key=key)
    except ClientError as exc:
        return str(exc.response["Error"]["Code"])
    return "ok"
