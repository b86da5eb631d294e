"""Names that are not UTF-8 are refused, never mapped onto another name (issue 13, item 4).

Decoding `%FE` with replacement characters made `coll%FE`, `coll%FF` and `coll%EF%BF%BD` one
key. Requests are signed with botocore and sent as raw bytes, as an attacker would.
"""

from __future__ import annotations

import http.client
from typing import Any

import pytest
from botocore.auth import S3SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from tests.conftest import ACCESS_KEY, SECRET_KEY, Server


def signed(
    server: Server,
    method: str,
    target: str,
    body: bytes = b"",
    headers: dict[str, str] | None = None,
) -> tuple[int, bytes]:
    """Send `target` (path and query, percent-encoded as given) signed, and read the reply."""
    request = AWSRequest(
        method=method, url=f"{server.endpoint}{target}", data=body, headers=headers or {}
    )
    S3SigV4Auth(Credentials(ACCESS_KEY, SECRET_KEY), "s3", "us-east-1").add_auth(request)
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    try:
        conn.putrequest(method, target, skip_accept_encoding=True)
        for name, value in request.headers.items():
            conn.putheader(name, value)
        conn.putheader("Content-Length", str(len(body)))
        conn.endheaders()
        conn.send(body)
        reply = conn.getresponse()
        return reply.status, reply.read()
    finally:
        conn.close()


def test_signing_helper_sends_what_botocore_signed(shared_server: Server, bucket: str) -> None:
    assert signed(shared_server, "PUT", f"/{bucket}/caf%C3%A9", b"body")[0] == 200
    assert signed(shared_server, "GET", f"/{bucket}/caf%C3%A9") == (200, b"body")


@pytest.mark.parametrize("spelling", ["coll%FF", "coll%EF%BF%BD", "coll%FE"])
def test_invalid_utf8_key_is_refused_never_mapped(
    shared_server: Server, s3: Any, bucket: str, spelling: str
) -> None:
    status, body = signed(shared_server, "PUT", f"/{bucket}/coll%FE", b"secret")
    assert status == 400 and b"<Code>InvalidURI</Code>" in body
    status, body = signed(shared_server, "GET", f"/{bucket}/{spelling}")
    assert status in (400, 404) and b"secret" not in body
    assert s3.list_objects_v2(Bucket=bucket).get("KeyCount") == 0


def test_the_replacement_character_itself_is_a_valid_key(
    shared_server: Server, bucket: str
) -> None:
    assert signed(shared_server, "PUT", f"/{bucket}/coll%EF%BF%BD", b"mine")[0] == 200
    assert signed(shared_server, "GET", f"/{bucket}/coll%FF")[0] == 400
    assert signed(shared_server, "GET", f"/{bucket}/coll%EF%BF%BD") == (200, b"mine")


@pytest.mark.parametrize(
    "query",
    ["list-type=2&prefix=a%FF", "delimiter=%C3", "list-type=2&start-after=%FE", "marker=%80"],
)
def test_invalid_utf8_in_a_listing_parameter_is_refused(
    shared_server: Server, bucket: str, query: str
) -> None:
    status, body = signed(shared_server, "GET", f"/{bucket}?{query}")
    assert status == 400 and b"<Code>InvalidURI</Code>" in body


def test_invalid_utf8_bucket_name_is_refused(shared_server: Server) -> None:
    status, body = signed(shared_server, "PUT", "/buck%FFet")
    assert status == 400 and b"<Code>InvalidURI</Code>" in body


def test_invalid_utf8_copy_source_is_refused(shared_server: Server, s3: Any, bucket: str) -> None:
    s3.put_object(Bucket=bucket, Key="coll\ufffd", Body=b"other")
    status, body = signed(
        shared_server, "PUT", f"/{bucket}/copy", headers={"x-amz-copy-source": f"{bucket}/coll%FF"}
    )
    assert status == 400 and b"<Code>InvalidArgument</Code>" in body
