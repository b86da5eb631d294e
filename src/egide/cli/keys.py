"""`egide keys`: the master key's passphrase, master and bucket key rotation (docs/keys.md)."""

from __future__ import annotations

import asyncio
import fcntl
import getpass
import os
import sys
import time
from pathlib import Path
from typing import Annotated, TextIO

import typer

from egide.catalog.base import Catalog
from egide.cli.common import (
    ConfigOption,
    DataDirOption,
    Env,
    JsonOption,
    fail,
    load,
    out,
    plural,
    run,
)
from egide.cli.common import print_json as emit_json
from egide.config import Settings
from egide.crypto.keyfile import (
    Argon2Params,
    KeyFileError,
    MasterKeyFiles,
    encode_key_file,
    once,
    read_key_file,
    read_key_text,
    write_key_file,
)
from egide.crypto.keyring import Keyring
from egide.domain import BucketNotFound
from egide.engine.keyrecords import KeyRecordError
from egide.engine.rekey import (
    BucketRotation,
    MasterRotation,
    RotationError,
    rotate_bucket_key,
    rotate_master_key,
)
from egide.masterkey import key_files, load_keyring, passphrase_source
from egide.supervisor import check_port_free

keys_app = typer.Typer(
    help="The master key: passphrase protection, master and bucket key rotation.",
    no_args_is_help=True,
)
NEW_PASSPHRASE_ENV = "EGIDE_NEW_PASSPHRASE"
MIN_PASSPHRASE = 8

_STEPS = {
    "next-key": "new master key written (master.key.next)",
    "bucket-keys": "bucket keys rewrapped in the catalog",
    "credentials": "credential secrets resealed in the catalog",
    "records": "key records written on the sites",
    "swapped": "master.key replaced",
    "old-key": "old master key dealt with",
}


def _files(settings: Settings) -> MasterKeyFiles:
    files = key_files(settings)
    if not files.current.exists():
        fail(f"no master key in {settings.data_dir}: run `egide serve` first")
    return files


def _unlock(settings: Settings, files: MasterKeyFiles) -> tuple[bytes, ...]:
    try:
        return files.load(passphrase_source(settings))
    except KeyFileError as exc:
        fail(str(exc))


def _keyring(settings: Settings) -> Keyring:
    try:
        return load_keyring(settings)
    except KeyFileError as exc:
        fail(str(exc))


def _new_passphrase() -> str:
    phrase = os.environ.get(NEW_PASSPHRASE_ENV)
    if phrase is None:
        if not sys.stdin.isatty():
            fail(f"no new passphrase: set {NEW_PASSPHRASE_ENV}, or run in a terminal")
        phrase = getpass.getpass("New passphrase: ")
        if getpass.getpass("The same again: ") != phrase:
            fail("the two passphrases differ; nothing changed")
    if len(phrase) < MIN_PASSPHRASE:
        fail(f"a passphrase needs at least {MIN_PASSPHRASE} characters; nothing changed")
    return phrase


async def replace_snapshots(env: Env, keyring: Keyring) -> str:
    """Delete every catalog snapshot on the sites and take a fresh one: the old ones hold a
    key just destroyed (a shredded bucket's) or are sealed under a destroyed master key. Done
    under the servers' snapshot lock, so that a scheduled snapshot begun before cannot be
    written after the old ones are deleted."""
    from egide.recovery.snapshots import (
        LOCK_FILE,
        SnapshotError,
        delete_all_snapshots,
        take_snapshot,
    )

    lock = await asyncio.to_thread(_hold, env.settings.data_dir / LOCK_FILE)
    try:
        deleted = await delete_all_snapshots(env.sites())
        if env.settings.snapshot_interval_seconds <= 0:
            return f"{plural(deleted, 'old snapshot file')} deleted (snapshots are off)"
        try:
            await take_snapshot(
                env.require_catalog(), keyring, env.sites(), data_dir=env.settings.data_dir,
                keep=env.settings.snapshot_keep, profiles=env.profiles,
            )  # fmt: skip
        except SnapshotError as exc:
            return (
                f"{plural(deleted, 'old snapshot file')} deleted; the fresh snapshot failed "
                f"({exc}): take one with `egide catalog snapshot`"
            )
        return f"{plural(deleted, 'old snapshot file')} deleted, a fresh snapshot taken"
    finally:
        lock.close()


