"""Catalog contract: listing current objects and all versions, in S3's order.

S3 lists keys in the order of their UTF-8 bytes (the code point order): "B" before "a", "/"
before "0", "é" after "z", U+FFFF before U+10000. A backend whose text collation follows a
locale or UTF-16 would list in another order, and a prefix search must treat "%" and "_" as the
characters they are.
"""

from __future__ import annotations

import random

import pytest
from tests.catalog.contract.builders import MAX, keys, marker, new_bucket, version

from egide.catalog.base import Catalog
from egide.domain import Bucket, ObjectVersion

#: Keys in UTF-8 byte order, each pair a place where another collation would disagree.
ORDERED = [
    "B", "a", "a b", "a-", "a/b", "a0", "aB", "a_", "ab", "z", "\x7f", "é", "ê", "\ud7ff",
    "\ue000", "\uffff", "😀", MAX,
]  # fmt: skip


def utf8_order(names: list[str]) -> list[str]:
    return sorted(names, key=lambda name: name.encode())


async def commit_keys(catalog: Catalog, bucket: Bucket, names: list[str]) -> None:
    for name in names:
        await catalog.commit_version(version(bucket, name))


async def all_objects(catalog: Catalog, bucket: Bucket, prefix: str = "") -> list[str]:
    return keys(await catalog.list_objects(bucket.id, prefix, None, 100_000))


async def versions_of(
    catalog: Catalog, bucket: Bucket, prefix: str = "", limit: int = 100_000
) -> list[tuple[ObjectVersion, bool]]:
    return await catalog.list_versions(bucket.id, prefix, None, limit)


def test_the_expected_order_is_utf8_byte_order() -> None:
    assert utf8_order(ORDERED) == ORDERED


# -- list_objects ------------------------------------------------------------------------------


async def test_keys_are_listed_in_utf8_byte_order(catalog: Catalog, bucket: Bucket) -> None:
    await commit_keys(catalog, bucket, list(reversed(ORDERED)))
    assert await all_objects(catalog, bucket) == ORDERED


async def test_a_cursor_past_a_key_with_nul_resumes_after_that_key(
    catalog: Catalog, bucket: Bucket
) -> None:
    """A bound `key + NUL` (the smallest string after `key`) resumes right after it, for
    objects and versions; a prefix holding a NUL selects nothing stored here."""
    await commit_keys(catalog, bucket, ["a", "a0", "b"])
    assert keys(await catalog.list_objects(bucket.id, "", "a\0", 100)) == ["a0", "b"]
    assert keys(await catalog.list_objects(bucket.id, "", "a\0", 100, inclusive=True)) == [
        "a0",
        "b",
    ]
    listed = await catalog.list_versions(bucket.id, "", ("a\0", 0), 100)
    assert [v.key for v, _ in listed] == ["a0", "b"]
    assert await catalog.list_objects(bucket.id, "a\0", None, 100) == []
    assert await catalog.list_versions(bucket.id, "a\0", None, 100) == []


async def test_listed_versions_are_whole(catalog: Catalog, bucket: Bucket) -> None:
    committed = version(bucket, "dir/k", headers={"x-amz-meta-note": "é"})
    await catalog.commit_version(committed)
    assert await catalog.list_objects(bucket.id, "", None, 10) == [committed]


async def test_only_current_versions_and_no_delete_markers(
    catalog: Catalog, bucket: Bucket
) -> None:
    old, new = version(bucket, "k", null=False), version(bucket, "k", null=False)
    await catalog.commit_version(old)
    await catalog.commit_version(new)
    await catalog.commit_version(version(bucket, "hidden", null=False))
    await catalog.commit_version(marker(bucket, "hidden"))
    await catalog.commit_version(marker(bucket, "uncovered"))
    uncovered = version(bucket, "uncovered", null=False)
    await catalog.commit_version(uncovered)
    assert await catalog.list_objects(bucket.id, "", None, 10) == [new, uncovered]


async def test_a_prefix_selects_keys_starting_with_it(catalog: Catalog, bucket: Bucket) -> None:
    await commit_keys(catalog, bucket, ORDERED)
    assert await all_objects(catalog, bucket, "a") == [
        "a", "a b", "a-", "a/b", "a0", "aB", "a_", "ab",
    ]  # fmt: skip
    assert await all_objects(catalog, bucket, "a/") == ["a/b"]
    assert await all_objects(catalog, bucket, "é") == ["é"]
    assert await all_objects(catalog, bucket, "c") == []
    assert await all_objects(catalog, bucket, "a/b/") == []


async def test_a_prefix_is_literal(catalog: Catalog, bucket: Bucket) -> None:
    """No wildcard: "%" and "_" match only themselves, case counts."""
    names = ["100%", "100%/x", "1000", "a_b", "a_c", "axb", "A_b", "a\\b", "a\\_"]
    await commit_keys(catalog, bucket, names)
    assert await all_objects(catalog, bucket, "100%") == ["100%", "100%/x"]
    assert await all_objects(catalog, bucket, "a_") == ["a_b", "a_c"]
    assert await all_objects(catalog, bucket, "%") == []
    assert await all_objects(catalog, bucket, "_") == []
    assert await all_objects(catalog, bucket, "a\\") == ["a\\_", "a\\b"]
    assert await all_objects(catalog, bucket, "A") == ["A_b"]


