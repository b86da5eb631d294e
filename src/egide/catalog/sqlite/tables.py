"""Iceberg namespaces and tables in SQLite (`catalog.tables.TableCatalog`).

A namespace is stored as its levels joined by U+001F (a unit separator no name holds in
practice; names holding it are refused by the REST layer), with its parent likewise.
"""

from __future__ import annotations

import json
import sqlite3

from egide.catalog.sqlite.connection import SQLiteConnection
from egide.catalog.tables import (
    CommitConflict,
    Namespace,
    NamespaceExists,
    NamespaceNotEmpty,
    NoSuchNamespace,
    NoSuchTable,
    TableExists,
    TableSwap,
)

SEPARATOR = "\x1f"


def _key(namespace: Namespace) -> str:
    return SEPARATOR.join(namespace)


def _levels(key: str) -> Namespace:
    return tuple(key.split(SEPARATOR))


def _namespace_exists(db: sqlite3.Connection, warehouse: str, namespace: Namespace) -> bool:
    return (
        db.execute(
            "SELECT 1 FROM iceberg_namespaces WHERE warehouse = ? AND namespace = ?",
            (warehouse, _key(namespace)),
        ).fetchone()
        is not None
    )


class SQLiteTables(SQLiteConnection):
    """`catalog.tables.TableCatalog`."""

    async def create_namespace(
        self, warehouse: str, namespace: Namespace, properties: dict[str, str]
    ) -> None:
        def run(db: sqlite3.Connection) -> None:
            parent = namespace[:-1]
            if parent and not _namespace_exists(db, warehouse, parent):
                raise NoSuchNamespace(".".join(parent))
            try:
                db.execute(
                    "INSERT INTO iceberg_namespaces (warehouse, namespace, parent, properties)"
                    " VALUES (?, ?, ?, ?)",
                    (warehouse, _key(namespace), _key(parent), json.dumps(properties)),
                )
            except sqlite3.IntegrityError as exc:
                raise NamespaceExists(".".join(namespace)) from exc

        await self._call(lambda db: self._in_transaction(run, db))

    async def namespaces(self, warehouse: str, parent: Namespace) -> list[Namespace]:
        rows = self._read(
            lambda db: db.execute(
                "SELECT namespace FROM iceberg_namespaces WHERE warehouse = ? AND parent = ?"
                " ORDER BY namespace",
                (warehouse, _key(parent)),
            ).fetchall()
        )
        return [_levels(str(row[0])) for row in rows]

    async def namespace_properties(
        self, warehouse: str, namespace: Namespace
    ) -> dict[str, str] | None:
        row = self._read(
            lambda db: db.execute(
                "SELECT properties FROM iceberg_namespaces WHERE warehouse = ? AND namespace = ?",
                (warehouse, _key(namespace)),
            ).fetchone()
        )
        return None if row is None else dict(json.loads(row[0]))

    async def update_namespace(
        self, warehouse: str, namespace: Namespace, removals: list[str], updates: dict[str, str]
    ) -> None:
        def run(db: sqlite3.Connection) -> None:
            row = db.execute(
                "SELECT properties FROM iceberg_namespaces WHERE warehouse = ? AND namespace = ?",
                (warehouse, _key(namespace)),
            ).fetchone()
            if row is None:
                raise NoSuchNamespace(".".join(namespace))
            properties = dict(json.loads(row[0]))
            for name in removals:
                properties.pop(name, None)
            properties.update(updates)
            db.execute(
                "UPDATE iceberg_namespaces SET properties = ?"
                " WHERE warehouse = ? AND namespace = ?",
                (json.dumps(properties), warehouse, _key(namespace)),
            )

        await self._call(lambda db: self._in_transaction(run, db))

    async def drop_namespace(self, warehouse: str, namespace: Namespace) -> None:
        def run(db: sqlite3.Connection) -> None:
            key = _key(namespace)
            if not _namespace_exists(db, warehouse, namespace):
                raise NoSuchNamespace(".".join(namespace))
            held = db.execute(
                "SELECT 1 FROM iceberg_tables WHERE warehouse = ? AND namespace = ? UNION ALL "
                "SELECT 1 FROM iceberg_namespaces WHERE warehouse = ? AND parent = ? LIMIT 1",
                (warehouse, key, warehouse, key),
            ).fetchone()
            if held is not None:
                raise NamespaceNotEmpty(".".join(namespace))
            db.execute(
                "DELETE FROM iceberg_namespaces WHERE warehouse = ? AND namespace = ?",
                (warehouse, key),
            )

        await self._call(lambda db: self._in_transaction(run, db))

    async def create_table(
        self, warehouse: str, namespace: Namespace, name: str, metadata_location: str
    ) -> None:
        def run(db: sqlite3.Connection) -> None:
            if not _namespace_exists(db, warehouse, namespace):
                raise NoSuchNamespace(".".join(namespace))
            try:
                db.execute(
                    "INSERT INTO iceberg_tables (warehouse, namespace, name, metadata_location)"
                    " VALUES (?, ?, ?, ?)",
                    (warehouse, _key(namespace), name, metadata_location),
                )
            except sqlite3.IntegrityError as exc:
                raise TableExists(".".join((*namespace, name))) from exc

        await self._call(lambda db: self._in_transaction(run, db))

    async def tables(self, warehouse: str, namespace: Namespace) -> list[str]:
        def run(db: sqlite3.Connection) -> list[str]:
            if not _namespace_exists(db, warehouse, namespace):
                raise NoSuchNamespace(".".join(namespace))
            rows = db.execute(
                "SELECT name FROM iceberg_tables WHERE warehouse = ? AND namespace = ?"
                " ORDER BY name",
                (warehouse, _key(namespace)),
            )
            return [str(row[0]) for row in rows]

        return self._read(run)

    async def table(self, warehouse: str, namespace: Namespace, name: str) -> str | None:
        row = self._read(
            lambda db: db.execute(
                "SELECT metadata_location FROM iceberg_tables"
                " WHERE warehouse = ? AND namespace = ? AND name = ?",
                (warehouse, _key(namespace), name),
            ).fetchone()
        )
        return None if row is None else str(row[0])

    async def drop_table(self, warehouse: str, namespace: Namespace, name: str) -> str:
        def run(db: sqlite3.Connection) -> str:
            row = db.execute(
                "DELETE FROM iceberg_tables WHERE warehouse = ? AND namespace = ? AND name = ?"
                " RETURNING metadata_location",
                (warehouse, _key(namespace), name),
            ).fetchone()
            if row is None:
                raise NoSuchTable(".".join((*namespace, name)))
            return str(row[0])

        return await self._call(lambda db: self._in_transaction(run, db))

    async def rename_table(
        self, warehouse: str, source: tuple[Namespace, str], destination: tuple[Namespace, str]
    ) -> None:
        def run(db: sqlite3.Connection) -> None:
            if not _namespace_exists(db, warehouse, destination[0]):
                raise NoSuchNamespace(".".join(destination[0]))
            try:
                cursor = db.execute(
                    "UPDATE iceberg_tables SET namespace = ?, name = ?"
                    " WHERE warehouse = ? AND namespace = ? AND name = ?",
                    (_key(destination[0]), destination[1], warehouse, _key(source[0]), source[1]),
                )
            except sqlite3.IntegrityError as exc:
                raise TableExists(".".join((*destination[0], destination[1]))) from exc
            if cursor.rowcount == 0:
                raise NoSuchTable(".".join((*source[0], source[1])))

        await self._call(lambda db: self._in_transaction(run, db))

    async def swap_tables(self, warehouse: str, swaps: list[TableSwap]) -> None:
        def run(db: sqlite3.Connection) -> None:
            for swap in swaps:
                cursor = db.execute(
                    "UPDATE iceberg_tables SET metadata_location = ? WHERE warehouse = ?"
                    " AND namespace = ? AND name = ? AND metadata_location = ?",
                    (swap.new, warehouse, _key(swap.namespace), swap.name, swap.expected),
                )
                if cursor.rowcount == 1:
                    continue
                name = ".".join((*swap.namespace, swap.name))
                exists = db.execute(
                    "SELECT 1 FROM iceberg_tables WHERE warehouse = ? AND namespace = ?"
                    " AND name = ?",
                    (warehouse, _key(swap.namespace), swap.name),
                ).fetchone()
                if exists is None:
                    raise NoSuchTable(name)
                raise CommitConflict(f"{name} was changed by another commit")

        await self._call(lambda db: self._in_transaction(run, db))
