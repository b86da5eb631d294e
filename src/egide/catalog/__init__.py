"""The catalog: what exists (buckets, versions, uploads, keys, jobs, garbage) behind small
protocols by concern (`base.Catalog` combines them), the rules every backend shares (`rules`),
what recovery needs of a backend (`backup`), the SQLite backend (`sqlite/`), the PostgreSQL
backend (`postgres/`), and the one way in from outside this package (`opening`):
`open_catalog(settings)` for the live catalog, the whole-catalog operations on its location
(exists, in use, install another in its place), and `open_catalog_file` for the self-contained
catalog files recovery works on.

Nothing outside this package names the SQLite backend or imports `sqlite3`
(tests/catalog/test_confined.py).
"""

from __future__ import annotations

from egide.catalog.base import Catalog
from egide.catalog.errors import CatalogOpenError
from egide.catalog.opening import (
    CATALOG_SCHEMA,
    RecoverableCatalog,
    catalog_exists,
    catalog_in_use,
    catalog_location,
    describe_catalog,
    install_catalog,
    open_catalog,
    open_catalog_file,
)

__all__ = [
    "CATALOG_SCHEMA",
    "Catalog",
    "CatalogOpenError",
    "RecoverableCatalog",
    "catalog_exists",
    "catalog_in_use",
    "catalog_location",
    "describe_catalog",
    "install_catalog",
    "open_catalog",
    "open_catalog_file",
]
