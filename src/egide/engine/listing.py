"""Listing current objects with prefix, delimiter and resumption, as ListObjects defines it.

Keys sharing a prefix up to the delimiter roll up into one common prefix; the catalog is then
asked to skip past that prefix instead of reading every key below it. After a skip the catalog
is asked for one row (one index probe: the next key, which may well open the next common
prefix), and for more rows while they keep being keys: a delimiter listing reads about one row
per common prefix, however many keys each holds (docs/performance.md, "Listings").
"""

from __future__ import annotations

from dataclasses import dataclass, field

from egide.catalog.base import Catalog
from egide.catalog.rules import prefix_end
from egide.domain import ObjectVersion

_PAGE = 1000
#: How much the rows asked for grow while every row read is a key listed (1, 8, 64, 512, …).
GROWTH = 8


def first_size(delimiter: str) -> int:
    """Rows to ask for first: with a delimiter one probe (it may open a common prefix)."""
    return 1 if delimiter else _PAGE


@dataclass
class Listing:
    objects: list[ObjectVersion] = field(default_factory=list)
    prefixes: list[str] = field(default_factory=list)
    truncated: bool = False
    #: The last key or common prefix returned: where the next page resumes.
    last: str | None = None
    last_is_prefix: bool = False


async def list_objects(
    catalog: Catalog,
    bucket_id: bytes,
    *,
    prefix: str = "",
    delimiter: str = "",
    after: str | None = None,
    after_is_prefix: bool = False,
    max_keys: int = 1000,
) -> Listing:
    """Up to `max_keys` entries (keys and common prefixes) sorting after `after`.

    With `after_is_prefix` (resuming after a common prefix) every key under it is skipped too.
    """
    result = Listing()
    if max_keys == 0:
        return result  # S3 answers max-keys=0 with an empty, untruncated page
    # The catalog returns keys `> cursor`, or `>= cursor` when `inclusive` (after a prefix).
    cursor, inclusive = after, False
    if after_is_prefix and after is not None:
        cursor, inclusive = prefix_end(after), True
        if cursor is None:
            return result
    entries = 0
    size = first_size(delimiter)
    while True:
        # One row more than the page holds tells whether it is truncated.
        want = min(size, _PAGE, max_keys - entries + 1)
        rows = await catalog.list_objects(bucket_id, prefix, cursor, want, inclusive=inclusive)
        inclusive = False
        for version in rows:
            common = common_prefix(version.key, prefix, delimiter)
            if common is not None and after is not None and common <= after:
                # Resuming (start-after) inside this common prefix: it was already returned.
                cursor, inclusive, size = prefix_end(common), True, 1
                break
            if entries == max_keys:
                result.truncated = True
                return result
            entries += 1
            if common is not None:
                result.prefixes.append(common)
                result.last, result.last_is_prefix = common, True
                cursor, inclusive, size = prefix_end(common), True, 1
                break
            result.objects.append(version)
            result.last, result.last_is_prefix = version.key, False
            cursor = version.key
        else:
            if len(rows) < want:
                return result
            size *= GROWTH
        if cursor is None:
            return result


def common_prefix(key: str, prefix: str, delimiter: str) -> str | None:
    if not delimiter:
        return None
    pos = key.find(delimiter, len(prefix))
    return key[: pos + len(delimiter)] if pos >= 0 else None
