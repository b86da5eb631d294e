"""A real object store for the engine tests: SQLite catalog, six local sites, a keyring.

Everything a test does runs inside one `Env.run` call (one event loop), which closes the
catalog at the end: futures of the catalog thread and of the site I/O pool are bound to it.
"""

from __future__ import annotations

import asyncio
import os
import random
import sqlite3
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from egide.catalog import Catalog, open_catalog
from egide.config import Settings
from egide.crypto.keyring import Keyring
from egide.domain import SITE_RECORD_PREFIXES, ObjectVersion, shard_name
from egide.engine.store import ObjectStore
from egide.sites.local import LocalSite

T = TypeVar("T")
K, M = 4, 2
BLOCK = 64 * 1024
PACK = 16 * 1024
#: Longest a scenario may take before it counts as hung.
SCENARIO_TIMEOUT = 60.0


async def chunks(data: bytes, seed: int | None = None) -> AsyncIterator[bytes]:
    """`data` in random-sized pieces (some empty), as an HTTP body would arrive."""
    rng = random.Random(seed if seed is not None else len(data))
    pos = 0
    while pos < len(data):
        step = rng.choice((0, 1, 7, 100, 4096, 65535, 65536, 70000, 200_000))
        yield data[pos : pos + step]
        pos += step


def payload(size: int, seed: int = 0) -> bytes:
    return random.Random(seed).randbytes(size)


def files_under(directory: Path) -> list[Path]:
    """Object data files under `directory`; the records kept on every site (bucket keys,
    delete markers …: decision 0016) are not object data and are left out."""
    if not directory.exists():
        return []
    return sorted(
        p
        for p in directory.rglob("*")
        if p.is_file() and not p.name.startswith(SITE_RECORD_PREFIXES)
    )


@dataclass
class Env:
    tmp: Path
    catalog: Catalog
    sites: list[LocalSite]
    keyring: Keyring
    store: ObjectStore

    @property
    def db_path(self) -> Path:
        return self.tmp / "catalog.sqlite3"

    def run(self, scenario: Callable[[], Awaitable[T]]) -> T:
        async def main() -> T:
            try:
                return await asyncio.wait_for(scenario(), SCENARIO_TIMEOUT)
            finally:
                await self.catalog.close()

        return asyncio.run(main())

    def site(self, name: str) -> LocalSite:
        return next(s for s in self.sites if s.name == name)

    async def put(self, bucket: str, key: str, data: bytes, **kwargs: Any) -> ObjectVersion:
        kwargs.setdefault("headers", {"content-type": "application/octet-stream"})
        return await self.store.put_object(bucket, key, chunks(data), size=len(data), **kwargs)

    async def read(self, version: ObjectVersion, first: int = 0, last: int | None = None) -> bytes:
        last = version.size - 1 if last is None else last
        reader = await self.store.reader(version, first, last)
        return b"".join([chunk async for chunk in reader])

    async def get(self, bucket: str, key: str) -> bytes:
        return await self.read(await self.store.head_object(bucket, key))

    def shard_path(self, site: str, shard: str) -> Path:
        return self.site(site).root / "shards" / shard[:2] / shard

    def shard_paths(self, version: ObjectVersion) -> list[Path]:
        """The file holding each shard of `version` (a pack file for a packed version)."""
        return [
            self.shard_path(site, version.pack or shard_name(version.version_id, 0, i))
            for i, site in enumerate(version.sites)
        ]

    def all_files(self, sub: str) -> list[Path]:
        return [f for s in self.sites for f in files_under(s.root / sub)]

    def sql(self, query: str, *args: object) -> list[tuple[Any, ...]]:
        """Read the catalog's database directly (a separate read-only connection)."""
        with sqlite3.connect(f"file:{self.db_path}?mode=ro", uri=True) as db:
            return db.execute(query, args).fetchall()


def make_env(tmp: Path, site_count: int = K + M, **store_options: Any) -> Env:
    catalog = open_catalog(Settings(data_dir=tmp))
    sites = []
    for i in range(site_count):
        site = LocalSite(f"site-{i}", tmp / f"site-{i}")
        site.prepare()
        sites.append(site)
    keyring = Keyring(os.urandom(32))
    options: dict[str, Any] = {
        "k": K, "m": M, "block_size": BLOCK, "trash_grace": 0, "pack_threshold": PACK,
    }  # fmt: skip
    options.update(store_options)
    store = ObjectStore(catalog, keyring, sites, **options)
    return Env(tmp, catalog, sites, keyring, store)
