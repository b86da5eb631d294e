"""Layout arithmetic checked against real shard files built by the pipeline."""

from __future__ import annotations

import itertools
import os

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from egide.coding.blocks import CHECKSUM_SIZE, Layout
from egide.coding.erasure import ErasureCode
from egide.coding.shardfile import HEADER_SIZE, ShardFooter, ShardHeader, verify_piece
from egide.crypto.aead import TAG_SIZE, new_key
from egide.pipeline import PartCipher, decode_block, encode_block

BUCKET = b"B" * 16
VERSION = b"V" * 16


@pytest.mark.parametrize(
    ("size", "count"), [(0, 0), (1, 1), (99, 1), (100, 1), (101, 2), (300, 3), (350, 4)]
)
def test_block_count(size: int, count: int) -> None:
    assert Layout(4, 2, 100, size).block_count == count


def test_plain_len_of_every_block_but_the_last_is_block_size() -> None:
    layout = Layout(4, 2, 100, 350)
    assert [layout.plain_len(i) for i in range(layout.block_count)] == [100, 100, 100, 50]


def test_plain_len_of_last_block_is_full_when_size_is_a_multiple() -> None:
    layout = Layout(4, 2, 100, 300)
    assert layout.plain_len(layout.block_count - 1) == 100


def test_sealed_len_adds_the_tag() -> None:
    layout = Layout(4, 2, 100, 350)
    assert layout.sealed_len(0) == 100 + TAG_SIZE
    assert layout.sealed_len(3) == 50 + TAG_SIZE


@pytest.mark.parametrize(("k", "m"), [(4, 2), (3, 1), (1, 0), (2, 2), (6, 3)])
@pytest.mark.parametrize(("block_size", "size"), [(100, 350), (1000, 3001), (64, 64), (7, 1)])
def test_piece_len_equals_len_of_encoded_pieces(k: int, m: int, block_size: int, size: int) -> None:
    layout = Layout(k, m, block_size, size)
    code = ErasureCode(k, m)
    for index in range(layout.block_count):
        pieces = code.encode(os.urandom(layout.sealed_len(index)))
        assert {len(p) for p in pieces} == {layout.piece_len(index)}, index


def _build_shards(
    k: int, m: int, block_size: int, data: bytes
) -> tuple[PartCipher, Layout, list[bytes], bytes]:
    """Real shard files: header + (piece + crc) for each block + footer."""
    ctx = PartCipher(AESGCM(new_key()), BUCKET, VERSION, 0, ErasureCode(k, m))
    layout = Layout(k, m, block_size, len(data))
    footer = ShardFooter(layout.block_count, len(data), b"w" * 60, b"m" * 100).encode()
    shards = [
        bytearray(ShardHeader(k, m, i, 0, block_size, BUCKET, VERSION).encode())
        for i in range(k + m)
    ]
    for index in range(layout.block_count):
        plain = data[index * block_size : (index + 1) * block_size]
        for shard, stored in zip(shards, encode_block(ctx, index, plain), strict=True):
            shard += stored
    return ctx, layout, [bytes(s) + footer for s in shards], footer


@pytest.mark.parametrize(("k", "m"), [(4, 2), (3, 1), (1, 0), (6, 3)])
@pytest.mark.parametrize(("block_size", "size"), [(1000, 3500), (1000, 3000), (100, 1)])
def test_piece_offset_locates_every_piece_in_a_real_shard(
    k: int, m: int, block_size: int, size: int
) -> None:
    data = os.urandom(size)
    ctx, layout, shards, _ = _build_shards(k, m, block_size, data)
    for index in range(layout.block_count):
        start = layout.piece_offset(HEADER_SIZE, index)
        end = start + layout.piece_len(index) + CHECKSUM_SIZE
        pieces = {}
        for i, shard in enumerate(shards):
            piece = verify_piece(shard[start:end])
            assert piece is not None, (index, i)
            pieces[i] = piece
        for ids in itertools.combinations(range(k + m), k):
            plain = decode_block(ctx, index, {i: pieces[i] for i in ids}, layout.sealed_len(index))
            assert plain == data[index * block_size : (index + 1) * block_size]


@pytest.mark.parametrize(("k", "m"), [(4, 2), (6, 3)])
def test_shard_data_size_is_what_lies_between_header_and_footer(k: int, m: int) -> None:
    _, layout, shards, footer = _build_shards(k, m, 1000, os.urandom(3500))
    for shard in shards:
        assert len(shard) == HEADER_SIZE + layout.shard_data_size() + len(footer)
        last = layout.block_count - 1
        end = layout.piece_offset(HEADER_SIZE, last) + layout.piece_len(last) + CHECKSUM_SIZE
        assert shard[end:] == footer


@pytest.mark.parametrize(
    ("first", "last", "blocks"),
    [
        (0, 0, [0]),
        (99, 99, [0]),
        (100, 100, [1]),
        (0, 99, [0]),
        (99, 100, [0, 1]),
        (100, 199, [1]),
        (199, 200, [1, 2]),
        (0, 349, [0, 1, 2, 3]),
        (300, 349, [3]),
        (150, 250, [1, 2]),
    ],
)
def test_blocks_covering_at_block_edges(first: int, last: int, blocks: list[int]) -> None:
    assert list(Layout(4, 2, 100, 350).blocks_covering(first, last)) == blocks
