"""Iceberg namespaces and tables in PostgreSQL (`catalog.tables.TableCatalog`), stored as in
SQLite (a namespace's levels joined by U+001F).

READ COMMITTED with row locks where a rule spans rows: a write under a namespace share-locks
the namespace's row, dropping it locks it for update, so a namespace is never dropped while a
table or child namespace is being created in it. A commit is conditional UPDATEs in one
transaction, in a fixed order (warehouse, namespace, name): PostgreSQL re-checks each
condition against the newest committed row, so of two commits based on one location exactly
one wins, and a multi-table commit whose every swap does not hold writes nothing.
"""

from __future__ import annotations

import json

from psycopg.errors import UniqueViolation

from egide.catalog.postgres.connection import Db, PostgresConnection, one, rows, run
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


async def _hold_namespace(db: Db, warehouse: str, namespace: Namespace, lock: str) -> bool:
    """Whether the namespace exists, its row locked (`lock`: FOR SHARE, FOR UPDATE) until the
    transaction ends."""
    row = await one(
        db,
        f"SELECT 1 FROM iceberg_namespaces WHERE warehouse = %s AND namespace = %s {lock}",
        (warehouse, _key(namespace)),
    )
    return row is not None


class PostgresTables(PostgresConnection):
    """`catalog.tables.TableCatalog`."""

    async def create_namespace(
        self, warehouse: str, namespace: Namespace, properties: dict[str, str]
    ) -> None:
        async def write(db: Db) -> None:
            parent = namespace[:-1]
            if parent and not await _hold_namespace(db, warehouse, parent, "FOR SHARE"):
                raise NoSuchNamespace(".".join(parent))
            try:
                await db.execute(
                    "INSERT INTO iceberg_namespaces (warehouse, namespace, parent, properties)"
                    " VALUES (%s, %s, %s, %s)",
                    (warehouse, _key(namespace), _key(parent), json.dumps(properties)),
                )
            except UniqueViolation as exc:
                raise NamespaceExists(".".join(namespace)) from exc

        await self._transaction(write)

    async def namespaces(self, warehouse: str, parent: Namespace) -> list[Namespace]:
        async def read(db: Db) -> list[Namespace]:
            found = await rows(
                db,
                "SELECT namespace FROM iceberg_namespaces WHERE warehouse = %s AND parent = %s"
                " ORDER BY namespace",
                (warehouse, _key(parent)),
            )
            return [_levels(str(row[0])) for row in found]

        return await self._read(read)

    async def namespace_properties(
        self, warehouse: str, namespace: Namespace
    ) -> dict[str, str] | None:
        async def read(db: Db) -> tuple[object, ...] | None:
            return await one(
                db,
                "SELECT properties FROM iceberg_namespaces WHERE warehouse = %s AND namespace = %s",
                (warehouse, _key(namespace)),
            )

        row = await self._read(read)
        return None if row is None else dict(json.loads(str(row[0])))

    async def update_namespace(
        self, warehouse: str, namespace: Namespace, removals: list[str], updates: dict[str, str]
    ) -> None:
        async def write(db: Db) -> None:
            row = await one(
                db,
                "SELECT properties FROM iceberg_namespaces WHERE warehouse = %s"
                " AND namespace = %s FOR UPDATE",
                (warehouse, _key(namespace)),
            )
            if row is None:
                raise NoSuchNamespace(".".join(namespace))
            properties = dict(json.loads(row[0]))
            for name in removals:
                properties.pop(name, None)
            properties.update(updates)
            await db.execute(
                "UPDATE iceberg_namespaces SET properties = %s"
                " WHERE warehouse = %s AND namespace = %s",
                (json.dumps(properties), warehouse, _key(namespace)),
            )

        await self._transaction(write)

    async def drop_namespace(self, warehouse: str, namespace: Namespace) -> None:
        async def write(db: Db) -> None:
            key = _key(namespace)
            if not await _hold_namespace(db, warehouse, namespace, "FOR UPDATE"):
                raise NoSuchNamespace(".".join(namespace))
            held = await one(
                db,
                "SELECT 1 FROM iceberg_tables WHERE warehouse = %s AND namespace = %s UNION ALL "
                "SELECT 1 FROM iceberg_namespaces WHERE warehouse = %s AND parent = %s LIMIT 1",
                (warehouse, key, warehouse, key),
            )
            if held is not None:
                raise NamespaceNotEmpty(".".join(namespace))
            await db.execute(
                "DELETE FROM iceberg_namespaces WHERE warehouse = %s AND namespace = %s",
                (warehouse, key),
            )

        await self._transaction(write)

    async def create_table(
        self, warehouse: str, namespace: Namespace, name: str, metadata_location: str
    ) -> None:
        async def write(db: Db) -> None:
            if not await _hold_namespace(db, warehouse, namespace, "FOR SHARE"):
                raise NoSuchNamespace(".".join(namespace))
            try:
                await db.execute(
                    "INSERT INTO iceberg_tables (warehouse, namespace, name, metadata_location)"
                    " VALUES (%s, %s, %s, %s)",
                    (warehouse, _key(namespace), name, metadata_location),
                )
            except UniqueViolation as exc:
                raise TableExists(".".join((*namespace, name))) from exc

        await self._transaction(write)

    async def tables(self, warehouse: str, namespace: Namespace) -> list[str]:
        async def read(db: Db) -> list[str] | None:
            # One statement: the namespace's row and its tables as of one instant.
            found = await one(
                db,
                "SELECT ARRAY(SELECT name FROM iceberg_tables t WHERE t.warehouse = n.warehouse"
                " AND t.namespace = n.namespace ORDER BY name) FROM iceberg_namespaces n"
                " WHERE warehouse = %s AND namespace = %s",
                (warehouse, _key(namespace)),
            )
            return None if found is None else [str(name) for name in found[0]]

        names = await self._read(read)
        if names is None:
            raise NoSuchNamespace(".".join(namespace))
        return names

    async def table(self, warehouse: str, namespace: Namespace, name: str) -> str | None:
        async def read(db: Db) -> tuple[object, ...] | None:
            return await one(
                db,
                "SELECT metadata_location FROM iceberg_tables"
                " WHERE warehouse = %s AND namespace = %s AND name = %s",
                (warehouse, _key(namespace), name),
            )

        row = await self._read(read)
        return None if row is None else str(row[0])

    async def drop_table(self, warehouse: str, namespace: Namespace, name: str) -> str:
        async def write(db: Db) -> tuple[object, ...] | None:
            return await one(
                db,
                "DELETE FROM iceberg_tables WHERE warehouse = %s AND namespace = %s"
                " AND name = %s RETURNING metadata_location",
                (warehouse, _key(namespace), name),
            )

        row = await self._read(write)
        if row is None:
            raise NoSuchTable(".".join((*namespace, name)))
        return str(row[0])

    async def rename_table(
        self, warehouse: str, source: tuple[Namespace, str], destination: tuple[Namespace, str]
    ) -> None:
        async def write(db: Db) -> None:
            if not await _hold_namespace(db, warehouse, destination[0], "FOR SHARE"):
                raise NoSuchNamespace(".".join(destination[0]))
            try:
                changed = await run(
                    db,
                    "UPDATE iceberg_tables SET namespace = %s, name = %s"
                    " WHERE warehouse = %s AND namespace = %s AND name = %s",
                    (_key(destination[0]), destination[1], warehouse, _key(source[0]), source[1]),
                )
            except UniqueViolation as exc:
                raise TableExists(".".join((*destination[0], destination[1]))) from exc
            if changed == 0:
                raise NoSuchTable(".".join((*source[0], source[1])))

        await self._transaction(write)

    async def swap_tables(self, warehouse: str, swaps: list[TableSwap]) -> None:
        async def write(db: Db) -> None:
            for swap in sorted(swaps, key=lambda s: (_key(s.namespace), s.name)):
                key, name = _key(swap.namespace), ".".join((*swap.namespace, swap.name))
                if await run(
                    db,
                    "UPDATE iceberg_tables SET metadata_location = %s WHERE warehouse = %s"
                    " AND namespace = %s AND name = %s AND metadata_location = %s",
                    (swap.new, warehouse, key, swap.name, swap.expected),
                ):
                    continue
                exists = await one(
                    db,
                    "SELECT 1 FROM iceberg_tables WHERE warehouse = %s AND namespace = %s"
                    " AND name = %s",
                    (warehouse, key, swap.name),
                )
                if exists is None:
                    raise NoSuchTable(name)
                raise CommitConflict(f"{name} was changed by another commit")

        await self._transaction(write)
