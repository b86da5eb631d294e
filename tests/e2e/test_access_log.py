"""Client errors are not the operator's warnings; the access log (issue 13, item 10)."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError
from tests.conftest import ACCESS_KEY, SECRET_KEY, Server, ServerFactory


def test_client_errors_and_501s_are_not_warnings(make_server: ServerFactory) -> None:
    server = make_server()
    s3 = server.client()
    for _ in range(3):
        with pytest.raises(ClientError):
            s3.get_bucket_website(Bucket="nowhere")  # 501
        with pytest.raises(ClientError):
            s3.head_bucket(Bucket="missing")  # 404
        with pytest.raises(ClientError):
            s3.create_bucket(Bucket="Bad_Name")  # 400
    warnings = [line for line in server.output().splitlines() if " WARNING egide." in line]
    assert not [line for line in warnings if "egide.s3" in line or "egide.http" in line]
    # What clients ask for that Égide lacks is said once, at INFO.
    assert server.output().count("INFO egide.s3: GET /nowhere → NotImplemented") == 1


@pytest.fixture
def logged(make_server: ServerFactory, tmp_path: Path) -> tuple[Server, Path]:
    path = tmp_path / "access.jsonl"
    return make_server(f'[http]\naccess_log = "{path}"'), path


def lines(path: Path, count: int) -> list[dict[str, Any]]:
    """The log's lines once it has `count` (a line is written just after its response)."""
    deadline = time.monotonic() + 30
    while True:
        text = path.read_text() if path.exists() else ""
        if len(text.splitlines()) >= count or time.monotonic() > deadline:
            return [json.loads(line) for line in text.splitlines()]
        time.sleep(0.05)


def test_the_access_log_has_one_json_line_per_request(logged: tuple[Server, Path]) -> None:
    server, path = logged
    s3 = server.client()
    s3.create_bucket(Bucket="logged")
    s3.put_object(Bucket="logged", Key="a b", Body=b"12345")
    assert s3.get_object(Bucket="logged", Key="a b")["Body"].read() == b"12345"
    with pytest.raises(ClientError):
        s3.get_object(Bucket="logged", Key="missing")
    entries = lines(path, 4)
    assert [(e["method"], e["path"], e["status"]) for e in entries] == [
        ("PUT", "/logged", 200),
        ("PUT", "/logged/a%20b", 200),
        ("GET", "/logged/a%20b", 200),
        ("GET", "/logged/missing", 404),
    ]
    put, get, missing = entries[1], entries[2], entries[3]
    assert put["bytes_in"] == 5 and get["bytes_out"] == 5
    assert put["operation"] == "PutObject" and missing["error"] == "NoSuchKey"
    assert all(e["access_key"] == ACCESS_KEY for e in entries)
    assert all(e["request_id"] and e["remote"].startswith("127.0.0.1") for e in entries)
    assert all(isinstance(e["duration_ms"], float) and e["time"].endswith("Z") for e in entries)


def test_the_access_log_never_holds_a_signature_or_token(logged: tuple[Server, Path]) -> None:
    server, path = logged
    s3 = server.client(signature_version="s3v4")
    s3.create_bucket(Bucket="presigned")
    s3.put_object(Bucket="presigned", Key="k", Body=b"x")
    url = s3.generate_presigned_url("get_object", Params={"Bucket": "presigned", "Key": "k"})
    token = "FwoGZXIvYXdzEJr//////////wEaDSECRETTOKEN"
    with pytest.raises(urllib.error.HTTPError) as refused:  # not a session token of Égide's
        urllib.request.urlopen(url + "&X-Amz-Security-Token=" + token, timeout=30)
    assert refused.value.code == 400 and b"InvalidToken" in refused.value.read()
    with urllib.request.urlopen(url, timeout=30) as reply:
        assert reply.read() == b"x"
    presigned = lines(path, 4)[-1]
    text = path.read_text()
    signature = url.split("X-Amz-Signature=")[1].split("&")[0]
    for secret in (signature, token, SECRET_KEY, "Signature="):
        assert secret not in text.replace("X-Amz-Signature=REDACTED", "")
    assert "X-Amz-Signature=REDACTED" in presigned["query"]
    assert f"X-Amz-Credential={ACCESS_KEY}" in presigned["query"]
    assert presigned["access_key"] == ACCESS_KEY


def test_the_access_log_can_go_to_standard_error(make_server: ServerFactory) -> None:
    server = make_server('[http]\naccess_log = "-"')
    server.client().list_buckets()
    deadline = time.monotonic() + 30
    while not (entries := [e for e in server.output().splitlines() if e.startswith("{")]):
        assert time.monotonic() < deadline, server.output()
        time.sleep(0.05)
    assert json.loads(entries[-1])["operation"] == "ListBuckets"


def test_no_access_log_by_default(make_server: ServerFactory) -> None:
    server = make_server()
    server.client().list_buckets()
    assert not [line for line in server.output().splitlines() if line.startswith("{")]
