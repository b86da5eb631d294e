"""Why the configured catalog cannot be opened, whatever its backend: the message says why and
names the catalog (never a password). The commands print it instead of a traceback."""

from __future__ import annotations


class CatalogOpenError(RuntimeError):
    """The configured catalog cannot be opened or used as configured."""
