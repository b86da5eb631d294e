"""The pieces of GetObjectTorrent that need no server: bencoding, piece hashing over uneven
chunks, the name, and the 5 GB refusal (an object that size is not made in a test)."""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import os
from collections.abc import AsyncIterator

import pytest

from egide.domain import ObjectVersion
from egide.s3 import errors
from egide.s3.torrent import (
    MAX_TORRENT_OBJECT,
    bencode,
    check_torrentable,
    piece_hashes,
    torrent_name,
)


def test_bencode_as_bep_3_says() -> None:
    assert bencode(42) == b"i42e"
    assert bencode(-3) == b"i-3e"
    assert bencode("spam") == b"4:spam"
    assert bencode(b"\x00\xff") == b"2:\x00\xff"
    assert bencode(["spam", 1]) == b"l4:spami1ee"
    # Keys sorted as raw strings, whatever the order given.
    assert bencode({"zz": 1, "a b": b"x", "a": []}) == b"d1:ale3:a b1:x2:zzi1ee"
    with pytest.raises(TypeError):
        bencode(True)


async def _chunks(data: bytes, sizes: list[int]) -> AsyncIterator[bytes]:
    at = 0
    for size in sizes:
        yield data[at : at + size]
        at += size
    yield data[at:]


@pytest.mark.parametrize(
    "length,sizes",
    [(0, []), (1, []), (100, [1, 1, 50]), (1000, [999]), (1024, [512]), (2600, [700] * 3)],
)
def test_piece_hashes_whatever_the_chunks(length: int, sizes: list[int]) -> None:
    data = os.urandom(length)
    expected = b"".join(hashlib.sha1(data[i : i + 256]).digest() for i in range(0, len(data), 256))
    assert asyncio.run(piece_hashes(_chunks(data, sizes), 256)) == expected


def test_name_is_the_last_segment() -> None:
    assert torrent_name("films/2009/Avatar.mpg") == "Avatar.mpg"
    assert torrent_name("Avatar.mpg") == "Avatar.mpg"
    assert torrent_name("dir/") == "dir"
    assert torrent_name("/") == "/"


def test_over_5_gb_is_refused() -> None:
    version = ObjectVersion(
        bucket_id=b"b" * 16, key="k", version_id=b"v" * 16, size=MAX_TORRENT_OBJECT,
        etag="e", last_modified=0.0, wrapped_data_key=b"", k=1, m=0, block_size=1,
        sites=(), headers={},
    )  # fmt: skip
    check_torrentable(version)  # exactly 5 GiB: served
    with pytest.raises(errors.InvalidRequest, match="at most 5368709120 bytes"):
        check_torrentable(dataclasses.replace(version, size=MAX_TORRENT_OBJECT + 1))
