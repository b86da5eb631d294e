"""Catalog snapshots: the whole catalog, compressed and sealed under the master key,
on a few sites; what a rebuild from the shards cannot know (delete markers, tag and lock
changes, bucket settings, credentials, uploads in progress) comes back from the newest one.

A snapshot is a consistent copy (`Catalog.copy_to`, taken while writers go on; SQLite's is its
online backup), compressed (zlib) and cut into chunks
of at most CHUNK bytes, each sealed as its own record (`Keyring.seal_record`, its id binding the
snapshot and the chunk number, so chunks cannot be swapped or replayed into another snapshot),
then a small sealed index naming the chunks and the SHA-256 of the catalog. Files are named
`snap-<UTC time>-<random id>-<chunk number | index>`; providers see sizes and times only. A
snapshot without its index is incomplete and ignored. The newest `keep` are kept.
"""

from __future__ import annotations

import asyncio
import calendar
import fcntl
import hashlib
import json
import logging
import os
import re
import tempfile
import time
import zlib
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from egide.catalog import CATALOG_SCHEMA, Catalog
from egide.clock import SYSTEM_CLOCK, Clock
from egide.crypto.aead import DecryptionError
from egide.crypto.keyring import Keyring
from egide.domain import new_id
from egide.owner_only import open_new_owner_only
from egide.placement import SiteProfile
from egide.sites.base import ShardMissing, Site, SiteError, write_file

log = logging.getLogger("egide.snapshots")

KIND = "catalog-snapshot"
PREFIX = "snap-"
#: Compressed bytes per sealed chunk: bounds the memory a snapshot takes, whatever its size.
CHUNK = 8 * 1024 * 1024
#: Catalog bytes compressed at a time.
READ = 1024 * 1024
#: Sites that take a copy of each snapshot (fewer when fewer are configured).
COPIES = 3
_NAME = re.compile(r"^snap-(\d{8}T\d{6})(\d{3})Z-([0-9a-f]{32})-(index|\d{5})$")
#: Next to the catalog: who takes the scheduled snapshot (a lock) and when it last did.
LOCK_FILE = "snapshots.lock"
STATE_FILE = "snapshots.json"


class SnapshotError(Exception):
    """No snapshot could be written or read back; the message says why."""


@dataclass(frozen=True)
class SnapshotInfo:
    name: str
    created: float
    chunks: int
    #: Bytes of the catalog file, and as stored (compressed and sealed) per copy.
    size: int
    stored: int
    sites: tuple[str, ...]
    sha256: str = ""

    def as_dict(self) -> dict[str, object]:
        return dict(self.__dict__) | {"sites": list(self.sites)}


@dataclass
class _Listed:
    """A snapshot's files as listed on the sites."""

    name: str
    snapshot_id: bytes
    created: float
    #: Site → file names (chunks and index) it holds of this snapshot.
    files: dict[str, list[str]] = field(default_factory=dict)

    @property
    def index_sites(self) -> list[str]:
        return [site for site, names in self.files.items() if f"{self.name}-index" in names]


def _record_id(snapshot_id: bytes, part: str) -> bytes:
    return snapshot_id + b"/" + part.encode()


def _parse_time(seconds: str, millis: str) -> float:
    return calendar.timegm(time.strptime(seconds, "%Y%m%dT%H%M%S")) + int(millis) / 1000


async def _copy(source: Catalog, target: Path) -> tuple[int, str]:
    """A consistent copy of the live catalog (writers go on); its size and SHA-256."""
    await source.copy_to(target)
    return await asyncio.to_thread(_measure, target)


def _measure(path: Path) -> tuple[int, str]:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while piece := f.read(READ):
            digest.update(piece)
    return path.stat().st_size, digest.hexdigest()


def choose_sites(sites: Sequence[str], profiles: Sequence[SiteProfile], copies: int) -> list[str]:
    """`copies` sites, each at another provider while there are providers left."""
    provider = {p.name: p.provider for p in profiles}
    chosen: list[str] = []
    for name in sites:
        if len(chosen) < copies and provider.get(name, name) not in {
            provider.get(c, c) for c in chosen
        }:
            chosen.append(name)
    for name in sites:
        if len(chosen) < copies and name not in chosen:
            chosen.append(name)
    return chosen


