"""ListObjects over a real catalog filled through the store, checked against a plain model:
prefixes, delimiters, common prefixes rolled up, paging without duplicates or gaps."""

from __future__ import annotations

import asyncio
import hashlib
import itertools
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import pytest
from tests.engine.helpers import make_env

from egide.catalog import open_catalog
from egide.config import Settings
from egide.crypto.keyring import Keyring
from egide.domain import ObjectVersion
from egide.engine import listing
from egide.engine.listing import Listing
from egide.engine.store import ObjectStore
from egide.sites import local
from egide.sites.local import LocalSite

T = TypeVar("T")

KEYS = sorted(
    {
        *(f"a/b/c{i}" for i in range(50)),
        *(f"a/{i:03d}" for i in range(30)),
        "a", "a/", "a/b", "a//b", "a//c", "a///d", "a-", "a.", "a0",
        *(f"b{i:03d}" for i in range(100)),
        *(f"c/x/y/{i}" for i in range(20)),
        "d-e", "d.txt", "d/", "d//", "d/e/f",
        "é/1", "é/2", "éa", "日本/語", "日本/語/x", "日本語", "😀", "😀/x", "😀//y",
        "ünïcödé/ß", "z\u00ff", "z\uffff", "\U0010fffd/a",
    }
)  # fmt: skip
DELETED = {f"b{i:03d}" for i in range(90, 100)} | {"a/b/c7"}
CURRENT = [key for key in KEYS if key not in DELETED]
PREFIXES = ["", "a", "a/", "a//", "a/b", "a/b/", "b0", "c/x/", "d", "é", "日本", "😀", "zzz"]
DELIMITERS = ["", "/", "//"]


@dataclass
class Filled:
    root: Path
    keyring: Keyring
    etags: dict[str, str]


def _body(key: str) -> bytes:
    return key.encode() * 3


@pytest.fixture(scope="module")
def filled(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Filled]:
    """One catalog with every key of KEYS committed through the store (some overwritten,
    some deleted); each test opens it again in its own event loop."""
    root = tmp_path_factory.mktemp("listing")
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(local, "_sync_groups", {})
        env = make_env(root)

        async def fill() -> None:
            await env.store.create_bucket("b")
            await env.store.create_bucket("other")
            for start in range(0, len(KEYS), 60):
                await asyncio.gather(
                    *(env.put("b", key, b"old") for key in KEYS[start : start + 60])
                )
            await asyncio.gather(*(env.put("b", key, _body(key)) for key in KEYS))
            await asyncio.gather(*(env.put("other", key, b"x") for key in KEYS[:40]))
            for key in DELETED:
                await env.store.delete_object("b", key)

        env.run(fill)
        yield Filled(root, env.keyring, {k: hashlib.md5(_body(k)).hexdigest() for k in KEYS})


def _run(filled: Filled, scenario: Callable[[ObjectStore], Awaitable[T]]) -> T:
    async def main() -> T:
        catalog = open_catalog(Settings(data_dir=filled.root))
        sites = [LocalSite(f"site-{i}", filled.root / f"site-{i}") for i in range(6)]
        store = ObjectStore(catalog, filled.keyring, sites, k=4, m=2, block_size=65536)
        try:
            return await scenario(store)
        finally:
            await catalog.close()

    return asyncio.run(main())


def expected(prefix: str, delimiter: str, keys: list[str] = CURRENT) -> list[tuple[str, bool]]:
    """Every entry of a full listing, in order: (key, False) or (common prefix, True)."""
    entries = set()
    for key in keys:
        if not key.startswith(prefix):
            continue
        pos = key.find(delimiter, len(prefix)) if delimiter else -1
        entries.add((key[: pos + len(delimiter)], True) if pos >= 0 else (key, False))
    return sorted(entries)


def entries_of(page: Listing) -> list[tuple[str, bool]]:
    return sorted([(v.key, False) for v in page.objects] + [(p, True) for p in page.prefixes])


async def list_all(store: ObjectStore, prefix: str, delimiter: str, max_keys: int) -> list[Listing]:
    pages: list[Listing] = []
    after: str | None = None
    after_is_prefix = False
    while True:
        page = await store.list_objects(
            "b", prefix=prefix, delimiter=delimiter, after=after,
            after_is_prefix=after_is_prefix, max_keys=max_keys,
        )  # fmt: skip
        pages.append(page)
        assert len(pages) <= len(KEYS) + 1, "paging does not progress"
        if not page.truncated:
            return pages
        after, after_is_prefix = page.last, page.last_is_prefix


