"""Key rotation, without rewriting any data.

A new master key rewraps what sits directly under it: every bucket key (current and retired
generations) and credential secret in the catalog, and the key records on the sites. A new
bucket key rewraps the data keys of the bucket's versions and uploads. Both can be killed at any
point and run again; the protocol and why it holds: docs/decisions/0013-key-rotation.md.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from egide.catalog.base import Catalog
from egide.crypto import aead
from egide.crypto.aead import DecryptionError
from egide.crypto.keyfile import (
    MasterKeyFiles,
    Passphrase,
    destroy_file,
    encode_key_file,
    once,
    read_key_file,
    write_key_file,
)
from egide.crypto.keyring import Keyring
from egide.domain import Bucket, BucketNotFound
from egide.engine.keyrecords import KeyRecord, write_key_record
from egide.sites.base import Site

#: Told each step as it is done (the command prints them; a test may stop the process there).
OnStep = Callable[[str], None]


def _quiet(_: str) -> None:
    return None


class RotationError(Exception):
    """A rotation cannot go on; nothing is lost, and running it again resumes it."""


# -- the master key -----------------------------------------------------------------------------


@dataclass(frozen=True)
class MasterRotation:
    #: A rotation left unfinished was completed rather than a new one started.
    resumed: bool
    bucket_keys: int
    credentials: int
    records: int
    #: Sites that did not take every key record (they keep records under the old key, which
    #: nothing can open once it is destroyed).
    failed_sites: tuple[str, ...]
    #: Where the old key was kept (`--keep-old`); None: destroyed.
    old_key: Path | None
    seconds: float


def _finish_retired(files: MasterKeyFiles, keep_old: bool) -> Path | None:
    """Destroy (or keep aside) the old key of a rotation that swapped already."""
    if not files.retired.exists():
        return None
    if keep_old:
        stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
        kept = files.current.with_name(f"{files.current.name}.old-{stamp}")
        os.replace(files.retired, kept)
        return kept
    destroy_file(files.retired)
    return None


def _under(keyring: Keyring, bucket_id: bytes, wrapped: bytes) -> bool:
    """Whether a bucket key is wrapped under this keyring's master key."""
    try:
        keyring.bucket_key(bucket_id, wrapped)
    except DecryptionError:
        return False
    return True


def _sealed_under(keyring: Keyring, access: str, sealed: bytes) -> bool:
    try:
        keyring.open_secret(access, sealed)
    except DecryptionError:
        return False
    return True


async def _rewrap_bucket_keys(catalog: Catalog, new: Keyring, both: Keyring, batch: int) -> int:
    buckets = await catalog.list_buckets()
    current = [
        (b.id, b.wrapped_key, new.wrap_bucket_key(b.id, both.bucket_key(b.id, b.wrapped_key)))
        for b in buckets
        if not _under(new, b.id, b.wrapped_key)
    ]
    retired = [
        (bucket_id, generation, wrapped,
         new.wrap_bucket_key(bucket_id, both.bucket_key(bucket_id, wrapped)))
        for bucket_id, generation, wrapped in await catalog.retired_bucket_keys()
        if not _under(new, bucket_id, wrapped)
    ]  # fmt: skip
    changed = 0
    for i in range(0, max(len(current), len(retired)), batch):
        changed += await catalog.rewrap_bucket_keys(current[i : i + batch], retired[i : i + batch])
    return changed


async def _reseal_credentials(catalog: Catalog, new: Keyring, both: Keyring) -> int:
    changes = [
        (access, sealed, new.seal_secret(access, both.open_secret(access, sealed)))
        for access, sealed in await catalog.sealed_credentials()
        if not _sealed_under(new, access, sealed)
    ]
    return await catalog.reseal_credentials(changes) if changes else 0


async def bucket_records(catalog: Catalog, bucket: Bucket) -> KeyRecord:
    """A bucket's key record as the catalog knows it: its current key, then retired ones."""
    retired = await catalog.retired_bucket_keys(bucket.id)
    return KeyRecord(
        bucket.id, bucket.name, bucket.created, (bucket.wrapped_key, *(w for _, _, w in retired))
    )


async def _write_records(
    catalog: Catalog, sites: Mapping[str, Site], keyring: Keyring
) -> tuple[int, set[str]]:
    """Every bucket's key record written again under the keyring's master key."""
    failed: set[str] = set()
    limit = asyncio.Semaphore(16)

    async def one(bucket: Bucket) -> None:
        async with limit:
            record = await bucket_records(catalog, bucket)
            failed.update(await write_key_record(sites, keyring, record))

    buckets = await catalog.list_buckets()
    await asyncio.gather(*(one(bucket) for bucket in buckets))
    return len(buckets), failed


async def _all_under(catalog: Catalog, new: Keyring) -> bool:
    """Whether every bucket key and credential secret opens under the new master alone."""
    buckets = await catalog.list_buckets()
    retired = await catalog.retired_bucket_keys()
    credentials = await catalog.sealed_credentials()
    return (
        all(_under(new, b.id, b.wrapped_key) for b in buckets)
        and all(_under(new, bucket_id, wrapped) for bucket_id, _, wrapped in retired)
        and all(_sealed_under(new, access, sealed) for access, sealed in credentials)
    )


