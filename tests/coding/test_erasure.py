"""Systematic Reed–Solomon: any k of the k+m pieces rebuild a sealed block."""

from __future__ import annotations

import itertools
import os

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from egide.coding.blocks import Layout
from egide.coding.erasure import ErasureCode, NotEnoughPieces
from egide.coding.shardfile import verify_piece
from egide.crypto.aead import new_key
from egide.pipeline import PartCipher, decode_block, encode_block

MiB = 1024 * 1024
CODES = [(4, 2), (3, 1), (1, 0), (2, 2), (6, 3)]
SEALED_LENGTHS = [16, 17, MiB + 16]


@pytest.fixture(scope="module")
def sealed_blocks() -> dict[int, bytes]:
    return {n: os.urandom(n) for n in SEALED_LENGTHS}


@pytest.mark.parametrize(("k", "m"), CODES, ids=[f"{k}+{m}" for k, m in CODES])
@pytest.mark.parametrize("length", SEALED_LENGTHS)
def test_any_k_pieces_decode_to_the_original(
    sealed_blocks: dict[int, bytes], k: int, m: int, length: int
) -> None:
    code = ErasureCode(k, m)
    sealed = sealed_blocks[length]
    pieces = code.encode(sealed)
    for ids in itertools.combinations(range(k + m), k):
        assert code.decode({i: pieces[i] for i in ids}, length) == sealed, ids


@pytest.mark.parametrize(("k", "m"), CODES, ids=[f"{k}+{m}" for k, m in CODES])
@pytest.mark.parametrize("length", SEALED_LENGTHS)
def test_encode_gives_k_plus_m_pieces_of_piece_size(
    sealed_blocks: dict[int, bytes], k: int, m: int, length: int
) -> None:
    code = ErasureCode(k, m)
    pieces = code.encode(sealed_blocks[length])
    assert len(pieces) == k + m
    assert {len(p) for p in pieces} == {code.piece_size(length)}
    assert code.piece_size(length) * k >= length > (code.piece_size(length) - 1) * k


@pytest.mark.parametrize(("k", "m"), CODES, ids=[f"{k}+{m}" for k, m in CODES])
def test_data_pieces_are_the_block_itself(k: int, m: int) -> None:
    sealed = os.urandom(1000)
    pieces = ErasureCode(k, m).encode(sealed)
    assert b"".join(pieces[:k])[: len(sealed)] == sealed


@pytest.mark.parametrize(("k", "m"), CODES, ids=[f"{k}+{m}" for k, m in CODES])
def test_fewer_than_k_pieces_raise_not_enough_pieces(k: int, m: int) -> None:
    code = ErasureCode(k, m)
    sealed = os.urandom(100)
    pieces = code.encode(sealed)
    for ids in itertools.combinations(range(k + m), k - 1):
        with pytest.raises(NotEnoughPieces):
            code.decode({i: pieces[i] for i in ids}, len(sealed))


def test_missing_data_piece_without_parity_raises_not_enough_pieces() -> None:
    code = ErasureCode(3, 0)
    pieces = code.encode(os.urandom(30))
    with pytest.raises(NotEnoughPieces):
        code.decode({0: pieces[0], 2: pieces[2]}, 30)


@pytest.mark.parametrize(("k", "m"), [(0, 1), (-1, 2), (1, -1), (0, 0), (200, 57), (1, 256)])
def test_invalid_codes_raise_value_error(k: int, m: int) -> None:
    with pytest.raises(ValueError, match=f"{k}\\+{m}"):
        ErasureCode(k, m)


def test_largest_code_is_accepted() -> None:
    code = ErasureCode(250, 6)
    sealed = os.urandom(600)
    pieces = code.encode(sealed)
    assert code.decode({i: pieces[i] for i in range(6, 256)}, len(sealed)) == sealed


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    k=st.integers(1, 8),
    m=st.integers(0, 4),
    block_size=st.integers(1, 3000),
    data=st.binary(max_size=12_000),
    choice=st.data(),
)
def test_property_any_k_pieces_of_every_block_rebuild_the_object(
    k: int, m: int, block_size: int, data: bytes, choice: st.DataObject
) -> None:
    """Sealed, coded blocks of random objects decode from a random k-subset of pieces each."""
    ctx = PartCipher(AESGCM(new_key()), b"B" * 16, b"V" * 16, 0, ErasureCode(k, m))
    layout = Layout(k, m, block_size, len(data))
    out = []
    for index in range(layout.block_count):
        plain = data[index * block_size : (index + 1) * block_size]
        stored = encode_block(ctx, index, plain)
        assert {len(s) for s in stored} == {layout.piece_len(index) + 4}
        ids = choice.draw(st.permutations(range(k + m)))[:k]
        pieces = {}
        for i in ids:
            piece = verify_piece(stored[i])
            assert piece is not None
            pieces[i] = piece
        out.append(decode_block(ctx, index, pieces, layout.sealed_len(index)))
    assert b"".join(out) == data