@pytest.fixture(params=[1000, 3, 1], ids=lambda n: f"page{n}")
def catalog_page(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> int:
    """The rows the listing asks the catalog for at a time (small: many round trips)."""
    monkeypatch.setattr(listing, "_PAGE", request.param)
    return int(request.param)


def test_full_listings_match_the_model(filled: Filled, catalog_page: int) -> None:
    async def scenario(store: ObjectStore) -> None:
        for prefix, delimiter in itertools.product(PREFIXES, DELIMITERS):
            want = expected(prefix, delimiter)
            page = await store.list_objects("b", prefix=prefix, delimiter=delimiter)
            assert entries_of(page) == want, (prefix, delimiter)
            assert not page.truncated
            if want:
                assert (page.last, page.last_is_prefix) == want[-1]
            for version in page.objects:
                assert version.etag == filled.etags[version.key]
                assert version.size == len(_body(version.key))

    _run(filled, scenario)


@pytest.mark.parametrize("max_keys", [1, 2, 7, 1000])
def test_paging_returns_each_entry_once(filled: Filled, catalog_page: int, max_keys: int) -> None:
    async def scenario(store: ObjectStore) -> None:
        for prefix, delimiter in itertools.product(PREFIXES, DELIMITERS):
            want = expected(prefix, delimiter)
            pages = await list_all(store, prefix, delimiter, max_keys)
            got = [entry for page in pages for entry in entries_of(page)]
            assert got == want, (prefix, delimiter, max_keys)
            for page in pages[:-1]:
                assert page.truncated
                assert len(entries_of(page)) == max_keys
                assert (page.last, page.last_is_prefix) == entries_of(page)[-1]
            assert not pages[-1].truncated
            assert len(entries_of(pages[-1])) <= max_keys
            assert pages[-1].objects or pages[-1].prefixes or not want

    _run(filled, scenario)


def test_common_prefixes_roll_up(filled: Filled) -> None:
    async def scenario(store: ObjectStore) -> None:
        top = await store.list_objects("b", delimiter="/")
        assert "a/" in top.prefixes and "c/" in top.prefixes and "d/" in top.prefixes
        assert [v.key for v in top.objects if v.key.startswith("a")] == ["a", "a-", "a.", "a0"]
        assert not any(v.key.startswith("c/") for v in top.objects)

        under_a = await store.list_objects("b", prefix="a/", delimiter="/")
        assert under_a.prefixes == ["a//", "a/b/"]
        assert [v.key for v in under_a.objects][:2] == ["a/", "a/000"]
        assert "a/b" in [v.key for v in under_a.objects]

        # The delimiter repeated: "a//b" rolls up at its first delimiter after the prefix.
        double = await store.list_objects("b", prefix="a//", delimiter="/")
        assert double.prefixes == ["a///"]
        assert [v.key for v in double.objects] == ["a//b", "a//c"]
        wide = await store.list_objects("b", prefix="a", delimiter="//")
        assert wide.prefixes == ["a//"]
        assert "a/b/c0" in [v.key for v in wide.objects]

        emoji = await store.list_objects("b", prefix="😀", delimiter="/")
        assert [v.key for v in emoji.objects] == ["😀"]
        assert emoji.prefixes == ["😀/"]
        japanese = await store.list_objects("b", prefix="日本/", delimiter="/")
        assert [v.key for v in japanese.objects] == ["日本/語"]
        assert japanese.prefixes == ["日本/語/"]

    _run(filled, scenario)


def test_max_keys_zero_and_edges(filled: Filled) -> None:
    async def scenario(store: ObjectStore) -> None:
        for delimiter in DELIMITERS:
            zero = await store.list_objects("b", delimiter=delimiter, max_keys=0)
            assert zero.objects == [] and zero.prefixes == [] and not zero.truncated
        nothing = await store.list_objects("b", prefix="nothing-here", delimiter="/")
        assert nothing.objects == [] and nothing.prefixes == [] and not nothing.truncated
        exact = await store.list_objects("b", prefix="b050")
        assert [v.key for v in exact.objects] == ["b050"]
        # Deleted keys are gone, overwritten ones appear once with their current version.
        flat = await store.list_objects("b", prefix="b")
        assert [v.key for v in flat.objects] == [f"b{i:03d}" for i in range(90)]
        # A page filled exactly is not truncated when nothing follows.
        full = await store.list_objects("b", prefix="b", max_keys=90)
        assert len(full.objects) == 90 and not full.truncated
        more = await store.list_objects("b", prefix="b", max_keys=89)
        assert len(more.objects) == 89 and more.truncated
        # Another bucket's keys never show.
        other = await store.list_objects("other")
        assert [v.key for v in other.objects] == KEYS[:40]

    _run(filled, scenario)


@pytest.mark.parametrize(
    ("after", "prefix", "delimiter"),
    [
        ("b050", "", ""),
        ("b0505", "b", ""),
        ("a/b", "a/", "/"),
        ("a/099", "a/", "/"),
        ("b", "", "/"),
        ("é", "", "/"),
        ("\U0010fffd", "", "/"),
        ("zzz", "", "/"),
    ],
)
def test_start_after_between_entries(
    filled: Filled, after: str, prefix: str, delimiter: str
) -> None:
    async def scenario(store: ObjectStore) -> None:
        want = [e for e in expected(prefix, delimiter) if e[0] > after]
        page = await store.list_objects("b", prefix=prefix, delimiter=delimiter, after=after)
        assert entries_of(page) == want
        assert not page.truncated

    _run(filled, scenario)


def test_model_has_no_duplicate_names() -> None:
    # No key equals a common prefix in the model (a key holding the delimiter rolls up), so
    # "each entry once" means each name once.
    for prefix, delimiter in itertools.product(PREFIXES, DELIMITERS):
        names = [name for name, _ in expected(prefix, delimiter)]
        assert len(names) == len(set(names))


def test_listed_versions_read_back(filled: Filled) -> None:
    async def scenario(store: ObjectStore) -> None:
        page = await store.list_objects("b", prefix="日本")
        versions: list[ObjectVersion] = page.objects
        assert [v.key for v in versions] == ["日本/語", "日本/語/x", "日本語"]
        for version in versions:
            reader = await store.reader(version, 0, version.size - 1)
            assert b"".join([c async for c in reader]) == _body(version.key)

    _run(filled, scenario)
