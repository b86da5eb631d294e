"""Padmé size classes: what they cost and what they hide (decision 0017)."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from egide.coding.padding import DATA_FLOOR, MANIFEST_FLOOR, pad_manifest, padded_size, padme


@pytest.mark.parametrize(
    ("length", "padded"),
    # E = floor(log2 L), S = floor(log2 E) + 1: the E - S low bits are rounded up.
    [(2, 2), (9, 10), (100, 104), (1000, 1024), (4097, 4352), (1_000_000, 1_015_808),
     (5 * 2**20, 5 * 2**20), (10_000_000, 10_223_616)],
)  # fmt: skip
def test_padme_rounds_up_the_low_bits(length: int, padded: int) -> None:
    assert padme(length) == padded


@given(st.integers(2, 2**40))
def test_a_class_costs_at_most_12_percent_and_is_its_own_class(length: int) -> None:
    padded = padme(length)
    assert length <= padded <= length * 1.12
    assert padme(padded) == padded


@pytest.mark.parametrize("exponent", [12, 20, 30])
def test_a_class_leaks_log_log_bits(exponent: int) -> None:
    """Between 2^E and 2^(E+1) there are 2^S classes: S = floor(log2 E) + 1 bits."""
    step = max(1, 2 ** (exponent - 10))  # finer than the classes
    classes = {padme(n) for n in range(2**exponent, 2 ** (exponent + 1), step)}
    classes.discard(2 ** (exponent + 1))
    assert len(classes) == 2 ** exponent.bit_length()


def test_every_small_object_is_one_class() -> None:
    assert {padded_size(n) for n in (0, 1, 10, 4000, DATA_FLOOR)} == {DATA_FLOOR}
    assert padded_size(DATA_FLOOR + 1) > DATA_FLOOR


def test_a_padded_manifest_reads_as_the_same_json() -> None:
    short = json.dumps({"key": "a"}).encode()
    longer = json.dumps({"key": "a" * 300}).encode()
    assert len(pad_manifest(short)) == len(pad_manifest(longer)) == MANIFEST_FLOOR
    assert json.loads(pad_manifest(short)) == {"key": "a"}
    big = json.dumps({"key": "b" * 3000}).encode()
    assert len(pad_manifest(big)) == padme(len(big)) > len(big)