async def _write_copies(
    sites: Mapping[str, Site], targets: list[str], name: str, data: bytes
) -> None:
    """Write `name` on every target; a site that fails leaves the list (its copy would miss a
    chunk). SnapshotError when none is left."""
    results = await asyncio.gather(
        *(write_file(sites[t], name, data) for t in targets), return_exceptions=True
    )
    for target, result in zip(list(targets), results, strict=True):
        if isinstance(result, Exception):
            log.warning("snapshot file %s not written on %s: %s", name, target, result)
            targets.remove(target)
    if not targets:
        raise SnapshotError(f"no site took the snapshot file {name}")


async def take_snapshot(
    source: Catalog,
    keyring: Keyring,
    sites: Mapping[str, Site],
    *,
    data_dir: Path,
    keep: int = 3,
    copies: int = COPIES,
    profiles: Sequence[SiteProfile] = (),
) -> SnapshotInfo:
    """Snapshot the live catalog `source` to `copies` sites, then delete all but the newest
    `keep` snapshots. The copy is spooled in `data_dir` (names in clear: the owner's only).
    Memory stays at about two chunks whatever the catalog's size."""
    snapshot_id = new_id()
    now = time.time()
    stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime(now)) + f"{int(now * 1000) % 1000:03d}Z"
    name = f"{PREFIX}{stamp}-{snapshot_id.hex()}"
    targets = choose_sites(list(sites), profiles, copies)
    fd, temp = tempfile.mkstemp(prefix=".snapshot-", dir=data_dir)
    os.close(fd)
    written = chunks = 0
    try:
        size, sha256 = await _copy(source, Path(temp))
        compressor = zlib.compressobj(6)
        pending = bytearray()
        with open(temp, "rb") as f:
            while True:
                piece = await asyncio.to_thread(f.read, READ)
                pending += compressor.compress(piece) if piece else compressor.flush()
                while len(pending) >= CHUNK or (not piece and (pending or chunks == 0)):
                    data, pending = bytes(pending[:CHUNK]), pending[CHUNK:]
                    sealed = keyring.seal_record(KIND, _record_id(snapshot_id, str(chunks)), data)
                    await _write_copies(sites, targets, f"{name}-{chunks:05d}", sealed)
                    chunks += 1
                    written += len(sealed)
                if not piece:
                    break
        index = {
            "format": 1, "created": now, "chunks": chunks, "size": size, "sha256": sha256,
            "schema": CATALOG_SCHEMA, "sites": targets,
        }  # fmt: skip
        sealed_index = keyring.seal_record(
            KIND, _record_id(snapshot_id, "index"), json.dumps(index).encode()
        )
        await _write_copies(sites, targets, f"{name}-index", sealed_index)
    except BaseException:
        files = [f"{name}-{n:05d}" for n in range(chunks + 1)] + [f"{name}-index"]
        await _delete(sites, dict.fromkeys(targets, files))
        raise
    finally:
        Path(temp).unlink(missing_ok=True)
    await prune_snapshots(sites, keep)
    return SnapshotInfo(
        name, now, chunks, size, written + len(sealed_index), tuple(targets), sha256
    )


async def _listed(sites: Mapping[str, Site]) -> list[_Listed]:
    """Every snapshot on the sites, newest first."""
    found: dict[str, _Listed] = {}
    for site_name, site in sites.items():
        try:
            names = [n async for n in site.list(PREFIX)]
        except SiteError as exc:
            log.warning("cannot list snapshots on %s: %s", site_name, exc)
            continue
        for file in names:
            match = _NAME.match(file)
            if match is None:
                continue
            base = file[: -len(match.group(4)) - 1]
            entry = found.get(base)
            if entry is None:
                created = _parse_time(match.group(1), match.group(2))
                entry = found[base] = _Listed(base, bytes.fromhex(match.group(3)), created)
            entry.files.setdefault(site_name, []).append(file)
    return sorted(found.values(), key=lambda e: (e.created, e.name), reverse=True)


