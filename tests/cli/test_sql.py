"""`egide sql` beside a running server: objects written with boto3, queried with DuckDB through
the engine, each --format read back, --out and COPY TO read back with boto3, a user's rights."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from tests.conftest import Server, ServerFactory
from typer.testing import CliRunner

from egide.cli.main import app

N = 30_000


def egide(server: Server, *args: str) -> Any:
    result = CliRunner().invoke(app, [*args, "--config", str(server.config)],
                                env={"COLUMNS": "250"})  # fmt: skip
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result


@pytest.fixture
def stocked(make_server: ServerFactory) -> tuple[Server, pa.Table]:
    server = make_server()
    s3 = server.client()
    s3.create_bucket(Bucket="lake")
    table = pa.table({
        "id": pa.array(range(N), pa.int64()),
        "city": pa.array([("Lyon", "Brest", "Nancy")[i % 3] for i in range(N)]),
        "kwh": pa.array([(i * 13 % 500) / 4 for i in range(N)], pa.float64()),
    })  # fmt: skip
    for year, part in ((2025, table.slice(0, N // 2)), (2026, table.slice(N // 2))):
        sink = io.BytesIO()
        pq.write_table(part, sink, row_group_size=5_000)
        s3.put_object(Bucket="lake", Key=f"meters/year={year}/data.parquet", Body=sink.getvalue())
    return server, table


QUERY = (
    "SELECT city, count(*) AS n, sum(kwh) AS kwh FROM "
    "read_parquet('egide://lake/meters/*/*.parquet', hive_partitioning=true) "
    "GROUP BY city ORDER BY city"
)


def expected(table: pa.Table) -> dict[str, tuple[int, float]]:
    out = {}
    for city in ("Brest", "Lyon", "Nancy"):
        rows = table.filter(pc.equal(table["city"], city))
        out[city] = (rows.num_rows, pc.sum(rows["kwh"]).as_py())
    return out


def check(got: dict[str, tuple[int, float]], table: pa.Table) -> None:
    want = expected(table)
    assert list(got) == list(want)
    for city, (n, kwh) in got.items():
        assert n == want[city][0] and kwh == pytest.approx(want[city][1])


def test_every_format(stocked: tuple[Server, pa.Table]) -> None:
    server, table = stocked
    shown = egide(server, "sql", QUERY)
    assert shown.exit_code == 0, shown.output
    assert "Brest" in shown.stdout and "Nancy" in shown.stdout and "3 rows" in shown.stderr

    result = egide(server, "sql", QUERY, "--format", "csv")
    assert result.exit_code == 0, result.output
    parsed = list(csv.DictReader(io.StringIO(result.stdout)))
    check({r["city"]: (int(r["n"]), float(r["kwh"])) for r in parsed}, table)

    result = egide(server, "sql", QUERY, "--format", "json")
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    check({r["city"]: (r["n"], r["kwh"]) for r in lines}, table)

    result = egide(server, "sql", QUERY, "--format", "parquet")
    back = pq.read_table(io.BytesIO(result.stdout_bytes)).to_pylist()
    check({r["city"]: (r["n"], r["kwh"]) for r in back}, table)

    result = egide(server, "sql", QUERY, "--format", "arrow")
    back = pa.ipc.open_stream(io.BytesIO(result.stdout_bytes)).read_all().to_pylist()
    check({r["city"]: (r["n"], r["kwh"]) for r in back}, table)


def test_out_and_copy_to_write_objects(stocked: tuple[Server, pa.Table]) -> None:
    server, table = stocked
    s3 = server.client()
    result = egide(server, "sql", QUERY, "--out", "s3://lake/reports/by-city.parquet")
    assert result.exit_code == 0, result.output
    assert "3 rows written to s3://lake/reports/by-city.parquet" in result.stderr
    body = s3.get_object(Bucket="lake", Key="reports/by-city.parquet")["Body"].read()
    back = pq.read_table(io.BytesIO(body)).to_pylist()
    check({r["city"]: (r["n"], r["kwh"]) for r in back}, table)

    result = egide(server, "sql", QUERY, "--out", "s3://lake/reports/by-city.csv")
    assert result.exit_code == 0, result.output
    body = s3.get_object(Bucket="lake", Key="reports/by-city.csv")["Body"].read().decode()
    assert body.splitlines()[0] == '"city","n","kwh"'

    result = egide(server, "sql", f"COPY ({QUERY}) TO 'egide://lake/reports/copied.json'")
    assert result.exit_code == 0, result.output
    body = s3.get_object(Bucket="lake", Key="reports/copied.json")["Body"].read().decode()
    lines = [json.loads(line) for line in body.splitlines()]
    check({r["city"]: (r["n"], r["kwh"]) for r in lines}, table)


def test_a_user_reads_only_what_it_may(stocked: tuple[Server, pa.Table], tmp_path: Path) -> None:
    server, _ = stocked
    assert egide(server, "user", "create", "analyst").exit_code == 0
    result = egide(server, "sql", QUERY, "--as-user", "analyst", "--format", "csv")
    assert result.exit_code == 1
    assert "AccessDenied: analyst may not s3:ListBucket on egide://lake" in result.stderr
    policy = tmp_path / "read.json"
    policy.write_text(json.dumps({
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": ["s3:ListBucket", "s3:GetObject"],
                       "Resource": ["arn:aws:s3:::lake", "arn:aws:s3:::lake/meters/*"]}],
    }))  # fmt: skip
    assert egide(server, "user", "policy-put", "analyst", "read", str(policy)).exit_code == 0
    result = egide(server, "sql", QUERY, "--as-user", "analyst", "--format", "csv")
    assert result.exit_code == 0, result.output
    result = egide(server, "sql", "SELECT 1 AS x", "--as-user", "analyst",
                   "--out", "s3://lake/reports/x.csv")  # fmt: skip
    assert result.exit_code == 1
    assert "AccessDenied: analyst may not s3:PutObject on egide://lake/reports/x.csv" in (
        result.stderr
    )
    result = egide(server, "sql", "SELECT * FROM read_csv('/etc/passwd')")
    assert result.exit_code == 1 and "disabled by configuration" in result.stderr
    assert egide(server, "sql", "SELECT 1", "--as-user", "nobody").exit_code == 2


def test_a_write_past_a_quota_is_refused_and_leaves_nothing(
    stocked: tuple[Server, pa.Table],
) -> None:
    server, _ = stocked
    s3 = server.client()
    s3.create_bucket(Bucket="small")
    assert egide(server, "bucket", "quota", "small", "--max-objects", "1").exit_code == 0
    s3.put_object(Bucket="small", Key="one", Body=b"1")
    result = egide(server, "sql", QUERY, "--out", "s3://small/two.csv")
    assert result.exit_code == 1
    assert "quota" in result.stderr.lower()
    assert [o["Key"] for o in s3.list_objects_v2(Bucket="small")["Contents"]] == ["one"]


def test_other_commands_run_without_the_analytics_extra() -> None:
    """duckdb, pyarrow and fsspec are an extra: `egide` loads them only for `egide sql`."""
    probe = (
        "import sys, egide.cli.main; "
        "print(sorted(m for m in ('duckdb', 'pyarrow', 'fsspec') if m in sys.modules))"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"
