"""`POST /_egide/sql` on a real server, driven by real clients: requests signed by botocore's
SigV4 signer, sent with `requests`, the Arrow answer read by pyarrow's IPC reader."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import threading
import time
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import requests
from botocore.auth import S3SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from tests.conftest import ACCESS_KEY, SECRET_KEY, InProcessFactory, Server, ServerFactory
from tests.e2e.test_policies import allow, new_user, policy

from egide.auth.authorize import Authorizer, allow_all

pytestmark = pytest.mark.timeout(180)

ARROW = "application/vnd.apache.arrow.stream"


def post_sql(
    server: Server,
    body: bytes | str,
    accept: str | None = None,
    *,
    content_type: str = "text/plain",
    access_key: str = ACCESS_KEY,
    secret_key: str = SECRET_KEY,
    signed: bool = True,
    stream: bool = False,
) -> requests.Response:
    data = body.encode() if isinstance(body, str) else body
    headers = {"content-type": content_type}
    if accept:
        headers["accept"] = accept
    url = f"{server.endpoint}/_egide/sql"
    if signed:
        request = AWSRequest(method="POST", url=url, data=data, headers=headers)
        S3SigV4Auth(Credentials(access_key, secret_key), "s3", "us-east-1").add_auth(request)
        headers = dict(request.headers.items())
    return requests.post(url, data=data, headers=headers, stream=stream, timeout=60)


@pytest.fixture
def lake(shared_server: Server) -> str:
    """A bucket with a CSV and a Parquet object."""
    s3 = shared_server.client()
    name = f"lake-{time.monotonic_ns() % 10**9}"
    s3.create_bucket(Bucket=name)
    s3.put_object(Bucket=name, Key="people.csv", Body=b"name,age\nana,31\nbob,45\ncid,28\n")
    table = pa.table({"city": ["lyon", "nice", "lyon"], "kwh": [1.5, 2.0, 3.0]})
    sink = io.BytesIO()
    pq.write_table(table, sink)
    s3.put_object(Bucket=name, Key="meters.parquet", Body=sink.getvalue())
    return name


def test_json_lines_by_default_ending_with_count_and_timing(
    shared_server: Server, lake: str
) -> None:
    reply = post_sql(
        shared_server, f"SELECT name, age FROM read_csv('egide://{lake}/people.csv') ORDER BY age"
    )
    assert reply.status_code == 200, reply.text
    assert reply.headers["content-type"] == "application/x-ndjson"
    lines = [json.loads(line) for line in reply.text.splitlines()]
    assert lines[:-1] == [
        {"name": "cid", "age": 28}, {"name": "ana", "age": 31}, {"name": "bob", "age": 45},
    ]  # fmt: skip
    end = lines[-1]["_egide"]
    assert end["rows"] == 3 and end["seconds"] >= 0


def test_a_json_body_and_csv_answer(shared_server: Server, lake: str) -> None:
    sql = f"SELECT city, sum(kwh) AS kwh FROM 'egide://{lake}/meters.parquet' GROUP BY city"
    reply = post_sql(
        shared_server, json.dumps({"sql": sql + " ORDER BY city"}), "text/csv",
        content_type="application/json",
    )  # fmt: skip
    assert reply.status_code == 200, reply.text
    assert reply.headers["content-type"] == "text/csv"
    *rows, last = reply.text.splitlines()
    assert list(csv.reader(rows)) == [["city", "kwh"], ["lyon", "4.5"], ["nice", "2"]]
    assert last.startswith("# egide: rows=2 seconds=")


def test_an_arrow_stream_read_by_pyarrow(shared_server: Server, lake: str) -> None:
    sql = f"SELECT * FROM 'egide://{lake}/meters.parquet', range(50000) ORDER BY ALL"
    reply = post_sql(shared_server, sql, ARROW, stream=True)
    assert reply.status_code == 200
    assert reply.headers["content-type"] == ARROW
    reader = pa.ipc.open_stream(reply.raw)
    rows, metadata = 0, None
    while True:
        try:
            batch, metadata = reader.read_next_batch_with_custom_metadata()
        except StopIteration:
            break
        rows += batch.num_rows
    assert reader.schema.names == ["city", "kwh", "range"]
    assert rows == 150_000
    assert metadata is not None and metadata[b"egide.rows"] == b"150000"
    assert float(metadata[b"egide.seconds"]) >= 0


def test_an_unsigned_request_is_refused(shared_server: Server, lake: str) -> None:
    reply = post_sql(shared_server, "SELECT 1", signed=False)
    assert reply.status_code == 403
    assert reply.json()["code"] == "AccessDenied"
    reply = post_sql(shared_server, "SELECT 1", secret_key="not-the-secret-key-at-all")
    assert reply.status_code == 403
    assert reply.json()["code"] == "SignatureDoesNotMatch"


def test_bad_sql_and_sandbox_refusals_are_400_before_any_byte(shared_server: Server) -> None:
    reply = post_sql(shared_server, "SELEC 1")
    assert reply.status_code == 400
    assert reply.json()["code"] == "InvalidQuery"
    assert "syntax error" in reply.json()["message"]
    reply = post_sql(shared_server, "SELECT * FROM read_csv('/etc/passwd')")
    assert reply.status_code == 400
    assert "disabled by configuration" in reply.json()["message"]
    assert post_sql(shared_server, "SELECT 1", "image/png").status_code == 406


def test_a_user_without_rights_gets_403_naming_the_object(
    shared_server: Server, lake: str, tmp_path: Path
) -> None:
    _, key = new_user(
        shared_server, f"analyst{time.monotonic_ns() % 10**6}", tmp_path,
        lister=policy(allow("s3:ListBucket", resource=f"arn:aws:s3:::{lake}")),
    )  # fmt: skip
    reply = post_sql(
        shared_server, f"SELECT count(*) FROM read_csv('egide://{lake}/people.csv')",
        access_key=key["access_key"], secret_key=key["secret_key"],
    )  # fmt: skip
    assert reply.status_code == 403, reply.text
    assert reply.json()["code"] == "AccessDenied"
    assert f"s3:GetObject on egide://{lake}/people.csv" in reply.json()["message"]


def _sql_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "egide-sql" and t.is_alive()]


def test_a_client_going_away_cancels_its_query(make_inprocess_server: InProcessFactory) -> None:
    server = make_inprocess_server(Authorizer(allow_all))
    reply = post_sql(server, "SELECT i, i * 2 AS j FROM range(10000000000) t(i)", stream=True)
    assert reply.status_code == 200
    assert len(next(reply.iter_content(64 * 1024))) > 0
    assert len(_sql_threads()) == 1  # the query runs, held back by the unread answer
    reply.close()  # the client goes away mid-stream
    deadline = time.monotonic() + 20
    while _sql_threads() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert _sql_threads() == []
    # The server is well and answers the next query.
    again = post_sql(server, "SELECT 42 AS answer")
    assert again.status_code == 200
    assert json.loads(again.text.splitlines()[0]) == {"answer": 42}


def test_the_body_must_be_the_one_signed(shared_server: Server) -> None:
    request = AWSRequest(
        method="POST", url=f"{shared_server.endpoint}/_egide/sql", data=b"SELECT 1",
        headers={"content-type": "text/plain"},
    )  # fmt: skip
    S3SigV4Auth(Credentials(ACCESS_KEY, SECRET_KEY), "s3", "us-east-1").add_auth(request)
    headers: dict[str, Any] = dict(request.headers.items())
    assert headers["X-Amz-Content-SHA256"] == hashlib.sha256(b"SELECT 1").hexdigest()
    reply = requests.post(request.url, data=b"SELECT 2", headers=headers, timeout=30)
    assert reply.status_code == 400
    assert reply.json()["code"] == "XAmzContentSHA256Mismatch"


def test_a_query_past_its_timeout_ends_the_stream_with_an_error_line(
    make_server: ServerFactory,
) -> None:
    server = make_server("[sql]\ntimeout_seconds = 3\nthreads = 1\nmemory_limit = '256MB'\n")
    reply = post_sql(server, "SELECT i FROM range(10000000000) t(i)", stream=True)
    assert reply.status_code == 200
    lines = list(reply.iter_lines())
    assert len(lines) > 1 and json.loads(lines[0]) == {"i": 0}
    end = json.loads(lines[-1])["_egide"]
    assert end["error"]["code"] == "QueryTimeout"
    assert "timeout of 3 s" in end["error"]["message"]
