"""`open_catalog`: the configured catalog, in the data directory, open and migrated."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

from tests.clocks import ManualClock

from egide.catalog import catalog_exists, open_catalog
from egide.catalog.sqlite import MIGRATIONS
from egide.config import Settings
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
