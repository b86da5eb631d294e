"""A shard file checked without the keys: its header names the right version, shard, part and
code; every block's piece matches its CRC32C; its footer is whole and counts the right blocks.

This is what `egide policy check --deep` reads: bit-rot, a truncated upload, a file copied over
another or moved between sites all show here, while nothing readable (content, names,
metadata) is ever decrypted.
"""

from __future__ import annotations

from dataclasses import dataclass, field

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
from egide.inspection.scan import PACK_LENGTH_SIZE, ShardFile
from egide.sites.base import ShardMissing, Site, SiteError

#: Bytes of pieces read in one request (a few blocks of the default 1 MiB).
READ_BATCH = 4 * 1024 * 1024
#: Corrupt blocks named in one message; the rest are counted.
NAMED_BLOCKS = 8


@dataclass
class ShardCheck:
    """What a check found in one shard file. A repair uses the parts of it that are still
    good: the pieces of blocks whose checksums hold, and the footer if it is whole."""

    problems: list[str] = field(default_factory=list)
    #: No block of it can be used: missing, unreadable, truncated, or its header is corrupt or
    #: names another shard (its pieces could be another shard's).
    lost: bool = False
    #: The file is not there at all (as opposed to there but unusable).
    missing: bool = False
    #: Its site did not answer.
    unreadable: bool = False
    #: Blocks whose piece fails its checksum.
    bad_blocks: list[int] = field(default_factory=list)
    #: Its footer is corrupt (a rebuild copies a whole one from another shard).
    bad_footer: bool = False

    @property
    def problem(self) -> str | None:
        return "; ".join(self.problems) or None

    def block_ok(self, block: int) -> bool:
        return not self.lost and block not in self.bad_blocks


async def verify_shard(site: Site, shard: ShardFile, version: ObjectVersion) -> str | None:
    """None when the shard file (or pack segment) is intact, else what is wrong with it."""
    return (await check_shard(site, shard, version)).problem


async def check_shard(site: Site, shard: ShardFile, version: ObjectVersion) -> ShardCheck:
    """The header, every block's checksum and the footer of one shard file (or segment)."""
    found = ShardCheck()
    try:
        await _verify(site, shard, version, found)
    except ShardMissing:
        found.problems = [f"missing: no file {shard.file} on site {site.name}"]
        found.lost = found.missing = True
    except SiteError as exc:
        found.problems = [f"unreadable: {exc}"]
        found.lost = found.unreadable = True
    return found


async def _verify(site: Site, shard: ShardFile, version: ObjectVersion, found: ShardCheck) -> None:
    layout, base = shard.layout, shard.offset
    problems = found.problems
    header_bytes = await site.read(shard.file, base, HEADER_SIZE)
    if not header_bytes:
        problems.append(f"empty: file {shard.file} holds no shard at offset {base}")
        found.lost = True
        return
    try:
        header = ShardHeader.decode(header_bytes)
    except ShardFormatError as exc:
        problems.append(f"header: {exc}")
        found.lost = True
    else:
        wrong = _header_problems(header, shard, version)
        problems += wrong
        found.lost = bool(wrong)
    count = layout.block_count
    bad = found.bad_blocks
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
                found.lost = True
                return
            if verify_piece(stored) is None:
                bad.append(index)
            position += length
    if bad:
        named = ", ".join(map(str, bad[:NAMED_BLOCKS])) + (" …" if len(bad) > NAMED_BLOCKS else "")
        problems.append(f"checksum mismatch in {len(bad)} of {count} blocks ({named})")
    await _footer_problems(site, shard, count, found)


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


async def _footer_problems(site: Site, shard: ShardFile, count: int, found: ShardCheck) -> None:
    layout, base = shard.layout, shard.offset
    start = base + HEADER_SIZE + layout.shard_data_size()
    if shard.packed:
        prefix = await site.read(shard.file, base - PACK_LENGTH_SIZE, PACK_LENGTH_SIZE)
        end = base + int.from_bytes(prefix, "big")
        if end <= start:
            found.problems.append("pack segment shorter than its blocks")
            found.lost = True
            return
        tail = await site.read(shard.file, start, end - start)
    else:
        tail = await site.read(shard.file, start, -1)
    try:
        footer = ShardFooter.decode(tail)
        length = ShardFooter.body_length(tail)
    except ShardFormatError as exc:
        found.problems.append(f"footer: {exc}")
        found.bad_footer = True
        return
    if length + FOOTER_TAIL_SIZE != len(tail):
        extra = len(tail) - length - FOOTER_TAIL_SIZE
        found.problems.append(f"{extra} unexpected bytes before the footer")
        found.bad_footer = True
    if (footer.block_count, footer.size) != (count, layout.size):
        found.problems.append(
            f"footer says {footer.block_count} blocks of {footer.size} bytes, the catalog "
            f"{count} of {layout.size}"
        )
        found.lost = True
