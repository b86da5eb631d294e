"""The PostgreSQL catalog's migrations (src/egide/catalog/postgres/schema.py): applied at open,
recorded in schema_version, applied once when gateways start together, an older database
brought up keeping its rows, and a database newer than the code refused with a message naming
it (never its password)."""

from __future__ import annotations

import threading

import psycopg
import pytest
from tests.postgres import PASSWORD, PostgresServer

from egide.catalog.postgres import MIGRATIONS, CatalogTooNew, PostgresCatalog, schema


def _versions(url: str) -> list[int]:
    with psycopg.connect(url, password=PASSWORD) as db:
        return [row[0] for row in db.execute("SELECT version FROM schema_version ORDER BY 1")]


def test_opening_an_empty_database_applies_every_step_once(
    postgres_server: PostgresServer,
) -> None:
    url = postgres_server.new_database(empty=True)
    catalog = PostgresCatalog(url, password=PASSWORD)
    assert not catalog.schema_present()
    catalog.open()
    catalog.open()  # again: nothing more to apply
    assert catalog.schema_present()
    assert _versions(url) == list(range(1, len(MIGRATIONS) + 1))


def test_gateways_opening_together_apply_the_schema_once(postgres_server: PostgresServer) -> None:
    url = postgres_server.new_database(empty=True)
    errors: list[BaseException] = []

    def open_one() -> None:
        try:
            PostgresCatalog(url, password=PASSWORD).open()
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=open_one) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert _versions(url) == list(range(1, len(MIGRATIONS) + 1))


def test_a_database_newer_than_the_code_is_refused(postgres_url: str) -> None:
    with psycopg.connect(postgres_url, password=PASSWORD) as db:
        db.execute(
            "INSERT INTO schema_version (version, applied) VALUES (%s, 0)", (len(MIGRATIONS) + 1,)
        )
    with pytest.raises(CatalogTooNew) as refused:
        PostgresCatalog(postgres_url, password=PASSWORD).open()
    message = str(refused.value)
    assert postgres_url in message and "upgrade Égide" in message
    assert PASSWORD not in message


def test_keys_sort_by_code_point_whatever_the_databases_collation(postgres_url: str) -> None:
    """S3 order: "B" < "a" < "é" < "😀" (byte order of UTF-8), not a language's order."""
    with psycopg.connect(postgres_url, password=PASSWORD) as db:
        collations = db.execute(
            "SELECT table_name, column_name, collation_name FROM information_schema.columns "
            "WHERE table_schema = 'public' AND column_name = 'key'"
        ).fetchall()
    assert sorted(collations) == [
        ("objects", "key", "C"), ("uploads", "key", "C"), ("versions", "key", "C"),
    ]  # fmt: skip


def test_a_database_of_an_older_egide_is_brought_up_keeping_its_rows(
    postgres_server: PostgresServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A catalog at version 1 (the first release with PostgreSQL) gains the rights counter
    (2, at 0) and Iceberg's tables (3) at open; its rows stay."""
    url = postgres_server.new_database(empty=True)
    with monkeypatch.context() as older:
        older.setattr(schema, "MIGRATIONS", MIGRATIONS[:1])
        PostgresCatalog(url, password=PASSWORD).open()
    assert _versions(url) == [1]
    with psycopg.connect(url, password=PASSWORD) as db:
        db.execute("INSERT INTO account_settings (name, value) VALUES ('quota', '5')")
    PostgresCatalog(url, password=PASSWORD).open()
    assert _versions(url) == [1, 2, 3]
    with psycopg.connect(url, password=PASSWORD) as db:
        assert db.execute("SELECT value FROM account_settings").fetchall() == [("5",)]
        assert db.execute("SELECT id, version FROM rights").fetchall() == [(1, 0)]
        assert db.execute("SELECT count(*) FROM iceberg_tables").fetchone() == (0,)


def test_iceberg_names_sort_by_code_point(postgres_url: str) -> None:
    with psycopg.connect(postgres_url, password=PASSWORD) as db:
        collations = db.execute(
            "SELECT table_name, column_name, collation_name FROM information_schema.columns "
            "WHERE table_schema = 'public' AND table_name LIKE 'iceberg_%%' "
            "AND data_type = 'text' AND column_name NOT IN ('properties', 'metadata_location')"
        ).fetchall()
    assert sorted(collations) == [
        ("iceberg_namespaces", "namespace", "C"), ("iceberg_namespaces", "parent", "C"),
        ("iceberg_namespaces", "warehouse", "C"), ("iceberg_tables", "name", "C"),
        ("iceberg_tables", "namespace", "C"), ("iceberg_tables", "warehouse", "C"),
    ]  # fmt: skip
