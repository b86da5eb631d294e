"""Catalog contract: Iceberg namespaces and tables, and commits as compare-and-swap."""

from __future__ import annotations

import asyncio

import pytest

from egide.catalog.base import Catalog
from egide.catalog.tables import (
    CommitConflict,
    NamespaceExists,
    NamespaceNotEmpty,
    NoSuchNamespace,
    NoSuchTable,
    TableExists,
    TableSwap,
)

W = "lake"


async def test_namespaces_nest_list_by_parent_and_keep_properties(catalog: Catalog) -> None:
    await catalog.create_namespace(W, ("sales",), {"owner": "ana"})
    await catalog.create_namespace(W, ("sales", "eu"), {})
    await catalog.create_namespace(W, ("hr",), {})
    await catalog.create_namespace("other", ("x",), {})
    with pytest.raises(NamespaceExists):
        await catalog.create_namespace(W, ("sales",), {})
    with pytest.raises(NoSuchNamespace):
        await catalog.create_namespace(W, ("nope", "child"), {})
    assert await catalog.namespaces(W, ()) == [("hr",), ("sales",)]
    assert await catalog.namespaces(W, ("sales",)) == [("sales", "eu")]
    assert await catalog.namespace_properties(W, ("sales",)) == {"owner": "ana"}
    assert await catalog.namespace_properties(W, ("x",)) is None
    await catalog.update_namespace(W, ("sales",), ["owner", "absent"], {"team": "b"})
    assert await catalog.namespace_properties(W, ("sales",)) == {"team": "b"}
    with pytest.raises(NoSuchNamespace):
        await catalog.update_namespace(W, ("nope",), [], {"a": "b"})


async def test_a_namespace_is_dropped_only_when_empty(catalog: Catalog) -> None:
    await catalog.create_namespace(W, ("a",), {})
    await catalog.create_namespace(W, ("a", "b"), {})
    await catalog.create_namespace(W, ("c",), {})
    await catalog.create_table(W, ("c",), "t", "s3://lake/c/t/m1.json")
    for held in (("a",), ("c",)):
        with pytest.raises(NamespaceNotEmpty):
            await catalog.drop_namespace(W, held)
    await catalog.drop_namespace(W, ("a", "b"))
    await catalog.drop_namespace(W, ("a",))
    with pytest.raises(NoSuchNamespace):
        await catalog.drop_namespace(W, ("a",))
    assert await catalog.namespaces(W, ()) == [("c",)]


async def test_tables_are_created_listed_renamed_and_dropped(catalog: Catalog) -> None:
    await catalog.create_namespace(W, ("a",), {})
    await catalog.create_namespace(W, ("b",), {})
    with pytest.raises(NoSuchNamespace):
        await catalog.create_table(W, ("zz",), "t", "m")
    await catalog.create_table(W, ("a",), "t2", "m2")
    await catalog.create_table(W, ("a",), "t1", "m1")
    with pytest.raises(TableExists):
        await catalog.create_table(W, ("a",), "t1", "other")
    assert await catalog.tables(W, ("a",)) == ["t1", "t2"]
    assert await catalog.table(W, ("a",), "t1") == "m1"
    assert await catalog.table(W, ("b",), "t1") is None
    with pytest.raises(NoSuchNamespace):
        await catalog.tables(W, ("zz",))
    await catalog.rename_table(W, (("a",), "t1"), (("b",), "moved"))
    assert await catalog.table(W, ("a",), "t1") is None
    assert await catalog.table(W, ("b",), "moved") == "m1"
    with pytest.raises(TableExists):
        await catalog.rename_table(W, (("a",), "t2"), (("b",), "moved"))
    with pytest.raises(NoSuchNamespace):
        await catalog.rename_table(W, (("a",), "t2"), (("zz",), "x"))
    with pytest.raises(NoSuchTable):
        await catalog.rename_table(W, (("a",), "gone"), (("b",), "x"))
    assert await catalog.drop_table(W, ("b",), "moved") == "m1"
    with pytest.raises(NoSuchTable):
        await catalog.drop_table(W, ("b",), "moved")


async def test_a_commit_swaps_only_from_the_expected_location(catalog: Catalog) -> None:
    await catalog.create_namespace(W, ("a",), {})
    await catalog.create_table(W, ("a",), "t", "m1")
    await catalog.swap_tables(W, [TableSwap(("a",), "t", "m1", "m2")])
    assert await catalog.table(W, ("a",), "t") == "m2"
    with pytest.raises(CommitConflict):
        await catalog.swap_tables(W, [TableSwap(("a",), "t", "m1", "m3")])
    assert await catalog.table(W, ("a",), "t") == "m2"
    with pytest.raises(NoSuchTable):
        await catalog.swap_tables(W, [TableSwap(("a",), "nope", "m1", "m3")])


async def test_racing_commits_from_one_location_exactly_one_wins(catalog: Catalog) -> None:
    await catalog.create_namespace(W, ("a",), {})
    await catalog.create_table(W, ("a",), "t", "m0")
    results = await asyncio.gather(
        *(catalog.swap_tables(W, [TableSwap(("a",), "t", "m0", f"w{i}")]) for i in range(8)),
        return_exceptions=True,
    )
    winners = [i for i, r in enumerate(results) if r is None]
    assert len(winners) == 1
    assert all(isinstance(r, CommitConflict) for r in results if r is not None)
    assert await catalog.table(W, ("a",), "t") == f"w{winners[0]}"


async def test_a_multi_table_commit_is_all_or_nothing(catalog: Catalog) -> None:
    await catalog.create_namespace(W, ("a",), {})
    await catalog.create_table(W, ("a",), "t1", "x1")
    await catalog.create_table(W, ("a",), "t2", "y1")
    with pytest.raises(CommitConflict):
        await catalog.swap_tables(
            W, [TableSwap(("a",), "t1", "x1", "x2"), TableSwap(("a",), "t2", "stale", "y2")]
        )
    assert await catalog.table(W, ("a",), "t1") == "x1"
    assert await catalog.table(W, ("a",), "t2") == "y1"
    await catalog.swap_tables(
        W, [TableSwap(("a",), "t1", "x1", "x2"), TableSwap(("a",), "t2", "y1", "y2")]
    )
    assert (await catalog.table(W, ("a",), "t1"), await catalog.table(W, ("a",), "t2")) == (
        "x2",
        "y2",
    )
