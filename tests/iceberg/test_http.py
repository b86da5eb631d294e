"""The Iceberg REST API over HTTP, signed as PyIceberg signs (botocore's SigV4 for `s3`):
error bodies as the spec shapes them, unsigned requests, multi-table transactions."""

from __future__ import annotations

import json
from typing import Any

import requests
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from tests.conftest import ACCESS_KEY, SECRET_KEY, Server

SCHEMA = {
    "type": "struct",
    "schema-id": 0,
    "fields": [{"id": 1, "name": "id", "required": False, "type": "long"}],
}


def call(
    server: Server, method: str, path: str, body: object = None, *, signed: bool = True
) -> requests.Response:
    url = f"{server.endpoint}/_iceberg/v1/{path}"
    data = json.dumps(body).encode() if body is not None else b""
    headers = {"content-type": "application/json"} if data else {}
    if signed:
        request = AWSRequest(method=method, url=url, data=data, headers=headers)
        SigV4Auth(Credentials(ACCESS_KEY, SECRET_KEY), "s3", "us-east-1").add_auth(request)
        headers = dict(request.headers)
    return requests.request(method, url, data=data, headers=headers, timeout=30)


def error_of(response: requests.Response) -> tuple[int, str]:
    error = response.json()["error"]
    assert error["code"] == response.status_code and error["message"]
    return response.status_code, error["type"]


def test_config_names_the_warehouse_prefix_and_the_s3_endpoint(
    shared_server: Server, s3: Any
) -> None:
    s3.create_bucket(Bucket="conf")
    answer = call(shared_server, "GET", "config?warehouse=conf")
    assert answer.status_code == 200
    document = answer.json()
    assert document["overrides"] == {"prefix": "conf"}
    assert document["defaults"] == {
        "s3.endpoint": shared_server.endpoint,
        "s3.path-style-access": "true",
        "py-io-impl": "pyiceberg.io.pyarrow.PyArrowFileIO",
        "io-impl": "org.apache.iceberg.aws.s3.S3FileIO",
    }
    assert "POST /v1/{prefix}/transactions/commit" in document["endpoints"]
    assert error_of(call(shared_server, "GET", "config?warehouse=absent")) == (
        404,
        "NoSuchWarehouseException",
    )


def test_an_unsigned_or_badly_signed_request_is_refused(shared_server: Server, s3: Any) -> None:
    s3.create_bucket(Bucket="unsigned")
    assert error_of(call(shared_server, "GET", "unsigned/namespaces", signed=False)) == (
        401,
        "NotAuthorizedException",
    )
    url = f"{shared_server.endpoint}/_iceberg/v1/unsigned/namespaces"
    request = AWSRequest(method="POST", url=url, data=b'{"namespace": ["a"]}')
    SigV4Auth(Credentials(ACCESS_KEY, SECRET_KEY), "s3", "us-east-1").add_auth(request)
    # The body is not the one signed.
    tampered = requests.post(url, data=b'{"namespace": ["b"]}', headers=dict(request.headers))
    assert tampered.status_code == 403
    assert call(shared_server, "GET", "unsigned/namespaces").json() == {"namespaces": []}


def test_errors_have_the_spec_shape(shared_server: Server, s3: Any) -> None:
    s3.create_bucket(Bucket="errs")
    assert error_of(call(shared_server, "GET", "errs/namespaces/nope")) == (
        404,
        "NoSuchNamespaceException",
    )
    assert call(shared_server, "POST", "errs/namespaces", {"namespace": ["a"]}).ok
    assert error_of(call(shared_server, "POST", "errs/namespaces", {"namespace": ["a"]})) == (
        409,
        "AlreadyExistsException",
    )
    assert call(shared_server, "HEAD", "errs/namespaces/a").status_code == 204
    assert call(shared_server, "HEAD", "errs/namespaces/a/tables/t").status_code == 404
    assert error_of(call(shared_server, "GET", "errs/namespaces/a/tables/t")) == (
        404,
        "NoSuchTableException",
    )
    assert error_of(call(shared_server, "POST", "errs/namespaces", {"namespace": "a"})) == (
        400,
        "BadRequestException",
    )
    for bad in ("a/b", "", ".."):
        named = {"name": bad, "schema": SCHEMA}
        assert error_of(call(shared_server, "POST", "errs/namespaces/a/tables", named)) == (
            400,
            "BadRequestException",
        )
        level = {"namespace": ["a", bad]}
        assert error_of(call(shared_server, "POST", "errs/namespaces", level)) == (
            400,
            "BadRequestException",
        )
    staged = {"name": "s", "schema": SCHEMA, "stage-create": True}
    assert error_of(call(shared_server, "POST", "errs/namespaces/a/tables", staged)) == (
        406,
        "UnsupportedOperationException",
    )


def _metadata_files(s3: Any, bucket: str, table: str) -> int:
    listing = s3.list_objects_v2(Bucket=bucket, Prefix=f"ns/{table}/metadata/")
    return int(listing["KeyCount"])


def test_a_multi_table_transaction_is_all_or_nothing(shared_server: Server, s3: Any) -> None:
    s3.create_bucket(Bucket="txn")
    assert call(shared_server, "POST", "txn/namespaces", {"namespace": ["ns"]}).ok
    uuids = {}
    for name in ("t1", "t2"):
        created = call(shared_server, "POST", "txn/namespaces/ns/tables",
                       {"name": name, "schema": SCHEMA})  # fmt: skip
        assert created.status_code == 200, created.text
        uuids[name] = created.json()["metadata"]["table-uuid"]

    def change(name: str, uuid: str, value: str) -> dict[str, Any]:
        return {
            "identifier": {"namespace": ["ns"], "name": name},
            "requirements": [{"type": "assert-table-uuid", "uuid": uuid}],
            "updates": [{"action": "set-properties", "updates": {"k": value}}],
        }

    stale = [change("t1", uuids["t1"], "1"), change("t2", uuids["t1"], "1")]
    refused = call(shared_server, "POST", "txn/transactions/commit", {"table-changes": stale})
    assert error_of(refused) == (409, "CommitFailedException")
    for name in ("t1", "t2"):
        loaded = call(shared_server, "GET", f"txn/namespaces/ns/tables/{name}").json()
        assert "k" not in loaded["metadata"].get("properties", {})
        assert _metadata_files(s3, "txn", name) == 1  # the refused commit left no file

    both = [change("t1", uuids["t1"], "2"), change("t2", uuids["t2"], "2")]
    done = call(shared_server, "POST", "txn/transactions/commit", {"table-changes": both})
    assert done.status_code == 204, done.text
    for name in ("t1", "t2"):
        loaded = call(shared_server, "GET", f"txn/namespaces/ns/tables/{name}").json()
        assert loaded["metadata"]["properties"]["k"] == "2"
        assert loaded["metadata-location"].startswith(f"s3://txn/ns/{name}/metadata/00001-")