@pytest.mark.parametrize(
    ("prefix", "inside", "outside"),
    [
        (f"a{MAX}", [f"a{MAX}", f"a{MAX}x", f"a{MAX}{MAX}"], ["a", f"a\uffff{MAX}", "b", MAX]),
        (MAX, [MAX, f"{MAX}z", MAX * 3], ["z", f"a{MAX}", "\uffff"]),
        ("a\ud7ff", ["a\ud7ff", "a\ud7ffz", f"a\ud7ff{MAX}"], ["a\ue000", "a\ud7fe", "b"]),
        ("a\uffff", ["a\uffff", "a\uffff😀"], ["a\U00010000", "a😀", "a\ufffe"]),
        ("z", ["z", "z/", f"z{MAX}"], ["\x7f", "é", "y\uffff"]),
    ],
)
async def test_prefixes_ending_near_the_end_of_a_range(
    catalog: Catalog, bucket: Bucket, prefix: str, inside: list[str], outside: list[str]
) -> None:
    await commit_keys(catalog, bucket, inside + outside)
    assert await all_objects(catalog, bucket, prefix) == utf8_order(inside)
    listed = await catalog.list_versions(bucket.id, prefix, None, 100)
    assert [v.key for v, _ in listed] == utf8_order(inside)


async def test_after_is_exclusive_unless_inclusive(catalog: Catalog, bucket: Bucket) -> None:
    await commit_keys(catalog, bucket, ORDERED)
    assert keys(await catalog.list_objects(bucket.id, "", "a0", 100)) == ORDERED[6:]
    got = await catalog.list_objects(bucket.id, "", "a0", 100, inclusive=True)
    assert keys(got) == ORDERED[5:]
    # A position between two keys, then one past every key.
    assert keys(await catalog.list_objects(bucket.id, "", "a00", 100)) == ORDERED[6:]
    assert (
        keys(await catalog.list_objects(bucket.id, "", "a00", 100, inclusive=True)) == (ORDERED[6:])
    )
    assert await catalog.list_objects(bucket.id, "", MAX, 100) == []
    assert keys(await catalog.list_objects(bucket.id, "", "\uffff", 100)) == ["😀", MAX]


async def test_prefix_after_and_limit_together(catalog: Catalog, bucket: Bucket) -> None:
    await commit_keys(catalog, bucket, ORDERED)
    assert keys(await catalog.list_objects(bucket.id, "a", "a", 2)) == ["a b", "a-"]
    assert keys(await catalog.list_objects(bucket.id, "a", "0", 3)) == ["a", "a b", "a-"]
    assert keys(await catalog.list_objects(bucket.id, "a", "ab", 5)) == []
    assert keys(await catalog.list_objects(bucket.id, "a/", "B", 5)) == ["a/b"]
    assert keys(await catalog.list_objects(bucket.id, "a", "a0", 5, inclusive=True)) == [
        "a0", "aB", "a_", "ab",
    ]  # fmt: skip


async def test_pages_cover_every_key_once(catalog: Catalog, bucket: Bucket) -> None:
    await commit_keys(catalog, bucket, ORDERED)
    seen: list[str] = []
    after: str | None = None
    while page := await catalog.list_objects(bucket.id, "", after, 4):
        assert len(page) <= 4
        seen += keys(page)
        after = page[-1].key
    assert seen == ORDERED


async def test_listing_is_scoped_to_its_bucket(catalog: Catalog, bucket: Bucket) -> None:
    other = new_bucket("other")
    await catalog.create_bucket(other)
    await catalog.commit_version(version(bucket, "mine"))
    await catalog.commit_version(version(other, "theirs"))
    assert await all_objects(catalog, bucket) == ["mine"]
    assert [v.key for v, _ in await versions_of(catalog, other)] == ["theirs"]


async def test_random_keys_list_in_order_under_every_prefix(
    catalog: Catalog, bucket: Bucket
) -> None:
    rng = random.Random(14)
    alphabet = ["a", "b", "B", "/", "-", "_", "%", "0", " ", "é", "\uffff", "😀", MAX, "\ue000"]
    names = sorted({"".join(rng.choices(alphabet, k=rng.randint(1, 4))) for _ in range(150)})
    await commit_keys(catalog, bucket, names)
    assert await all_objects(catalog, bucket) == utf8_order(names)
    for prefix in sorted({name[:1] for name in names} | {name[:2] for name in names}):
        want = utf8_order([name for name in names if name.startswith(prefix)])
        assert await all_objects(catalog, bucket, prefix) == want, prefix


# -- list_versions -----------------------------------------------------------------------------


