"""Write shard files again without the keys: copy a good piece, or rebuild it from k others.

Repair, scrub and evacuation all come down to this. The code is systematic Reed–Solomon over
the *sealed* block, so any k verified pieces give back the sealed block and every other piece
by encoding it again: nothing is decrypted, and the process doing it needs no key at all. Each
piece read is checked against its CRC32C first, so a rotten piece is never copied or used.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Mapping
from dataclasses import dataclass

from egide.coding.blocks import CHECKSUM_SIZE
from egide.coding.erasure import ErasureCode
from egide.coding.shardfile import (
    FOOTER_TAIL_SIZE,
    HEADER_SIZE,
    ShardFooter,
    ShardFormatError,
    ShardHeader,
    checksum,
    verify_piece,
)
from egide.domain import NO_BUCKET_ID, ObjectVersion, shard_name
from egide.engine.workers import on_cpu
from egide.inspection.scan import PACK_LENGTH_SIZE, ShardFile
from egide.sites.base import ShardWriter, Site, SiteError

#: Bytes of one shard's pieces read per request (a few blocks: memory stays bounded).
READ_BATCH = 4 * 1024 * 1024


class RewriteError(Exception):
    """The shards could not be written again (too few good pieces, a site failed)."""

    def __init__(self, message: str, target: str | None = None) -> None:
        super().__init__(message)
        #: The site that failed to take a new file, when that was the cause.
        self.target = target


@dataclass(frozen=True)
class Written:
    """A shard file written by `rewrite_part`: piece `index` in `file` on `site`."""

    index: int
    site: str
    file: str
    bytes: int
    #: The part attempt it belongs to (`Part.seq`; 0 for an object not uploaded in parts).
    part: int


async def _read_range(site: Site, shard: ShardFile, first: int, count: int) -> list[bytes]:
    """The stored pieces (piece + CRC) of blocks first..first+count-1 of one shard."""
    layout = shard.layout
    lengths = [layout.piece_len(i) + CHECKSUM_SIZE for i in range(first, first + count)]
    start = shard.offset + layout.piece_offset(HEADER_SIZE, first)
    data = await site.read(shard.file, start, sum(lengths))
    pieces, position = [], 0
    for length in lengths:
        pieces.append(data[position : position + length])
        position += length
    return pieces


async def read_footer(site: Site, shard: ShardFile) -> bytes:
    """The footer bytes of a shard file or pack segment, checked to decode."""
    start = shard.offset + HEADER_SIZE + shard.layout.shard_data_size()
    if shard.packed:
        prefix = await site.read(shard.file, shard.offset - PACK_LENGTH_SIZE, PACK_LENGTH_SIZE)
        end = shard.offset + int.from_bytes(prefix, "big")
        tail = await site.read(shard.file, start, end - start)
    else:
        tail = await site.read(shard.file, start, -1)
    ShardFooter.decode(tail)  # raises ShardFormatError
    if ShardFooter.body_length(tail) + FOOTER_TAIL_SIZE != len(tail):
        raise ShardFormatError("unexpected bytes before the footer")
    return tail


def _rebuild(code: ErasureCode, pieces: Mapping[int, bytes], sealed_len: int) -> list[bytes]:
    """Every piece of a block from any k of them (CPU work, off the event loop)."""
    return code.encode(code.decode(pieces, sealed_len))


async def rewrite_part(
    version: ObjectVersion,
    shards: list[ShardFile],
    good: set[int],
    targets: Mapping[int, str],
    sites: Mapping[str, Site],
) -> list[Written]:
    """Write the pieces `targets` names (index → site) of one part of `version` as standalone
    shard files, from the shards in `good` (copied where the index itself is good, rebuilt
    from k good ones otherwise). Nothing is visible to readers until the caller points the
    catalog at the new files; on failure every file begun is aborted (RewriteError)."""
    by_index = {shard.index: shard for shard in shards}
    layout = shards[0].layout
    seq = shards[0].part
    code = ErasureCode(version.k, version.m)
    usable = sorted(good)  # data pieces first: a healthy rebuild reads them only
    if layout.block_count and len(usable) < version.k:
        raise RewriteError(f"only {len(usable)} good pieces of {version.k} needed")
    writers: dict[int, ShardWriter] = {}
    written = dict.fromkeys(targets, 0)
    try:
        for index, site in targets.items():
            file_id, file_seq = version.part_file(seq)
            header = ShardHeader(version.k, version.m, index, file_seq, version.block_size,
                                 NO_BUCKET_ID, file_id).encode()  # fmt: skip
            try:
                writers[index] = await sites[site].writer(shard_name(file_id, file_seq, index))
                await writers[index].write(header)
            except SiteError as exc:
                raise RewriteError(f"site {site} refuses new files: {exc}", site) from exc
            written[index] += len(header)
        step = max(1, READ_BATCH // (layout.piece_len(0) + CHECKSUM_SIZE)) if layout.size else 1
        for first in range(0, layout.block_count, step):
            count = min(step, layout.block_count - first)
            batch = await _batch(version, by_index, usable, targets, sites, code, first, count)
            await asyncio.gather(*(writers[i].write(batch[i]) for i in writers))
            for index in writers:
                written[index] += len(batch[index])
        footer = await _footer(by_index, usable, sites)
        for index, writer in writers.items():
            await writer.write(footer)
            written[index] += len(footer)
        await asyncio.gather(*(writer.commit() for writer in writers.values()))
    except BaseException as exc:
        for writer in writers.values():
            with contextlib.suppress(SiteError):
                await writer.abort()
        if isinstance(exc, SiteError | ShardFormatError):
            raise RewriteError(str(exc)) from exc
        raise
    return [
        Written(i, targets[i], shard_name(*version.part_file(seq), i), written[i], seq)
        for i in targets
    ]


async def _footer(
    by_index: Mapping[int, ShardFile], usable: list[int], sites: Mapping[str, Site]
) -> bytes:
    """The footer, from the first good shard that has a whole one (they are all the same)."""
    problems = []
    for index in usable:
        shard = by_index[index]
        try:
            return await read_footer(sites[shard.site], shard)
        except (SiteError, ShardFormatError) as exc:
            problems.append(f"{shard.site}: {exc}")
    raise RewriteError("no whole footer: " + "; ".join(problems))


async def _batch(
    version: ObjectVersion,
    by_index: Mapping[int, ShardFile],
    usable: list[int],
    targets: Mapping[int, str],
    sites: Mapping[str, Site],
    code: ErasureCode,
    first: int,
    count: int,
) -> dict[int, bytes]:
    """The stored bytes (pieces and CRCs) of blocks first..first+count-1 for every target."""
    layout = by_index[usable[0]].layout
    fetched: dict[int, list[bytes]] = {}

    async def fetch(index: int) -> None:
        shard = by_index[index]
        with contextlib.suppress(SiteError):
            fetched[index] = await _read_range(sites[shard.site], shard, first, count)

    # Copies first: a target whose own piece is good needs nothing else.
    await asyncio.gather(*(fetch(i) for i in targets if i in usable))
    out: dict[int, list[bytes]] = {i: [] for i in targets}
    for block in range(count):
        missing = []
        for index in targets:
            stored = fetched.get(index)
            piece = stored[block] if stored is not None else None
            if piece is not None and verify_piece(piece) is not None:
                out[index].append(piece)
            else:
                missing.append(index)
        if not missing:
            continue
        pieces: dict[int, bytes] = {}
        for index in usable:
            if len(pieces) == version.k:
                break
            if index not in fetched:
                await fetch(index)
            stored = fetched.get(index)
            piece = verify_piece(stored[block]) if stored is not None else None
            if piece is not None:
                pieces[index] = piece
        if len(pieces) < version.k:
            raise RewriteError(
                f"block {first + block}: {len(pieces)} good pieces of {version.k} needed"
            )
        rebuilt = await on_cpu(_rebuild, code, pieces, layout.sealed_len(first + block))
        for index in missing:
            out[index].append(rebuilt[index] + checksum(rebuilt[index]))
    return {index: b"".join(stored) for index, stored in out.items()}
