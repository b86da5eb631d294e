"""The catalog contract: one suite, run against every catalog backend.

Each backend has one factory in `BACKENDS`: SQLite, and PostgreSQL on a fresh database of the
session's real server (tests/postgres.py; skipped, saying so, when PostgreSQL is not
installed). A factory takes the test's request (for such fixtures), a directory, and the clock
the catalog is to read the time from: the system's, unless a test module overrides the `clock`
fixture with a `ManualClock` (test_clock.py).
Each test is an `async def` run in its own event loop, the loop its catalog was opened in (a
backend may bind connections to a loop), against a fresh empty catalog.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Callable, Coroutine, Iterator
from pathlib import Path
from typing import Any

import pytest
from tests.catalog.contract.builders import new_bucket
from tests.postgres import PASSWORD

from egide.catalog.base import Catalog
from egide.catalog.postgres import PostgresCatalog
from egide.catalog.sqlite import SQLiteCatalog
from egide.clock import SYSTEM_CLOCK, Clock
from egide.domain import Bucket

#: Longest a contract test may take before it counts as hung.
TEST_TIMEOUT = 30.0


async def open_sqlite(request: pytest.FixtureRequest, directory: Path, clock: Clock) -> Catalog:
    catalog = SQLiteCatalog(directory / "catalog.sqlite3", clock=clock)
    catalog.open()
    return catalog


async def open_postgres(request: pytest.FixtureRequest, directory: Path, clock: Clock) -> Catalog:
    """A fresh database of the session's PostgreSQL server (tests/postgres.py: skipped when
    PostgreSQL is not installed)."""
    url = request.getfixturevalue("postgres_url")
    catalog = PostgresCatalog(url, password=PASSWORD, clock=clock)
    catalog.open()
    return catalog  # type: ignore[return-value]


#: Backend name → a factory opening a fresh, empty catalog that keeps its files in a directory
#: and reads the time from a clock (and may ask the test for fixtures: a database server).
BACKENDS: dict[
    str, Callable[[pytest.FixtureRequest, Path, Clock], Coroutine[Any, Any, Catalog]]
] = {"sqlite": open_sqlite, "postgresql": open_postgres}


@pytest.fixture
def loop() -> Iterator[asyncio.Runner]:
    """The test's event loop: the catalog is opened, used and closed in it."""
    with asyncio.Runner() as runner:
        yield runner


@pytest.fixture
def clock() -> Clock:
    """The time the catalog reads (a test module that moves it overrides this fixture)."""
    return SYSTEM_CLOCK


@pytest.fixture(params=sorted(BACKENDS))
def catalog(
    request: pytest.FixtureRequest, loop: asyncio.Runner, tmp_path: Path, clock: Clock
) -> Iterator[Catalog]:
    opened = loop.run(BACKENDS[request.param](request, tmp_path, clock))
    yield opened
    loop.run(opened.close())


@pytest.fixture
def bucket(catalog: Catalog, loop: asyncio.Runner) -> Bucket:
    created = new_bucket("photos")
    loop.run(catalog.create_bucket(created))
    return created


@pytest.hookimpl(tryfirst=True)
def pytest_pyfunc_call(pyfuncitem: pytest.Function) -> bool | None:
    """Run an `async def` test in the loop of its catalog."""
    if not inspect.iscoroutinefunction(pyfuncitem.obj):
        return None
    runner = pyfuncitem.funcargs.get("loop")
    if not isinstance(runner, asyncio.Runner):
        raise TypeError(f"{pyfuncitem.name}: an async contract test needs the `catalog` fixture")
    names = inspect.signature(pyfuncitem.obj).parameters
    args = {name: pyfuncitem.funcargs[name] for name in names}
    runner.run(asyncio.wait_for(pyfuncitem.obj(**args), TEST_TIMEOUT))
    return True