async def _delete(sites: Mapping[str, Site], files: Mapping[str, list[str]]) -> int:
    deleted = 0
    for site_name, names in files.items():
        for file in names:
            try:
                await sites[site_name].delete(file)
                deleted += 1
            except ShardMissing:
                pass
            except SiteError as exc:
                log.warning("snapshot file %s not deleted on %s: %s", file, site_name, exc)
    return deleted


async def prune_snapshots(sites: Mapping[str, Site], keep: int) -> int:
    """Delete every snapshot older than the newest `keep` complete ones (an incomplete one
    newer than those may be in progress elsewhere: left alone). Files deleted."""
    listed = await _listed(sites)
    complete = [entry for entry in listed if entry.index_sites]
    if len(complete) <= keep:
        return 0
    oldest_kept = complete[keep - 1] if keep else None
    doomed = [
        entry
        for entry in listed
        if oldest_kept is None
        or (entry.created, entry.name) < (oldest_kept.created, oldest_kept.name)
    ]
    deleted = 0
    for entry in doomed:
        deleted += await _delete(sites, entry.files)
    return deleted


async def delete_all_snapshots(sites: Mapping[str, Site]) -> int:
    """Delete every snapshot on every site (crypto-shredding a bucket must not leave its key
    in an old catalog copy: take a fresh snapshot after). Files deleted."""
    deleted = 0
    for entry in await _listed(sites):
        deleted += await _delete(sites, entry.files)
    return deleted


async def _read_index(
    sites: Mapping[str, Site], keyring: Keyring, entry: _Listed
) -> dict[str, object] | None:
    for site_name in entry.index_sites:
        try:
            sealed = await sites[site_name].read(f"{entry.name}-index", 0, -1)
            return dict(
                json.loads(
                    keyring.open_record(KIND, _record_id(entry.snapshot_id, "index"), sealed)
                )
            )
        except (SiteError, DecryptionError, ValueError) as exc:
            log.warning("snapshot index %s on %s unreadable: %s", entry.name, site_name, exc)
    return None


async def list_snapshots(sites: Mapping[str, Site], keyring: Keyring) -> list[SnapshotInfo]:
    """Complete, readable snapshots on the sites, newest first."""
    result = []
    for entry in await _listed(sites):
        index = await _read_index(sites, keyring, entry)
        if index is not None:
            result.append(_info(entry, index))
    return result


def _info(entry: _Listed, index: Mapping[str, object]) -> SnapshotInfo:
    return SnapshotInfo(
        entry.name, float(str(index["created"])), int(str(index["chunks"])),
        int(str(index["size"])), 0, tuple(entry.index_sites), str(index["sha256"]),
    )  # fmt: skip


async def fetch_snapshot(
    sites: Mapping[str, Site], keyring: Keyring, into: Path, name: str | None = None
) -> SnapshotInfo:
    """Write the catalog of snapshot `name` (else the newest that reads back whole) to the
    new file `into`. SnapshotError if there is none."""
    listed = [e for e in await _listed(sites) if name is None or e.name == name]
    if not listed:
        raise SnapshotError(f"no snapshot {name} on the sites" if name else "no snapshot found")
    failures = []
    for entry in listed:
        index = await _read_index(sites, keyring, entry)
        if index is None:
            failures.append(f"{entry.name}: no readable index")
            continue
        try:
            await _fetch(sites, keyring, entry, index, into)
        except SnapshotError as exc:
            into.unlink(missing_ok=True)
            failures.append(f"{entry.name}: {exc}")
            continue
        return _info(entry, index)
    raise SnapshotError("no snapshot reads back whole: " + "; ".join(failures))


