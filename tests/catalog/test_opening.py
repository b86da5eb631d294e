"""`open_catalog`: the configured catalog, in the data directory, open and migrated."""

from __future__ import annotations

import asyncio
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from tests.clocks import ManualClock
from tests.postgres import PASSWORD, PostgresServer

from egide.catalog import catalog_exists, describe_catalog, install_catalog, open_catalog
from egide.catalog.opening import CatalogConfigError
from egide.catalog.sqlite import MIGRATIONS
from egide.config import CatalogConfig, Settings
from egide.domain import Bucket, new_id


def test_the_catalog_is_created_in_the_data_directory_and_found_again(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "data")
    (tmp_path / "data").mkdir()
    assert not catalog_exists(settings)
    bucket = Bucket(id=new_id(), name="photos", created=1.0, wrapped_key=b"k" * 40)

    async def create() -> None:
        catalog = open_catalog(settings)
        try:
            await catalog.create_bucket(bucket)
        finally:
            await catalog.close()

    asyncio.run(create())
    assert catalog_exists(settings)
    assert (tmp_path / "data" / "catalog.sqlite3").is_file()  # where backups and docs say

    async def read() -> Bucket | None:
        catalog = open_catalog(settings)
        try:
            return await catalog.get_bucket("photos")
        finally:
            await catalog.close()

    assert asyncio.run(read()) == bucket


def test_the_catalog_opened_is_migrated_to_the_current_schema(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path)

    async def open_and_close() -> None:
        await open_catalog(settings).close()

    asyncio.run(open_and_close())
    with sqlite3.connect(tmp_path / "catalog.sqlite3") as db:
        assert db.execute("PRAGMA user_version").fetchone()[0] == len(MIGRATIONS)


def test_the_catalog_reads_the_time_from_the_clock_given(tmp_path: Path) -> None:
    clock = ManualClock()
    clock.advance(7 * 86400)  # a week ahead of the system's time

    async def create_job() -> float:
        catalog = open_catalog(Settings(data_dir=tmp_path), clock=clock)
        try:
            return (await catalog.create_job("scrub", {})).created
        finally:
            await catalog.close()

    assert asyncio.run(create_job()) == clock.time()


# -- [catalog] url: the PostgreSQL catalog ----------------------------------------------------


def _on_postgres(tmp_path: Path, url: str, **catalog: object) -> Settings:
    return Settings(data_dir=tmp_path, catalog=CatalogConfig(url=url, **catalog))


def test_a_catalog_url_opens_the_postgresql_catalog_created_at_first_open(
    tmp_path: Path, postgres_server: PostgresServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CATALOG_PASSWORD", PASSWORD)
    settings = _on_postgres(
        tmp_path, postgres_server.new_database(empty=True), password_env="CATALOG_PASSWORD"
    )
    assert not catalog_exists(settings)
    bucket = Bucket(id=new_id(), name="photos", created=1.0, wrapped_key=b"k" * 40)

    async def create_and_read() -> Bucket | None:
        catalog = open_catalog(settings)
        try:
            await catalog.create_bucket(bucket)
        finally:
            await catalog.close()
        again = open_catalog(settings)
        try:
            return await again.get_bucket("photos")
        finally:
            await again.close()

    assert asyncio.run(create_and_read()) == bucket
    assert catalog_exists(settings)
    assert not (tmp_path / "catalog.sqlite3").exists()  # nothing in the data directory
    assert describe_catalog(settings) == f"PostgreSQL {settings.catalog.url}"


def test_the_password_is_read_from_an_owner_only_file(tmp_path: Path, postgres_url: str) -> None:
    secret = tmp_path / "catalog.password"
    secret.write_text(PASSWORD + "\n")
    secret.chmod(0o600)
    settings = _on_postgres(tmp_path, postgres_url, password_file=secret)

    async def use() -> None:
        catalog = open_catalog(settings)
        await catalog.list_buckets()
        await catalog.close()

    asyncio.run(use())
    secret.chmod(0o640)
    with pytest.raises(CatalogConfigError, match="accessible by other users"):
        open_catalog(settings)


def test_an_unset_password_variable_is_named(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("CATALOG_PASSWORD", raising=False)
    settings = _on_postgres(tmp_path, "postgresql://u@db/c", password_env="CATALOG_PASSWORD")
    with pytest.raises(CatalogConfigError, match="CATALOG_PASSWORD"):
        open_catalog(settings)


def test_a_catalog_file_is_not_put_in_place_of_a_postgresql_catalog(
    tmp_path: Path, postgres_url: str
) -> None:
    """Restore and rebuild write a catalog file; loading one into PostgreSQL is not done yet:
    refused, saying where the file is, and nothing of the file is lost."""
    built = tmp_path / "catalog.sqlite3.rebuild.tmp"
    built.write_bytes(b"a catalog file")
    settings = _on_postgres(tmp_path, postgres_url)
    with pytest.raises(CatalogConfigError, match=str(built)):
        install_catalog(built, settings, "before-rebuild")
    assert built.read_bytes() == b"a catalog file"


def test_without_the_postgresql_driver_egide_runs_on_sqlite_and_says_what_a_url_needs(
    tmp_path: Path,
) -> None:
    """psycopg is the `[postgres]` extra: without it Égide imports and opens SQLite, and a
    catalog url is refused naming the extra."""
    script = f"""
import asyncio, sys
sys.modules["psycopg"] = None  # as if not installed: importing it raises ImportError
import egide.server
from egide.catalog import open_catalog
from egide.catalog.opening import CatalogConfigError
from egide.config import CatalogConfig, Settings
asyncio.run(open_catalog(Settings(data_dir={str(tmp_path)!r})).close())
try:
    open_catalog(Settings(data_dir={str(tmp_path)!r}, catalog=CatalogConfig(url="postgresql://u@h/d")))
except CatalogConfigError as exc:
    print(exc)
"""
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=True
    )
    assert "pip install 'egide[postgres]'" in done.stdout
    assert (tmp_path / "catalog.sqlite3").is_file()
