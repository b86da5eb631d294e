"""Browser form uploads signed with temporary credentials (decision 0037): the form carries
the session token as its `x-amz-security-token` field, checked as the header is (a forged
token InvalidToken, an expired one ExpiredToken, a session key without it
InvalidAccessKeyId), and the upload has the session's rights, no more."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import requests
from tests.e2e.test_sts import assume, code, s3_of, setup

__all__ = ["setup"]  # the module's server, shared with test_sts's fixture


def signed_form(
    bucket: str, key: str, credentials: dict[str, Any], *, token: str | None = None,
    region: str = "us-east-1",
) -> dict[str, str]:  # fmt: skip
    """A SigV4 form as s3-tests builds one (x-amz-algorithm, x-amz-credential, x-amz-date,
    policy, x-amz-signature), signed here independently of botocore and of the server."""
    now = datetime.now(UTC)
    date = now.strftime("%Y%m%d")
    fields = {
        "key": key,
        "x-amz-algorithm": "AWS4-HMAC-SHA256",
        "x-amz-credential": f"{credentials['AccessKeyId']}/{date}/{region}/s3/aws4_request",
        "x-amz-date": now.strftime("%Y%m%dT%H%M%SZ"),
    }
    if token is not None:
        fields["x-amz-security-token"] = token
    document = {
        "expiration": (now + timedelta(minutes=10)).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "conditions": [{"bucket": bucket}, *({k: v} for k, v in fields.items())],
    }
    policy = base64.b64encode(json.dumps(document).encode()).decode()
    signing = ("AWS4" + credentials["SecretAccessKey"]).encode()
    for part in (date, region, "s3", "aws4_request"):
        signing = hmac.digest(signing, part.encode(), "sha256")
    signature = hmac.new(signing, policy.encode(), hashlib.sha256).hexdigest()
    return {**fields, "policy": policy, "x-amz-signature": signature}


def post(setup: dict[str, Any], bucket: str, fields: dict[str, str], data: bytes) -> Any:
    return requests.post(
        f"{setup['server'].endpoint}/{bucket}", files={**fields, "file": ("f.txt", data)},
        timeout=30,
    )  # fmt: skip


def error(response: Any) -> str:
    assert response.status_code >= 400, response.content
    return str(response.content.split(b"<Code>")[1].split(b"</Code>")[0].decode())


def test_a_form_signed_by_a_session_uploads_within_its_rights(setup: dict[str, Any]) -> None:
    credentials = assume(setup)["Credentials"]  # `writer`: read and write under team/home/
    token = credentials["SessionToken"]
    answer = post(setup, "team", signed_form("team", "home/f1", credentials, token=token), b"1")
    assert answer.status_code == 204, answer.content
    admin = setup["server"].client()
    assert admin.get_object(Bucket="team", Key="home/f1")["Body"].read() == b"1"
    # boto3's own presigned POST with session credentials puts the token in the form
    session = s3_of(setup["server"], credentials)
    form = session.generate_presigned_post("team", "home/f2", ExpiresIn=300)
    assert form["fields"]["x-amz-security-token"] == token
    answer = requests.post(form["url"], data=form["fields"], files={"file": b"2"}, timeout=30)
    assert answer.status_code == 204, answer.content
    assert admin.get_object(Bucket="team", Key="home/f2")["Body"].read() == b"2"
    # outside the role's rights: refused, nothing stored
    outside = post(setup, "team", signed_form("team", "out/f", credentials, token=token), b"x")
    assert outside.status_code == 403 and error(outside) == "AccessDenied"
    assert code(lambda: admin.head_object(Bucket="team", Key="out/f")) == "404"


def test_a_forged_borrowed_or_missing_token_is_refused(setup: dict[str, Any]) -> None:
    credentials = assume(setup)["Credentials"]
    token = credentials["SessionToken"]
    flipped = token[:20] + ("A" if token[20] != "A" else "B") + token[21:]
    forged = post(setup, "team", signed_form("team", "home/g", credentials, token=flipped), b"")
    assert forged.status_code == 400 and error(forged) == "InvalidToken"
    other = assume(setup)["Credentials"]["SessionToken"]
    borrowed = post(setup, "team", signed_form("team", "home/g", credentials, token=other), b"")
    assert borrowed.status_code == 400 and error(borrowed) == "InvalidToken"
    missing = post(setup, "team", signed_form("team", "home/g", credentials), b"")
    assert missing.status_code == 403 and error(missing) == "InvalidAccessKeyId"
    # a user's key with a session's token is not a session
    key = setup["keys"]["alice"]
    user = {"AccessKeyId": key["access_key"], "SecretAccessKey": key["secret_key"]}
    mixed = post(setup, "team", signed_form("team", "home/g", user, token=token), b"")
    assert mixed.status_code == 400 and error(mixed) == "InvalidToken"
    assert code(lambda: setup["server"].client().head_object(Bucket="team", Key="home/g")) == (
        "404"
    )


def test_an_expired_session_form_is_refused(setup: dict[str, Any]) -> None:
    credentials = assume(setup, DurationSeconds=1)["Credentials"]
    form = signed_form("team", "home/late", credentials, token=credentials["SessionToken"])
    time.sleep(1.2)
    late = post(setup, "team", form, b"late")
    assert late.status_code == 400 and error(late) == "ExpiredToken"
    assert code(lambda: setup["server"].client().head_object(Bucket="team", Key="home/late")) == (
        "404"
    )
