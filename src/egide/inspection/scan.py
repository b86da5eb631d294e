"""The catalog walked for administration: every stored version, the shard files it owns, and
what each site holds (counted from the catalog, or measured on the sites with `exact`)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterable, Mapping
from dataclasses import dataclass, field

from egide.catalog.base import Catalog
from egide.coding.blocks import Layout
from egide.coding.shardfile import HEADER_SIZE
from egide.domain import Bucket, ObjectVersion, shard_name
from egide.engine.manifest import COMPLETION_SEQ
from egide.sites.base import Site, SiteError

#: Versions asked of the catalog at a time.
PAGE = 1000
#: In a pack, each segment follows its 8-byte length (egide.engine.packer).
PACK_LENGTH_SIZE = 8
#: Shard files asked for their size at the same time, per command.
SIZE_CONCURRENCY = 16


@dataclass(frozen=True)
class VersionRef:
    """How reports name a version: bucket, key and the id S3 clients see ("null" included)."""

    bucket: str
    key: str
    version: str
    latest: bool

    def as_dict(self) -> dict[str, object]:
        return {
            "bucket": self.bucket,
            "key": self.key,
            "version": self.version,
            "latest": self.latest,
        }

    def __str__(self) -> str:
        return f"{self.bucket}/{self.key} (version {self.version})"


async def stored_versions(
    catalog: Catalog, bucket: Bucket
) -> AsyncIterator[tuple[ObjectVersion, bool]]:
    """Every version of `bucket` that has data, noncurrent ones included, with whether it is
    the key's newest; delete markers hold no shard and are skipped."""
    after: tuple[str, int] | None = None
    while True:
        page = await catalog.list_versions(bucket.id, "", after, PAGE)
        for version, latest in page:
            if not version.delete_marker:
                yield version, latest
        if len(page) < PAGE:
            return
        last = page[-1][0]
        after = (last.key, last.seq)


@dataclass(frozen=True)
class ShardFile:
    """Shard `index` of one part of a version: in `file` on `site`, its segment at `offset`
    (0 unless the file is a pack shared with other small objects)."""

    index: int
    site: str
    file: str
    offset: int
    #: The part attempt (`Part.seq`) for a multipart object, 0 otherwise.
    part: int
    layout: Layout
    packed: bool

    @property
    def estimated_size(self) -> int:
        """Header, pieces and their checksums, from the block layout alone. The footer (the
        sealed manifest, a few hundred bytes per file) is left out: only the site knows it."""
        return (
            HEADER_SIZE + self.layout.shard_data_size() + (PACK_LENGTH_SIZE if self.packed else 0)
        )


def shard_files(version: ObjectVersion) -> list[ShardFile]:
    """Every shard of every part of `version`, in part then shard order."""
    parts = version.laid_out()  # the sizes the blocks hold, padding included
    packed = version.pack is not None
    return [
        ShardFile(
            index=index,
            site=site,
            file=version.shard(index, seq),
            offset=version.pack_offset,
            part=seq,
            layout=Layout(version.k, version.m, version.block_size, size),
            packed=packed,
        )
        for seq, size in parts
        for index, site in enumerate(version.sites)
    ]


def completion_records(version: ObjectVersion) -> list[ShardFile]:
    """The completion record files of a multipart version: part 0, no blocks, one a site.
    Versions completed before records existed have none."""
    if not version.parts:
        return []
    empty = Layout(version.k, version.m, version.block_size, 0)
    name = version.version_id
    return [
        ShardFile(i, site, shard_name(name, COMPLETION_SEQ, i), 0, COMPLETION_SEQ, empty, False)
        for i, site in enumerate(version.sites)
    ]


@dataclass
class Holding:
    """What one site holds according to the catalog."""

    #: Versions with at least one shard on the site.
    versions: int = 0
    #: Shard files (or pack segments) of those versions.
    shards: int = 0
    #: Estimated stored bytes (see ShardFile.estimated_size), or measured with `exact`.
    bytes: int = 0
    bytes_by_bucket: dict[str, int] = field(default_factory=dict)
    measured: bool = False
    #: Why the measure failed, when it did (the estimate is kept then).
    error: str | None = None


async def holdings(
    catalog: Catalog,
    sites: Iterable[str],
    buckets: Iterable[Bucket] | None = None,
    *,
    exact: Mapping[str, Site] | None = None,
) -> dict[str, Holding]:
    """Per site: the versions, shard files and bytes it holds, from the catalog. With `exact`,
    each site's total is measured instead: the size of every file it should hold (a pack
    shared by several versions counted once); per-bucket figures stay estimates."""
    held = {name: Holding() for name in sites}
    files: dict[str, set[str]] = {name: set() for name in held}
    for bucket in buckets if buckets is not None else await catalog.list_buckets():
        async for version, _ in stored_versions(catalog, bucket):
            for site in set(version.sites):
                held.setdefault(site, Holding()).versions += 1
            for shard in shard_files(version):
                holding = held.setdefault(shard.site, Holding())
                holding.shards += 1
                size = shard.estimated_size
                holding.bytes += size
                holding.bytes_by_bucket[bucket.name] = (
                    holding.bytes_by_bucket.get(bucket.name, 0) + size
                )
                files.setdefault(shard.site, set()).add(shard.file)
    if exact is not None:
        await asyncio.gather(
            *(_measure(exact[name], files[name], held[name]) for name in held if name in exact)
        )
    return held


async def _measure(site: Site, files: set[str], holding: Holding) -> None:
    limit = asyncio.Semaphore(SIZE_CONCURRENCY)

    async def size(name: str) -> int:
        async with limit:
            return await site.size(name) or 0

    try:
        sizes = await asyncio.gather(*(size(name) for name in sorted(files)))
    except SiteError as exc:
        holding.error = str(exc)
        return
    holding.bytes, holding.measured = sum(sizes), True
