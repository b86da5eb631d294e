"""DuckDB on the `egide://` filesystem in its sandbox: Parquet, CSV, JSON, hive partitions,
COPY TO, what a query may not reach, limits, a caller without rights."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq
import pytest
from tests.analytics.conftest import Served, parquet_bytes

from egide.analytics.filesystem import EgideFileSystem
from egide.analytics.query import Limits, Query, QueryError, QueryTimeout
from egide.auth.authorize import Principal, RequestContext
from egide.engine.versioning import VERSIONING


def rows(fs: EgideFileSystem, sql: str, limits: Limits | None = None) -> list[dict[str, Any]]:
    with Query(fs, limits or Limits()) as query:
        _, batches = query.run(sql)
        return [row for batch in batches for row in batch.to_pylist()]


def sales(n: int, seed: int) -> pa.Table:
    return pa.table({
        "id": pa.array(range(seed * n, seed * n + n), pa.int64()),
        "amount": pa.array([(i * 37 + seed) % 1000 / 10 for i in range(n)], pa.float64()),
        "shop": pa.array([f"shop-{i % 7}" for i in range(n)]),
    })  # fmt: skip


def test_parquet_aggregates_match_pyarrow(served: Served) -> None:
    served.bucket("b")
    table = sales(50_000, 1)
    served.put("b", "sales.parquet", parquet_bytes(table, row_group_size=10_000))
    got = rows(
        served.fs(),
        "SELECT count(*) AS n, sum(amount) AS total, max(id) AS top, count(DISTINCT shop) AS shops"
        " FROM read_parquet('egide://b/sales.parquet')",
    )
    assert got[0]["n"] == table.num_rows
    assert got[0]["total"] == pytest.approx(pc.sum(table["amount"]).as_py())
    assert got[0]["top"] == pc.max(table["id"]).as_py()
    assert got[0]["shops"] == 7
    selective = rows(served.fs(), "SELECT amount FROM 'egide://b/sales.parquet' WHERE id = 51234")
    assert selective == [{"amount": table["amount"][1234].as_py()}]


def test_hive_partitioned_glob(served: Served) -> None:
    served.bucket("b")
    expected = {}
    for year in (2024, 2025, 2026):
        table = sales(3_000, year)
        expected[year] = pc.sum(table["amount"]).as_py()
        for half in (0, 1):
            part = table.slice(half * 1500, 1500)
            served.put("b", f"data/year={year}/part-{half}.parquet", parquet_bytes(part))
    served.put("b", "data/readme.txt", b"not parquet")  # left out by the pattern
    got = rows(
        served.fs(),
        "SELECT year, sum(amount) AS total, count(*) AS n FROM "
        "read_parquet('egide://b/data/*/*.parquet', hive_partitioning=true) "
        "GROUP BY year ORDER BY year",
    )
    assert [(r["year"], r["n"]) for r in got] == [(2024, 3000), (2025, 3000), (2026, 3000)]
    for r in got:
        assert r["total"] == pytest.approx(expected[r["year"]])
    pruned = rows(
        served.fs(),
        "SELECT count(*) AS n FROM read_parquet('egide://b/data/*/*.parquet', "
        "hive_partitioning=true) WHERE year = 2025",
    )
    assert pruned == [{"n": 3000}]


def test_csv_and_json(served: Served) -> None:
    served.bucket("b")
    table = sales(20_000, 2)
    sink = io.BytesIO()
    pa_csv.write_csv(table, sink)
    served.put("b", "sales.csv", sink.getvalue())
    lines = "".join(json.dumps(r) + "\n" for r in table.slice(0, 5000).to_pylist())
    served.put("b", "sales.json", lines.encode())
    got = rows(
        served.fs(), "SELECT sum(amount) AS t, count(*) AS n FROM read_csv('egide://b/sales.csv')"
    )
    assert got[0]["n"] == 20_000
    assert got[0]["t"] == pytest.approx(pc.sum(table["amount"]).as_py())
    got = rows(served.fs(), "SELECT sum(id) AS s FROM read_json('egide://b/sales.json')")
    assert got == [{"s": pc.sum(table.slice(0, 5000)["id"]).as_py()}]


def test_copy_to_writes_an_object(served: Served) -> None:
    served.bucket("b")
    served.put("b", "in.parquet", parquet_bytes(sales(10_000, 3)))
    fs = served.fs(part_size=5 * 1024 * 1024)
    rows(fs, "COPY (SELECT shop, sum(amount) AS total FROM 'egide://b/in.parquet' GROUP BY shop"
             " ORDER BY shop) TO 'egide://b/out/totals.parquet'")  # fmt: skip
    back = pq.read_table(io.BytesIO(served.get("b", "out/totals.parquet")))
    assert back["shop"].to_pylist() == [f"shop-{i}" for i in range(7)]
    # A bigger result: several parts, and written over an existing object (DuckDB writes a
    # temporary object then moves it).
    rows(fs, "COPY (SELECT range AS v, range * 2 AS w FROM range(2000000)) "
             "TO 'egide://b/out/totals.parquet'")  # fmt: skip
    back = pq.read_table(io.BytesIO(served.get("b", "out/totals.parquet")))
    assert back.num_rows == 2_000_000 and pc.sum(back["w"]).as_py() == 2 * sum(range(2_000_000))
    assert fs.find("egide://b/out") == ["b/out/totals.parquet"]


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT * FROM read_csv('/etc/passwd')",
        "SELECT * FROM read_text('/etc/hostname')",
        "COPY (SELECT 1 AS x) TO '{tmp}/x.csv'",
        "ATTACH '{tmp}/other.duckdb'",
        "INSTALL httpfs",
        "LOAD httpfs",
        "SET enable_external_access = true",
        "SET allowed_directories = ['/']",
        "RESET lock_configuration",
        "SET memory_limit = '100GB'",
        "SELECT * FROM glob('/etc/*')",
        "SELECT * FROM read_csv('https://example.com/x.csv')",
    ],
)
def test_the_sandbox_refuses(served: Served, tmp_path: Path, sql: str) -> None:
    with pytest.raises(QueryError) as refused:
        rows(served.fs(), sql.format(tmp=tmp_path))
    assert any(
        word in str(refused.value) for word in ("disabled by configuration", "locked", "Permission")
    ), str(refused.value)
    assert not (tmp_path / "x.csv").exists() and not (tmp_path / "other.duckdb").exists()


def test_limits_hold(served: Served) -> None:
    with pytest.raises(QueryTimeout, match=r"timeout of 0\.5 s"):
        rows(served.fs(), "SELECT count(*) FROM range(100000000000)", Limits(timeout=0.5))
    with pytest.raises(QueryError, match=r"(?i)memory"):
        rows(
            served.fs(),
            "SELECT list(range) FROM range(50000000) GROUP BY range % 3",
            Limits(memory="64MB"),
        )
    got = rows(served.fs(), "SELECT current_setting('threads') AS t", Limits(threads=1))
    assert got == [{"t": 1}]
    with pytest.raises(QueryError, match="limits were refused"):
        rows(served.fs(), "SELECT 1", Limits(memory="lots"))


def test_a_caller_without_read_rights_gets_a_clear_error(served: Served) -> None:
    served.bucket("b")
    served.bucket("other")
    served.put("b", "mine.parquet", parquet_bytes(sales(10, 1)))
    served.put("other", "theirs.parquet", parquet_bytes(sales(10, 2)))

    async def only_b(p: Principal, action: str, resource: str, c: RequestContext) -> bool:
        return resource == "arn:aws:s3:::b" or resource.startswith("arn:aws:s3:::b/")

    fs = served.fs(only_b, user="bob")
    assert rows(fs, "SELECT count(*) AS n FROM 'egide://b/mine.parquet'") == [{"n": 10}]
    with pytest.raises(
        QueryError, match=r"^AccessDenied: bob may not s3:GetObject on egide://other/theirs.parquet"
    ):
        rows(fs, "SELECT count(*) FROM 'egide://other/theirs.parquet'")
    with pytest.raises(
        QueryError, match=r"AccessDenied: bob may not s3:ListBucket on egide://other"
    ):
        rows(fs, "SELECT count(*) FROM 'egide://other/*.parquet'")
    with pytest.raises(
        QueryError, match=r"AccessDenied: bob may not s3:PutObject on egide://other/x"
    ):
        rows(fs, "COPY (SELECT 1 AS v) TO 'egide://other/x.csv'")


FAILING = (
    "COPY (SELECT CASE WHEN range < 1500000 THEN range ELSE error('boom') END AS v, "
    "range * 3 AS w FROM range(2000000)) TO 'egide://b/{key}'"
)


def versions(served: Served, bucket: str) -> list[str]:
    listing = served.engine.run(served.env.store.list_versions(bucket))
    return [v.key for v, _ in listing.versions]


@pytest.mark.parametrize("size", ["small", "several parts"])
def test_a_failed_copy_to_leaves_no_trace(served: Served, size: str) -> None:
    """DuckDB closes the file of a failed COPY, then removes it: nothing of it is ever
    committed, not even as a version of a versioned bucket."""
    served.bucket("b")
    store = served.env.store

    async def versioned() -> None:
        await store.bucket_settings.put(await store.bucket("b"), VERSIONING, "Enabled")

    served.engine.run(versioned())
    served.put("b", "kept.csv", b"v\n1\n")
    fs = served.fs(part_size=5 * 1024 * 1024 if size == "several parts" else 64 * 1024 * 1024)
    for key in ("new.csv", "kept.csv"):
        with pytest.raises(QueryError, match="boom"):
            rows(fs, FAILING.format(key=key))
    assert versions(served, "b") == ["kept.csv"]
    assert served.get("b", "kept.csv") == b"v\n1\n"
    rows(fs, "COPY (SELECT 2 AS v) TO 'egide://b/kept.csv'")  # over it, through tmp_kept.csv
    assert served.get("b", "kept.csv") == b"v\n2\n"
    assert sorted(set(versions(served, "b"))) == ["kept.csv"]
