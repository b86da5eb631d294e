"""The catalog backend stays inside `egide.catalog`: no module outside it imports `sqlite3` or
names `SQLiteCatalog` (they go through `egide.catalog.open_catalog` and the backup interface),
so a second backend is added there and nowhere else. import-linter can only forbid modules of
the root package, hence this walk over the sources."""

from __future__ import annotations

import ast
from pathlib import Path

import egide

SOURCES = Path(egide.__file__).parent
CATALOG = SOURCES / "catalog"


def _offences(path: Path, root: Path = SOURCES.parent) -> list[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            modules = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            modules = [node.module]
        else:
            modules = []
        found += [f"imports {m}" for m in modules if m == "sqlite3" or m.startswith("sqlite3.")]
        if isinstance(node, ast.alias) and node.name == "SQLiteCatalog":
            found.append("imports SQLiteCatalog")
        name = node.id if isinstance(node, ast.Name) else getattr(node, "attr", None)
        if name == "SQLiteCatalog":
            found.append("names SQLiteCatalog")
    return [f"{path.relative_to(root)}:{what}" for what in sorted(set(found))]


def test_no_module_outside_the_catalog_touches_sqlite() -> None:
    modules = [p for p in sorted(SOURCES.rglob("*.py")) if CATALOG not in p.parents]
    assert len(modules) > 100  # the walk sees the sources
    assert [offence for path in modules for offence in _offences(path)] == []


def test_the_walk_finds_what_it_forbids(tmp_path: Path) -> None:
    module = tmp_path / "offender.py"
    module.write_text(
        "import sqlite3\nfrom egide.catalog.sqlite import SQLiteCatalog\n"
        "import egide.catalog.sqlite as backend\n"
        "catalog = backend.SQLiteCatalog\n"
    )
    assert _offences(module, tmp_path) == [
        "offender.py:imports SQLiteCatalog",
        "offender.py:imports sqlite3",
        "offender.py:names SQLiteCatalog",
    ]
