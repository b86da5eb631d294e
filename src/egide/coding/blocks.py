"""Block and shard arithmetic: where block i of an object lives inside each shard file.

A shard file is a header, then for each block the piece bytes followed by a CRC32C of them, then
a footer (see `shardfile`). Every block but the last holds `block_size` plaintext bytes, so the
offset of any block is a multiplication, and a range read touches only the blocks it covers.
"""

from __future__ import annotations

from dataclasses import dataclass

from egide.crypto.aead import TAG_SIZE

CHECKSUM_SIZE = 4


@dataclass(frozen=True)
class Layout:
    """How one part of one object version is cut: code k+m, block size, plaintext size."""

    k: int
    m: int
    block_size: int
    size: int

    @property
    def block_count(self) -> int:
        return -(-self.size // self.block_size)

    def plain_len(self, index: int) -> int:
        return min(self.block_size, self.size - index * self.block_size)

    def sealed_len(self, index: int) -> int:
        return self.plain_len(index) + TAG_SIZE

    def piece_len(self, index: int) -> int:
        return -(-self.sealed_len(index) // self.k)

    def piece_offset(self, header_size: int, index: int) -> int:
        """Byte offset of block `index`'s piece in a shard file (all earlier blocks are full)."""
        full = -(-(self.block_size + TAG_SIZE) // self.k) + CHECKSUM_SIZE
        return header_size + index * full

    def blocks_covering(self, first: int, last: int) -> range:
        """Indices of the blocks holding plaintext bytes first..last (inclusive)."""
        return range(first // self.block_size, last // self.block_size + 1)

    def shard_data_size(self) -> int:
        """Bytes of pieces and checksums in each shard file (header and footer excluded)."""
        return sum(self.piece_len(i) + CHECKSUM_SIZE for i in range(self.block_count))
