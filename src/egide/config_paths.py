"""Where the paths of egide.toml point: one rule for all, and sites an earlier rule put elsewhere.

Every relative path written in the file (data_dir, a local site's path, tls_cert, tls_key,
passphrase_file, the access log, the catalog's password_file, the metrics token file) is taken
from the file's folder; paths given on the command line, and the default data_dir, from the
working directory. Before this rule, a local site's relative path was taken from data_dir: a
store configured so would start with its sites empty, so such a start is refused with the line
to write
(docs/decisions/0022-one-rule-for-paths.md).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from egide.config import Settings

#: Top-level settings holding a path.
PATH_SETTINGS = ("data_dir", "tls_cert", "tls_key", "passphrase_file")


def resolve_file_paths(data: dict[str, object], folder: Path) -> dict[str, str]:
    """Take the relative paths of a file's `data` from `folder`, in place; the relative paths
    of its local sites as written (site name → path), for `sites_left_behind`."""
    for name in PATH_SETTINGS:
        if isinstance(data.get(name), str):
            data[name] = folder / str(data[name])
    http = data.get("http")
    log = http.get("access_log") if isinstance(http, dict) else None
    if isinstance(http, dict) and isinstance(log, str) and log != "-":
        http["access_log"] = str(folder / log)
    catalog = data.get("catalog")
    secret = catalog.get("password_file") if isinstance(catalog, dict) else None
    if isinstance(catalog, dict) and isinstance(secret, str):
        catalog["password_file"] = folder / secret
    metrics = data.get("metrics")
    token = metrics.get("bearer_token_file") if isinstance(metrics, dict) else None
    if isinstance(metrics, dict) and isinstance(token, str):
        metrics["bearer_token_file"] = str(folder / token)
    written: dict[str, str] = {}
    sites = data.get("sites")
    for site in sites if isinstance(sites, list) else ():
        if not isinstance(site, dict) or site.get("kind", "local") != "local":
            continue
        path = site.get("path")
        if isinstance(path, str) and not Path(path).is_absolute():
            written[str(site.get("name"))] = path
            site["path"] = folder / path
    return written


def _holds_files(directory: Path) -> bool:
    try:
        return directory.is_dir() and any(directory.iterdir())
    except OSError:
        return False


def as_written(path: Path, folder: Path) -> str:
    """`path` as a setting of a file in `folder`: relative to it if below it, else absolute."""
    absolute = Path(os.path.abspath(path))
    try:
        return str(absolute.relative_to(os.path.abspath(folder)))
    except ValueError:
        return str(absolute)


def sites_left_behind(settings: Settings, written: dict[str, str], config: Path) -> str:
    """Why a local site must not start where the file now puts it, or "" when all can: its
    relative path led under data_dir before, data is there, and the new place holds nothing."""
    problems = []
    for site in settings.resolved_sites():
        relative = written.get(site.name)
        if relative is None or site.kind != "local":
            continue
        old = settings.data_dir / relative
        if os.path.abspath(old) == os.path.abspath(site.path) or _holds_files(site.path):
            continue
        if _holds_files(old):
            problems.append(
                f'site {site.name}: path = "{relative}" now means {site.path} (relative paths '
                f"in the file are taken from its folder), which holds nothing, while the site's "
                f"data is at {old}, where earlier versions put it (under data_dir). Not starting "
                f'with the site empty: set path = "{as_written(old, config.parent)}" in its '
                f"[[sites]] entry, or move the directory to {site.path}"
            )
    return "; ".join(problems)