async def rotate_master_key(
    files: MasterKeyFiles,
    passphrase: Passphrase,
    catalog: Catalog,
    sites: Mapping[str, Site],
    *,
    keep_old: bool = False,
    on_step: OnStep = _quiet,
    batch: int = 500,
) -> MasterRotation:
    """Replace the master key (see the module docstring); servers must be restarted after."""
    started = time.monotonic()
    if not files.next.exists() and files.retired.exists():
        # Killed after the swap: only the old key's destruction was left to do.
        kept = _finish_retired(files, keep_old)
        on_step("old-key")
        return MasterRotation(True, 0, 0, 0, (), kept, time.monotonic() - started)
    ask = once(passphrase) if callable(passphrase) else passphrase
    old_key = read_key_file(files.current, ask)
    resumed = files.next.exists()
    if resumed:
        new_key = read_key_file(files.next, ask)
    else:
        new_key = aead.new_key()
        phrase = (ask() if callable(ask) else ask) if files.protected() else None
        write_key_file(files.next, encode_key_file(new_key, phrase), exclusive=True)
    on_step("next-key")
    new, both = Keyring(new_key), Keyring(new_key, (old_key,))
    bucket_keys = credentials = 0
    for _ in range(3):  # a server started meanwhile may have wrapped something: look again
        try:
            bucket_keys += await _rewrap_bucket_keys(catalog, new, both, batch)
            on_step("bucket-keys")
            credentials += await _reseal_credentials(catalog, new, both)
            on_step("credentials")
        except DecryptionError as exc:
            raise RotationError(
                f"a key in the catalog opens under neither the old nor the new master key "
                f"({exc}); nothing was swapped"
            ) from exc
        records, failed = await _write_records(catalog, sites, new)
        on_step("records")
        if await _all_under(catalog, new):
            break
    else:
        raise RotationError("keys keep appearing under the old master key: stop the servers")
    # The swap: the old key keeps a second name, the new file takes the key file's name in one
    # rename, then the old one is destroyed. A crash between leaves a state the next run (or a
    # load) understands: .next present → rotation pending; only .retired → destroy it.
    files.retired.unlink(missing_ok=True)  # a link to the current key, from a killed swap
    os.link(files.current, files.retired)
    os.replace(files.next, files.current)
    _fsync(files.current.parent)
    on_step("swapped")
    kept = _finish_retired(files, keep_old)
    on_step("old-key")
    return MasterRotation(
        resumed, bucket_keys, credentials, records, tuple(sorted(failed)), kept,
        time.monotonic() - started,
    )  # fmt: skip


def _fsync(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


# -- a bucket key ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class BucketRotation:
    bucket: str
    resumed: bool
    #: Generations of the bucket key now: the current one and the retired ones.
    generations: int
    rewrapped: int
    #: Data keys no generation opens (already unreadable: reported, left as they are).
    unreadable: int
    failed_sites: tuple[str, ...]
    seconds: float


async def rotate_bucket_key(
    catalog: Catalog,
    keyring: Keyring,
    sites: Mapping[str, Site],
    name: str,
    *,
    batch: int = 1000,
    on_step: OnStep = _quiet,
) -> BucketRotation:
    """Give bucket `name` a new key and rewrap its data keys under it, in batches; a rotation
    left unfinished is resumed where it stopped instead."""
    started = time.monotonic()
    bucket = await catalog.get_bucket(name)
    if bucket is None:
        raise BucketNotFound(name)
    position = await catalog.bucket_key_rotation(bucket.id)
    resumed = position is not None
    failed: list[str] = []
    if position is None:
        # The record first, as for a new bucket: a shard sealed under the new key must never
        # exist that no site's record can open (egide.engine.keyrecords).
        _, wrapped = keyring.new_bucket_key(bucket.id)
        record = await bucket_records(catalog, bucket)
        record = KeyRecord(record.bucket_id, record.name, record.created,
                           (wrapped, *record.wrapped_keys))  # fmt: skip
        failed = await write_key_record(sites, keyring, record)
        if not await catalog.start_bucket_key_rotation(bucket.id, bucket.wrapped_key, wrapped):
            raise RotationError(f"bucket {name}: its key changed meanwhile; run again")
        position = b""
        on_step("new-key")
    bucket = await catalog.get_bucket_by_id(bucket.id)
    if bucket is None:
        raise BucketNotFound(name)
    current = keyring.bucket_key(bucket.id, bucket.wrapped_key)
    retired = await catalog.retired_bucket_keys(bucket.id)
    older = [keyring.bucket_key(bucket.id, wrapped) for _, _, wrapped in retired]
    rewrapped = unreadable = 0
    # The first pass moves the saved position; the second, from the start, catches versions a
    # server committed under the previous key while the first ran (its cache lags ≤ 1 s, and a
    # long upload keeps the key it started with).
    for saving, after in ((True, position), (False, b"")):
        while rows := await catalog.wrapped_data_keys(bucket.id, after, batch):
            changes = []
            for owner_id, wrapped in rows:
                if _data_key_under(current, owner_id, wrapped):
                    continue
                plain = _open_data_key(older, owner_id, wrapped)
                if plain is None:
                    unreadable += 1
                else:
                    changes.append(
                        (owner_id, wrapped, Keyring.wrap_data_key(current, owner_id, plain))
                    )
            after = rows[-1][0]
            rewrapped += await catalog.rewrap_data_keys(
                bucket.id, changes, after if saving else None
            )
            on_step("batch")
    await catalog.finish_bucket_key_rotation(bucket.id)
    on_step("done")
    return BucketRotation(
        name, resumed, len(retired) + 1, rewrapped, unreadable, tuple(sorted(failed)),
        time.monotonic() - started,
    )  # fmt: skip


def _data_key_under(bucket_key: bytes, owner_id: bytes, wrapped: bytes) -> bool:
    try:
        Keyring.data_key(bucket_key, owner_id, wrapped)
    except DecryptionError:
        return False
    return True


def _open_data_key(older: list[bytes], owner_id: bytes, wrapped: bytes) -> bytes | None:
    """A data key opened with a retired bucket key; None if none opens it."""
    for key in older:
        try:
            return Keyring.data_key(key, owner_id, wrapped)
        except DecryptionError:
            continue
    return None
