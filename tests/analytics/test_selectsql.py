"""S3 Select's SQL translated to DuckDB's: the subset AWS documents, and AWS's codes for the
rest. Identifiers always come out quoted, functions and types only from the lists."""

from __future__ import annotations

import pytest

from egide.analytics.selectsql import SelectSqlError, translate


@pytest.mark.parametrize(
    ("select", "duckdb", "positions"),
    [
        ("SELECT * FROM S3Object", "SELECT * FROM __s3object", 0),
        ("select s.name from s3object s where cast(s.age as int) > 30",
         'SELECT "name" FROM __s3object WHERE CAST ( "age" AS BIGINT ) > 30', 0),
        ("SELECT _1, s._3 FROM S3Object AS s LIMIT 5",
         'SELECT "_1" , "_3" FROM __s3object LIMIT 5', 3),
        ("SELECT COUNT(*) FROM S3Object WHERE _2 IS NOT NULL",
         'SELECT COUNT ( * ) FROM __s3object WHERE "_2" IS NOT NULL', 2),
        ('SELECT "Name" FROM S3Object[*] s WHERE s."Name" LIKE \'a%\'',
         'SELECT "Name" FROM __s3object WHERE "Name" LIKE \'a%\'', 0),
        ("SELECT AVG(CAST(x AS FLOAT)), MIN(y), MAX(y), SUM(CAST(z AS DECIMAL)) FROM S3Object",
         'SELECT AVG ( CAST ( "x" AS DOUBLE ) ) , MIN ( "y" ) , MAX ( "y" ) , '
         'SUM ( CAST ( "z" AS DECIMAL(38, 9) ) ) FROM __s3object', 0),
        ("SELECT a FROM S3Object WHERE b = 'it''s' OR c IS MISSING",
         'SELECT "a" FROM __s3object WHERE "b" = \'it\'\'s\' OR "c" IS NULL', 0),
    ],
)  # fmt: skip
def test_the_documented_subset_translates(select: str, duckdb: str, positions: int) -> None:
    translated = translate(select)
    assert (translated.sql, translated.positions) == (duckdb, positions)


@pytest.mark.parametrize(
    ("select", "code"),
    [
        ("SELECT a FROM S3Object ORDER BY a", "UnsupportedSqlOperation"),
        ("SELECT a, COUNT(*) FROM S3Object GROUP BY a", "UnsupportedSqlOperation"),
        ("SELECT a FROM S3Object WHERE a IN (SELECT b FROM S3Object)", "UnsupportedSqlOperation"),
        ("SELECT read_csv('/etc/passwd') FROM S3Object", "UnsupportedSqlOperation"),
        ("SELECT CAST(a AS BLOB) FROM S3Object", "UnsupportedSqlOperation"),
        ("SELECT s.a.b FROM S3Object s", "ParseUnexpectedToken"),
        ("SELECT t.a FROM S3Object s", "ParseUnexpectedToken"),
        ("SELECT a FROM S3Object[0]", "UnsupportedSqlOperation"),
        ("SELECT a FROM S3Object; DROP TABLE x", "ParseUnexpectedToken"),
        ("SELECT a FROM other", "ParseExpectedKeyword"),
        ("UPDATE S3Object SET a = 1", "UnsupportedSqlOperation"),
        ("SELECT a FROM S3Object LIMIT 1.5", "ParseUnexpectedToken"),
        ("", "ParseExpectedKeyword"),
    ],
)
def test_the_rest_is_refused_with_aws_codes(select: str, code: str) -> None:
    with pytest.raises(SelectSqlError) as exc:
        translate(select)
    assert exc.value.code == code
