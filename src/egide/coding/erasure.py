"""Systematic Reed–Solomon over zfec: any k of the k+m pieces rebuild a sealed block.

Systematic means pieces 0..k-1 are the block itself, cut in k; a healthy read only concatenates
them. zfec needs equal pieces, so the block is zero-padded to a multiple of k and the caller keeps
the true length.
"""

from __future__ import annotations

from collections.abc import Mapping

import zfec


class NotEnoughPieces(Exception):
    """Fewer than k pieces of a block are available."""


class ErasureCode:
    def __init__(self, k: int, m: int) -> None:
        if k < 1 or m < 0 or k + m > 256:
            raise ValueError(f"invalid erasure code {k}+{m}: need k >= 1, m >= 0, k+m <= 256")
        self.k = k
        self.m = m
        self._parity_ids = tuple(range(k, k + m))
        self._encoder = zfec.Encoder(k, k + m) if m else None
        self._decoder = zfec.Decoder(k, k + m) if m else None

    def piece_size(self, sealed_len: int) -> int:
        return -(-sealed_len // self.k)

    def encode(self, sealed: bytes) -> list[bytes]:
        """Cut `sealed` into k data pieces and compute m parity pieces, all of one size."""
        size = self.piece_size(sealed_len := len(sealed))
        padded = (
            sealed if size * self.k == sealed_len else sealed + bytes(size * self.k - sealed_len)
        )
        view = memoryview(padded)
        data = [bytes(view[i * size : (i + 1) * size]) for i in range(self.k)]
        if self._encoder is None:
            return data
        return data + list(self._encoder.encode(data, self._parity_ids))

    def decode(self, pieces: Mapping[int, bytes], sealed_len: int) -> bytes:
        """Rebuild the sealed block from any k pieces (by piece index)."""
        if all(i in pieces for i in range(self.k)):
            return b"".join(pieces[i] for i in range(self.k))[:sealed_len]
        if len(pieces) < self.k or self._decoder is None:
            raise NotEnoughPieces(f"{len(pieces)} of {self.k} needed pieces available")
        ids = tuple(sorted(pieces)[: self.k])
        data = self._decoder.decode(tuple(pieces[i] for i in ids), ids)
        return b"".join(data)[:sealed_len]
