"""The shard file format: header, pieces with checksums, footer.

Header (fixed size): magic, format, k, m, piece index, part, block size, bucket id, version id,
CRC32C. Footer: block count, the plaintext size the blocks are laid out for (padding included:
a size class, never the true size, docs/decisions/0017-size-padding.md), a master-wrapped bucket
key (written empty since key rotation, docs/decisions/0013-key-rotation.md; older shards hold
one) and the manifest (bucket, key, metadata, wrapped data key; padded to a class with spaces)
sealed under the bucket key, then its length, a CRC32C and a magic. The footer goes last
because a stream's size is known only at its end and a remote site cannot rewrite a header; see
docs/decisions/0002-shard-footer.md. Nothing here is readable without the keys except opaque
ids and size classes; with the keys the catalog can be rebuilt from it.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from awscrt.checksums import crc32c

MAGIC = b"EGSH"
FOOTER_MAGIC = b"EGFT"
FORMAT = 1
_HEADER = struct.Struct(">4sBBBBII16s16s")
_CRC = struct.Struct(">I")
HEADER_SIZE = _HEADER.size + _CRC.size
_FOOTER_FIXED = struct.Struct(">QQHI")
_FOOTER_TAIL = struct.Struct(">II4s")  # footer length, CRC32C of footer, magic
FOOTER_TAIL_SIZE = _FOOTER_TAIL.size


class ShardFormatError(Exception):
    """The bytes are not a valid Égide shard (truncated, corrupt or foreign)."""


@dataclass(frozen=True)
class ShardHeader:
    k: int
    m: int
    index: int
    part: int
    block_size: int
    bucket_id: bytes
    version_id: bytes

    def encode(self) -> bytes:
        body = _HEADER.pack(
            MAGIC, FORMAT, self.k, self.m, self.index, self.part, self.block_size,
            self.bucket_id, self.version_id,
        )  # fmt: skip
        return body + _CRC.pack(crc32c(body))

    @classmethod
    def decode(cls, data: bytes) -> ShardHeader:
        if len(data) < HEADER_SIZE:
            raise ShardFormatError("shard header truncated")
        body, (crc,) = data[: _HEADER.size], _CRC.unpack_from(data, _HEADER.size)
        if crc32c(body) != crc:
            raise ShardFormatError("shard header checksum mismatch")
        magic, fmt, k, m, index, part, block_size, bucket_id, version_id = _HEADER.unpack(body)
        if magic != MAGIC or fmt != FORMAT:
            raise ShardFormatError("not an Égide shard of a known format")
        return cls(k, m, index, part, block_size, bucket_id, version_id)


@dataclass(frozen=True)
class ShardFooter:
    block_count: int
    size: int
    wrapped_bucket_key: bytes
    sealed_manifest: bytes

    def encode(self) -> bytes:
        body = (
            _FOOTER_FIXED.pack(
                self.block_count, self.size, len(self.wrapped_bucket_key),
                len(self.sealed_manifest),
            )
            + self.wrapped_bucket_key
            + self.sealed_manifest
        )  # fmt: skip
        return body + _FOOTER_TAIL.pack(len(body), crc32c(body), FOOTER_MAGIC)

    @staticmethod
    def body_length(tail: bytes) -> int:
        """From the last FOOTER_TAIL_SIZE bytes of a shard, the length of the footer body."""
        if len(tail) < FOOTER_TAIL_SIZE:
            raise ShardFormatError("shard footer truncated")
        length, _, magic = _FOOTER_TAIL.unpack(tail[-FOOTER_TAIL_SIZE:])
        if magic != FOOTER_MAGIC:
            raise ShardFormatError("shard footer missing (truncated shard?)")
        return int(length)

    @classmethod
    def decode(cls, data: bytes) -> ShardFooter:
        """Decode from the footer body followed by its tail."""
        if len(data) < FOOTER_TAIL_SIZE:
            raise ShardFormatError("shard footer truncated")
        length, crc, magic = _FOOTER_TAIL.unpack(data[-FOOTER_TAIL_SIZE:])
        body = data[-FOOTER_TAIL_SIZE - length : -FOOTER_TAIL_SIZE]
        if magic != FOOTER_MAGIC or len(body) != length or crc32c(body) != crc:
            raise ShardFormatError("shard footer corrupt")
        count, size, key_len, manifest_len = _FOOTER_FIXED.unpack_from(body)
        start = _FOOTER_FIXED.size
        wrapped = body[start : start + key_len]
        manifest = body[start + key_len : start + key_len + manifest_len]
        return cls(count, size, wrapped, manifest)


def checksum(piece: bytes) -> bytes:
    return _CRC.pack(crc32c(piece))


def verify_piece(stored: bytes) -> bytes | None:
    """Split a stored piece from its trailing checksum; None if the checksum fails (bit-rot)."""
    piece, crc = stored[:-4], stored[-4:]
    return piece if _CRC.pack(crc32c(piece)) == crc else None