def _hold(path: Path) -> TextIO:
    """An exclusive lock on `path`, waited for; released by closing the file."""
    handle = path.open("a")
    fcntl.flock(handle, fcntl.LOCK_EX)
    return handle


def _refuse_if_rotating(files: MasterKeyFiles) -> None:
    if files.rotation_pending() or files.retired.exists():
        fail("a master key rotation is unfinished: run `egide keys rotate-master` first")


@keys_app.command("protect")
def protect(config: ConfigOption = None, data_dir: DataDirOption = None) -> None:
    """Protect the master key file with a passphrase (Argon2id), or change its passphrase.

    The new passphrase comes from EGIDE_NEW_PASSPHRASE, else it is asked twice."""
    settings = load(config, data_dir)
    files = _files(settings)
    _refuse_if_rotating(files)
    key = _unlock(settings, files)[0]
    phrase = _new_passphrase()
    write_key_file(files.current, encode_key_file(key, phrase))
    started = time.perf_counter()
    read_key_file(files.current, phrase)
    out.print(
        f"{files.current} is now sealed under the passphrase (Argon2id "
        f"{Argon2Params().text()}; unlocking takes {time.perf_counter() - started:.2f} s).\n"
        "Servers need it at start: EGIDE_PASSPHRASE, passphrase_file in egide.toml, or a "
        "terminal. Without the passphrase, this key file opens nothing: keep it safe."
    )


@keys_app.command("unprotect")
def unprotect(config: ConfigOption = None, data_dir: DataDirOption = None) -> None:
    """Store the master key without a passphrase again (the file stays owner-only)."""
    settings = load(config, data_dir)
    files = _files(settings)
    _refuse_if_rotating(files)
    key = _unlock(settings, files)[0]
    write_key_file(files.current, encode_key_file(key))
    out.print(f"{files.current} is no longer protected by a passphrase (mode 0600).")


@keys_app.command("status")
def status(
    config: ConfigOption = None, data_dir: DataDirOption = None, json: JsonOption = False
) -> None:
    """The key file's protection, rotations under way, shredded buckets still pending."""
    settings = load(config, data_dir)
    files = _files(settings)
    try:
        text = read_key_text(files.current)
    except KeyFileError as exc:
        fail(str(exc))
    protection = text.split("\n")[1] if files.protected() else "none"

    async def gather(env: Env) -> tuple[list[str], dict[str, list[str]]]:
        catalog: Catalog = env.require_catalog()
        rotating = [
            b.name for b in await catalog.list_buckets() if await catalog.bucket_key_rotation(b.id)
        ]
        pending = {
            s.name: list(s.pending_sites)
            for s in await catalog.shredded_buckets()
            if s.pending_sites
        }
        return rotating, pending

    rotating, pending = run(settings, gather)
    document = {
        "key_file": str(files.current),
        "passphrase": protection,
        "master_rotation_pending": files.rotation_pending() or files.retired.exists(),
        "bucket_rotations_pending": rotating,
        "shred_records_pending": pending,
    }
    if json:
        emit_json(document)
        return
    out.print(f"master key        {files.current}")
    out.print(f"passphrase        {protection}")
    if document["master_rotation_pending"]:
        out.print("master rotation   UNFINISHED: run `egide keys rotate-master` to finish it")
    for name in rotating:
        out.print(f"bucket rotation   {name}: unfinished, run `egide keys rotate-bucket {name}`")
    for name, sites in pending.items():
        out.print(f"shredded bucket   {name}: key record still on {', '.join(sites)}")


