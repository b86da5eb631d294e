"""The one `authorize` hook on a real server: every S3 and admin request passes it, anonymous
ones too (a CORS preflight, a form upload), and a denial is AccessDenied in each front door's
dialect. The server runs in this process because the decision is a Python object the server
is assembled with (egide.server.open_app); a denying one stands in for the policies to come."""

from __future__ import annotations

import json
from typing import Any

import pytest
import requests
from botocore.exceptions import ClientError
from tests.conftest import ACCESS_KEY, InProcessFactory, Server
from tests.e2e.test_admin_api import admin, answer
from tests.e2e.test_auth import send

from egide.auth.authorize import Authorizer, Principal, RequestContext

pytestmark = pytest.mark.timeout(120)

Asked = tuple[Principal, str, str, RequestContext]


class DenyOne:
    """Allows everything but `action`, and keeps what it was asked."""

    def __init__(self, action: str) -> None:
        self.action = action
        self.asked: list[Asked] = []

    async def __call__(
        self, principal: Principal, action: str, resource: str, context: RequestContext
    ) -> bool:
        self.asked.append((principal, action, resource, context))
        return action != self.action

    def actions(self) -> list[tuple[str | None, str, str]]:
        return [(p.access_key, action, resource) for p, action, resource, _ in self.asked]


def _server(make: InProcessFactory, action: str) -> tuple[Server, DenyOne]:
    decision = DenyOne(action)
    return make(Authorizer(decision)), decision


def test_a_denied_s3_action_is_access_denied(make_inprocess_server: InProcessFactory) -> None:
    server, decision = _server(make_inprocess_server, "s3:GetObject")
    s3 = server.client()
    s3.create_bucket(Bucket="files")
    s3.put_object(Bucket="files", Key="a/b.txt", Body=b"kept")
    with pytest.raises(ClientError) as caught:
        s3.get_object(Bucket="files", Key="a/b.txt")
    error = caught.value.response
    assert (error["Error"]["Code"], error["ResponseMetadata"]["HTTPStatusCode"]) == (
        "AccessDenied",
        403,
    )
    assert [key["Key"] for key in s3.list_objects_v2(Bucket="files")["Contents"]] == ["a/b.txt"]
    assert decision.actions() == [
        (ACCESS_KEY, "s3:CreateBucket", "arn:aws:s3:::files"),
        (ACCESS_KEY, "s3:PutObject", "arn:aws:s3:::files/a/b.txt"),
        (ACCESS_KEY, "s3:GetObject", "arn:aws:s3:::files/a/b.txt"),
        (ACCESS_KEY, "s3:ListBucket", "arn:aws:s3:::files"),
    ]
    context = decision.asked[0][3]
    assert (context.source_ip, context.secure_transport) == ("127.0.0.1", False)
    assert context.user_agent is not None and "Botocore" in context.user_agent


def test_a_version_is_asked_for_as_such(make_inprocess_server: InProcessFactory) -> None:
    server, decision = _server(make_inprocess_server, "s3:GetObjectVersion")
    s3 = server.client()
    s3.create_bucket(Bucket="versions")
    s3.put_bucket_versioning(Bucket="versions", VersioningConfiguration={"Status": "Enabled"})
    version = s3.put_object(Bucket="versions", Key="k", Body=b"v1")["VersionId"]
    assert s3.get_object(Bucket="versions", Key="k")["Body"].read() == b"v1"
    with pytest.raises(ClientError) as caught:
        s3.get_object(Bucket="versions", Key="k", VersionId=version)
    assert caught.value.response["Error"]["Code"] == "AccessDenied"
    assert decision.actions()[-2:] == [
        (ACCESS_KEY, "s3:GetObject", "arn:aws:s3:::versions/k"),
        (ACCESS_KEY, "s3:GetObjectVersion", "arn:aws:s3:::versions/k"),
    ]


def test_a_denied_admin_action_is_a_json_access_denied(
    make_inprocess_server: InProcessFactory,
) -> None:
    server, decision = _server(make_inprocess_server, "egide:SubmitJob")
    body = json.dumps({"kind": "scrub", "params": {}}).encode()
    denied = answer(admin(server, "POST", "/_egide/admin/jobs", body), 403)
    assert denied == {"code": "AccessDenied", "message": "Access Denied"}
    listed = answer(admin(server, "GET", "/_egide/admin/jobs?all"))["jobs"]
    assert [job for job in listed if job["params"] == {}] == []  # (the scheduler's have params)
    assert decision.actions()[:2] == [
        (ACCESS_KEY, "egide:SubmitJob", "arn:egide:admin:::jobs"),
        (ACCESS_KEY, "egide:ListJobs", "arn:egide:admin:::jobs"),
    ]
    assert answer(admin(server, "GET", "/_egide/admin/sites"))["sites"]


def test_anonymous_requests_pass_authorize_too(make_inprocess_server: InProcessFactory) -> None:
    server, decision = _server(make_inprocess_server, "egide:CorsPreflight")
    s3 = server.client()
    s3.create_bucket(Bucket="web")
    rule = {"AllowedOrigins": ["https://app.example"], "AllowedMethods": ["GET", "PUT"]}
    s3.put_bucket_cors(Bucket="web", CORSConfiguration={"CORSRules": [rule]})
    headers = {"Origin": "https://app.example", "Access-Control-Request-Method": "PUT"}
    reply = send(server, "OPTIONS", "/web/photo.jpg", headers)
    reply.expect_error(403, "AccessDenied")
    principal, action, resource, _ = decision.asked[-1]
    assert (principal.anonymous, action, resource) == (
        True,
        "egide:CorsPreflight",
        "arn:aws:s3:::web/photo.jpg",
    )
    # An unsigned request is the anonymous principal, asked about like any other (this
    # decision allows all but preflights; the server's own allows what bucket policies do).
    assert send(server, "GET", "/web", {}).status == 200
    principal, action, resource, _ = decision.asked[-1]
    assert (principal.anonymous, action, resource) == (True, "s3:ListBucket", "arn:aws:s3:::web")


def test_a_form_upload_is_authorized_as_its_signer(
    make_inprocess_server: InProcessFactory,
) -> None:
    server, decision = _server(make_inprocess_server, "s3:PutObject")
    s3: Any = server.client(signature_version="s3v4")
    s3.create_bucket(Bucket="forms")
    post = s3.generate_presigned_post("forms", "up/${filename}")
    response = requests.post(
        post["url"], data=post["fields"], files={"file": ("x.bin", b"data")}, timeout=60
    )
    assert response.status_code == 403, response.content
    assert b"<Code>AccessDenied</Code>" in response.content
    assert decision.actions()[-1] == (ACCESS_KEY, "s3:PutObject", "arn:aws:s3:::forms/up/x.bin")
    assert "Contents" not in s3.list_objects_v2(Bucket="forms")
