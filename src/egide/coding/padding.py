"""Size classes: sealed objects and manifests are padded so that a site's files give away a
class of sizes, never a size (docs/decisions/0017-size-padding.md).

Padmé (Nikitin et al., "Reducing Metadata Leakage from Encrypted Files and Communication with
PURBs", PETS 2019): a length L whose highest bit is bit E keeps its floor(log2 E) + 1 highest
bits and has the others rounded up, so a class leaks O(log log L) bits and costs at most
about 12 % (less as L grows). Below a floor, every length is one class. Pure functions.
"""

from __future__ import annotations

#: Every object (each part of a multipart object) of up to this many bytes, the empty one
#: included, is laid out as this many: one class for all the small ones (decision 0017).
DATA_FLOOR = 4096
#: Manifests (JSON) are padded with spaces to at least this: most fit in it (a short key, a
#: few headers), so their length says nothing about the key's or the metadata's.
MANIFEST_FLOOR = 1024


def padme(length: int) -> int:
    """The Padmé class of `length`: the smallest class member at least `length`."""
    if length < 2:
        return length
    exponent = length.bit_length() - 1  # E = floor(log2 L)
    kept = exponent.bit_length()  # S = floor(log2 E) + 1 bits of mantissa kept
    mask = (1 << (exponent - kept)) - 1
    return (length + mask) & ~mask


def padded_size(size: int) -> int:
    """How many plaintext bytes an object (or part) of `size` bytes is laid out as."""
    return padme(max(size, DATA_FLOOR))


def pad_manifest(document: bytes) -> bytes:
    """A JSON manifest grown to its class with trailing spaces (JSON ignores them, so any
    reader of manifests reads a padded one unchanged)."""
    target = padme(max(len(document), MANIFEST_FLOOR))
    return document + b" " * (target - len(document))
