"""The object store end to end over real sites and a real catalog: round trips on both write
paths (packed and streamed), ranges, aborted writes, overwrites and the trash, degraded reads,
buckets."""

from __future__ import annotations

import asyncio
import hashlib
import shutil
from collections import Counter
from pathlib import Path

import pytest
from tests.clocks import ManualClock
from tests.engine.helpers import BLOCK, PACK, Env, chunks, make_env, payload

from egide.coding.shardfile import HEADER_SIZE
from egide.domain import (
    BucketExists,
    BucketNotEmpty,
    BucketNotFound,
    KeyNotFound,
    ShardsUnavailable,
    SitesUnavailable,
)
from egide.engine.store import BUCKET_CACHE_SECONDS
from egide.inspection.scan import shard_files

SIZES = [0, 1, PACK, PACK + 1, BLOCK, 3 * BLOCK + 5]


class Refused(Exception):
    pass


async def _refuse(etag: str) -> None:
    raise Refused(etag)


def _flip(path: object, offset: int) -> None:
    with open(path, "r+b") as f:  # type: ignore[call-overload]
        f.seek(offset)
        byte = f.read(1)
        f.seek(offset)
        f.write(bytes([byte[0] ^ 0x5A]))


# -- round trips ------------------------------------------------------------------------------


@pytest.mark.parametrize("size", SIZES)
def test_round_trip(env: Env, size: int) -> None:
    data = payload(size, seed=size)
    headers = {"content-type": "text/plain", "x-amz-meta-é": "😀"}

    async def scenario() -> None:
        await env.store.create_bucket("b")
        put = await env.put("b", "dir/obj", data, headers=headers)
        assert put.etag == hashlib.md5(data).hexdigest()
        assert put.size == size
        head = await env.store.head_object("b", "dir/obj")
        assert head == put
        assert head.headers == headers
        assert (head.pack is not None) == (size <= PACK)
        assert await env.read(head) == data

    env.run(scenario)
    # A streamed object has its own k+m shard files; a packed one lives in a pack file.
    if size <= PACK:
        assert all(f.name.startswith("pack-") for f in env.all_files("shards"))
    else:
        assert len(env.all_files("shards")) == 6
    assert env.all_files("tmp") == []


@pytest.mark.parametrize("size", SIZES)
def test_round_trip_of_unannounced_size(env: Env, size: int) -> None:
    """A body whose size is known at its end only (HTTP chunked): packed when it turns out
    small, streamed otherwise, with its true size."""
    data = payload(size, seed=size + 1)

    async def scenario() -> None:
        await env.store.create_bucket("b")
        put = await env.store.put_object(
            "b", "k", chunks(data), size=None, headers={"content-type": "text/plain"}
        )
        assert (put.size, put.etag) == (size, hashlib.md5(data).hexdigest())
        head = await env.store.head_object("b", "k")
        assert head == put and (head.pack is not None) == (size <= PACK)
        assert await env.read(head) == data

    env.run(scenario)
    assert env.all_files("tmp") == []


def test_ranges_at_block_edges(env: Env) -> None:
    size = 3 * BLOCK + 5
    data = payload(size, seed=1)
    small = payload(PACK, seed=2)
    ranges = [
        (0, 0), (0, BLOCK - 1), (BLOCK - 1, BLOCK - 1), (BLOCK - 1, BLOCK), (BLOCK, BLOCK),
        (BLOCK, 2 * BLOCK - 1), (2 * BLOCK - 1, 3 * BLOCK), (3 * BLOCK, size - 1),
        (size - 1, size - 1), (5, 2 * BLOCK + 7), (1, size - 2), (0, size - 1),
    ]  # fmt: skip
    small_ranges = [(0, 0), (0, PACK - 1), (PACK - 1, PACK - 1), (100, 8000)]

    async def scenario() -> None:
        await env.store.create_bucket("b")
        big = await env.put("b", "big", data)
        packed = await env.put("b", "small", small)
        for first, last in ranges:
            assert await env.read(big, first, last) == data[first : last + 1], (first, last)
        for first, last in small_ranges:
            assert await env.read(packed, first, last) == small[first : last + 1], (first, last)

    env.run(scenario)


@pytest.mark.parametrize("size", [PACK, PACK + 1, 3 * BLOCK + 5])
def test_hashers_see_every_byte(env: Env, size: int) -> None:
    data = payload(size, seed=3)

    async def scenario() -> None:
        await env.store.create_bucket("b")
        sha = hashlib.sha256()
        seen: list[str] = []

        async def check(etag: str) -> None:
            seen.append(etag)

        version = await env.put("b", "k", data, hashers=[sha], before_commit=check)
        assert sha.hexdigest() == hashlib.sha256(data).hexdigest()
        assert seen == [hashlib.md5(data).hexdigest()] == [version.etag]

    env.run(scenario)


