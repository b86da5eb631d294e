"""S3 Select (SelectObjectContent) on a real server, with boto3's `select_object_content`
unchanged: its event-stream parser checks the framing and the CRCs of every message."""

from __future__ import annotations

import bz2
import gzip
import io
import json
import time
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from botocore.exceptions import ClientError, EventStreamError
from tests.conftest import InProcessFactory, Server
from tests.e2e.test_policies import allow, new_user, policy

from egide.auth.authorize import Authorizer, allow_all
from egide.s3 import select as select_module

pytestmark = pytest.mark.timeout(180)

PEOPLE = b"name,age,city\nana,31,lyon\nbob,45,nice\ncid,28,lyon\n"
CSV_IN = {"CSV": {"FileHeaderInfo": "USE"}}
CSV_OUT = {"CSV": {}}
JSON_OUT = {"JSON": {}}


@pytest.fixture
def bucket(shared_server: Server) -> str:
    s3 = shared_server.client()
    name = f"select-{time.monotonic_ns() % 10**9}"
    s3.create_bucket(Bucket=name)
    return name


def select(
    s3: Any, bucket: str, key: str, sql: str, source: dict[str, Any],
    output: dict[str, Any] = CSV_OUT, **extra: Any,
) -> tuple[bytes, dict[str, Any]]:  # fmt: skip
    """The records' bytes and the events other than Records, by name."""
    answer = s3.select_object_content(
        Bucket=bucket, Key=key, Expression=sql, ExpressionType="SQL",
        InputSerialization=source, OutputSerialization=output, **extra,
    )  # fmt: skip
    records, others = bytearray(), {}
    for event in answer["Payload"]:
        if "Records" in event:
            records += event["Records"]["Payload"]
        else:
            others.update(event)
    return bytes(records), others


def test_csv_with_a_header_projection_where_and_cast(shared_server: Server, bucket: str) -> None:
    s3 = shared_server.client()
    s3.put_object(Bucket=bucket, Key="people.csv", Body=PEOPLE)
    sql = "SELECT s.name FROM S3Object s WHERE CAST(s.age AS INT) > 30"
    records, events = select(s3, bucket, "people.csv", sql, CSV_IN)
    assert sorted(records.decode().splitlines()) == ["ana", "bob"]
    assert events["Stats"]["Details"]["BytesScanned"] == len(PEOPLE)
    assert events["Stats"]["Details"]["BytesReturned"] == len(records)
    assert "End" in events


def test_csv_without_header_by_position_to_json(shared_server: Server, bucket: str) -> None:
    s3 = shared_server.client()
    s3.put_object(Bucket=bucket, Key="raw.csv", Body=b"ana;31\nbob;45\n")
    source = {"CSV": {"FileHeaderInfo": "NONE", "FieldDelimiter": ";"}}
    records, _ = select(s3, bucket, "raw.csv", "SELECT _1, _2 FROM S3Object", source, JSON_OUT)
    assert [json.loads(line) for line in records.decode().splitlines()] == [
        {"_1": "ana", "_2": "31"}, {"_1": "bob", "_2": "45"},
    ]  # fmt: skip
    ignore = {"CSV": {"FileHeaderInfo": "IGNORE"}}
    records, _ = select(s3, bucket, "raw.csv", "SELECT s._1 FROM S3Object s", ignore)
    assert records == b"bob;45\n"  # the first line skipped, the rest one column (no ';' split)


def test_quotes_aggregates_like_and_limit(shared_server: Server, bucket: str) -> None:
    s3 = shared_server.client()
    s3.put_object(Bucket=bucket, Key="q.csv", Body=b"name,note\n'a,b',x\n'c',y\nd,\n")
    source = {"CSV": {"FileHeaderInfo": "USE", "QuoteCharacter": "'"}}
    records, _ = select(s3, bucket, "q.csv", "SELECT name FROM S3Object LIMIT 1", source)
    assert records == b'"a,b"\n'
    records, _ = select(s3, bucket, "q.csv", "SELECT COUNT(*) FROM S3Object s "
                        "WHERE s.note IS NULL OR s.name LIKE 'c%'", source)  # fmt: skip
    assert records == b"2\n"
    s3.put_object(Bucket=bucket, Key="people.csv", Body=PEOPLE)
    sql = "SELECT MIN(CAST(age AS INT)), MAX(CAST(age AS INT)), SUM(CAST(age AS INT)) FROM S3Object"
    records, _ = select(s3, bucket, "people.csv", sql, CSV_IN)
    assert records == b"28,45,104\n"


