"""Presigned URLs (SigV4 query authentication) used by plain HTTP clients, their X-Amz-Expires
limits and their expiry, against a real server.

https://docs.aws.amazon.com/AmazonS3/latest/API/sigv4-query-string-auth.html
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from unittest import mock
from urllib.parse import urlsplit

import pytest
import requests
from botocore.auth import S3SigV4QueryAuth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from tests.conftest import ACCESS_KEY, SECRET_KEY, Server
from tests.e2e.test_auth import Reply, send

WEEK = 604800


@pytest.fixture
def presigner(shared_server: Server) -> Any:
    """boto3 presigns with SigV2 for us-east-1 unless told otherwise; Égide only does SigV4."""
    return shared_server.client(signature_version="s3v4")


def _presign(
    server: Server, method: str, path: str, expires: int | str, when: datetime | None = None
) -> str:
    """A URL signed by botocore's query signer, with any X-Amz-Expires (boto3's own
    generate_presigned_url refuses values below 1) and any signing time."""
    request = AWSRequest(method=method, url=server.endpoint + path)
    signer = S3SigV4QueryAuth(Credentials(ACCESS_KEY, SECRET_KEY), "s3", "us-east-1", expires)  # type: ignore[arg-type]
    with mock.patch("botocore.auth.get_current_datetime", return_value=when or datetime.now(UTC)):
        signer.add_auth(request)
    return str(request.url)


def _get(server: Server, url: str) -> Reply:
    parts = urlsplit(url)
    return send(server, "GET", f"{parts.path}?{parts.query}", {})


def test_presigned_put_get_head_delete_with_requests(s3: Any, presigner: Any, bucket: str) -> None:
    data = b"\x00uploaded through a presigned URL\xff" * 1000
    put = presigner.generate_presigned_url(
        "put_object", Params={"Bucket": bucket, "Key": "up/é x"}, ExpiresIn=300
    )
    assert requests.put(put, data=data, timeout=30).status_code == 200
    assert s3.get_object(Bucket=bucket, Key="up/é x")["Body"].read() == data
    get = presigner.generate_presigned_url(
        "get_object",
        Params={"Bucket": bucket, "Key": "up/é x", "ResponseContentType": "text/x-test"},
        ExpiresIn=300,
    )
    reply = requests.get(get, timeout=30)
    assert reply.status_code == 200 and reply.content == data
    assert reply.headers["content-type"] == "text/x-test"
    head = presigner.generate_presigned_url(
        "head_object", Params={"Bucket": bucket, "Key": "up/é x"}, ExpiresIn=300
    )
    assert requests.head(head, timeout=30).headers["content-length"] == str(len(data))
    delete = presigner.generate_presigned_url(
        "delete_object", Params={"Bucket": bucket, "Key": "up/é x"}, ExpiresIn=300
    )
    assert requests.delete(delete, timeout=30).status_code == 204
    assert "Contents" not in s3.list_objects_v2(Bucket=bucket)


def test_a_week_is_the_longest_validity(shared_server: Server, s3: Any, bucket: str) -> None:
    s3.put_object(Bucket=bucket, Key="k", Body=b"week")
    assert _get(shared_server, _presign(shared_server, "GET", f"/{bucket}/k", WEEK)).body == b"week"
    assert _get(shared_server, _presign(shared_server, "GET", f"/{bucket}/k", 1)).body == b"week"


@pytest.mark.parametrize(
    "expires,message",
    [
        (
            WEEK + 1,
            "X-Amz-Expires must be less than a week (in seconds); that is, the given "
            "X-Amz-Expires must be less than 604800 seconds",
        ),
        (-1, "X-Amz-Expires must be non-negative"),
        ("soon", "X-Amz-Expires should be a number"),
    ],
)
def test_expires_out_of_range(
    shared_server: Server, s3: Any, bucket: str, expires: int | str, message: str
) -> None:
    s3.put_object(Bucket=bucket, Key="k", Body=b"x")
    reply = _get(shared_server, _presign(shared_server, "GET", f"/{bucket}/k", expires))
    error = reply.expect_error(400, "AuthorizationQueryParametersError")
    assert error["Message"] == message


def test_zero_expires_is_already_expired(shared_server: Server, s3: Any, bucket: str) -> None:
    """X-Amz-Expires=0 is in AWS's range (0 to a week): a URL valid for no time, refused as
    expired (403), not as malformed (400). (boto3 with awscrt refuses to sign it: botocore's
    own query signer does, as boto3 without awscrt and ceph/s3-tests do.)"""
    s3.put_object(Bucket=bucket, Key="k", Body=b"x")
    url = _presign(shared_server, "GET", f"/{bucket}/k", 0)
    assert "X-Amz-Expires=0&" in url
    error = _get(shared_server, url).expect_error(403, "AccessDenied")
    assert error["Message"] == "Request has expired"
    assert error["X-Amz-Expires"] == "0"
    reply = requests.get(url, timeout=30)
    assert reply.status_code == 403 and b"<Code>AccessDenied</Code>" in reply.content


def test_expired_url_says_when(shared_server: Server, s3: Any, bucket: str) -> None:
    s3.put_object(Bucket=bucket, Key="k", Body=b"x")
    signed_at = (datetime.now(UTC) - timedelta(hours=2)).replace(microsecond=0)
    url = _presign(shared_server, "GET", f"/{bucket}/k", 3600, when=signed_at)
    before = datetime.now(UTC).replace(microsecond=0)
    error = _get(shared_server, url).expect_error(403, "AccessDenied")
    after = datetime.now(UTC)
    assert error["Message"] == "Request has expired"
    assert error["X-Amz-Expires"] == "3600"
    assert error["Expires"] == (signed_at + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    server_time = datetime.strptime(error["ServerTime"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    assert before <= server_time <= after
    # The same URL signed now, for the same hour, works: only the time made the difference.
    fresh = _presign(shared_server, "GET", f"/{bucket}/k", 3600)
    assert _get(shared_server, fresh).body == b"x"


def test_expired_put_stores_nothing(shared_server: Server, s3: Any, bucket: str) -> None:
    url = _presign(
        shared_server, "PUT", f"/{bucket}/late", 60, when=datetime.now(UTC) - timedelta(minutes=5)
    )
    reply = requests.put(url, data=b"too late", timeout=30)
    assert reply.status_code == 403 and b"<Code>AccessDenied</Code>" in reply.content
    assert "Contents" not in s3.list_objects_v2(Bucket=bucket)