# -- aborted writes ---------------------------------------------------------------------------


@pytest.mark.parametrize("size", [3 * BLOCK + 5, 5 * 1024 * 1024 + 3])
def test_refused_streamed_object_leaves_nothing(env: Env, size: int) -> None:
    # 5 MiB makes every shard larger than the site's write buffer: temp files exist on disk.
    data = payload(size, seed=4)

    async def scenario() -> None:
        await env.store.create_bucket("b")
        with pytest.raises(Refused) as refused:
            await env.put("b", "k", data, before_commit=_refuse)
        assert str(refused.value) == hashlib.md5(data).hexdigest()
        with pytest.raises(KeyNotFound):
            await env.store.head_object("b", "k")
        assert (await env.store.list_objects("b")).objects == []

    env.run(scenario)
    assert env.all_files("shards") == []
    assert env.all_files("tmp") == []


def test_refused_packed_object_leaves_nothing(env: Env) -> None:
    data = payload(1000, seed=5)

    async def scenario() -> None:
        await env.store.create_bucket("b")
        with pytest.raises(Refused):
            await env.put("b", "k", data, before_commit=_refuse)
        with pytest.raises(KeyNotFound):
            await env.store.head_object("b", "k")

    env.run(scenario)
    assert env.sql("SELECT name FROM packs WHERE live > 0") == []
    assert env.sql("SELECT count(*) FROM versions") == [(0,)]
    assert env.all_files("shards") == []
    assert env.all_files("tmp") == []


@pytest.mark.parametrize("size", [100, 3 * BLOCK + 5])
def test_refused_overwrite_keeps_the_current_version(env: Env, size: int) -> None:
    old, new = payload(size, seed=6), payload(size, seed=7)

    async def scenario() -> None:
        await env.store.create_bucket("b")
        first = await env.put("b", "k", old)
        with pytest.raises(Refused):
            await env.put("b", "k", new, before_commit=_refuse)
        assert await env.store.head_object("b", "k") == first
        assert await env.store.empty_trash() == 0
        assert await env.get("b", "k") == old

    env.run(scenario)


@pytest.mark.parametrize("size", [100, 3 * BLOCK + 5])
def test_write_with_a_site_missing_fails_and_commits_nothing(env: Env, size: int) -> None:
    shutil.rmtree(env.sites[2].root)
    data = payload(size, seed=8)

    async def scenario() -> None:
        await env.store.create_bucket("b")
        with pytest.raises(SitesUnavailable):
            await env.put("b", "k", data)
        with pytest.raises(KeyNotFound):
            await env.store.head_object("b", "k")

    env.run(scenario)
    assert env.sql("SELECT count(*) FROM versions") == [(0,)]
    assert env.sql("SELECT name FROM packs WHERE live > 0") == []
    assert env.all_files("shards") == []
    assert env.all_files("tmp") == []


# -- packing ----------------------------------------------------------------------------------


def test_concurrent_small_puts_share_packs(env: Env) -> None:
    bodies = {f"obj/{i:02d}": payload(i * 97 % PACK + 1, seed=i) for i in range(40)}

    async def scenario() -> None:
        await env.store.create_bucket("b")
        versions = await asyncio.gather(*(env.put("b", k, d) for k, d in bodies.items()))
        packs = Counter(v.pack for v in versions)
        assert None not in packs
        assert len(packs) < len(versions)
        for key, data in bodies.items():
            assert await env.get("b", key) == data

    env.run(scenario)
    live = env.sql("SELECT sum(live), count(*) FROM packs")
    assert live[0][0] == 40
    assert len(env.all_files("shards")) == live[0][1] * 6


def test_concurrent_small_puts_of_one_key(env: Env) -> None:
    bodies = [payload(300, seed=100 + i) for i in range(20)]

    async def scenario() -> None:
        await env.store.create_bucket("b")
        versions = await asyncio.gather(*(env.put("b", "same", d) for d in bodies))
        if max(Counter(v.pack for v in versions).values()) < 2:
            pytest.skip("no two PUTs of the key landed in one pack this time")
        current = await env.store.head_object("b", "same")
        await env.store.empty_trash()
        assert await env.read(current) == bodies[versions.index(current)]

    env.run(scenario)


# -- overwrite, delete, trash -----------------------------------------------------------------


