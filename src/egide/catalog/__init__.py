"""The catalog: what exists and where its pieces are (`base.Catalog`), and the one way in from
outside this package: `open_catalog(settings)` for the live catalog, the whole-catalog
operations on its location (exists, in use, install another in its place), and
`open_catalog_file` for the self-contained catalog files recovery works on (`backup`).

SQLite is the one backend today (`sqlite.SQLiteCatalog`); nothing outside this package names
it or imports `sqlite3` (tests/catalog/test_confined.py).
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

from egide.catalog import sqlite_backup
from egide.catalog.backup import CatalogRecovery
from egide.catalog.base import Catalog
from egide.catalog.sqlite import MIGRATIONS, SQLiteCatalog
from egide.clock import SYSTEM_CLOCK, Clock
from egide.config import Settings

__all__ = [
    "CATALOG_SCHEMA",
    "Catalog",
    "RecoverableCatalog",
    "catalog_exists",
    "catalog_in_use",
    "catalog_location",
    "install_catalog",
    "open_catalog",
    "open_catalog_file",
]

#: The live catalog's file in the data directory.
CATALOG_FILE = "catalog.sqlite3"
#: The schema of the catalogs (and catalog files) this Égide writes: a file of a newer one is
#: not opened (a snapshot records it).
CATALOG_SCHEMA = len(MIGRATIONS)


class RecoverableCatalog(Catalog, CatalogRecovery, Protocol):
    """A catalog opened from a catalog file: the whole interface, and recovery's writes."""


def catalog_location(settings: Settings) -> Path:
    """Where the live catalog is (SQLite: its database file), as the commands name it."""
    return settings.data_dir / CATALOG_FILE


def open_catalog(settings: Settings, *, clock: Clock = SYSTEM_CLOCK) -> Catalog:
    """The live catalog of `settings`, opened (created and migrated if needed): close it with
    `close()`. `clock` is for backends that keep time themselves; SQLite has no cache yet."""
    del clock
    catalog = SQLiteCatalog(catalog_location(settings))
    catalog.open()
    return catalog


def catalog_exists(settings: Settings) -> bool:
    """Whether a catalog was ever created here (`egide serve` ran)."""
    return catalog_location(settings).exists()


def catalog_in_use(settings: Settings) -> bool:
    """Whether another process has the live catalog open (a running server)."""
    return sqlite_backup.in_use(catalog_location(settings))


def install_catalog(new: Path, settings: Settings, suffix: str) -> Path | None:
    """Put the catalog file `new` (a rebuild's, a restore's) in place of the live catalog,
    which no process may have open; the old one is kept aside as `<location>.<suffix>`,
    returned (None if there was none). Nothing of the old one (no journal) is left to meet the
    new one."""
    return sqlite_backup.install(new, catalog_location(settings), suffix)


def open_catalog_file(path: Path) -> RecoverableCatalog:
    """The catalog in the catalog file `path` (a snapshot's copy, a rebuild's), opened and
    brought to the current schema; a new, empty one if `path` does not exist. Only this
    process may use it; `close_as_file()` leaves it self-contained again."""
    catalog = SQLiteCatalog(path)
    catalog.open()
    return catalog