def test_json_lines_and_document_and_gzip(shared_server: Server, bucket: str) -> None:
    s3 = shared_server.client()
    lines = b'{"name": "ana", "age": 31}\n{"name": "bob", "age": 45}\n'
    s3.put_object(Bucket=bucket, Key="p.jsonl", Body=lines)
    s3.put_object(Bucket=bucket, Key="p.jsonl.gz", Body=gzip.compress(lines))
    s3.put_object(Bucket=bucket, Key="p.json", Body=b'[{"name": "ana", "age": 31}]')
    sql = "SELECT s.name FROM S3Object s WHERE s.age > 40"
    records, _ = select(s3, bucket, "p.jsonl", sql, {"JSON": {"Type": "LINES"}}, JSON_OUT)
    assert records == b'{"name": "bob"}\n'
    gz = {"JSON": {"Type": "LINES"}, "CompressionType": "GZIP"}
    records, _ = select(s3, bucket, "p.jsonl.gz", sql, gz, JSON_OUT)
    assert records == b'{"name": "bob"}\n'
    doc = {"JSON": {"Type": "DOCUMENT"}}
    records, _ = select(s3, bucket, "p.json", "SELECT * FROM S3Object[*] s", doc, CSV_OUT)
    assert records == b"ana,31\n"
    s3.put_object(Bucket=bucket, Key="people.csv.gz", Body=gzip.compress(PEOPLE))
    records, _ = select(s3, bucket, "people.csv.gz", "SELECT COUNT(*) FROM S3Object",
                        {**CSV_IN, "CompressionType": "GZIP"})  # fmt: skip
    assert records == b"3\n"


def test_parquet_with_progress(shared_server: Server, bucket: str) -> None:
    s3 = shared_server.client()
    sink = io.BytesIO()
    pq.write_table(pa.table({"city": ["lyon", "nice", "lyon"], "kwh": [1.5, 2.0, 3.0]}), sink)
    s3.put_object(Bucket=bucket, Key="m.parquet", Body=sink.getvalue())
    records, events = select(
        s3, bucket, "m.parquet", "SELECT SUM(kwh) FROM S3Object WHERE city = 'lyon'",
        {"Parquet": {}}, RequestProgress={"Enabled": True},
    )  # fmt: skip
    assert records == b"4.5\n"
    assert events["Progress"]["Details"]["BytesScanned"] == len(sink.getvalue())


def test_unsupported_sql_is_refused_with_aws_codes(shared_server: Server, bucket: str) -> None:
    s3 = shared_server.client()
    s3.put_object(Bucket=bucket, Key="people.csv", Body=PEOPLE)
    for sql, code in (
        ("SELECT name FROM S3Object ORDER BY name", "UnsupportedSqlOperation"),
        ("SELECT name FROM S3Object s JOIN S3Object t ON s.a = t.a", "UnsupportedSqlOperation"),
        ("SELECT read_text('/etc/passwd') FROM S3Object", "UnsupportedSqlOperation"),
        ("DELETE FROM S3Object", "UnsupportedSqlOperation"),
        ("SELECT name FROM people", "ParseExpectedKeyword"),
        ("SELECT name FROM S3Object LIMIT x", "ParseUnexpectedToken"),
    ):
        with pytest.raises(ClientError) as exc:
            select(s3, bucket, "people.csv", sql, CSV_IN)
        assert exc.value.response["Error"]["Code"] == code, sql
        assert exc.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400


def test_bzip2_is_refused_not_ignored(shared_server: Server, bucket: str) -> None:
    s3 = shared_server.client()
    s3.put_object(Bucket=bucket, Key="p.csv.bz2", Body=bz2.compress(PEOPLE))
    with pytest.raises(ClientError) as exc:
        select(s3, bucket, "p.csv.bz2", "SELECT * FROM S3Object",
               {**CSV_IN, "CompressionType": "BZIP2"})  # fmt: skip
    assert exc.value.response["Error"]["Code"] == "NotImplemented"


def test_scan_range_reads_the_records_starting_within_it(
    shared_server: Server, bucket: str
) -> None:
    s3 = shared_server.client()
    data = b"name,age\nana,31\nbob,45\ncid,28\n"  # records start at 0, 9, 16, 23
    s3.put_object(Bucket=bucket, Key="people.csv", Body=data)
    sql = "SELECT s.name FROM S3Object s"
    for scan, names in (
        ({"Start": 10, "End": 17}, b"bob\n"),  # bob starts at 16, read whole past 17
        ({"Start": 9, "End": 9}, b"ana\n"),
        ({"Start": 0, "End": 9}, b"ana\n"),  # the header, then ana
        ({"Start": 17}, b"cid\n"),
        ({"End": 7}, b"cid\n"),  # the last 7 bytes
        ({"Start": 24, "End": 25}, b""),
    ):
        records, _ = select(s3, bucket, "people.csv", sql, CSV_IN, ScanRange=scan)
        assert records == names, scan
    lines = b'{"n": 1}\n{"n": 2}\n{"n": 3}\n'  # starts at 0, 9, 18
    s3.put_object(Bucket=bucket, Key="n.jsonl", Body=lines)
    records, _ = select(
        s3, bucket, "n.jsonl", "SELECT s.n FROM S3Object s", {"JSON": {"Type": "LINES"}},
        JSON_OUT, ScanRange={"Start": 1, "End": 18},
    )  # fmt: skip
    assert records == b'{"n": 2}\n{"n": 3}\n'
    with pytest.raises(ClientError) as exc:
        select(s3, bucket, "people.csv", sql, {**CSV_IN, "CompressionType": "GZIP"},
               ScanRange={"Start": 0})  # fmt: skip
    assert exc.value.response["Error"]["Code"] == "UnsupportedScanRangeInput"


