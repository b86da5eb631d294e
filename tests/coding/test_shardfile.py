"""Shard header and footer encoding, corruption detection and piece checksums."""

from __future__ import annotations

import struct

import pytest
from awscrt.checksums import crc32c

from egide.coding.shardfile import (
    FOOTER_TAIL_SIZE,
    HEADER_SIZE,
    ShardFooter,
    ShardFormatError,
    ShardHeader,
    checksum,
    verify_piece,
)

HEADER = ShardHeader(
    k=6, m=3, index=8, part=70000, block_size=16 * 1024 * 1024,
    bucket_id=bytes(range(16)), version_id=bytes(range(100, 116)),
)  # fmt: skip
FOOTER = ShardFooter(
    block_count=12345, size=2**40 + 7, wrapped_bucket_key=b"k" * 60, sealed_manifest=b"m" * 333
)


def _flip_bit(data: bytes, bit: int) -> bytes:
    pos = bit // 8
    return data[:pos] + bytes([data[pos] ^ (1 << (bit % 8))]) + data[pos + 1 :]


def _reseal_header(body: bytes) -> bytes:
    """A header body with a correct CRC, to test checks other than the checksum."""
    return body + struct.pack(">I", crc32c(body))


# -- header ---------------------------------------------------------------------------------


def test_header_roundtrip() -> None:
    data = HEADER.encode()
    assert len(data) == HEADER_SIZE
    assert ShardHeader.decode(data) == HEADER


def test_header_decodes_from_the_start_of_a_whole_shard() -> None:
    assert ShardHeader.decode(HEADER.encode() + b"pieces and footer") == HEADER


def test_header_with_any_byte_corrupted_is_refused() -> None:
    data = HEADER.encode()
    for pos in range(len(data)):
        corrupt = data[:pos] + bytes([data[pos] ^ 0xFF]) + data[pos + 1 :]
        with pytest.raises(ShardFormatError):
            ShardHeader.decode(corrupt)


def test_truncated_header_is_refused() -> None:
    data = HEADER.encode()
    for n in (0, 4, HEADER_SIZE - 1):
        with pytest.raises(ShardFormatError, match="truncated"):
            ShardHeader.decode(data[:n])


def test_header_with_foreign_magic_and_valid_crc_is_refused() -> None:
    body = HEADER.encode()[:-4]
    with pytest.raises(ShardFormatError, match="format"):
        ShardHeader.decode(_reseal_header(b"XXXX" + body[4:]))


def test_header_of_unknown_format_version_is_refused() -> None:
    body = HEADER.encode()[:-4]
    with pytest.raises(ShardFormatError, match="format"):
        ShardHeader.decode(_reseal_header(body[:4] + b"\x02" + body[5:]))


# -- footer ---------------------------------------------------------------------------------


def test_footer_roundtrip() -> None:
    assert ShardFooter.decode(FOOTER.encode()) == FOOTER


def test_footer_with_empty_fields_roundtrips() -> None:
    footer = ShardFooter(0, 0, b"", b"")
    assert ShardFooter.decode(footer.encode()) == footer


def test_footer_decodes_from_the_end_of_a_whole_shard() -> None:
    assert ShardFooter.decode(HEADER.encode() + b"p" * 500 + FOOTER.encode()) == FOOTER


def test_body_length_from_the_tail() -> None:
    data = FOOTER.encode()
    length = ShardFooter.body_length(data[-FOOTER_TAIL_SIZE:])
    assert length == len(data) - FOOTER_TAIL_SIZE
    assert ShardFooter.decode(data[-FOOTER_TAIL_SIZE - length :]) == FOOTER


def test_body_length_without_footer_magic_is_refused() -> None:
    with pytest.raises(ShardFormatError, match="footer missing"):
        ShardFooter.body_length(FOOTER.encode()[:-1][-FOOTER_TAIL_SIZE:])


def test_footer_with_any_byte_corrupted_is_refused() -> None:
    data = FOOTER.encode()
    for pos in range(len(data)):
        corrupt = data[:pos] + bytes([data[pos] ^ 0xFF]) + data[pos + 1 :]
        with pytest.raises(ShardFormatError):
            ShardFooter.decode(corrupt)


def test_footer_truncated_at_the_end_is_refused() -> None:
    data = FOOTER.encode()
    for n in (1, 4, FOOTER_TAIL_SIZE, len(data) - FOOTER_TAIL_SIZE):
        with pytest.raises(ShardFormatError):
            ShardFooter.decode(data[:-n])


def test_footer_missing_its_start_is_refused() -> None:
    data = FOOTER.encode()
    for n in (1, 22, len(data) - FOOTER_TAIL_SIZE):
        with pytest.raises(ShardFormatError):
            ShardFooter.decode(data[n:])


@pytest.mark.parametrize("n", [0, 5, FOOTER_TAIL_SIZE - 1])
def test_footer_shorter_than_its_tail_is_refused(n: int) -> None:
    data = FOOTER.encode()[-n:] if n else b""
    with pytest.raises(ShardFormatError):
        ShardFooter.body_length(data)
    with pytest.raises(ShardFormatError):
        ShardFooter.decode(data)


# -- piece checksums ------------------------------------------------------------------------


def test_verify_piece_returns_the_intact_piece() -> None:
    piece = bytes(range(64))
    assert verify_piece(piece + checksum(piece)) == piece


def test_verify_piece_of_empty_piece() -> None:
    assert verify_piece(checksum(b"")) == b""


def test_verify_piece_detects_every_single_flipped_bit() -> None:
    piece = bytes(range(64))
    stored = piece + checksum(piece)
    for bit in range(len(stored) * 8):
        assert verify_piece(_flip_bit(stored, bit)) is None, bit


def test_verify_piece_detects_truncation() -> None:
    piece = bytes(range(64))
    stored = piece + checksum(piece)
    assert verify_piece(stored[:-1]) is None
    assert verify_piece(stored[1:]) is None
    assert verify_piece(b"") is None
