"""The packer over real local sites and the real SQLite catalog: one pack file per site for
the objects of a batch, at the offsets it returns; failures sink the batch or one object."""

from __future__ import annotations

import asyncio
import os
import shutil
import sqlite3
import struct
import time
from collections.abc import Mapping

from tests.engine.helpers import Env

from egide.domain import (
    Bucket,
    BucketNotFound,
    ObjectVersion,
    SitesUnavailable,
    new_id,
)
from egide.engine.packer import Packer

SIZES = [1, 37, 1000, 4096, 20_000]


def _bucket(name: str = "b") -> Bucket:
    return Bucket(new_id(), name, time.time(), b"wrapped-bucket-key")


def _version(env: Env, bucket: Bucket, key: str, size: int) -> ObjectVersion:
    return ObjectVersion(
        bucket_id=bucket.id, key=key, version_id=new_id(), size=size, etag=f"etag-{key}",
        last_modified=time.time(), wrapped_data_key=b"dk", k=4, m=2, block_size=65536,
        sites=tuple(s.name for s in env.sites),
    )  # fmt: skip


def _segments(env: Env, size: int) -> dict[str, bytes]:
    """One segment per site, all of `size` bytes (as an object's shard segments are)."""
    return {site.name: os.urandom(size) for site in env.sites}


def _items(env: Env, bucket: Bucket) -> list[tuple[Mapping[str, bytes], ObjectVersion]]:
    return [
        (_segments(env, size), _version(env, bucket, f"k{i}", size)) for i, size in enumerate(SIZES)
    ]


def _packer(env: Env) -> Packer:
    return Packer({s.name: s for s in env.sites}, env.catalog)


async def _add_all(
    packer: Packer, items: list[tuple[Mapping[str, bytes], ObjectVersion]]
) -> list[ObjectVersion | BaseException]:
    return await asyncio.gather(*(packer.add(s, v) for s, v in items), return_exceptions=True)


def test_batch_lands_in_one_pack_at_the_returned_offsets(env: Env) -> None:
    bucket = _bucket()
    items = _items(env, bucket)

    async def scenario() -> list[ObjectVersion | BaseException]:
        await env.catalog.create_bucket(bucket)
        results = await _add_all(_packer(env), items)
        for result in results:
            assert isinstance(result, ObjectVersion)
            assert await env.catalog.get_object(bucket.id, result.key) == result
        return results

    results = env.run(scenario)
    versions = [r for r in results if isinstance(r, ObjectVersion)]
    names = {v.pack for v in versions}
    assert len(names) == 1
    pack = names.pop()
    assert pack is not None
    assert env.sql("SELECT live, sites FROM packs WHERE name = ?", pack) == [
        (len(SIZES), '["site-0", "site-1", "site-2", "site-3", "site-4", "site-5"]')
    ]
    offsets = [v.pack_offset for v in versions]
    assert offsets[0] == 8
    for site in env.sites:
        data = env.shard_path(site.name, pack).read_bytes()
        assert len(data) == sum(8 + size for size in SIZES)
        for (segments, _), version in zip(items, versions, strict=True):
            (length,) = struct.unpack(">Q", data[version.pack_offset - 8 : version.pack_offset])
            assert length == version.size == len(segments[site.name])
            segment = data[version.pack_offset : version.pack_offset + length]
            assert segment == segments[site.name]
    assert env.all_files("tmp") == []


def test_failing_site_fails_the_whole_batch(env: Env) -> None:
    bucket = _bucket()
    items = _items(env, bucket)
    shutil.rmtree(env.sites[4].root)

    async def scenario() -> None:
        await env.catalog.create_bucket(bucket)
        results = await _add_all(_packer(env), items)
        assert all(isinstance(r, SitesUnavailable) for r in results), results
        for _, version in items:
            assert await env.catalog.get_object(bucket.id, version.key) is None

    env.run(scenario)
    assert env.sql("SELECT count(*) FROM packs") == [(0,)]
    assert env.sql("SELECT count(*) FROM versions") == [(0,)]
    assert env.all_files("shards") == []
    assert env.all_files("tmp") == []


