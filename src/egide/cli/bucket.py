"""`egide bucket`: delete a bucket, or destroy it for good by crypto-shredding (docs/keys.md)."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from egide.cli.common import ConfigOption, DataDirOption, Env, fail, load, out, plural, run, size
from egide.cli.keys import replace_snapshots
from egide.crypto.keyfile import KeyFileError
from egide.domain import BucketNotEmpty, BucketNotFound, ObjectLocked
from egide.engine.keyrecords import delete_key_record
from egide.engine.shred import ShredReport, finish_shreds, shred_bucket, shreddable
from egide.masterkey import load_keyring

bucket_app = typer.Typer(help="Delete buckets; crypto-shred them.", no_args_is_help=True)


async def _plain_delete(env: Env, name: str) -> None:
    """DeleteBucket as S3 does it (empty buckets only), its key records removed too."""
    catalog = env.require_catalog()
    bucket = await catalog.get_bucket(name)
    if bucket is None:
        raise BucketNotFound(name)
    await catalog.delete_bucket(name)
    await delete_key_record(env.sites(), bucket.id)


@bucket_app.command("delete")
def delete(
    name: Annotated[str, typer.Argument(help="The bucket.")],
    shred: Annotated[
        bool,
        typer.Option(
            "--shred",
            help="Destroy the bucket's key, so that every shard of it, everywhere, becomes "
            "unreadable; the bucket need not be empty.",
        ),
    ] = False,
    yes: Annotated[bool, typer.Option("--yes", help="Do not ask for confirmation.")] = False,
    config: ConfigOption = None,
    data_dir: DataDirOption = None,
) -> None:
    """Delete an empty bucket; with --shred, destroy a bucket and all it holds for good."""
    settings = load(config, data_dir)
    if not shred:
        try:
            run(settings, lambda env: _plain_delete(env, name))
        except BucketNotFound:
            fail(f"no bucket named {name}")
        except BucketNotEmpty:
            fail(f"bucket {name} is not empty: delete its objects, or destroy it with --shred")
        out.print(f"Bucket {name} deleted.")
        return
    try:
        keyring = load_keyring(settings)
    except KeyFileError as exc:
        fail(str(exc))

    async def inspect(env: Env) -> tuple[int, int, int]:
        catalog = env.require_catalog()
        bucket = await shreddable(catalog, name)
        return await catalog.count_bucket(bucket.id)

    try:
        versions, stored, uploads = run(settings, inspect)
    except BucketNotFound:
        fail(f"no bucket named {name}")
    except ObjectLocked as exc:
        fail(f"refused: {exc}; nothing was changed")
    if not yes:
        if not sys.stdin.isatty():
            fail("crypto-shredding cannot be undone: confirm with --yes")
        typer.confirm(
            f"Destroy bucket {name} ({plural(versions, 'version')}, {size(stored)}, "
            f"{plural(uploads, 'upload')} in progress) and its key, for good?",
            abort=True,
        )

    snapshots = ""

    async def destroy(env: Env) -> ShredReport:
        nonlocal snapshots
        report = await shred_bucket(env.require_catalog(), keyring, env.sites(), name)
        snapshots = await replace_snapshots(env, keyring)
        return report

    try:
        report = run(settings, destroy)
    except BucketNotFound:
        fail(f"no bucket named {name}")
    except ObjectLocked as exc:
        fail(f"refused: {exc}; nothing was changed")
    _print_report(report, len(settings.resolved_sites()))
    out.print(f"Catalog snapshots (they held the bucket key): {snapshots}.")


def _print_report(report: ShredReport, site_count: int) -> None:
    s = report.summary
    deleted_on = site_count - len(report.pending_sites)
    out.print(f"Bucket {report.bucket} crypto-shredded (id {report.bucket_id.hex()}):")
    out.print(
        f"  destroyed   the bucket key ({plural(s.bucket_keys, 'generation')}) in the catalog, "
        f"its key record on {plural(deleted_on, 'site')}"
    )
    markers = plural(s.delete_markers, "delete marker")
    out.print(
        f"  forgotten   {plural(s.versions, 'version')}, {markers}, "
        f"{plural(s.uploads, 'upload')} in progress, {plural(s.settings, 'setting')}"
    )
    out.print(
        f"  trash       {plural(s.trashed_files, 'shard file')}, deleted by the server's next "
        "trash pass (unreadable already)"
    )
    out.print(
        "  catalog     freed rows zeroed, write-ahead log truncated"
        if s.catalog_scrubbed
        else "  catalog     freed rows zeroed; the write-ahead log was busy (a server is "
        "reading): it is truncated at the next checkpoint"
    )
    out.print("What can still open this bucket's shards, until `egide keys rotate-master`:")
    if report.pending_sites:
        out.print(
            f"  - its key record on {', '.join(report.pending_sites)} (unreachable now): run "
            "`egide bucket finish-shred` when they are back"
        )
    out.print(
        "  - backups of catalog.sqlite3 and of the sites' key records made before now, and\n"
        "    shards written before key rotation existed (their footer holds the bucket key\n"
        "    wrapped under the master key)\n"
        "  - a running server's memory: restart the servers"
    )


@bucket_app.command("finish-shred")
def finish_shred(config: ConfigOption = None, data_dir: DataDirOption = None) -> None:
    """Delete the key records of shredded buckets from sites that were unreachable then."""
    settings = load(config, data_dir)

    async def finish(env: Env) -> dict[str, tuple[str, ...]]:
        return await finish_shreds(env.require_catalog(), env.sites())

    left = run(settings, finish)
    if not left:
        out.print("No shredded bucket has a key record left to delete.")
    for name, sites in left.items():
        if sites:
            out.print(f"{name}: key record still on {', '.join(sites)}")
        else:
            out.print(f"{name}: every key record is deleted")
    if any(left.values()):
        raise typer.Exit(1)