@keys_app.command("rotate-master")
def rotate_master(
    config: ConfigOption = None,
    data_dir: DataDirOption = None,
    keep_old: Annotated[
        bool, typer.Option("--keep-old", help="Keep the old key as master.key.old-<time>.")
    ] = False,
    force: Annotated[
        bool, typer.Option("--force", help="Rotate even though a server answers on `listen`.")
    ] = False,
) -> None:
    """Replace the master key: rewrap every bucket key and credential secret, rewrite the key
    records on every site, then destroy the old key. No data is rewritten. Safe to interrupt:
    run it again to finish. Stop the servers first; they keep the key they started with."""
    settings = load(config, data_dir)
    files = _files(settings)
    if not force:
        try:
            check_port_free(settings.host, settings.port)
        except OSError:
            fail(
                f"a server is listening on {settings.listen}: stop the servers of this data "
                "directory first (they keep the master key they started with), or pass --force "
                "and restart every one of them right after"
            )

    ask = once(passphrase_source(settings))
    snapshots = ""

    async def rotate(env: Env) -> MasterRotation:
        nonlocal snapshots
        result = await rotate_master_key(
            files, ask, env.require_catalog(), env.sites(),
            keep_old=keep_old, on_step=lambda step: out.print(f"  {_STEPS.get(step, step)}"),
        )  # fmt: skip
        snapshots = await replace_snapshots(env, Keyring(files.load(ask)[0]))
        return result

    try:
        r = run(settings, rotate)
    except (KeyFileError, RotationError, KeyRecordError) as exc:
        fail(f"master key rotation stopped (nothing is lost; run it again): {exc}")
    resumed = " (an unfinished rotation completed)" if r.resumed else ""
    out.print(
        f"Master key replaced in {r.seconds:.2f} s{resumed}: {r.bucket_keys} bucket keys and "
        f"{r.credentials} credential secrets rewrapped, the key records of {r.records} buckets "
        "rewritten on the sites; no data rewritten."
    )
    if r.old_key is not None:
        out.print(f"The old key is kept in {r.old_key}: destroy it once you no longer need it.")
    else:
        out.print("The old key file is destroyed; destroy its backups too.")
    out.print(f"Catalog snapshots: {snapshots}.")
    if r.failed_sites:
        out.print(
            f"Sites {', '.join(r.failed_sites)} did not take every key record: their old "
            "records can no longer be opened; the other sites hold the new ones."
        )
    out.print(f"Back up the new {files.current} now, and restart the servers.")


@keys_app.command("rotate-bucket")
def rotate_bucket(
    bucket: Annotated[str, typer.Argument(help="The bucket whose key to replace.")],
    config: ConfigOption = None,
    data_dir: DataDirOption = None,
    batch: Annotated[int, typer.Option(min=1, help="Data keys rewrapped per transaction.")] = 1000,
) -> None:
    """Give a bucket a new key and rewrap its data keys under it, in batches. Safe while
    servers run, and to interrupt: running it again resumes the unfinished rotation."""
    settings = load(config, data_dir)
    keyring = _keyring(settings)

    async def rotate(env: Env) -> BucketRotation:
        return await rotate_bucket_key(
            env.require_catalog(), keyring, env.sites(), bucket, batch=batch
        )

    try:
        r = run(settings, rotate)
    except BucketNotFound:
        fail(f"no bucket named {bucket}")
    except (RotationError, KeyRecordError) as exc:
        fail(f"bucket key rotation stopped (run it again to resume): {exc}")
    resumed = "an unfinished rotation resumed" if r.resumed else "new key"
    out.print(
        f"Bucket {bucket}: {resumed}, {r.rewrapped} data keys rewrapped in {r.seconds:.2f} s; "
        f"{r.generations} key generations kept (shards written under older ones need them)."
    )
    if r.unreadable:
        out.print(f"{r.unreadable} data keys open under no generation of the bucket key.")
    if r.failed_sites:
        out.print(f"Sites {', '.join(r.failed_sites)} did not take the new key record.")