def test_unknown_bucket_fails_alone(env: Env) -> None:
    bucket, gone = _bucket(), _bucket("gone")  # "gone" is never created
    items = _items(env, bucket)
    items.insert(2, (_segments(env, 99), _version(env, gone, "orphan", 99)))

    async def scenario() -> list[ObjectVersion | BaseException]:
        await env.catalog.create_bucket(bucket)
        results = await _add_all(_packer(env), items)
        assert isinstance(results[2], BucketNotFound)
        assert await env.catalog.get_object(gone.id, "orphan") is None
        for result in results[:2] + results[3:]:
            assert isinstance(result, ObjectVersion)
            assert await env.catalog.get_object(bucket.id, result.key) == result
        return results

    results = env.run(scenario)
    committed = [r for r in results if isinstance(r, ObjectVersion)]
    pack = committed[0].pack
    assert {r.pack for r in committed} == {pack}
    assert env.sql("SELECT live FROM packs WHERE name = ?", pack) == [(len(SIZES),)]
    assert env.sql("SELECT count(*) FROM trash") == [(0,)]


def test_pack_goes_to_trash_with_its_last_object(env: Env) -> None:
    bucket = _bucket()
    items = _items(env, bucket)

    async def scenario() -> str:
        await env.catalog.create_bucket(bucket)
        results = await _add_all(_packer(env), items)
        pack = results[0].pack  # type: ignore[union-attr]
        assert pack is not None
        for _, version in items[:-1]:
            assert await env.catalog.delete_version(bucket.id, version.key, None)
        assert await env.catalog.trash_due(time.time() + 1, 100) == []
        assert await env.catalog.delete_version(bucket.id, items[-1][1].key, None)
        trashed = await env.catalog.trash_due(time.time() + 1, 100)
        assert sorted((t.site, t.shard) for t in trashed) == [(s.name, pack) for s in env.sites]
        return pack

    pack = env.run(scenario)
    assert env.sql("SELECT count(*) FROM packs WHERE name = ?", pack) == [(0,)]


def test_add_right_after_add_returns(env: Env) -> None:
    bucket = _bucket()

    async def scenario() -> None:
        await env.catalog.create_bucket(bucket)
        packer = _packer(env)

        async def two_in_a_row() -> None:
            await packer.add(_segments(env, 10), _version(env, bucket, "first", 10))
            await packer.add(_segments(env, 10), _version(env, bucket, "second", 10))

        await asyncio.wait_for(two_in_a_row(), 1)

    env.run(scenario)


def test_two_versions_of_one_key_in_one_batch(env: Env) -> None:
    bucket = _bucket()
    items = [(_segments(env, n), _version(env, bucket, "same", n)) for n in (10, 20)]

    async def scenario() -> None:
        await env.catalog.create_bucket(bucket)
        results = await _add_all(_packer(env), items)
        assert all(isinstance(r, ObjectVersion) for r in results), results
        current = await env.catalog.get_object(bucket.id, "same")
        assert current == results[1]
        assert current is not None and current.pack is not None
        # The pack holds the current version: it must not be in the trash.
        trashed = await env.catalog.trash_due(time.time() + 1, 100)
        assert [t for t in trashed if t.shard == current.pack] == []

    env.run(scenario)
    assert env.sql("SELECT live FROM packs") == [(1,)]


def test_an_add_cancelled_mid_pack_does_not_stall_the_others(env: Env) -> None:
    """A PUT whose client left while its pack was committing: the others of the pack and
    later ones complete; its object stands (the pack holds it)."""
    bucket = _bucket()
    items = _items(env, bucket)
    writer = sqlite3.connect(env.db_path, isolation_level=None)

    async def scenario() -> None:
        await env.catalog.create_bucket(bucket)
        writer.execute("BEGIN IMMEDIATE")  # the pack's commit waits for this write lock
        packer = _packer(env)
        adds = [asyncio.ensure_future(packer.add(s, v)) for s, v in items]
        await asyncio.sleep(0.3)
        adds[1].cancel()
        await asyncio.sleep(0)
        writer.execute("ROLLBACK")
        for add in (adds[0], *adds[2:]):
            assert isinstance(await asyncio.wait_for(add, 5), ObjectVersion)
        later = _version(env, bucket, "later", 10)
        await asyncio.wait_for(packer.add(_segments(env, 10), later), 5)
        for _, version in items:
            assert await env.catalog.get_object(bucket.id, version.key) is not None

    env.run(scenario)
    writer.close()
