"""rechunk: any stream of pieces becomes blocks of exactly the block size, bytes intact."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from hypothesis import given
from hypothesis import strategies as st

from egide.engine.writer import rechunk


async def _pieces(data: bytes, cuts: list[int], views: bool) -> AsyncIterator[bytes]:
    start = 0
    for end in [*sorted(cuts), len(data)]:
        piece = data[start:end]
        yield memoryview(piece) if views else piece  # type: ignore[misc]
        start = end


async def _blocks(data: bytes, cuts: list[int], size: int, views: bool) -> list[bytes]:
    return [block async for block in rechunk(_pieces(data, cuts, views), size)]


@given(
    data=st.binary(max_size=5000),
    size=st.sampled_from([1, 7, 64, 1000, 4096]),
    cut_fractions=st.lists(st.floats(0, 1), max_size=20),
    views=st.booleans(),
)
def test_rechunk_cuts_exact_blocks(
    data: bytes, size: int, cut_fractions: list[float], views: bool
) -> None:
    cuts = [int(f * len(data)) for f in cut_fractions]
    blocks = asyncio.run(_blocks(data, cuts, size, views))
    assert b"".join(blocks) == data
    assert all(len(block) == size for block in blocks[:-1])
    assert not blocks or 0 < len(blocks[-1]) <= size
    assert all(type(block) is bytes for block in blocks)
