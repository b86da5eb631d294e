"""A shard file checked without the keys: its header names the right version, shard, part and
code; every block's piece matches its CRC32C; its footer is whole and counts the right blocks.

This is what `egide policy check --deep` reads: bit-rot, a truncated upload, a file copied over
another or moved between sites all show here, while nothing readable (content, names,
metadata) is ever decrypted.
"""

from __future__ import annotations

from egide.admin.scan import PACK_LENGTH_SIZE, ShardFile
from egide.coding.blocks import CHECKSUM_SIZE
from egide.coding.shardfile import (
    FOOTER_TAIL_SIZE,
    HEADER_SIZE,
    ShardFooter,
    ShardFormatError,
    ShardHeader,
    verify_piece,
)
from egide.domain import NO_BUCKET_ID, ObjectVersion
from egide.sites.base import ShardMissing, Site, SiteError

#: Bytes of pieces read in one request (a few blocks of the default 1 MiB).
READ_BATCH = 4 * 1024 * 1024
#: Corrupt blocks named in one message; the rest are counted.
NAMED_BLOCKS = 8


async def verify_shard(site: Site, shard: ShardFile, version: ObjectVersion) -> str | None:
    """None when the shard file (or pack segment) is intact, else what is wrong with it."""
    try:
        return await _verify(site, shard, version)
    except ShardMissing:
        return f"missing: no file {shard.file} on site {site.name}"
    except SiteError as exc:
        return f"unreadable: {exc}"


async def _verify(site: Site, shard: ShardFile, version: ObjectVersion) -> str | None:
    layout, base = shard.layout, shard.offset
    problems: list[str] = []
    header_bytes = await site.read(shard.file, base, HEADER_SIZE)
    if not header_bytes:
        return f"empty: file {shard.file} holds no shard at offset {base}"
    try:
        header = ShardHeader.decode(header_bytes)
    except ShardFormatError as exc:
        problems.append(f"header: {exc}")
    else:
        problems += _header_problems(header, shard, version)
    count = layout.block_count
    bad: list[int] = []
    full = layout.piece_len(0) + CHECKSUM_SIZE if count else 1
    step = max(1, READ_BATCH // full)
    for first in range(0, count, step):
        blocks = range(first, min(count, first + step))
        lengths = [layout.piece_len(i) + CHECKSUM_SIZE for i in blocks]
        start = base + layout.piece_offset(HEADER_SIZE, first)
        data = await site.read(shard.file, start, sum(lengths))
        position = 0
        for index, length in zip(blocks, lengths, strict=True):
            stored = data[position : position + length]
            if len(stored) < length:
                problems.append(f"truncated in block {index} of {count}")
                return "; ".join(problems)
            if verify_piece(stored) is None:
                bad.append(index)
            position += length
    if bad:
        named = ", ".join(map(str, bad[:NAMED_BLOCKS])) + (" …" if len(bad) > NAMED_BLOCKS else "")
        problems.append(f"checksum mismatch in {len(bad)} of {count} blocks ({named})")
    problems += await _footer_problems(site, shard, count)
    return "; ".join(problems) or None


def _header_problems(header: ShardHeader, shard: ShardFile, version: ObjectVersion) -> list[str]:
    file_id, file_seq = version.part_file(shard.part)
    if header.version_id != file_id or header.bucket_id not in (version.bucket_id, NO_BUCKET_ID):
        return [f"header belongs to another object (version {header.version_id.hex()})"]
    expected = {
        "shard index": (header.index, shard.index),
        "part": (header.part, file_seq),
        "code": ((header.k, header.m), (version.k, version.m)),
        "block size": (header.block_size, version.block_size),
    }
    return [
        f"header says {name} {found}, the catalog {wanted}"
        for name, (found, wanted) in expected.items()
        if found != wanted
    ]


async def _footer_problems(site: Site, shard: ShardFile, count: int) -> list[str]:
    layout, base = shard.layout, shard.offset
    start = base + HEADER_SIZE + layout.shard_data_size()
    if shard.packed:
        prefix = await site.read(shard.file, base - PACK_LENGTH_SIZE, PACK_LENGTH_SIZE)
        end = base + int.from_bytes(prefix, "big")
        if end <= start:
            return ["pack segment shorter than its blocks"]
        tail = await site.read(shard.file, start, end - start)
    else:
        tail = await site.read(shard.file, start, -1)
    try:
        footer = ShardFooter.decode(tail)
        length = ShardFooter.body_length(tail)
    except ShardFormatError as exc:
        return [f"footer: {exc}"]
    problems = []
    if length + FOOTER_TAIL_SIZE != len(tail):
        extra = len(tail) - length - FOOTER_TAIL_SIZE
        problems.append(f"{extra} unexpected bytes before the footer")
    if (footer.block_count, footer.size) != (count, layout.size):
        problems.append(
            f"footer says {footer.block_count} blocks of {footer.size} bytes, the catalog "
            f"{count} of {layout.size}"
        )
    return problems
