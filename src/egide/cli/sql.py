"""`egide sql "SELECT …"`: SQL over stored objects with DuckDB, in a sandbox (docs/analytics.md).

The store is opened in this process as `egide export` opens it (beside a running server, over
the same catalog), on an event loop of its own thread; DuckDB runs in this thread and reads
`egide://bucket/key` through it. Every object the query opens, lists or writes is checked as
the caller: the account's administrator, or `--as-user NAME` (decision 0038).
"""

from __future__ import annotations

import sys
from collections.abc import Iterable
from enum import StrEnum
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from egide.analytics.access import ObjectAccess
from egide.analytics.bridge import LoopThread
from egide.auth.authorize import Authorizer, Principal
from egide.catalog import catalog_exists
from egide.cli.common import ConfigOption, DataDirOption, err, fail, load, out
from egide.config import Settings
from egide.domain import ADMIN_USER, DomainError, user_arn
from egide.engine.store import ObjectStore

if TYPE_CHECKING:
    import pyarrow as pa

#: Rows a table shows; the rest is counted (`--format` gives them all).
TABLE_ROWS = 1000


class Format(StrEnum):
    table = "table"
    csv = "csv"
    json = "json"
    parquet = "parquet"
    arrow = "arrow"


def sql(
    query: Annotated[str, typer.Argument(help="The SQL; objects are egide://bucket/key.")],
    fmt: Annotated[
        Format | None,
        typer.Option(
            "--format",
            "-f",
            help="table (the default), csv, json (lines), "
            "parquet or arrow (an IPC stream) to stdout, or the --out object's format.",
        ),
    ] = None,
    out_url: Annotated[
        str | None,
        typer.Option(
            "--out",
            help="Write the result as the object s3://BUCKET/KEY (its format "
            "from --format, else from the key's suffix, else Parquet).",
        ),
    ] = None,
    as_user: Annotated[
        str | None,
        typer.Option(
            "--as-user",
            help="Check every object against this user's rights "
            "(default: the administrator, admin).",
        ),
    ] = None,
    memory: Annotated[str, typer.Option("--memory-limit", help="DuckDB's memory limit.")] = "1GB",
    threads: Annotated[int, typer.Option("--threads", min=1, help="DuckDB's threads.")] = 2,
    timeout: Annotated[
        float, typer.Option("--timeout", min=0.1, help="Seconds before the query is stopped.")
    ] = 300.0,
    config: ConfigOption = None,
    data_dir: DataDirOption = None,
) -> None:
    """Run a query over stored CSV, JSON and Parquet objects (read_parquet('egide://b/*.parquet')
    …) and print its result, or write it back as an object."""
    try:  # the analytics extra: duckdb, pyarrow, fsspec (every other command runs without)
        from egide.analytics.filesystem import EgideFileSystem
        from egide.analytics.formats import write_batches
        from egide.analytics.query import Limits, Query, QueryError
    except ImportError as exc:
        fail(f"egide sql needs the analytics extra (pip install 'egide[analytics]'): {exc}")
    settings = load(config, data_dir)
    if not catalog_exists(settings):
        fail(f"no Égide data in {settings.data_dir}: run `egide serve` first")
    target = _target(out_url, fmt) if out_url is not None else None
    written = 0
    with LoopThread() as engine:
        store = engine.run(_open(settings))
        try:
            principal, authorizer = engine.run(_caller(store, settings, as_user))
            fs = EgideFileSystem(ObjectAccess(store, authorizer, principal), engine.bridge())
            limits = Limits(memory=memory, threads=threads, timeout=timeout)
            try:
                with Query(fs, limits) as running:
                    schema, batches = running.run(query)
                    if target is not None:
                        path, kind = target
                        with fs.open(path, "wb") as sink:
                            written = write_batches(schema, batches, kind, sink)
                    elif fmt is None or fmt is Format.table:
                        _table(schema, batches)
                    else:
                        write_batches(schema, batches, fmt.value, sys.stdout.buffer)
                        sys.stdout.buffer.flush()
            except (QueryError, DomainError, OSError) as exc:  # refused, quota, absent …
                fail(f"query refused or failed: {exc}", 1)
            if target is not None:  # committed as the query ended
                err.print(f"{written} rows written to s3://{target[0]}", markup=False)
        finally:
            engine.run(store.catalog.close())


def _target(url: str, fmt: Format | None) -> tuple[str, str]:
    """(bucket/key, format) of --out s3://bucket/key."""
    bucket, _, key = url.removeprefix("s3://").partition("/")
    if not url.startswith("s3://") or not bucket or not key or key.endswith("/"):
        fail(f"--out {url!r}: expected s3://BUCKET/KEY")
    if fmt is Format.table:
        fail("--out writes csv, json, parquet or arrow, not a table")
    from egide.analytics.formats import format_of

    kind = fmt.value if fmt is not None else format_of(key) or "parquet"
    return f"{bucket}/{key}", kind


async def _open(settings: Settings) -> ObjectStore:
    from egide.server import open_store

    return open_store(settings)


async def _caller(
    store: ObjectStore, settings: Settings, as_user: str | None
) -> tuple[Principal, Authorizer]:
    """Who the query runs as, and the server's decision of rights over this store."""
    from egide.server import open_rights

    _, decide = open_rights(store, settings)
    account = await store.identities.account_id()
    name = as_user or ADMIN_USER
    if name != ADMIN_USER and name not in {u.name for u in await store.identities.users()}:
        fail(f"--as-user {name}: there is no such user (egide user list)")
    groups = frozenset(g.name for g in await store.identities.groups() if name in g.members)
    principal = Principal(user=name, groups=groups, arn=user_arn(account, name))
    return principal, Authorizer(decide)


def _table(schema: pa.Schema, batches: Iterable[pa.RecordBatch]) -> None:
    table = Table(*schema.names, show_lines=False)
    shown = total = 0
    for batch in batches:
        total += batch.num_rows
        for row in batch.to_pylist():
            if shown < TABLE_ROWS:
                table.add_row(*("NULL" if v is None else str(v) for v in row.values()))
                shown += 1
    out.print(table)
    more = f", {TABLE_ROWS} shown (--format for all)" if total > shown else ""
    err.print(f"{total} rows{more}", markup=False, highlight=False)
