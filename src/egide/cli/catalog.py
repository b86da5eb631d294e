"""`egide catalog`: rebuild the catalog from the shards, snapshot it, restore a snapshot.

Rebuild and restore write a new catalog file and swap it in only when asked (`--force`, or when
there is no catalog at all), keeping the old one aside; they refuse to swap while a server holds
the catalog. Stop the servers first (docs/catalog-recovery.md).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Coroutine
from contextlib import suppress
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from egide.catalog import (
    catalog_exists,
    catalog_in_use,
    catalog_location,
    install_catalog,
    open_catalog,
)
from egide.cli.common import (
    ConfigOption,
    DataDirOption,
    Env,
    JsonOption,
    err,
    fail,
    load,
    out,
    plural,
    print_json,
    size,
)
from egide.config import Settings
from egide.crypto.keyring import KeyFileError, Keyring
from egide.owner_only import owner_only_dir
from egide.recovery.rebuild import RebuildError, RebuildReport, rebuild_catalog
from egide.recovery.restore import RestoreReport, restore_catalog
from egide.recovery.snapshots import SnapshotError, SnapshotInfo, list_snapshots, take_snapshot
from egide.sites.base import Site
from egide.supervisor import check_port_free

T = TypeVar("T")
catalog_app = typer.Typer(
    help="The catalog: rebuild it from the shards, snapshot it, restore a snapshot.",
    no_args_is_help=True,
)
IntoOption = Annotated[
    Path | None,
    typer.Option("--into", help="Write the new catalog to this file and stop there."),
]
ForceOption = Annotated[
    bool,
    typer.Option(
        "--force",
        help="Swap the new catalog in even though one exists (kept aside), or overwrite --into.",
    ),
]
MasterKeyOption = Annotated[
    Path | None,
    typer.Option("--master-key", help="The master key file (default: <data dir>/master.key)."),
]
UnreachableOption = Annotated[
    bool,
    typer.Option(
        "--allow-unreachable",
        help="Go on when a site cannot be listed: its pieces then count as missing.",
    ),
]


def _keyring(settings: Settings, master_key: Path | None) -> Keyring:

    from egide.crypto.keyfile import MasterKeyFiles
    from egide.masterkey import load_keyring, passphrase_source

    try:
        if master_key is None:
            return load_keyring(settings)  # passphrase and pending rotation, as elsewhere
        keys = MasterKeyFiles(master_key).load(passphrase_source(settings))
        return Keyring(keys[0], keys[1:])
    except KeyFileError as exc:
        fail(f"cannot read the master key: {exc}")


def _sites(settings: Settings) -> dict[str, Site]:
    return Env(settings, None, settings.site_profiles()).sites()


Work = Callable[[Callable[[int, int], None] | None], Coroutine[Any, Any, T]]


def _with_progress(quiet: bool, label: str, work: Work[T]) -> T:
    """Run `work` on one event loop, with a progress bar of the files read (unless quiet)."""
    logging.getLogger("egide.keys").setLevel(logging.ERROR)  # a wrong key is reported once
    if quiet:
        return asyncio.run(work(None))
    with Progress(
        TextColumn(label), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
        console=err, transient=True,
    ) as bar:  # fmt: skip
        task = bar.add_task(label, total=None)

        def progress(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        return asyncio.run(work(progress))


def _target(settings: Settings, into: Path | None, force: bool, stamp: str, what: str) -> Path:
    """Where the new catalog is written; checks first that it may be swapped in."""
    if into is not None:
        if into.exists():
            if not force:
                fail(f"{into} exists; choose another file, or --force to overwrite it")
            into.unlink()
        return into
    live = catalog_location(settings)
    if catalog_exists(settings) and not force:
        return live.with_name(f"{live.name}.{what}-{stamp}")
    if catalog_in_use(settings):
        fail(f"the catalog {live} is open in another process: stop the Égide servers first")
    try:
        check_port_free(settings.host, settings.port)
    except OSError:
        fail(f"something listens on {settings.listen}: stop the Égide server there first")
    owner_only_dir(settings.data_dir)
    return live.with_name(f"{live.name}.{what}-{stamp}.tmp")


def _install(settings: Settings, built: Path, stamp: str, what: str) -> str:
    """Swap `built` in if it was meant to be (a .tmp file); what was done, in words."""
    live = catalog_location(settings)
    if built.suffix != ".tmp":
        if built.parent == live.parent and built.name.startswith(live.name):
            return (
                f"new catalog in {built}; the current one was left alone. To use it: stop the "
                f"servers and run again with --force (or move it to {live})"
            )
        return f"new catalog in {built}"
    if catalog_in_use(settings):
        fail(f"the catalog {live} was opened meanwhile: the new one is in {built}")
    aside = install_catalog(built, settings, f"before-{what}-{stamp}")
    kept = f"; the previous one is kept as {aside}" if aside else ""
    return f"catalog {live} installed{kept}"


def _summary(report: RebuildReport, outcome: str) -> None:
    lines = []
    if isinstance(report, RestoreReport):
        lines += [
            f"snapshot      {report.snapshot} ({report.from_snapshot} versions with data)",
            f"caught up     {plural(report.added, 'version')} added, "
            f"{plural(report.moved, 'version')} found moved, "
            f"{plural(len(report.gone), 'version')} gone since the snapshot",
        ]
    lines += [
        f"buckets       {report.buckets}",
        f"versions      {report.versions} of {plural(report.objects, 'key')}, {size(report.bytes)}",
        f"read          {plural(report.files, 'file')} ({size(report.stored_bytes)} stored) "
        f"in {report.seconds:.1f} s",
    ]
    lines.append(
        f"records       {plural(report.delete_markers, 'delete marker')}, "
        f"{plural(report.amended, 'version')} with later tag or lock changes, "
        f"{plural(report.recorded_settings, 'bucket')} with recorded settings, "
        f"{plural(report.credentials, 'access key')}"
    )
    if report.degraded:
        lines.append(f"degraded      {report.degraded} (pieces missing: run a repair)")
    if report.uploads_without_record:
        lines.append(
            f"skipped       {plural(report.uploads_without_record, 'multipart upload')} "
            "(or part) without completion record (in progress, or completed before records "
            "existed)"
        )
    if report.without_bucket:
        lines.append(f"skipped       {report.without_bucket} versions of deleted buckets")
    for site, why in report.unreachable_sites.items():
        lines.append(f"unreachable   {site}: {why}")
    for problem in report.problems[:20]:
        lines.append(f"problem       {problem}")
    if len(report.problems) > 20:
        lines.append(f"              … and {len(report.problems) - 20} more (see --json)")
    for item in report.unrecoverable:
        lines.append(
            f"UNRECOVERABLE {item['bucket']}/{item['key']} (version {item['version']}): "
            f"{item['pieces_found']} pieces of the {item['pieces_needed']} needed"
        )
    for line in lines:
        out.print(line)
    out.print(outcome)


def _done(report: RebuildReport, outcome: str, as_json: bool) -> None:
    if as_json:
        print_json(report.as_dict() | {"outcome": outcome})
    else:
        _summary(report, outcome)
    if report.unrecoverable:
        raise typer.Exit(1)


@catalog_app.command("rebuild")
def rebuild(
    config: ConfigOption = None,
    data_dir: DataDirOption = None,
    into: IntoOption = None,
    force: ForceOption = False,
    master_key: MasterKeyOption = None,
    allow_unreachable: UnreachableOption = False,
    as_json: JsonOption = False,
) -> None:
    """Rebuild the catalog from the shards on the sites, with the master key alone."""
    settings = load(config, data_dir)
    keyring = _keyring(settings, master_key)
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    target = _target(settings, into, force, stamp, "rebuild")
    sites = _sites(settings)
    try:
        report = _with_progress(
            as_json, "reading shard headers",
            lambda p: rebuild_catalog(sites, keyring, target, progress=p,
                                      allow_unreachable=allow_unreachable),
        )  # fmt: skip
    except RebuildError as exc:
        with suppress(FileNotFoundError):
            target.unlink()
        fail(f"cannot rebuild: {exc}")
    _done(report, _install(settings, target, stamp, "rebuild"), as_json)


@catalog_app.command("restore")
def restore(
    config: ConfigOption = None,
    data_dir: DataDirOption = None,
    snapshot: Annotated[
        str | None, typer.Option("--from", help="The snapshot (default: the newest readable).")
    ] = None,
    into: IntoOption = None,
    force: ForceOption = False,
    master_key: MasterKeyOption = None,
    allow_unreachable: UnreachableOption = False,
    as_json: JsonOption = False,
) -> None:
    """Restore the newest catalog snapshot, caught up with the shards written after it."""
    settings = load(config, data_dir)
    keyring = _keyring(settings, master_key)
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    target = _target(settings, into, force, stamp, "restore")
    sites = _sites(settings)
    try:
        report = _with_progress(
            as_json, "reading shard headers",
            lambda p: restore_catalog(sites, keyring, target, name=snapshot, progress=p,
                                      allow_unreachable=allow_unreachable),
        )  # fmt: skip
    except (RebuildError, SnapshotError) as exc:
        with suppress(FileNotFoundError):
            target.unlink()
        fail(f"cannot restore: {exc}")
    _done(report, _install(settings, target, stamp, "restore"), as_json)


@catalog_app.command("snapshot")
def snapshot(
    config: ConfigOption = None,
    data_dir: DataDirOption = None,
    master_key: MasterKeyOption = None,
    as_json: JsonOption = False,
) -> None:
    """Take an encrypted snapshot of the catalog now (a server may be running)."""
    settings = load(config, data_dir)
    keyring = _keyring(settings, master_key)
    if not catalog_exists(settings):
        fail(f"no Égide data in {settings.data_dir}: run `egide serve` first")
    sites = _sites(settings)

    async def take() -> SnapshotInfo:
        catalog = open_catalog(settings)
        try:
            return await take_snapshot(
                catalog, keyring, sites, data_dir=settings.data_dir,
                keep=settings.snapshot_keep, profiles=settings.site_profiles(),
            )  # fmt: skip
        finally:
            await catalog.close()

    try:
        info = asyncio.run(take())
    except SnapshotError as exc:
        fail(f"cannot snapshot: {exc}")
    if as_json:
        print_json(info.as_dict())
        return
    out.print(
        f"snapshot {info.name}: catalog of {size(info.size)}, {size(info.stored)} sealed, "
        f"on {', '.join(info.sites)}"
    )


@catalog_app.command("snapshots")
def snapshots(
    config: ConfigOption = None,
    data_dir: DataDirOption = None,
    master_key: MasterKeyOption = None,
    as_json: JsonOption = False,
) -> None:
    """List the catalog snapshots on the sites that this master key opens, newest first."""
    settings = load(config, data_dir)
    keyring = _keyring(settings, master_key)
    found = asyncio.run(list_snapshots(_sites(settings), keyring))
    if as_json:
        print_json([info.as_dict() for info in found])
        return
    if not found:
        out.print("no snapshot on the sites")
    for info in found:
        created = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(info.created))
        out.print(f"{info.name}  {created}  catalog {size(info.size)}  on {', '.join(info.sites)}")
