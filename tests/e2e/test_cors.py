"""Bucket CORS through boto3, preflights and cross-origin requests as a browser sends them.

Expected answers are S3's as recorded by others (LocalStack's AWS-validated snapshots, ceph
s3-tests): see src/egide/s3/cors.py.
"""

from __future__ import annotations

import base64
import hashlib
import http.client
import time
import xml.etree.ElementTree as ET
from typing import Any

import pytest
from botocore.auth import S3SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from botocore.exceptions import ClientError
from tests.conftest import ACCESS_KEY, SECRET_KEY, Server

from egide.engine.store import BUCKET_CACHE_SECONDS

VARY = "Origin, Access-Control-Request-Headers, Access-Control-Request-Method"
APP = "https://app.example.com"
NOT_ALLOWED = (
    "CORSResponse: This CORS request is not allowed. This is usually because the evalution of "
    "Origin, request method / Access-Control-Request-Method or Access-Control-Request-Headers "
    "are not whitelisted by the resource's CORS spec."
)


class Reply:
    def __init__(self, response: http.client.HTTPResponse) -> None:
        self.status = response.status
        self.headers = {name.lower(): value for name, value in response.getheaders()}
        self.body = response.read()

    def cors(self) -> dict[str, str]:
        return {n: v for n, v in self.headers.items() if n.startswith("access-control-")}

    def error(self) -> dict[str, str]:
        root = ET.fromstring(self.body)
        return {child.tag: child.text or "" for child in root}


def send(
    server: Server,
    method: str,
    path: str,
    headers: dict[str, str] | None = None,
    body: bytes = b"",
    *,
    signed: bool = True,
) -> Reply:
    """A request framed by hand (browsers' headers such as Origin included), signed by botocore
    unless `signed` is False, as a preflight is."""
    headers = dict(headers or {})
    if signed:
        request = AWSRequest(method=method, url=f"{server.endpoint}{path}", data=body)
        for name, value in headers.items():
            request.headers[name] = value
        S3SigV4Auth(Credentials(ACCESS_KEY, SECRET_KEY), "s3", "us-east-1").add_auth(request)
        headers = dict(request.headers.items())
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    try:
        conn.request(method, path, body=body or None, headers=headers)
        return Reply(conn.getresponse())
    finally:
        conn.close()


def preflight(server: Server, path: str, **headers: str) -> Reply:
    names = {
        "origin": "Origin",
        "method": "Access-Control-Request-Method",
        "headers": "Access-Control-Request-Headers",
    }
    return send(server, "OPTIONS", path, {names[k]: v for k, v in headers.items()}, signed=False)


def error_of(exc: pytest.ExceptionInfo[ClientError]) -> tuple[str, int, str]:
    response = exc.value.response
    return (
        response["Error"]["Code"],
        response["ResponseMetadata"]["HTTPStatusCode"],
        response["Error"]["Message"],
    )


def md5_header(body: bytes) -> dict[str, str]:
    return {"Content-MD5": base64.b64encode(hashlib.md5(body).digest()).decode()}


RULES = [
    {
        "ID": "app",
        "AllowedOrigins": [APP],
        "AllowedMethods": ["GET", "PUT"],
        "AllowedHeaders": ["x-amz-*", "Content-Type"],
        "ExposeHeaders": ["ETag", "x-amz-meta-owner"],
        "MaxAgeSeconds": 3000,
    },
    {"AllowedOrigins": ["http://*.example.org"], "AllowedMethods": ["GET"]},
    {"AllowedOrigins": ["*"], "AllowedMethods": ["HEAD"]},
]


@pytest.fixture
def cors_bucket(s3: Any, bucket: str) -> str:
    s3.put_bucket_cors(Bucket=bucket, CORSConfiguration={"CORSRules": RULES})
    return bucket


# -- the configuration ------------------------------------------------------------------------