def test_overwritten_streamed_object_is_trashed(env: Env) -> None:
    old, new = payload(3 * BLOCK + 5, seed=9), payload(BLOCK + 1, seed=10)

    async def scenario() -> None:
        await env.store.create_bucket("b")
        first = await env.put("b", "k", old)
        second = await env.put("b", "k", new)
        assert all(p.is_file() for p in env.shard_paths(first))  # until the trash is emptied
        assert await env.store.empty_trash() == 6
        assert not any(p.exists() for p in env.shard_paths(first))
        assert all(p.is_file() for p in env.shard_paths(second))
        assert await env.get("b", "k") == new
        await env.store.delete_object("b", "k")
        assert await env.store.empty_trash() == 6
        with pytest.raises(KeyNotFound):
            await env.store.head_object("b", "k")

    env.run(scenario)
    assert env.all_files("shards") == []


def test_pack_lives_while_any_of_its_objects_is_current(env: Env) -> None:
    bodies = {f"k{i}": payload(200 + i, seed=20 + i) for i in range(12)}

    async def scenario() -> None:
        await env.store.create_bucket("b")
        versions = await asyncio.gather(*(env.put("b", k, d) for k, d in bodies.items()))
        by_pack = Counter(v.pack for v in versions)
        pack, count = by_pack.most_common(1)[0]
        assert count >= 3
        members = [v for v in versions if v.pack == pack]
        files = env.shard_paths(members[0])
        assert len(set(files)) == 6

        # Overwrite the first (the new version goes to another pack), delete all but the last.
        replaced = payload(500, seed=99)
        new = await env.put("b", members[0].key, replaced)
        assert new.pack != pack
        for version in members[1:-1]:
            await env.store.delete_object("b", version.key)
        await env.store.empty_trash()
        assert all(f.is_file() for f in files)
        last = members[-1]
        assert await env.get("b", last.key) == bodies[last.key]
        assert await env.get("b", members[0].key) == replaced

        await env.store.delete_object("b", last.key)
        assert await env.store.empty_trash() == 6
        assert not any(f.exists() for f in files)
        assert env.sql("SELECT count(*) FROM packs WHERE name = ?", pack) == [(0,)]
        # Every other object is untouched.
        gone = {v.key for v in members[1:]}
        for key, data in bodies.items():
            if key not in gone:
                assert await env.get("b", key) == (replaced if key == members[0].key else data)

    env.run(scenario)


def test_packed_overwrite_of_streamed_and_back(env: Env) -> None:
    big, small = payload(BLOCK + 7, seed=30), payload(10, seed=31)

    async def scenario() -> None:
        await env.store.create_bucket("b")
        v1 = await env.put("b", "k", big)
        v2 = await env.put("b", "k", small)
        await env.store.empty_trash()
        assert not any(p.exists() for p in env.shard_paths(v1))
        assert await env.get("b", "k") == small
        v3 = await env.put("b", "k", big)
        assert await env.store.empty_trash() == 6
        assert not any(p.exists() for p in env.shard_paths(v2))
        assert await env.get("b", "k") == big
        assert all(p.is_file() for p in env.shard_paths(v3))

    env.run(scenario)


# -- degraded reads ---------------------------------------------------------------------------

DEGRADED_SIZES = {"tiny": 1, "small": 500, "full-pack": PACK, "one-block": BLOCK, "big": 200_005}


def test_reads_survive_two_lost_sites_not_three(env: Env) -> None:
    bodies = {key: payload(size, seed=size) for key, size in DEGRADED_SIZES.items()}

    async def scenario() -> None:
        await env.store.create_bucket("b")
        for key, data in bodies.items():
            await env.put("b", key, data)
        shutil.rmtree(env.sites[0].root)
        shutil.rmtree(env.sites[3].root)
        for key, data in bodies.items():
            assert await env.get("b", key) == data
            version = await env.store.head_object("b", key)
            assert await env.read(version, 1, version.size - 1) == data[1:]
        shutil.rmtree(env.sites[4].root)
        for key in bodies:
            version = await env.store.head_object("b", key)
            with pytest.raises(ShardsUnavailable):
                await env.store.reader(version, 0, version.size - 1)

    env.run(scenario)


def test_corrupt_piece_is_rebuilt_from_parity(env: Env) -> None:
    bodies = {key: payload(size, seed=size + 1) for key, size in DEGRADED_SIZES.items()}

    async def scenario() -> None:
        await env.store.create_bucket("b")
        versions = {}
        for key, data in bodies.items():
            versions[key] = await env.put("b", key, data)
        for key in ("small", "big"):
            version = versions[key]
            # Shard 0 holds a data piece: a healthy read asks it first.
            _flip(env.shard_paths(version)[0], version.pack_offset + HEADER_SIZE + 3)
        for key, data in bodies.items():
            assert await env.get("b", key) == data
        big = versions["big"]
        assert await env.read(big, BLOCK - 10, BLOCK + 10) == bodies["big"][BLOCK - 10 : BLOCK + 11]

    env.run(scenario)


