"""Block ⇄ pieces: seal with AES-GCM, erasure-code, checksum each piece; and back.

Pure and synchronous: the engine runs these in worker threads (cryptography and zfec release the
GIL), so two cores encode two blocks at once.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from egide.coding.erasure import ErasureCode
from egide.coding.shardfile import checksum
from egide.crypto.aead import open_block, seal_block


@dataclass(frozen=True)
class PartCipher:
    """Everything that seals or opens the blocks of one part of one object version."""

    cipher: AESGCM
    bucket_id: bytes
    version_id: bytes
    part: int
    code: ErasureCode


def encode_block(ctx: PartCipher, index: int, plain: bytes) -> list[bytes]:
    """The stored form of block `index`: one piece per shard, each followed by its CRC32C."""
    sealed = seal_block(ctx.cipher, ctx.bucket_id, ctx.version_id, ctx.part, index, plain)
    return [piece + checksum(piece) for piece in ctx.code.encode(sealed)]


def decode_block(
    ctx: PartCipher, index: int, pieces: Mapping[int, bytes], sealed_len: int
) -> bytes:
    """Plaintext of block `index` from any k verified pieces (checksums already stripped)."""
    sealed = ctx.code.decode(pieces, sealed_len)
    return open_block(ctx.cipher, ctx.bucket_id, ctx.version_id, ctx.part, index, sealed)
