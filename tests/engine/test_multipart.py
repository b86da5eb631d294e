"""Multipart uploads in the engine: what is stored, what is trashed, and when."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from tests.engine.helpers import Env, chunks, payload

from egide.domain import InvalidPart, NoSuchUpload, ObjectVersion, shard_name
from egide.engine.multipart import MIN_PART_SIZE, CompletedPart, PartTooSmall, multipart_etag


def part_files(env: Env, upload_id: bytes, seq: int, sites: tuple[str, ...]) -> list[bool]:
    """Whether each shard file of part attempt `seq` exists."""
    return [
        env.shard_path(site, shard_name(upload_id, seq, i)).is_file()
        for i, site in enumerate(sites)
    ]


def test_complete_keeps_listed_parts_and_trashes_the_rest(env: Env) -> None:
    first, again, second, unused = (payload(MIN_PART_SIZE if n < 2 else 1000, n) for n in range(4))

    async def scenario() -> None:
        await env.store.create_bucket("b")
        mp = env.store.multipart
        upload = await mp.create("b", "k", {"content-type": "x/y"})
        replaced = await mp.upload_part(upload, 1, chunks(first))
        one = await mp.upload_part(upload, 1, chunks(again))
        two = await mp.upload_part(upload, 2, chunks(second))
        three = await mp.upload_part(upload, 3, chunks(unused))
        # Each attempt has its own seq: its own files and its own nonces.
        assert len({replaced.seq, one.seq, two.seq, three.seq}) == 4
        assert await env.store.empty_trash() == 6  # the replaced attempt of part 1
        assert part_files(env, upload.upload_id, replaced.seq, upload.sites) == [False] * 6
        version = await mp.complete(
            upload, [CompletedPart(1, one.etag, {}), CompletedPart(2, two.etag, {})]
        )
        assert await env.store.empty_trash() == 6  # part 3, never used
        assert part_files(env, upload.upload_id, three.seq, upload.sites) == [False] * 6
        assert version.parts == (one, two)
        assert await env.get("b", "k") == again + second
        assert await env.read(version, MIN_PART_SIZE - 3, MIN_PART_SIZE + 2) == (
            again[-3:] + second[:3]
        )
        await env.store.delete_object("b", "k")
        assert await env.store.empty_trash() == 18  # 2 parts and the completion record

    env.run(scenario)
    assert env.all_files("shards") == []


def test_abort_trashes_every_part(env: Env) -> None:
    async def scenario() -> None:
        await env.store.create_bucket("b")
        mp = env.store.multipart
        upload = await mp.create("b", "k", {})
        for number in (1, 2):
            await mp.upload_part(upload, number, chunks(payload(3000, number)))
        await mp.abort(upload)
        with pytest.raises(NoSuchUpload):
            await mp.upload("b", "k", upload.upload_id)
        assert await env.store.empty_trash() == 12

    env.run(scenario)
    assert env.all_files("shards") == []


def test_part_finished_after_abort_is_trashed(env: Env) -> None:
    """A part whose upload is aborted while it streams must not leave its shards behind."""

    async def scenario() -> None:
        await env.store.create_bucket("b")
        mp = env.store.multipart
        upload = await mp.create("b", "k", {})

        async def body() -> AsyncIterator[bytes]:
            yield payload(100_000, 1)
            await mp.abort(upload)
            yield payload(100_000, 2)

        with pytest.raises(NoSuchUpload):
            await mp.upload_part(upload, 1, body())
        assert await env.store.empty_trash() == 6

    env.run(scenario)
    assert env.all_files("shards") == []


def test_abandoned_uploads_are_aborted(env: Env) -> None:
    async def scenario() -> None:
        await env.store.create_bucket("b")
        mp = env.store.multipart
        upload = await mp.create("b", "k", {})
        await mp.upload_part(upload, 1, chunks(payload(5000)))
        assert await mp.abort_abandoned(older_than=3600) == 0
        assert await mp.abort_abandoned(older_than=0) == 1
        assert await env.store.empty_trash() == 6

    env.run(scenario)
    assert env.all_files("shards") == []


def test_small_part_before_the_last_is_refused(env: Env) -> None:
    async def scenario() -> None:
        await env.store.create_bucket("b")
        mp = env.store.multipart
        upload = await mp.create("b", "k", {})
        one = await mp.upload_part(upload, 1, chunks(payload(MIN_PART_SIZE - 1)))
        two = await mp.upload_part(upload, 2, chunks(payload(10)))
        with pytest.raises(PartTooSmall):
            await mp.complete(
                upload, [CompletedPart(1, one.etag, {}), CompletedPart(2, two.etag, {})]
            )
        # Nothing changed: the upload is still there and completes with the last part alone.
        await mp.complete(upload, [CompletedPart(2, two.etag, {})])
        assert await env.get("b", "k") == payload(10)

    env.run(scenario)


def test_completion_loses_a_race_with_a_part_upload(env: Env) -> None:
    """The catalog refuses a completion whose parts were replaced after they were read."""

    async def scenario() -> None:
        await env.store.create_bucket("b")
        mp = env.store.multipart
        upload = await mp.create("b", "k", {})
        stale = await mp.upload_part(upload, 1, chunks(payload(10)))
        await mp.upload_part(upload, 1, chunks(payload(20)))  # replaced meanwhile
        version = ObjectVersion(
            bucket_id=upload.bucket_id, key="k", version_id=upload.upload_id, size=10,
            etag=multipart_etag([stale]), last_modified=0.0,
            wrapped_data_key=upload.wrapped_data_key, k=upload.k, m=upload.m,
            block_size=upload.block_size, sites=upload.sites, parts=(stale,),
        )  # fmt: skip
        with pytest.raises(InvalidPart):
            await env.catalog.complete_upload(version)
        assert len(await mp.list_parts(upload, 0, 10)) == 1  # the upload is untouched

    env.run(scenario)