def test_three_corrupt_pieces_fail_rather_than_return_wrong_bytes(env: Env) -> None:
    data = payload(BLOCK + 100, seed=40)

    async def scenario() -> None:
        await env.store.create_bucket("b")
        version = await env.put("b", "k", data)
        for path in env.shard_paths(version)[:3]:
            _flip(path, HEADER_SIZE + 50)
        with pytest.raises(ShardsUnavailable):
            await env.read(version)
        # Block 1 is intact: a range inside it is still served.
        assert await env.read(version, BLOCK, BLOCK + 99) == data[BLOCK:]

    env.run(scenario)


# -- buckets ----------------------------------------------------------------------------------


def test_buckets(env: Env) -> None:
    async def scenario() -> None:
        created = await env.store.create_bucket("photos")
        await env.store.create_bucket("docs")
        assert [b.name for b in await env.store.list_buckets()] == ["docs", "photos"]
        assert (await env.store.bucket("photos")).id == created.id
        with pytest.raises(BucketExists):
            await env.store.create_bucket("photos")

        await env.put("photos", "a.jpg", b"jpeg")
        with pytest.raises(BucketNotEmpty):
            await env.store.delete_bucket("photos")
        await env.store.delete_object("photos", "a.jpg")
        await env.store.delete_bucket("photos")
        assert [b.name for b in await env.store.list_buckets()] == ["docs"]

        for name in ("photos", "nope"):
            with pytest.raises(BucketNotFound):
                await env.store.bucket(name)
            with pytest.raises(BucketNotFound):
                await env.store.delete_bucket(name)
            with pytest.raises(BucketNotFound):
                await env.put(name, "k", b"x")
            with pytest.raises(BucketNotFound):
                await env.put(name, "k", payload(PACK + 1))
            with pytest.raises(BucketNotFound):
                await env.store.head_object(name, "k")
            with pytest.raises(BucketNotFound):
                await env.store.list_objects(name)
            with pytest.raises(BucketNotFound):
                await env.store.delete_object(name, "k")

        # A bucket of the same name is a new, empty bucket.
        again = await env.store.create_bucket("photos")
        assert again.id != created.id
        assert (await env.store.list_objects("photos")).objects == []
        await env.put("photos", "b", b"data")
        assert await env.get("photos", "b") == b"data"

    env.run(scenario)


def test_object_operations_see_a_bucket_deleted_elsewhere_once_the_cache_ends(
    tmp_path: Path,
) -> None:
    """Object operations use a bucket lookup up to BUCKET_CACHE_SECONDS old: a bucket another
    process deleted still answers as empty until then, and NoSuchBucket after."""
    clock = ManualClock()
    env = make_env(tmp_path, clock=clock)

    async def scenario() -> None:
        await env.store.create_bucket("gone")
        assert (await env.store.list_objects("gone")).objects == []  # the lookup is cached
        await env.catalog.delete_bucket("gone")  # by another gateway, or the CLI
        clock.advance(BUCKET_CACHE_SECONDS - 0.25)
        with pytest.raises(KeyNotFound):
            await env.store.head_object("gone", "k")
        clock.advance(0.25)
        with pytest.raises(BucketNotFound):
            await env.store.head_object("gone", "k")

    env.run(scenario)


# -- size padding (decision 0017) ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("size", "padded"),
    # 4 MiB + 1 pads to the next 128 KiB: one byte of body, then 65,535 zeros in its block and
    # a block of zeros only. 3 blocks + 5 bytes pads within its last block.
    [(0, 4096), (1, 4096), (PACK + 1, 17_408), (3 * BLOCK + 5, 200_704),
     (4 * 1024 * 1024 + 1, 4 * 1024 * 1024 + 128 * 1024)],
)  # fmt: skip
def test_padded_round_trip(env: Env, size: int, padded: int) -> None:
    """The blocks hold the padded size; hashes, reads and ranges see the body only."""
    data = payload(size, seed=size)
    sha = hashlib.sha256()

    async def scenario() -> None:
        await env.store.create_bucket("b")
        put = await env.put("b", "obj", data, hashers=[sha])
        assert (put.size, put.stored_size) == (size, padded)
        assert put.etag == hashlib.md5(data).hexdigest()
        assert sha.digest() == hashlib.sha256(data).digest()
        assert await env.store.head_object("b", "obj") == put
        layout = shard_files(put)[0].layout
        assert layout.size == padded
        if put.pack is None:  # each standalone piece file is laid out for the padded size
            for path in env.shard_paths(put):
                assert path.stat().st_size > HEADER_SIZE + layout.shard_data_size()
        if size:
            assert await env.get("b", "obj") == data
            assert await env.read(put, size - 1) == data[-1:]
            assert await env.read(put, size // 2, size - 1) == data[size // 2 :]

    env.run(scenario)
