"""The one way to open the configured catalog: code outside `egide.catalog` asks for the
catalog of a configuration, never for a backend by name.

The backend is SQLite, in the data directory, unless `[catalog] url` names a PostgreSQL
database (docs/scale-out.md); its password comes from the environment variable or the file
the configuration names, never from the file itself.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from egide.catalog.backup import CatalogRecovery
from egide.catalog.base import Catalog
from egide.catalog.errors import CatalogOpenError
from egide.catalog.sqlite import MIGRATIONS, SQLiteCatalog
from egide.catalog.sqlite import backup as sqlite_backup
from egide.clock import SYSTEM_CLOCK, Clock

if TYPE_CHECKING:
    from egide.catalog.postgres import PostgresCatalog
    from egide.config import CatalogConfig, Settings

#: The SQLite catalog's file in the data directory.
SQLITE_FILE = "catalog.sqlite3"
#: The schema of the catalogs (and catalog files) this Égide writes: a file of a newer one is
#: not opened (a snapshot records it).
CATALOG_SCHEMA = len(MIGRATIONS)


class CatalogConfigError(CatalogOpenError):
    """The catalog's configuration cannot be used (its password cannot be read …)."""


class RecoverableCatalog(Catalog, CatalogRecovery, Protocol):
    """A catalog opened from a catalog file: the whole interface, and recovery's writes."""


def catalog_location(settings: Settings) -> Path:
    """Where the live SQLite catalog is (its database file), as the commands name it; with a
    PostgreSQL catalog, where catalog files built for it (a rebuild's) are put."""
    return settings.data_dir / SQLITE_FILE


def describe_catalog(settings: Settings) -> str:
    """The catalog in words, for the server's banner (no password)."""
    if settings.catalog.url is not None:
        return f"PostgreSQL {_postgres(settings).url}"
    return f"SQLite {catalog_location(settings).resolve()}"


def _password(config: CatalogConfig) -> str | None:
    if config.password_env is not None:
        value = os.environ.get(config.password_env)
        if not value:
            raise CatalogConfigError(
                f"catalog: the environment variable {config.password_env} (password_env) is not set"
            )
        return value
    if config.password_file is not None:
        path = config.password_file
        try:
            mode = path.stat().st_mode
            text = path.read_text()
        except OSError as exc:
            raise CatalogConfigError(
                f"catalog: cannot read the password file {path}: {exc.strerror}"
            ) from None
        if mode & (stat.S_IRWXG | stat.S_IRWXO):
            raise CatalogConfigError(
                f"catalog: the password file {path} is accessible by other users "
                f"(mode {stat.S_IMODE(mode):o}); run: chmod 600 {path}"
            )
        return text.removesuffix("\n").removesuffix("\r")
    return None


def _postgres(settings: Settings, clock: Clock = SYSTEM_CLOCK) -> PostgresCatalog:
    """The PostgreSQL catalog of the configuration, not yet open. Its driver is an extra,
    imported only here: Égide without it runs on SQLite."""
    config = settings.catalog
    assert config.url is not None
    try:
        from egide.catalog.postgres import PostgresCatalog
    except ImportError as exc:
        raise CatalogConfigError(
            f"catalog: a PostgreSQL url needs the PostgreSQL driver ({exc.name} is missing): "
            "pip install 'egide[postgres]'"
        ) from None
    return PostgresCatalog(
        config.url, password=_password(config), clock=clock, max_size=config.pool_size
    )


def catalog_exists(settings: Settings) -> bool:
    """Whether this configuration's catalog was ever created (`egide serve` ran once): a
    command that only reads stops there rather than create an empty catalog."""
    if settings.catalog.url is not None:
        return _postgres(settings).schema_present()
    return catalog_location(settings).exists()


def catalog_in_use(settings: Settings) -> bool:
    """Whether another process has the live catalog open (a running server)."""
    if settings.catalog.url is not None:
        return _postgres(settings).other_sessions() > 0
    return sqlite_backup.in_use(catalog_location(settings))


def install_catalog(new: Path, settings: Settings, suffix: str) -> Path | None:
    """Put the catalog file `new` (a rebuild's, a restore's) in place of the live catalog,
    which no process may have open; the old one is kept aside as `<location>.<suffix>`,
    returned (None if there was none). Nothing of the old one (no journal) is left to meet the
    new one. A PostgreSQL catalog cannot take a catalog file yet: refused, saying where the
    file is."""
    if settings.catalog.url is not None:
        raise CatalogConfigError(
            f"loading a catalog file into the PostgreSQL catalog {_postgres(settings).url} is "
            f"not supported yet; the new catalog is in {new} (docs/scale-out.md)"
        )
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
    `clock` is the time it stamps rows with and judges retentions by. Raises RuntimeError
    (CatalogUnreachable, CatalogTooNew, CatalogConfigError) with a message naming the
    database, never its password."""
    catalog: SQLiteCatalog | PostgresCatalog
    if settings.catalog.url is not None:
        catalog = _postgres(settings, clock)
    else:
        catalog = SQLiteCatalog(catalog_location(settings), clock=clock)
    catalog.open()
    return catalog
