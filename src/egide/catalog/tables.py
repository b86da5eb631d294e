"""Iceberg tables (docs/decisions/0040-iceberg-rest-catalog.md): namespaces and tables of a
warehouse (a bucket, by name), and each table's current metadata location.

The metadata itself (schemas, snapshots …) is a JSON object in the warehouse bucket; the
catalog keeps only what must change atomically: which file is current. A commit is a
compare-and-swap of that location, of one table or of several at once (all or none).
A namespace is a tuple of names (levels); its parent is the tuple without its last level.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from egide.domain import DomainError

Namespace = tuple[str, ...]


class NoSuchNamespace(DomainError):
    pass


class NamespaceExists(DomainError):
    pass


class NamespaceNotEmpty(DomainError):
    pass


class NoSuchTable(DomainError):
    pass


class TableExists(DomainError):
    pass


class CommitConflict(DomainError):
    """A table's current metadata location is not the one the commit was based on."""


@dataclass(frozen=True)
class TableSwap:
    """Replace `namespace.name`'s metadata location `expected` by `new`."""

    namespace: Namespace
    name: str
    expected: str
    new: str


class TableCatalog(Protocol):
    async def create_namespace(
        self, warehouse: str, namespace: Namespace, properties: dict[str, str]
    ) -> None:
        """Raises NamespaceExists; NoSuchNamespace if its parent (if any) does not exist."""

    async def namespaces(self, warehouse: str, parent: Namespace) -> list[Namespace]:
        """The namespaces directly under `parent` (() for the top level), sorted."""

    async def namespace_properties(
        self, warehouse: str, namespace: Namespace
    ) -> dict[str, str] | None:
        """Its properties; None if there is no such namespace."""

    async def update_namespace(
        self, warehouse: str, namespace: Namespace, removals: list[str], updates: dict[str, str]
    ) -> None:
        """Remove then set properties, in one transaction. Raises NoSuchNamespace."""

    async def drop_namespace(self, warehouse: str, namespace: Namespace) -> None:
        """Raises NoSuchNamespace; NamespaceNotEmpty if it holds a table or a namespace."""

    async def create_table(
        self, warehouse: str, namespace: Namespace, name: str, metadata_location: str
    ) -> None:
        """Raises NoSuchNamespace, TableExists."""

    async def tables(self, warehouse: str, namespace: Namespace) -> list[str]:
        """The names of the tables of a namespace, sorted. Raises NoSuchNamespace."""

    async def table(self, warehouse: str, namespace: Namespace, name: str) -> str | None:
        """The table's current metadata location; None if there is no such table."""

    async def drop_table(self, warehouse: str, namespace: Namespace, name: str) -> str:
        """Forget the table; its last metadata location. Raises NoSuchTable."""

    async def rename_table(
        self, warehouse: str, source: tuple[Namespace, str], destination: tuple[Namespace, str]
    ) -> None:
        """Raises NoSuchTable, NoSuchNamespace (the destination's), TableExists."""

    async def swap_tables(self, warehouse: str, swaps: list[TableSwap]) -> None:
        """Every swap or none, in one transaction. Raises NoSuchTable, or CommitConflict if
        any table's location is no longer its `expected`."""