def test_put_get_delete_round_trip(s3: Any, bucket: str) -> None:
    with pytest.raises(ClientError) as exc:
        s3.get_bucket_cors(Bucket=bucket)
    assert error_of(exc) == (
        "NoSuchCORSConfiguration",
        404,
        "The CORS configuration does not exist",
    )
    assert exc.value.response["Error"]["BucketName"] == bucket

    put = s3.put_bucket_cors(Bucket=bucket, CORSConfiguration={"CORSRules": RULES})
    assert put["ResponseMetadata"]["HTTPStatusCode"] == 200
    assert s3.get_bucket_cors(Bucket=bucket)["CORSRules"] == RULES

    # A second PutBucketCors replaces the whole configuration.
    only = [{"AllowedOrigins": ["http://a.test"], "AllowedMethods": ["DELETE"]}]
    s3.put_bucket_cors(Bucket=bucket, CORSConfiguration={"CORSRules": only})
    assert s3.get_bucket_cors(Bucket=bucket)["CORSRules"] == only

    deleted = s3.delete_bucket_cors(Bucket=bucket)
    assert deleted["ResponseMetadata"]["HTTPStatusCode"] == 204
    with pytest.raises(ClientError) as exc:
        s3.get_bucket_cors(Bucket=bucket)
    assert error_of(exc)[:2] == ("NoSuchCORSConfiguration", 404)
    # Deleting what is not there succeeds, as in S3.
    assert s3.delete_bucket_cors(Bucket=bucket)["ResponseMetadata"]["HTTPStatusCode"] == 204


def test_cors_of_a_missing_bucket_is_no_such_bucket(s3: Any) -> None:
    with pytest.raises(ClientError) as exc:
        s3.get_bucket_cors(Bucket="no-such-bucket-for-cors")
    assert error_of(exc)[:2] == ("NoSuchBucket", 404)


@pytest.mark.parametrize(
    "rule,code,message",
    [
        (
            {"AllowedOrigins": ["*"], "AllowedMethods": ["PATCH"]},
            "InvalidRequest",
            "Found unsupported HTTP method in CORS config. Unsupported method is PATCH",
        ),
        (
            {"AllowedOrigins": ["*"], "AllowedMethods": ["get"]},
            "InvalidRequest",
            "Found unsupported HTTP method in CORS config. Unsupported method is get",
        ),
        (
            {"AllowedOrigins": ["*example*.com"], "AllowedMethods": ["GET"]},
            "InvalidRequest",
            'AllowedOrigin "*example*.com" can not have more than one wildcard.',
        ),
        (
            {"AllowedOrigins": ["*"], "AllowedMethods": ["GET"], "AllowedHeaders": ["x-*-*"]},
            "InvalidRequest",
            'AllowedHeader "x-*-*" can not have more than one wildcard.',
        ),
        (
            {"AllowedOrigins": ["*"], "AllowedMethods": ["GET"], "ExposeHeaders": ["x-amz-*"]},
            "InvalidRequest",
            'ExposeHeader "x-amz-*" contains wildcard. We currently do not support wildcard '
            "for ExposeHeader.",
        ),
    ],
)
def test_invalid_rules_are_refused_as_s3_does(
    s3: Any, bucket: str, rule: dict[str, Any], code: str, message: str
) -> None:
    with pytest.raises(ClientError) as exc:
        s3.put_bucket_cors(Bucket=bucket, CORSConfiguration={"CORSRules": [rule]})
    assert error_of(exc) == (code, 400, message)
    with pytest.raises(ClientError):
        s3.get_bucket_cors(Bucket=bucket)  # nothing was stored


@pytest.mark.parametrize("count", [0, 101])
def test_rule_count_outside_1_to_100_is_malformed(s3: Any, bucket: str, count: int) -> None:
    rules = [{"AllowedOrigins": ["http://o.test"], "AllowedMethods": ["GET"]}] * count
    with pytest.raises(ClientError) as exc:
        s3.put_bucket_cors(Bucket=bucket, CORSConfiguration={"CORSRules": rules})
    assert error_of(exc)[:2] == ("MalformedXML", 400)


def test_one_hundred_rules_are_accepted(s3: Any, bucket: str) -> None:
    rules = [
        {"AllowedOrigins": [f"http://o{i}.test"], "AllowedMethods": ["GET"]} for i in range(100)
    ]
    s3.put_bucket_cors(Bucket=bucket, CORSConfiguration={"CORSRules": rules})
    assert len(s3.get_bucket_cors(Bucket=bucket)["CORSRules"]) == 100