async def test_versions_by_key_then_newest_first(catalog: Catalog, bucket: Bucket) -> None:
    a1, b1, a2 = (version(bucket, key, null=False) for key in ("a", "b", "a"))
    a3 = marker(bucket, "a")
    for each in (a1, b1, a2, a3):
        await catalog.commit_version(each)
    listed = await versions_of(catalog, bucket)
    assert [(v.version_id, latest) for v, latest in listed] == [
        (a3.version_id, True), (a2.version_id, False), (a1.version_id, False),
        (b1.version_id, True),
    ]  # fmt: skip
    assert [v for v, _ in listed] == [a3, a2, a1, b1]
    # seq orders the versions of a key: higher is newer.
    seqs = [v.seq for v, _ in listed[:3]]
    assert seqs == sorted(seqs, reverse=True) and len(set(seqs)) == 3


async def test_the_newest_version_is_latest_after_deletions(
    catalog: Catalog, bucket: Bucket
) -> None:
    older, newer = version(bucket, "k", null=False), version(bucket, "k", null=False)
    await catalog.commit_version(older)
    await catalog.commit_version(newer)
    await catalog.delete_version(bucket.id, "k", newer.version_id)
    assert [(v.version_id, latest) for v, latest in await versions_of(catalog, bucket)] == [
        (older.version_id, True)
    ]


async def test_a_replacing_null_version_is_the_newest(catalog: Catalog, bucket: Bucket) -> None:
    await catalog.commit_version(version(bucket, "k"))
    kept = version(bucket, "k", null=False)
    await catalog.commit_version(kept)
    null = version(bucket, "k")
    await catalog.commit_version(null)
    assert [(v, latest) for v, latest in await versions_of(catalog, bucket)] == [
        (null, True), (kept, False),
    ]  # fmt: skip


async def test_versions_after_a_position(catalog: Catalog, bucket: Bucket) -> None:
    """`after` is (key, seq): the versions of that key older than seq, then later keys;
    seq 0 skips the whole key, a seq above every real one starts at its newest."""
    for key in ("a", "b", "b", "b", "c"):
        await catalog.commit_version(version(bucket, key, null=False))
    listed = [v for v, _ in await versions_of(catalog, bucket)]
    b_newest, b_middle, b_oldest = listed[1:4]

    async def after(position: tuple[str, int]) -> list[ObjectVersion]:
        return [v for v, _ in await catalog.list_versions(bucket.id, "", position, 100)]

    assert await after(("b", b_middle.seq)) == [b_oldest, listed[4]]
    assert await after(("b", 0)) == [listed[4]]
    assert await after(("b", 2**62)) == listed[1:]
    assert await after(("a\uffff", 0)) == listed[1:]  # between keys
    assert await after(("c", 0)) == []
    assert b_newest.seq > b_middle.seq > b_oldest.seq


async def test_version_pages_cover_every_version_once(catalog: Catalog, bucket: Bucket) -> None:
    for key in ("x", "y", "x", "é", "y", "x", "😀"):
        await catalog.commit_version(version(bucket, key, null=False))
    await catalog.commit_version(marker(bucket, "y"))
    everything = await versions_of(catalog, bucket)
    assert len(everything) == 8
    seen: list[tuple[ObjectVersion, bool]] = []
    position: tuple[str, int] | None = None
    while page := await catalog.list_versions(bucket.id, "", position, 3):
        assert len(page) <= 3
        seen += page
        position = (page[-1][0].key, page[-1][0].seq)
    assert seen == everything
    assert [v.key for v, _ in everything] == utf8_order([v.key for v, _ in everything])


async def test_list_versions_honours_prefix_and_limit(catalog: Catalog, bucket: Bucket) -> None:
    await commit_keys(catalog, bucket, ORDERED)
    assert [v.key for v, _ in await versions_of(catalog, bucket, "a")] == ORDERED[1:9]
    assert [v.key for v, _ in await versions_of(catalog, bucket, "a_")] == ["a_"]
    assert [v.key for v, _ in await versions_of(catalog, bucket, "%")] == []
    assert [v.key for v, _ in await versions_of(catalog, bucket, "", 3)] == ORDERED[:3]
    assert [v.key for v, _ in await versions_of(catalog, bucket)] == ORDERED


async def test_list_versions_with_a_prefix_and_a_position(catalog: Catalog, bucket: Bucket) -> None:
    """The position may sort before the prefix (it then bounds nothing), at a key under it, or
    past every key under it."""
    await commit_keys(catalog, bucket, ORDERED)

    async def after(prefix: str, position: tuple[str, int]) -> list[str]:
        return [v.key for v, _ in await catalog.list_versions(bucket.id, prefix, position, 100)]

    assert await after("a", ("0", 0)) == ORDERED[1:9]
    assert await after("a", ("a", 0)) == ORDERED[2:9]
    assert await after("a", ("a", 2**62)) == ORDERED[1:9]
    assert await after("a", ("a0", 0)) == ["aB", "a_", "ab"]
    assert await after("a/", ("a", 0)) == ["a/b"]
    assert await after("a", ("b", 0)) == []