async def _fetch(
    sites: Mapping[str, Site], keyring: Keyring, entry: _Listed, index: Mapping[str, object],
    into: Path,
) -> None:  # fmt: skip
    if int(str(index["schema"])) > CATALOG_SCHEMA:
        raise SnapshotError("written by a newer Égide: upgrade first")
    decompressor = zlib.decompressobj()
    digest = hashlib.sha256()
    with os.fdopen(open_new_owner_only(into), "wb") as f:  # names in clear: owner only
        for number in range(int(str(index["chunks"]))):
            file = f"{entry.name}-{number:05d}"
            data = None
            for site_name, names in entry.files.items():
                if file not in names:
                    continue
                try:
                    sealed = await sites[site_name].read(file, 0, -1)
                    data = keyring.open_record(
                        KIND, _record_id(entry.snapshot_id, str(number)), sealed
                    )
                    break
                except (SiteError, DecryptionError) as exc:
                    log.warning("snapshot chunk %s on %s unreadable: %s", file, site_name, exc)
            if data is None:
                raise SnapshotError(f"chunk {number} is on no site, or reads back on none")
            plain = decompressor.decompress(data)
            digest.update(plain)
            f.write(plain)
        tail = decompressor.flush()
        digest.update(tail)
        f.write(tail)
        f.flush()
        os.fsync(f.fileno())
    if digest.hexdigest() != index["sha256"]:
        raise SnapshotError("its content does not match its index (SHA-256)")


# -- the schedule -------------------------------------------------------------------------------


async def snapshot_if_due(
    catalog: Catalog,
    keyring: Keyring,
    sites: Mapping[str, Site],
    *,
    data_dir: Path,
    interval: float,
    keep: int = 3,
    profiles: Sequence[SiteProfile] = (),
    clock: Clock = SYSTEM_CLOCK,
) -> SnapshotInfo | None:
    """Take a snapshot if the last one is `interval` seconds old (0: never). Cheap when not
    due; of several server processes one takes it (a lock file in `data_dir`), and the
    first one is taken an interval after the schedule first runs."""
    if interval <= 0:
        return None
    state = data_dir / STATE_FILE
    try:
        last = float(json.loads(state.read_text())["last"])
    except (OSError, ValueError, KeyError, TypeError):
        last = None
    now = clock.time()
    if last is not None and now - last < interval:
        return None
    with open(data_dir / LOCK_FILE, "a") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return None  # another process is taking it
        try:  # read again under the lock: another process may just have taken it
            last = float(json.loads(state.read_text())["last"])
        except (OSError, ValueError, KeyError, TypeError):
            last = None
        if last is not None and clock.time() - last < interval:
            return None
        info = None
        if last is not None:
            info = await take_snapshot(
                catalog, keyring, sites, data_dir=data_dir, keep=keep, profiles=profiles
            )
            log.info("catalog snapshot %s: %d bytes on %s", info.name, info.stored,
                     ", ".join(info.sites))  # fmt: skip
        temp = state.with_name(state.name + ".tmp")
        temp.write_text(json.dumps({"last": info.created if info else now}))
        os.replace(temp, state)
        return info


async def run_snapshot_schedule(
    catalog: Catalog,
    keyring: Keyring,
    sites: Mapping[str, Site],
    *,
    data_dir: Path,
    interval: float,
    keep: int = 3,
    profiles: Sequence[SiteProfile] = (),
    every: float = 10.0,
    retired: Callable[[], Awaitable[frozenset[str]]] | None = None,
) -> None:
    """A server process's loop: `snapshot_if_due` every `every` seconds; never raises. Sites
    `retired` names (being evacuated, or evacuated) get no new snapshot."""
    if interval <= 0:
        return
    while True:
        await asyncio.sleep(min(every, interval))
        try:
            leaving = await retired() if retired is not None else frozenset()
            usable = {name: site for name, site in sites.items() if name not in leaving}
            await snapshot_if_due(
                catalog, keyring, usable, data_dir=data_dir, interval=interval, keep=keep,
                profiles=profiles,
            )  # fmt: skip
        except Exception:
            log.exception("catalog snapshot failed")
