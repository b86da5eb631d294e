"""What every `egide` command shares: options, loading the configuration, opening the catalog
and the sites of a data directory, and printing (rich tables for people, `--json` for scripts).

Exit codes: 0 all is well, 1 a check found a problem, 2 the command could not do what was asked
(bad configuration, refused input, no data directory).
"""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, NoReturn, TypeVar

import typer
from rich.console import Console
from rich.markup import escape

from egide.catalog import Catalog, catalog_exists, open_catalog
from egide.config import ConfigError, S3SiteConfig, Settings, SiteConfig, load_settings
from egide.placement import SiteProfile
from egide.sites.base import Site

T = TypeVar("T")
err = Console(stderr=True)
#: Markup off: keys, site names and messages are printed as they are ("[draft].pdf" too);
#: colour is given by `style=` or rich Text.
out = Console(highlight=False, markup=False)

ConfigOption = Annotated[
    Path | None, typer.Option("--config", "-c", help="egide.toml; defaults apply without one.")
]
DataDirOption = Annotated[
    Path | None, typer.Option("--data-dir", help="Data directory (overrides the file).")
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON instead of tables.")]


def fail(message: str, code: int = 2) -> NoReturn:
    err.print(message, markup=False, highlight=False)
    raise typer.Exit(code)


def load(config: Path | None, data_dir: Path | None, listen: str | None = None) -> Settings:
    try:
        return load_settings(config, data_dir=data_dir, listen=listen)
    except ConfigError as exc:
        err.print(f"[red]invalid configuration:[/red] {escape(str(exc))}", highlight=False)
        raise typer.Exit(2) from None


@dataclass
class Env:
    """One command's view of a data directory: the catalog (None when `egide serve` never ran
    there) and the configured sites, built on first use without touching what they hold."""

    settings: Settings
    catalog: Catalog | None
    profiles: list[SiteProfile]
    _sites: dict[str, Site] | None = field(default=None, repr=False)

    def require_catalog(self) -> Catalog:
        if self.catalog is None:
            fail(f"no Égide data in {self.settings.data_dir}: run `egide serve` first")
        return self.catalog

    def sites(self) -> dict[str, Site]:
        if self._sites is None:
            from egide.sites.factory import build_site

            built: dict[str, Site] = {}
            for config in self.settings.resolved_sites():
                site = build_site(config)
                site.attach()
                built[config.name] = site
            self._sites = built
        return self._sites


def run(settings: Settings, command: Callable[[Env], Awaitable[T]]) -> T:
    """Run `command` on one event loop with the catalog open (if there is one), then close it."""

    async def main() -> T:
        catalog = open_catalog(settings) if catalog_exists(settings) else None
        try:
            return await command(Env(settings, catalog, settings.site_profiles()))
        finally:
            if catalog is not None:
                await catalog.close()

    return asyncio.run(main())


def print_json(document: object) -> None:
    sys.stdout.write(json.dumps(document, indent=2, ensure_ascii=False) + "\n")


def where(config: SiteConfig) -> str:
    """Where a site keeps its shards, never its credentials."""
    if isinstance(config, S3SiteConfig):
        return f"{config.endpoint}/{config.bucket}/{config.prefix}"
    return str(config.path)


def size(n: int) -> str:
    """Bytes for people: 1.5 MiB."""
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if value < 1024 or unit == "TiB":
            return f"{n} B" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")


def money(amount: float) -> str:
    """Prices and bills: cents for amounts above 1, else enough digits to see a price."""
    if amount >= 1:
        return f"{amount:,.2f}"
    text = f"{amount:.6f}".rstrip("0").rstrip(".")
    return text if text not in ("", "-0") else "0"


def plural(count: int, noun: str) -> str:
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"


def listing(values: tuple[str, ...] | list[str]) -> str:
    return ", ".join(values) if values else "—"
