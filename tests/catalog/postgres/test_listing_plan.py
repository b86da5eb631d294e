"""Listing from a cursor deep in a bucket is one index probe in the PostgreSQL catalog: the
query seeks to the cursor on the key index and reads about `limit` rows, it does not read every
key from the prefix up to it — so a delimiter listing jumping past a common prefix costs one
probe however many keys the prefix holds (issue 16). Read from PostgreSQL's executed plan
(EXPLAIN ANALYZE: rows each node read), not timed."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from tests.postgres import PASSWORD

from egide.catalog.postgres.versions import objects_query, versions_query
from egide.catalog.rules import prefix_end

BUCKET = b"b" * 16
#: 40 folders of 100 keys, each key with two versions.
FOLDERS, PER_FOLDER = 40, 100


@pytest.fixture
def db(postgres_url: str) -> Iterator[psycopg.Connection[tuple[Any, ...]]]:
    with psycopg.connect(postgres_url, password=PASSWORD, autocommit=True) as db:
        db.execute(
            "INSERT INTO buckets (id, name, created, wrapped_key) VALUES (%s, 'b', 0, '')",
            (BUCKET,),
        )
        db.execute(
            "INSERT INTO versions (version_id, bucket_id, key, size, etag, last_modified, "
            "wrapped_data_key, k, m, block_size, sites, headers, seq, is_null) "
            "SELECT decode(md5(f || '/' || k || '/' || s), 'hex'), %s, "
            "format('f%%s/k%%s', lpad(f::TEXT, 2, '0'), lpad(k::TEXT, 3, '0')), 1, '', 0, '', "
            "1, 0, 1, '[]', '{}', s, s = 2 "
            "FROM generate_series(1, %s) f, generate_series(1, %s) k, generate_series(1, 2) s",
            (BUCKET, FOLDERS, PER_FOLDER),
        )
        db.execute(
            "INSERT INTO objects (bucket_id, key, version_id) "
            "SELECT bucket_id, key, version_id FROM versions WHERE seq = 2"
        )
        db.execute("ANALYZE")
        yield db


def _rows_read(
    db: psycopg.Connection[tuple[Any, ...]], query: tuple[str, list[object]]
) -> dict[str, int]:
    """Rows each table's scan read (returned plus filtered out), and how: table → rows."""
    sql, args = query
    row = db.execute(f"EXPLAIN (ANALYZE, FORMAT JSON) {sql}", args).fetchone()
    assert row is not None
    plan = row[0] if isinstance(row[0], list) else json.loads(row[0])
    read: dict[str, int] = {}

    def walk(node: dict[str, Any]) -> None:
        if "Relation Name" in node:
            assert node["Node Type"] in ("Index Scan", "Index Only Scan"), node["Node Type"]
            count = (node["Actual Rows"] + node.get("Rows Removed by Filter", 0)) * node[
                "Actual Loops"
            ]
            read[node["Relation Name"]] = read.get(node["Relation Name"], 0) + count
        for child in node.get("Plans", []):
            walk(child)

    walk(plan[0]["Plan"])
    return read


def test_jumping_past_a_common_prefix_reads_one_key(
    db: psycopg.Connection[tuple[Any, ...]],
) -> None:
    end = prefix_end("f20/")
    assert end is not None
    read = _rows_read(db, objects_query(BUCKET, "", end, 1, True))
    assert read["objects"] <= 2  # not the 2,000 keys of folders 1 to 20


def test_a_page_from_a_deep_cursor_reads_about_the_page(
    db: psycopg.Connection[tuple[Any, ...]],
) -> None:
    read = _rows_read(db, objects_query(BUCKET, "f3", "f35/k050", 10, False))
    assert read["objects"] <= 11


def test_a_version_page_from_a_deep_cursor_reads_about_the_page(
    db: psycopg.Connection[tuple[Any, ...]],
) -> None:
    read = _rows_read(db, versions_query(BUCKET, "", ("f30/k050", 0), 10))
    assert read["versions"] <= 12
