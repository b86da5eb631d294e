"""The S3 API and the admin API's handlers reach the catalog only through engine services
(import-linter forbids importing it; this catches `store.catalog`, which no import shows)."""

from __future__ import annotations

import ast
from pathlib import Path

import egide

SOURCE = Path(egide.__file__).parent
FRONT_DOORS = [*sorted((SOURCE / "s3").rglob("*.py")), SOURCE / "admin" / "http.py"]


def catalog_uses(source: str) -> list[int]:
    """The lines of `source` that read an attribute named `catalog`."""
    return [
        node.lineno
        for node in ast.walk(ast.parse(source))
        if isinstance(node, ast.Attribute) and node.attr == "catalog"
    ]


def test_a_catalog_use_is_found() -> None:
    source = "async def h(store):\n    x = 1\n    return await store.catalog.get_bucket('b')\n"
    assert catalog_uses(source) == [3]
    assert catalog_uses("from egide.engine import changes\nchanges.catalog_free = 1\n") == []


def test_no_front_door_handler_touches_the_catalog() -> None:
    found = {
        str(path.relative_to(SOURCE)): lines
        for path in FRONT_DOORS
        if (lines := catalog_uses(path.read_text()))
    }
    assert found == {}