def test_a_malformed_csv_is_a_query_error_and_the_server_serves_on(
    shared_server: Server, bucket: str
) -> None:
    s3 = shared_server.client()
    s3.put_object(Bucket=bucket, Key="bad.csv", Body=b'a,b\n1,2\n"unterminated,3\n\xff\xfe,4\n')
    with pytest.raises((ClientError, EventStreamError)) as exc:
        select(s3, bucket, "bad.csv", "SELECT * FROM S3Object", CSV_IN)
    assert exc.value.response["Error"]["Code"]
    crafted = b"PAR1" + b"\xff" * 64 + b"\x10\x00\x00\x00PAR1"  # a footer that lies
    s3.put_object(Bucket=bucket, Key="crafted.parquet", Body=crafted)
    with pytest.raises((ClientError, EventStreamError)) as exc:
        select(s3, bucket, "crafted.parquet", "SELECT * FROM S3Object", {"Parquet": {}})
    assert exc.value.response["Error"]["Code"]
    s3.put_object(Bucket=bucket, Key="people.csv", Body=PEOPLE)
    records, _ = select(s3, bucket, "people.csv", "SELECT COUNT(*) FROM S3Object", CSV_IN)
    assert records == b"3\n"


def test_a_caller_without_read_rights_is_denied(
    shared_server: Server, bucket: str, tmp_path: Path
) -> None:
    s3 = shared_server.client()
    s3.put_object(Bucket=bucket, Key="people.csv", Body=PEOPLE)
    other, _ = new_user(
        shared_server, f"selector{time.monotonic_ns() % 10**6}", tmp_path,
        lister=policy(allow("s3:ListBucket", resource=f"arn:aws:s3:::{bucket}")),
    )  # fmt: skip
    with pytest.raises(ClientError) as exc:
        select(other, bucket, "people.csv", "SELECT * FROM S3Object", CSV_IN)
    assert exc.value.response["Error"]["Code"] == "AccessDenied"


def test_a_long_scan_sends_cont_keep_alives(
    make_inprocess_server: InProcessFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(select_module, "KEEPALIVE_SECONDS", 0.01)
    server = make_inprocess_server(Authorizer(allow_all))
    s3 = server.client()
    s3.create_bucket(Bucket="big")
    body = b"n,word\n" + b"".join(b"%d,w%d\n" % (i, i % 97) for i in range(300_000))
    s3.put_object(Bucket="big", Key="n.csv", Body=body)
    sql = "SELECT SUM(CAST(n AS INT)) FROM S3Object WHERE word LIKE 'w9%'"
    answer = s3.select_object_content(
        Bucket="big", Key="n.csv", Expression=sql, ExpressionType="SQL",
        InputSerialization=CSV_IN, OutputSerialization=CSV_OUT,
    )  # fmt: skip
    kinds = [next(iter(event)) for event in answer["Payload"]]
    assert "Cont" in kinds
    assert kinds[-2:] == ["Stats", "End"]
    assert kinds.count("Records") == 1


def _sql_threads() -> list[Any]:
    import threading

    return [t for t in threading.enumerate() if t.name == "egide-sql" and t.is_alive()]


def test_a_client_going_away_stops_the_scan(make_inprocess_server: InProcessFactory) -> None:
    server = make_inprocess_server(Authorizer(allow_all))
    s3 = server.client()
    s3.create_bucket(Bucket="big")
    body = b"n,word\n" + b"".join(b"%d,w%d\n" % (i, i % 97) for i in range(3_000_000))
    s3.upload_fileobj(io.BytesIO(body), "big", "n.csv")
    answer = s3.select_object_content(
        Bucket="big", Key="n.csv", Expression="SELECT * FROM S3Object", ExpressionType="SQL",
        InputSerialization=CSV_IN, OutputSerialization=JSON_OUT,
    )  # fmt: skip
    stream = answer["Payload"]
    assert "Records" in next(iter(stream))
    assert len(_sql_threads()) == 1
    stream.close()  # the client goes away mid-answer
    deadline = time.monotonic() + 2
    while _sql_threads() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _sql_threads() == []
    records, _ = select(s3, "big", "n.csv", "SELECT COUNT(*) FROM S3Object", CSV_IN)
    assert records == b"3000000\n"
