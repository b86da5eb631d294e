"""The one way to open the configured catalog: code outside `egide.catalog` asks for the
catalog of a configuration, never for a backend by name.

Today the backend is always SQLite, in the data directory; a configuration key choosing
another backend (PostgreSQL …) is read here, and nowhere else changes.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from egide.catalog.base import Catalog
from egide.catalog.sqlite import SQLiteCatalog
from egide.clock import SYSTEM_CLOCK, Clock

if TYPE_CHECKING:
    from egide.config import Settings

#: The SQLite catalog's file in the data directory.
SQLITE_FILE = "catalog.sqlite3"


def sqlite_path(settings: Settings) -> Path:
    """Where the SQLite catalog of this configuration keeps its database file."""
    return settings.data_dir / SQLITE_FILE


def catalog_exists(settings: Settings) -> bool:
    """Whether this configuration's catalog was ever created (`egide serve` ran once): a
    command that only reads stops there rather than create an empty catalog."""
    return sqlite_path(settings).exists()


def open_catalog(settings: Settings, *, clock: Clock = SYSTEM_CLOCK) -> Catalog:
    """The configuration's catalog, open (created and migrated if need be); `close()` it.
    `clock` is the time it stamps rows with and judges retentions by."""
    catalog = SQLiteCatalog(sqlite_path(settings), clock=clock)
    catalog.open()
    return catalog
