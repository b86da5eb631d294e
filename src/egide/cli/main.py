"""The `egide` command: serve, credentials, and the administrator's tools (sites, policies,
proofs, costs), each family in its own module of this package."""

from __future__ import annotations

import asyncio
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape

from egide.catalog import CatalogOpenError, catalog_exists
from egide.cli.bucket import bucket_app
from egide.cli.catalog import catalog_app
from egide.cli.common import ConfigOption, DataDirOption, err, load
from egide.cli.cost import cost
from egide.cli.identities import group_app, key_app, user_app
from egide.cli.jobs import gc, job_app, rebalance, repair, scrub
from egide.cli.keys import keys_app
from egide.cli.policy import policy_app
from egide.cli.quota import account_app
from egide.cli.roles import role_app
from egide.cli.site import site_app
from egide.cli.sql import sql
from egide.cli.transfer import export, import_
from egide.config import ConfigError
from egide.crypto.keyring import KeyFileError

app = typer.Typer(help="Égide: a sovereign, S3-compatible data cloud.", no_args_is_help=True)
credentials_app = typer.Typer(help="Manage S3 access keys.", no_args_is_help=True)
app.add_typer(credentials_app, name="credentials")
app.add_typer(site_app, name="site")
app.add_typer(policy_app, name="policy")
app.add_typer(keys_app, name="keys")
app.add_typer(user_app, name="user")
app.add_typer(group_app, name="group")
app.add_typer(key_app, name="key")
app.add_typer(role_app, name="role")
app.add_typer(bucket_app, name="bucket")
app.add_typer(account_app, name="account")
app.add_typer(catalog_app, name="catalog")
app.command("cost")(cost)
app.add_typer(job_app, name="job")
for _command in (repair, scrub, gc, rebalance):
    app.command(_command.__name__)(_command)
app.command("export")(export)
app.command("import")(import_)
app.command("sql")(sql)


@app.command()
def serve(
    config: ConfigOption = None,
    data_dir: DataDirOption = None,
    listen: Annotated[str | None, typer.Option(help="host:port to listen on.")] = None,
) -> None:
    """Start the S3 endpoint (127.0.0.1:9000 and ./egide-data by default)."""
    from egide.server import serve as run
    from egide.sites.base import SiteError

    settings = load(config, data_dir, listen)
    try:
        run(settings)
    except (ConfigError, KeyFileError, SiteError, OSError, RuntimeError) as exc:
        err.print(f"[red]cannot start:[/red] {escape(str(exc))}")
        raise typer.Exit(2) from None


@credentials_app.command("create")
def credentials_create(config: ConfigOption = None, data_dir: DataDirOption = None) -> None:
    """Create a new access key pair; the secret is shown once. It is recorded on the sites at
    once (a catalog rebuilt from them keeps it)."""
    from egide.server import open_store

    settings = load(config, data_dir)
    if not catalog_exists(settings):
        err.print(
            f"[red]no Égide data in {escape(str(settings.data_dir))}[/red]: run `egide serve` first"
        )
        raise typer.Exit(2)

    async def run() -> tuple[str, str]:
        store = open_store(settings)
        try:
            return await store.credentials.create()
        finally:
            await store.catalog.close()

    access, secret = asyncio.run(run())
    Console().print(f"access key  {access}\nsecret key  {secret}")


def main() -> None:
    """The `egide` command: the app, with a catalog that cannot be opened (a database
    unreachable, newer than this Égide …) said in one line rather than a traceback."""
    try:
        app()
    except CatalogOpenError as exc:
        err.print(f"[red]catalog:[/red] {escape(str(exc))}", highlight=False)
        raise SystemExit(2) from None
