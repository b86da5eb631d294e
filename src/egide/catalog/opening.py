"""The one way to open the configured catalog: code outside `egide.catalog` asks for the
catalog of a configuration, never for a backend by name.

Today the backend is always SQLite, in the data directory; a configuration key choosing
another backend (PostgreSQL …) is read here, and nowhere else changes.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from egide.catalog.backup import CatalogRecovery
from egide.catalog.base import Catalog
from egide.catalog.sqlite import MIGRATIONS, SQLiteCatalog
from egide.catalog.sqlite import backup as sqlite_backup
from egide.clock import SYSTEM_CLOCK, Clock

if TYPE_CHECKING:
    from egide.config import Settings

#: The SQLite catalog's file in the data directory.
SQLITE_FILE = "catalog.sqlite3"
#: The schema of the catalogs (and catalog files) this Égide writes: a file of a newer one is
#: not opened (a snapshot records it).
CATALOG_SCHEMA = len(MIGRATIONS)


class RecoverableCatalog(Catalog, CatalogRecovery, Protocol):
    """A catalog opened from a catalog file: the whole interface, and recovery's writes."""


def catalog_location(settings: Settings) -> Path:
    """Where the live catalog is (SQLite: its database file), as the commands name it."""
    return settings.data_dir / SQLITE_FILE


def catalog_exists(settings: Settings) -> bool:
    """Whether this configuration's catalog was ever created (`egide serve` ran once): a
    command that only reads stops there rather than create an empty catalog."""
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


def open_catalog_file(path: Path, *, clock: Clock = SYSTEM_CLOCK) -> RecoverableCatalog:
    """The catalog in the catalog file `path` (a snapshot's copy, a rebuild's), opened and
    brought to the current schema; a new, empty one if `path` does not exist. Only this
    process may use it; `close_as_file()` leaves it self-contained again."""
    catalog = SQLiteCatalog(path, clock=clock)
    catalog.open()
    return catalog


def open_catalog(settings: Settings, *, clock: Clock = SYSTEM_CLOCK) -> Catalog:
    """The configuration's catalog, open (created and migrated if need be); `close()` it.
    `clock` is the time it stamps rows with and judges retentions by."""
    catalog = SQLiteCatalog(catalog_location(settings), clock=clock)
    catalog.open()
    return catalog
