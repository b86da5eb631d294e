"""Every shard file on the sites, known by its header and footer only: what a catalog rebuild
(and the restore of a snapshot) starts from.

Nothing is decrypted here and no block is read: a standalone shard costs one ranged read of its
first bytes (the whole file when it is small), else that, its size and one read of its tail; a
pack is walked segment by segment through its length prefixes, read in windows so that packs of
small objects cost a few requests. Reads run concurrently, a bounded number at a time.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field

from egide.coding.blocks import Layout
from egide.coding.shardfile import (
    FOOTER_TAIL_SIZE,
    HEADER_SIZE,
    ShardFooter,
    ShardFormatError,
    ShardHeader,
)
from egide.domain import NO_BUCKET_ID, SITE_RECORD_PREFIXES
from egide.sites.base import ShardMissing, Site, SiteError

log = logging.getLogger("egide.rebuild")

#: Files read at the same time, over all sites.
CONCURRENCY = 64
#: The first read of a standalone shard: the whole file when it is no larger.
FIRST_READ = 64 * 1024
#: Bytes read at once when walking a pack (several small segments per request).
WINDOW = 1024 * 1024
#: A footer is read from this many bytes before the end; a longer one costs a second read.
TAIL_READ = 4096
PACK_PREFIX = "pack-"
_LENGTH_SIZE = 8
_SHARD_NAME = re.compile(r"^([0-9a-f]{32})-(\d+)-(\d+)$")
#: Files of Égide that are not shards (the records kept on every site, catalog snapshots,
#: site labels).
SKIPPED_PREFIXES = (*SITE_RECORD_PREFIXES, "snap-", ".egide")


@dataclass(frozen=True, slots=True)
class Sighting:
    """One shard found on a site: standalone (`pack` None, `offset` 0) or a pack segment."""

    site: str
    file: str
    offset: int
    header: ShardHeader
    block_count: int
    size: int
    #: Its length is what its header and footer say (not truncated, nothing appended).
    complete: bool
    pack: str | None


@dataclass
class FoundVersion:
    """Every sighting of one version id, and the sealed manifests seen (a few per part
    attempt: they are the same on every shard, one opens)."""

    bucket_id: bytes
    sightings: list[Sighting] = field(default_factory=list)
    manifests: dict[int, list[bytes]] = field(default_factory=dict)


@dataclass
class Scan:
    versions: dict[bytes, FoundVersion] = field(default_factory=dict)
    files: int = 0
    #: Bytes of the shard files read from (whole files, all sites).
    bytes: int = 0
    #: "site/file: why" of files that are no readable shard (truncated, corrupt, foreign).
    problems: list[str] = field(default_factory=list)
    #: Sites that could not be listed, and why.
    unreachable: dict[str, str] = field(default_factory=dict)


Progress = Callable[[int, int], None]


class _Window:
    """Ranged reads of one file through a read-ahead window."""

    def __init__(self, site: Site, name: str, start: int = 0, data: bytes = b"") -> None:
        self.site, self.name = site, name
        self.start, self.data = start, data

    async def get(self, offset: int, length: int) -> bytes:
        if self.start <= offset and offset + length <= self.start + len(self.data):
            return self.data[offset - self.start : offset - self.start + length]
        if length > WINDOW:
            return await self.site.read(self.name, offset, length)
        self.start, self.data = offset, await self.site.read(self.name, offset, WINDOW)
        return self.data[:length]


async def _read_shard(
    window: _Window, start: int, length: int
) -> tuple[ShardHeader, ShardFooter, bool]:
    """Header and footer of the shard at [start, start + length) of a file, and whether its
    length is the one they describe."""
    if length < HEADER_SIZE + FOOTER_TAIL_SIZE:
        raise ShardFormatError("too short for a shard")
    header = ShardHeader.decode(await window.get(start, HEADER_SIZE))
    room = length - HEADER_SIZE
    tail = await window.get(start + length - min(room, TAIL_READ), min(room, TAIL_READ))
    need = ShardFooter.body_length(tail) + FOOTER_TAIL_SIZE
    if need > room:
        raise ShardFormatError("footer longer than the shard")
    if need > len(tail):
        tail = await window.get(start + length - need, need)
    footer = ShardFooter.decode(tail[-need:])
    layout = Layout(header.k, header.m, header.block_size, footer.size)
    complete = (
        footer.block_count == layout.block_count
        and length == HEADER_SIZE + layout.shard_data_size() + need
    )
    return header, footer, complete


class _Scanner:
    def __init__(self, sites: Mapping[str, Site], progress: Progress | None) -> None:
        self.sites = sites
        self.scan = Scan()
        self.progress = progress
        self.total = 0
        self.done = 0

    def _add(self, site: str, name: str, offset: int, header: ShardHeader, footer: ShardFooter,
             complete: bool, pack: str | None) -> None:  # fmt: skip
        found = self.scan.versions.get(header.version_id)
        if found is None:
            found = self.scan.versions[header.version_id] = FoundVersion(header.bucket_id)
        elif found.bucket_id == NO_BUCKET_ID:  # written since decision 0018: no bucket id
            found.bucket_id = header.bucket_id
        elif header.bucket_id not in (found.bucket_id, NO_BUCKET_ID):
            self.scan.problems.append(f"{site}/{name}: version of another bucket, skipped")
            return
        found.sightings.append(
            Sighting(site, name, offset, header, footer.block_count, footer.size, complete, pack)
        )
        sealed = found.manifests.setdefault(header.part, [])
        if len(sealed) < 3 and footer.sealed_manifest not in sealed:
            sealed.append(footer.sealed_manifest)

    async def _standalone(
        self, site: Site, name: str, version_id: str, seq: int, index: int
    ) -> int:
        first = await site.read(name, 0, FIRST_READ)
        size = len(first) if len(first) < FIRST_READ else await site.size(name)
        if size is None:
            raise ShardMissing(name)
        header, footer, complete = await _read_shard(_Window(site, name, 0, first), 0, size)
        if (header.version_id.hex(), header.part, header.index) != (version_id, seq, index):
            raise ShardFormatError("its header names another shard than its file name")
        self._add(site.name, name, 0, header, footer, complete, None)
        return size

    async def _pack(self, site: Site, name: str) -> int:
        first = await site.read(name, 0, WINDOW)
        size = len(first) if len(first) < WINDOW else await site.size(name)
        if size is None:
            raise ShardMissing(name)
        window = _Window(site, name, 0, first)
        position = 0
        while position + _LENGTH_SIZE <= size:
            length = int.from_bytes(await window.get(position, _LENGTH_SIZE), "big")
            start = position + _LENGTH_SIZE
            if start + length > size:
                raise ShardFormatError(f"pack truncated in the segment at {start}")
            try:
                header, footer, complete = await _read_shard(window, start, length)
            except ShardFormatError as exc:
                self.scan.problems.append(f"{site.name}/{name}: segment at {start}: {exc}")
            else:
                self._add(site.name, name, start, header, footer, complete, name)
            position = start + length
        return size

    async def _one(self, site_name: str, name: str) -> None:
        site = self.sites[site_name]
        try:
            if name.startswith(PACK_PREFIX):
                size = await self._pack(site, name)
            else:
                match = _SHARD_NAME.match(name)
                if match is None:
                    return
                version_id, seq, index = match.group(1), int(match.group(2)), int(match.group(3))
                size = await self._standalone(site, name, version_id, seq, index)
            self.scan.files += 1
            self.scan.bytes += size
        except ShardMissing:
            pass  # deleted since the listing (trash being emptied)
        except (ShardFormatError, SiteError, ValueError) as exc:
            self.scan.problems.append(f"{site_name}/{name}: {exc}")
        finally:
            self.done += 1
            if self.progress is not None:
                self.progress(self.done, self.total)

    async def _list(self, site_name: str) -> list[str]:
        try:
            return [
                name
                async for name in self.sites[site_name].list()
                if not name.startswith(SKIPPED_PREFIXES)
                and (name.startswith(PACK_PREFIX) or _SHARD_NAME.match(name))
            ]
        except SiteError as exc:
            self.scan.unreachable[site_name] = str(exc)
            return []

    async def run(self) -> Scan:
        names = list(self.sites)
        listed = await asyncio.gather(*(self._list(site) for site in names))
        files = [(site, name) for site, found in zip(names, listed, strict=True) for name in found]
        self.total = len(files)
        if self.progress is not None:
            self.progress(0, self.total)
        queue: Iterator[tuple[str, str]] = iter(files)

        async def worker() -> None:
            for site, name in queue:  # one shared iterator: each file is taken once
                await self._one(site, name)

        await asyncio.gather(*(worker() for _ in range(min(CONCURRENCY, len(files)) or 1)))
        return self.scan


async def scan_sites(sites: Mapping[str, Site], progress: Progress | None = None) -> Scan:
    """List every site and read every shard file's header and footer (see the module doc).
    `progress(done, total)` is called as files are read."""
    return await _Scanner(sites, progress).run()
