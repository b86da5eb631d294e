"""The catalog: what exists (buckets, versions, uploads, keys, jobs, garbage) behind small
protocols by concern (`base.Catalog` combines them), the rules every backend shares
(`rules`), the SQLite backend (`sqlite/`), and `open_catalog`, the one constructor."""

from __future__ import annotations

from egide.catalog.opening import catalog_exists, open_catalog

__all__ = ["catalog_exists", "open_catalog"]
