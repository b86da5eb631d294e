"""The `egide` command."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from egide.catalog.sqlite import SQLiteCatalog
from egide.config import ConfigError, Settings, load_settings
from egide.crypto.keyring import KeyFileError

app = typer.Typer(help="Égide: a sovereign, S3-compatible data cloud.", no_args_is_help=True)
credentials_app = typer.Typer(help="Manage S3 access keys.", no_args_is_help=True)
app.add_typer(credentials_app, name="credentials")
err = Console(stderr=True)

ConfigOption = Annotated[
    Path | None, typer.Option("--config", "-c", help="egide.toml; defaults apply without one.")
]
DataDirOption = Annotated[
    Path | None, typer.Option("--data-dir", help="Data directory (overrides the file).")
]


def _settings(config: Path | None, data_dir: Path | None, listen: str | None = None) -> Settings:
    try:
        return load_settings(config, data_dir=data_dir, listen=listen)
    except ConfigError as exc:
        err.print(f"[red]invalid configuration:[/red] {exc}")
        raise typer.Exit(2) from None


@app.command()
def serve(
    config: ConfigOption = None,
    data_dir: DataDirOption = None,
    listen: Annotated[str | None, typer.Option(help="host:port to listen on.")] = None,
) -> None:
    """Start the S3 endpoint (127.0.0.1:9000 and ./egide-data by default)."""
    from egide.server import serve as run
    from egide.sites.base import SiteError

    settings = _settings(config, data_dir, listen)
    try:
        run(settings)
    except (ConfigError, KeyFileError, SiteError, OSError, RuntimeError) as exc:
        err.print(f"[red]cannot start:[/red] {exc}")
        raise typer.Exit(2) from None


@credentials_app.command("create")
def credentials_create(config: ConfigOption = None, data_dir: DataDirOption = None) -> None:
    """Create a new access key pair; the secret is shown once."""
    from egide.server import add_credential, catalog_path, new_credential, open_keyring

    settings = _settings(config, data_dir)
    if not catalog_path(settings).exists():
        err.print(f"[red]no Égide data in {settings.data_dir}[/red]: run `egide serve` first")
        raise typer.Exit(2)
    keyring, _ = open_keyring(settings)
    catalog = SQLiteCatalog(catalog_path(settings))
    catalog.open()
    access, secret = new_credential()

    async def run() -> None:
        await add_credential(catalog, keyring, access, secret)
        await catalog.close()

    asyncio.run(run())
    Console().print(f"access key  {access}\nsecret key  {secret}")
