"""`egide site add` and `egide site remove`: `[[sites]]` entries of egide.toml, comments and
layout kept.

The file is edited with tomlkit (a round-trip parser), and the result is loaded exactly as
`egide serve` would load it before it replaces the file: a profile the placement library
refuses, a name used twice or a policy the new inventory breaks are refused with the same
message the start would give, and the file is left as it was.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import tomlkit
from tomlkit.exceptions import TOMLKitError
from tomlkit.items import AoT

from egide.config import ConfigError, LocalSiteConfig, Settings, load_settings
from egide.config_paths import as_written


class SiteAddError(Exception):
    """The entry was refused; the file is unchanged."""


@dataclass(frozen=True)
class SiteAdded:
    before: Settings
    after: Settings
    #: The six default sites were written out first (the file listed none, and one explicit
    #: site would otherwise replace them all).
    wrote_defaults: bool


def _default_entries(settings: Settings, folder: Path) -> list[dict[str, Any]]:
    """The implicit sites of a file without `[[sites]]`, as entries of the file in `folder`
    (their directories under data_dir, written as the file's paths are read)."""
    entries = []
    for site in settings.resolved_sites():
        assert isinstance(site, LocalSiteConfig)
        entries.append({"name": site.name, "path": as_written(site.path, folder)})
    return entries


def _table(entry: dict[str, Any]) -> Any:
    table = tomlkit.table()
    for name, value in entry.items():
        table.add(name, value)
    table.add(tomlkit.nl())
    return table


def add_site(path: Path, entry: dict[str, Any]) -> SiteAdded:
    """Append `entry` (the fields of a `[[sites]]` table) to the configuration at `path`. A
    local site's `path` is a directory given on the command line (relative: to the working
    directory), by default data_dir/sites/NAME; it is written as the file's paths are read."""
    try:
        text = path.read_text()
        before = load_settings(path)
        document = tomlkit.parse(text)
    except OSError as exc:
        raise SiteAddError(f"cannot read {path}: {exc.strerror}") from None
    except (ConfigError, TOMLKitError) as exc:
        raise SiteAddError(f"{path} is invalid already, fix it first: {exc}") from None
    if any(site.name == entry.get("name") for site in before.sites):
        raise SiteAddError(f"a site named {entry.get('name')} is already configured")
    if entry.get("kind", "local") == "local":
        given = entry.get("path")
        local = Path(given) if given else before.data_dir / "sites" / str(entry.get("name"))
        entry = {**entry, "path": as_written(local, path.parent)}
    sites = document.get("sites")
    wrote_defaults = sites is None
    if sites is None:
        sites = tomlkit.aot()
        for default in _default_entries(before, path.parent):
            sites.append(_table(default))
        document.append("sites", sites)
    elif not isinstance(sites, AoT):
        raise SiteAddError(f"{path}: `sites` is not written as [[sites]] tables; add it by hand")
    sites.append(_table(entry))
    return SiteAdded(before, _replace_checked(path, tomlkit.dumps(document)), wrote_defaults)


def _replace_checked(path: Path, text: str) -> Settings:
    """Replace the file with `text` if it loads as `egide serve` would load it; its settings.
    SiteAddError (the file unchanged) with the start's own message otherwise."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.new")
    try:
        tmp.write_text(text)
        try:
            after = load_settings(tmp)
        except ConfigError as exc:
            raise SiteAddError(str(exc).replace(str(tmp), str(path))) from None
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return after


def remove_site(path: Path, name: str) -> Settings:
    """Remove the `[[sites]]` entry named `name` from the configuration at `path`; the settings
    after. Checked like `add_site`: a policy that needs the site refuses the removal."""
    try:
        document = tomlkit.parse(path.read_text())
        load_settings(path)
    except OSError as exc:
        raise SiteAddError(f"cannot read {path}: {exc.strerror}") from None
    except (ConfigError, TOMLKitError) as exc:
        raise SiteAddError(f"{path} is invalid already, fix it first: {exc}") from None
    sites = document.get("sites")
    if not isinstance(sites, AoT):
        raise SiteAddError(
            f"{path} declares no [[sites]]: the built-in default sites cannot be removed one by "
            "one; declare the sites you keep in the file"
        )
    kept = [table for table in sites if table.get("name") != name]
    if len(kept) == len(sites):
        raise SiteAddError(f"no [[sites]] entry named {name} in {path}")
    while len(sites):
        sites.pop(0)  # AoT has no clear(); rebuilt without the entry, tables kept as written
    for table in kept:
        sites.append(table)
    return _replace_checked(path, tomlkit.dumps(document))