@pytest.mark.parametrize(
    "rule",
    [
        "<AllowedMethod>GET</AllowedMethod>",  # no AllowedOrigin
        "<AllowedOrigin>*</AllowedOrigin>",  # no AllowedMethod
        "<AllowedOrigin>*</AllowedOrigin><AllowedMethod>GET</AllowedMethod><Bogus/>",
        "<AllowedOrigin>*</AllowedOrigin><AllowedMethod>GET</AllowedMethod>"
        "<MaxAgeSeconds>soon</MaxAgeSeconds>",
        "<AllowedOrigin>*</AllowedOrigin><AllowedMethod>GET</AllowedMethod><ID>a</ID><ID>b</ID>",
    ],
)
def test_documents_outside_the_schema_are_malformed(
    shared_server: Server, bucket: str, rule: str
) -> None:
    body = f"<CORSConfiguration><CORSRule>{rule}</CORSRule></CORSConfiguration>".encode()
    reply = send(shared_server, "PUT", f"/{bucket}?cors", md5_header(body), body)
    assert reply.status == 400
    assert reply.error()["Code"] == "MalformedXML"


def test_configuration_needs_an_integrity_header(shared_server: Server, bucket: str) -> None:
    body = (
        b"<CORSConfiguration><CORSRule><AllowedOrigin>*</AllowedOrigin>"
        b"<AllowedMethod>GET</AllowedMethod></CORSRule></CORSConfiguration>"
    )
    reply = send(shared_server, "PUT", f"/{bucket}?cors", {}, body)
    assert (reply.status, reply.error()["Code"]) == (400, "InvalidRequest")
    assert reply.error()["Message"] == (
        "Missing required header for this request: Content-MD5 OR x-amz-checksum-*"
    )
    wrong = md5_header(body + b" ")
    reply = send(shared_server, "PUT", f"/{bucket}?cors", wrong, body)
    assert (reply.status, reply.error()["Code"]) == (400, "BadDigest")
    reply = send(shared_server, "PUT", f"/{bucket}?cors", md5_header(body), body)
    assert reply.status == 200


# -- preflights -------------------------------------------------------------------------------


def test_preflight_without_origin_is_bad_request(shared_server: Server, cors_bucket: str) -> None:
    reply = preflight(shared_server, f"/{cors_bucket}/k", method="GET")
    assert reply.status == 400
    assert reply.error()["Code"] == "BadRequest"
    assert reply.error()["Message"] == "Insufficient information. Origin request header needed."


def test_preflight_without_method_is_bad_request(shared_server: Server, cors_bucket: str) -> None:
    reply = preflight(shared_server, f"/{cors_bucket}/k", origin=APP)
    assert reply.status == 400
    assert reply.error()["Message"] == "Invalid Access-Control-Request-Method: null"


def test_preflight_on_a_bucket_without_cors_is_forbidden(
    shared_server: Server, bucket: str
) -> None:
    reply = preflight(shared_server, f"/{bucket}/k", origin=APP, method="PUT")
    assert reply.status == 403
    assert reply.error()["Code"] == "AccessForbidden"
    assert reply.error()["Message"] == "CORSResponse: CORS is not enabled for this bucket."
    assert (reply.error()["Method"], reply.error()["ResourceType"]) == ("PUT", "BUCKET")
    assert reply.cors() == {}


def test_preflight_on_a_missing_bucket_is_forbidden(shared_server: Server) -> None:
    reply = preflight(shared_server, "/no-such-bucket-cors/k", origin=APP, method="GET")
    assert reply.status == 403
    assert reply.error()["Message"] == "CORSResponse: Bucket not found"


def test_preflight_allowed_answers_the_rule(shared_server: Server, cors_bucket: str) -> None:
    reply = preflight(shared_server, f"/{cors_bucket}/photo.jpg", origin=APP, method="PUT")
    assert reply.status == 200
    assert reply.body == b""
    assert reply.cors() == {
        "access-control-allow-origin": APP,
        "access-control-allow-credentials": "true",
        "access-control-allow-methods": "GET, PUT",
        "access-control-expose-headers": "ETag, x-amz-meta-owner",
        "access-control-max-age": "3000",
    }
    assert reply.headers["vary"] == VARY


