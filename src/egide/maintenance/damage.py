"""What is wrong with a version's files, file by file and block by block, and whether it can
be healed.

A shard file with one rotten block is not wholly bad: its other blocks' pieces still count.
So a version is unrecoverable only when some block of some part has fewer than k good pieces
(or no whole footer is left for a part). A file is counted as lost whole when it is missing,
unreadable, truncated, or when its header is corrupt or names another shard: then nothing
proves its pieces are this shard's.

A multipart object's completion record (egide.engine.manifest) is a copy, not a piece: one
good copy is enough to write the others again. A version with no copy on any site was
completed before records existed; it has none to check.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass, field

from egide.coding.shardfile import FOOTER_TAIL_SIZE, HEADER_SIZE
from egide.domain import ObjectVersion
from egide.engine.manifest import COMPLETION_SEQ
from egide.inspection.scan import ShardFile, completion_records, shard_files
from egide.inspection.verify import ShardCheck, check_shard
from egide.sites.base import ShardMissing, Site, SiteError

#: A file of a version: (part attempt, piece index); part COMPLETION_SEQ of a multipart
#: object is its completion record.
Place = tuple[int, int]


@dataclass
class Damage:
    """What `inspect` found wrong with one version's files."""

    version: ObjectVersion
    #: The files with a problem, and what it is.
    checks: dict[Place, ShardCheck] = field(default_factory=dict)
    #: The site of each file with a problem.
    sites: dict[Place, str] = field(default_factory=dict)
    #: Sites that did not answer.
    unreachable: set[str] = field(default_factory=set)
    #: Whether the version has completion record copies (a multipart object completed
    #: before records existed has none).
    records: bool = False

    @property
    def bad(self) -> dict[Place, str]:
        """Each damaged file, and what is wrong with it (for logs and the damaged queue)."""
        return {place: self._describe(place) for place in sorted(self.checks)}

    @property
    def pieces(self) -> set[int]:
        """The piece indexes with a damaged file in some part (or completion record)."""
        return {index for _, index in self.checks}

    def damaged_in(self, part: int) -> set[int]:
        """The piece indexes whose file of part attempt `part` is damaged."""
        return {index for seq, index in self.checks if seq == part}

    def usable(self, part: int) -> set[int]:
        """The piece indexes of part attempt `part` whose blocks may be read (each block's
        piece is checked against its CRC as it is read)."""
        lost = {index for (seq, index), check in self.checks.items() if seq == part and check.lost}
        return {index for index in range(len(self.version.sites)) if index not in lost}

    def whole_records(self) -> set[int]:
        """The completion record copies that are whole (a copy is written from one of them)."""
        if not self.records:
            return set()
        return set(range(len(self.version.sites))) - self.damaged_in(COMPLETION_SEQ)

    def shortfall(self) -> str | None:
        """Why the version cannot be healed (a block of a part with fewer than k good pieces,
        or a part with no whole footer left), or None."""
        k = self.version.k
        for shard in shard_files(self.version)[:: len(self.version.sites)]:
            seq, layout = shard.part, shard.layout
            usable = self.usable(seq)
            where = self._part_name(seq)
            if layout.block_count and len(usable) < k:
                return self._short(f"{len(usable)} of {k} needed pieces left{where}")
            checks = {i: self.checks.get((seq, i)) for i in usable}
            if all(c is not None and c.bad_footer for c in checks.values()):
                return self._short(f"no whole footer left{where}")
            rotten = sorted({b for c in checks.values() if c is not None for b in c.bad_blocks})
            for block in rotten:
                good = sum(1 for c in checks.values() if c is None or c.block_ok(block))
                if good < k:
                    in_part = f" of{where[3:]}" if where else ""
                    return self._short(f"{good} of {k} needed pieces left in block {block}"
                                       f"{in_part}")  # fmt: skip
        return None

    def _short(self, reason: str) -> str:
        return reason + ": " + "; ".join(self.bad.values())

    def _part_name(self, seq: int) -> str:
        number = next((p.number for p in self.version.parts if p.seq == seq), None)
        return f" in part {number}" if number is not None else ""

    def _describe(self, place: Place) -> str:
        seq, _ = place
        what = ""
        if self.version.parts:
            what = "completion record" if seq == COMPLETION_SEQ else self._part_name(seq)[4:]
            what += ", "
        return f"{self.sites[place]}: {what}{self.checks[place].problem}"


async def inspect(version: ObjectVersion, sites: Mapping[str, Site], *, deep: bool) -> Damage:
    """Check every file of `version`: its pieces of every part and its completion record.
    `deep` reads every byte and checks every CRC (scrub); otherwise each file's presence and
    size are checked (a stat or HEAD per file)."""
    damage = Damage(version)
    records = completion_records(version)

    async def one(shard: ShardFile) -> None:
        site = sites.get(shard.site)
        if site is None:
            found = ShardCheck([f"site {shard.site} is not configured"], lost=True)
        else:
            found = await check_shard(site, shard, version) if deep else await _size(site, shard)
        if found.unreadable:
            damage.unreachable.add(shard.site)
        if found.problem is not None:
            damage.checks[shard.part, shard.index] = found
            damage.sites[shard.part, shard.index] = shard.site

    await asyncio.gather(*(one(shard) for shard in [*shard_files(version), *records]))
    copies = [damage.checks.get((COMPLETION_SEQ, r.index)) for r in records]
    damage.records = bool(records)
    if records and all(found is not None and found.missing for found in copies):
        damage.records = False  # completed before records existed: nothing to check
        for record in records:
            del damage.checks[COMPLETION_SEQ, record.index]
    return damage


async def _size(site: Site, shard: ShardFile) -> ShardCheck:
    """A file's presence and size only."""
    need = shard.offset + HEADER_SIZE + shard.layout.shard_data_size() + FOOTER_TAIL_SIZE
    try:
        size = await site.size(shard.file)
    except ShardMissing:
        size = None
    except SiteError as exc:
        return ShardCheck([f"unreadable: {exc}"], lost=True, unreadable=True)
    if size is None:
        return ShardCheck([f"missing: no file {shard.file}"], lost=True, missing=True)
    if size < need:
        return ShardCheck([f"truncated: {size} bytes, at least {need} expected"], lost=True)
    return ShardCheck()