def test_preflight_requested_headers_must_all_be_allowed(
    shared_server: Server, cors_bucket: str
) -> None:
    path = f"/{cors_bucket}/photo.jpg"
    ok = preflight(shared_server, path, origin=APP, method="PUT", headers="Content-Type,X-Amz-Date")
    assert ok.status == 200
    assert ok.headers["access-control-allow-headers"] == "content-type, x-amz-date"
    refused = preflight(
        shared_server, path, origin=APP, method="PUT", headers="content-type,authorization"
    )
    assert refused.status == 403
    assert refused.error()["Code"] == "AccessForbidden"
    assert refused.error()["Message"] == NOT_ALLOWED
    assert (refused.error()["Method"], refused.error()["ResourceType"]) == ("PUT", "OBJECT")
    assert refused.cors() == {}


@pytest.mark.parametrize(
    "origin,method,allowed_origin",
    [
        ("http://shop.example.org", "GET", "http://shop.example.org"),  # one * in the origin
        ("http://.example.org", "GET", "http://.example.org"),  # * matches nothing, too
        ("https://shop.example.org", "GET", None),  # another scheme
        ("http://shop.example.org", "DELETE", None),
        ("https://anyone.test", "HEAD", "*"),  # the "*" rule
        (APP, "POST", None),
        (APP + "/", "GET", None),  # an origin has no trailing slash
    ],
)
def test_preflight_origin_and_method_matching(
    shared_server: Server, cors_bucket: str, origin: str, method: str, allowed_origin: str | None
) -> None:
    reply = preflight(shared_server, f"/{cors_bucket}", origin=origin, method=method)
    if allowed_origin is None:
        assert reply.status == 403
        assert reply.error()["ResourceType"] == "BUCKET"
        return
    assert reply.status == 200
    assert reply.headers["access-control-allow-origin"] == allowed_origin
    # Only an echoed origin allows credentials: browsers refuse "*" with them.
    expected = None if allowed_origin == "*" else "true"
    assert reply.headers.get("access-control-allow-credentials") == expected


def test_first_matching_rule_wins(s3: Any, shared_server: Server, bucket: str) -> None:
    rules = [
        {"AllowedOrigins": [APP], "AllowedMethods": ["GET"], "MaxAgeSeconds": 10},
        {"AllowedOrigins": ["*"], "AllowedMethods": ["GET", "PUT"], "MaxAgeSeconds": 20},
    ]
    s3.put_bucket_cors(Bucket=bucket, CORSConfiguration={"CORSRules": rules})
    first = preflight(shared_server, f"/{bucket}/k", origin=APP, method="GET")
    assert (
        first.headers["access-control-max-age"],
        first.headers["access-control-allow-methods"],
    ) == (
        "10",
        "GET",
    )
    second = preflight(shared_server, f"/{bucket}/k", origin=APP, method="PUT")
    assert second.headers["access-control-max-age"] == "20"
    assert second.headers["access-control-allow-origin"] == "*"


def test_preflight_ignores_a_presigned_query(
    s3: Any, shared_server: Server, cors_bucket: str
) -> None:
    """A browser preflights a presigned URL as is: the signature is for the GET, not for this."""
    url = s3.generate_presigned_url("get_object", Params={"Bucket": cors_bucket, "Key": "k"})
    path = url[len(shared_server.endpoint) :]
    assert preflight(shared_server, path, origin=APP, method="GET").status == 200
    assert preflight(shared_server, path).status == 400


def test_changes_apply_at_once_in_the_process(make_server: Any) -> None:
    """The process that serves Put/DeleteBucketCors drops its cached rules at once."""
    server = make_server("workers = 1")
    s3 = server.client()
    s3.create_bucket(Bucket="changes")
    path = "/changes/k"
    assert preflight(server, path, origin=APP, method="GET").status == 403
    s3.put_bucket_cors(
        Bucket="changes",
        CORSConfiguration={"CORSRules": [{"AllowedOrigins": [APP], "AllowedMethods": ["GET"]}]},
    )
    assert preflight(server, path, origin=APP, method="GET").status == 200
    s3.put_bucket_cors(
        Bucket="changes",
        CORSConfiguration={"CORSRules": [{"AllowedOrigins": [APP], "AllowedMethods": ["PUT"]}]},
    )
    assert preflight(server, path, origin=APP, method="GET").status == 403
    s3.delete_bucket_cors(Bucket="changes")
    gone = preflight(server, path, origin=APP, method="PUT")
    assert gone.status == 403
    assert gone.error()["Message"] == "CORSResponse: CORS is not enabled for this bucket."


def test_changes_reach_every_worker_within_the_cache_delay(
    s3: Any, shared_server: Server, bucket: str
) -> None:
    """Other worker processes keep rules up to BUCKET_CACHE_SECONDS (the default of
    `bucket_cache_seconds`), then read the new ones."""
    path = f"/{bucket}/k"
    for _ in range(6):  # reach every worker, so that each caches "no rules"
        assert preflight(shared_server, path, origin=APP, method="GET").status == 403
    s3.put_bucket_cors(
        Bucket=bucket,
        CORSConfiguration={"CORSRules": [{"AllowedOrigins": [APP], "AllowedMethods": ["GET"]}]},
    )
    time.sleep(BUCKET_CACHE_SECONDS + 0.2)
    for _ in range(6):
        assert preflight(shared_server, path, origin=APP, method="GET").status == 200


# -- CORS headers on actual requests -----------------------------------------------------------


def test_signed_get_from_an_allowed_origin_carries_cors_headers(
    s3: Any, shared_server: Server, cors_bucket: str
) -> None:
    s3.put_object(Bucket=cors_bucket, Key="k", Body=b"hello", Metadata={"owner": "ann"})
    reply = send(shared_server, "GET", f"/{cors_bucket}/k", {"Origin": APP})
    assert (reply.status, reply.body) == (200, b"hello")
    assert reply.cors() == {
        "access-control-allow-origin": APP,
        "access-control-allow-credentials": "true",
        "access-control-allow-methods": "GET, PUT",
        "access-control-expose-headers": "ETag, x-amz-meta-owner",
        "access-control-max-age": "3000",
    }
    assert reply.headers["vary"] == VARY
    assert reply.headers["x-amz-meta-owner"] == "ann"


def test_requests_no_rule_allows_are_served_without_cors_headers(
    s3: Any, shared_server: Server, cors_bucket: str
) -> None:
    s3.put_object(Bucket=cors_bucket, Key="k", Body=b"hello")
    for headers in ({}, {"Origin": "https://evil.test"}):
        reply = send(shared_server, "GET", f"/{cors_bucket}/k", headers)
        assert (reply.status, reply.body) == (200, b"hello")
        assert reply.cors() == {}
        assert "vary" not in reply.headers
    # DELETE is in no rule for this origin: the object is deleted, no CORS headers.
    reply = send(shared_server, "DELETE", f"/{cors_bucket}/k", {"Origin": APP})
    assert reply.status == 204
    assert reply.cors() == {}


def test_method_decides_the_rule(shared_server: Server, cors_bucket: str) -> None:
    body = b"data"
    put = send(shared_server, "PUT", f"/{cors_bucket}/p", {"Origin": APP}, body)
    assert put.status == 200
    assert put.headers["access-control-allow-methods"] == "GET, PUT"
    # HEAD is allowed to every origin by the "*" rule only.
    head = send(shared_server, "HEAD", f"/{cors_bucket}/p", {"Origin": "http://x.test"})
    assert head.status == 200
    assert head.headers["access-control-allow-origin"] == "*"
    assert head.headers["access-control-allow-methods"] == "HEAD"
    assert "access-control-allow-credentials" not in head.headers


def test_errors_carry_cors_headers_so_pages_can_read_them(
    shared_server: Server, cors_bucket: str
) -> None:
    missing = send(shared_server, "GET", f"/{cors_bucket}/nothing", {"Origin": APP})
    assert missing.status == 404
    assert missing.headers["access-control-allow-origin"] == APP
    unsigned = send(shared_server, "GET", f"/{cors_bucket}/nothing", {"Origin": APP}, signed=False)
    assert unsigned.status == 403
    assert unsigned.error()["Code"] == "AccessDenied"
    assert unsigned.headers["access-control-allow-origin"] == APP


def test_bucket_operations_carry_cors_headers(shared_server: Server, cors_bucket: str) -> None:
    listing = send(shared_server, "GET", f"/{cors_bucket}?list-type=2", {"Origin": APP})
    assert listing.status == 200
    assert listing.headers["access-control-allow-origin"] == APP
    # ListBuckets names no bucket, so no bucket's rules apply.
    service = send(shared_server, "GET", "/", {"Origin": APP})
    assert service.status == 200
    assert service.cors() == {}
