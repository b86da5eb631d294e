"""Scrub with real bit-rot: bytes flipped in shard files, spread over sites, blocks and parts,
and in multipart completion records."""

from __future__ import annotations

from pathlib import Path

import pytest
from tests.engine.helpers import BLOCK, Env, chunks, make_env, payload
from tests.maintenance.helpers import context, flip, run_job

from egide.coding.blocks import Layout
from egide.coding.shardfile import HEADER_SIZE
from egide.domain import ObjectVersion, shard_name
from egide.engine.multipart import MIN_PART_SIZE, CompletedPart
from egide.maintenance.damage import inspect


def test_scrub_finds_exactly_the_rotten_shards_and_repairs_them(tmp_path: Path) -> None:
    env = make_env(tmp_path)
    data = {f"k{i}": payload(3 * BLOCK + 7 * i) for i in range(6)}

    async def scenario() -> None:
        await env.store.create_bucket("b")
        versions = {key: await env.put("b", key, value) for key, value in data.items()}
        # Rot in the pieces of two objects, on two different sites.
        hit: dict[str, ObjectVersion] = {"k1": versions["k1"], "k4": versions["k4"]}
        flip(env.shard_paths(hit["k1"])[0], 100)
        flip(env.shard_paths(hit["k4"])[3], 5000)
        for key, value in data.items():  # reads rebuild around the rot meanwhile
            assert await env.get("b", key) == value
        report = await run_job(env, "scrub", {"repair": False})
        assert report.state == "done"
        assert report.progress["damaged"] == 2
        assert report.progress["bad_pieces"] == 2
        queued = {vid for vid, _ in await env.catalog.damaged(None, 100)}
        assert queued == {v.version_id for v in hit.values()}
        fixed = await run_job(env, "repair", {"queue_only": True})
        assert fixed.progress["repaired"] == 2
        assert await env.catalog.damaged(None, 100) == []
        clean = await run_job(env, "scrub")
        assert clean.progress.get("bad_pieces", 0) == 0
        assert clean.progress["items"] == len(data)
        for key, value in data.items():
            assert await env.get("b", key) == value

    env.run(scenario)


def test_scrub_repairs_what_it_finds_by_default(tmp_path: Path) -> None:
    env = make_env(tmp_path)

    async def scenario(env: Env = env) -> None:
        await env.store.create_bucket("b")
        version = await env.put("b", "k", payload(2 * BLOCK))
        flip(env.shard_paths(version)[2], 64)
        job = await run_job(env, "scrub")
        assert job.progress["repaired"] == 1
        assert job.progress["bytes"] > 6 * 2 * BLOCK // 4  # every shard was read
        again = await run_job(env, "scrub")
        assert again.progress.get("bad_pieces", 0) == 0

    env.run(scenario)


async def _three_parts(env: Env, key: str) -> tuple[ObjectVersion, bytes]:
    """A multipart object of three parts (two of the least size, one of three blocks)."""
    mp = env.store.multipart
    upload = await mp.create("b", key, {})
    bodies = [payload(MIN_PART_SIZE, 1), payload(MIN_PART_SIZE, 2), payload(3 * BLOCK, 3)]
    done = [await mp.upload_part(upload, n, chunks(body)) for n, body in enumerate(bodies, 1)]
    version = await mp.complete(upload, [CompletedPart(p.number, p.etag, {}) for p in done])
    return version, b"".join(bodies)


def _flip_piece(env: Env, version: ObjectVersion, index: int, seq: int, block: int) -> None:
    """Rot in one block's piece of shard `index` of part attempt `seq` (0: not multipart)."""
    size = (
        next(p.stored_size for p in version.parts if p.seq == seq) if seq else version.stored_size
    )
    layout = Layout(version.k, version.m, version.block_size, size)
    path = env.shard_path(version.sites[index], version.shard(index, seq))
    flip(path, layout.piece_offset(HEADER_SIZE, block) + 7)


async def _spread_damage(env: Env) -> dict[str, tuple[ObjectVersion, bytes]]:
    """The issue's case: one rotten piece in each of three blocks (and of three parts), each
    on another shard; every block keeps five good pieces of six."""
    await env.store.create_bucket("b")
    blocks = payload(3 * BLOCK, 9)
    stored = {"blocks": (await env.put("b", "blocks", blocks), blocks)}
    stored["parts"] = await _three_parts(env, "parts")
    version = stored["blocks"][0]
    for piece, block in ((0, 0), (1, 1), (2, 2)):
        _flip_piece(env, version, piece, 0, block)
    version = stored["parts"][0]
    for piece, part in enumerate(version.parts):
        _flip_piece(env, version, piece, part.seq, 0)
    return stored


@pytest.mark.parametrize(
    ("kind", "params"), [("scrub", {}), ("repair", {"deep": True})], ids=["scrub", "deep-repair"]
)
def test_damage_spread_over_blocks_and_parts_is_healed(
    tmp_path: Path, kind: str, params: dict[str, object]
) -> None:
    env = make_env(tmp_path)

    async def scenario() -> None:
        stored = await _spread_damage(env)
        found = await run_job(env, "scrub", {"repair": False})
        assert found.progress["damaged"] == 2
        assert found.progress["bad_pieces"] == 6
        job = await run_job(env, kind, params)
        assert job.state == "done", job.error
        assert job.progress.get("unrecoverable", 0) == 0
        assert job.progress["repaired"] == 2
        assert job.progress["bad_pieces"] == 6
        assert await env.catalog.damaged(None, 10) == []
        ctx = context(env)
        for version, _ in stored.values():  # every piece rewritten whole
            now = await env.catalog.get_version_by_id(version.version_id)
            assert now is not None and now.sites == version.sites
            assert (await inspect(now, ctx.sites, deep=True)).bad == {}
        again = await run_job(env, "scrub")
        assert again.progress.get("bad_pieces", 0) == 0
        for key, (_, data) in stored.items():
            assert await env.get("b", key) == data

    env.run(scenario)


def test_a_lost_file_and_rot_in_two_other_pieces_are_healed_together(tmp_path: Path) -> None:
    env = make_env(tmp_path)
    data = payload(3 * BLOCK, 5)

    async def scenario() -> None:
        await env.store.create_bucket("b")
        version = await env.put("b", "k", data)
        env.shard_paths(version)[5].unlink()  # piece 5 gone whole: no block of it counts
        _flip_piece(env, version, 0, 0, 0)  # then block 0 and block 1 keep 4 of 6: k = 4
        _flip_piece(env, version, 1, 0, 1)
        job = await run_job(env, "scrub")
        assert (job.progress["repaired"], job.progress["bad_pieces"]) == (1, 3)
        assert (await inspect(version, context(env).sites, deep=True)).bad == {}
        assert await env.get("b", "k") == data

    env.run(scenario)


def test_a_block_with_fewer_than_k_good_pieces_is_unrecoverable(tmp_path: Path) -> None:
    env = make_env(tmp_path)

    async def scenario() -> None:
        await env.store.create_bucket("b")
        version = await env.put("b", "k", payload(3 * BLOCK))
        for piece in (0, 1, 2):  # three of six pieces of block 1: k = 4 cannot be met
            _flip_piece(env, version, piece, 0, 1)
        job = await run_job(env, "scrub")
        assert job.progress["unrecoverable"] == 1
        assert job.progress.get("repaired", 0) == 0
        (queued,) = await env.catalog.damaged(None, 10)
        assert queued[0] == version.version_id
        assert queued[1].startswith("3 of 4 needed pieces left in block 1"), queued[1]

    env.run(scenario)


def test_a_rotten_completion_record_is_found_and_rewritten(tmp_path: Path) -> None:
    env = make_env(tmp_path)

    async def scenario() -> None:
        await env.store.create_bucket("b")
        version, data = await _three_parts(env, "parts")
        record = env.shard_path(version.sites[3], shard_name(version.version_id, 0, 3))
        flip(record, record.stat().st_size - 20)  # in its footer: the manifest of the parts
        found = await run_job(env, "scrub", {"repair": False})
        assert found.progress["damaged"] == 1
        assert found.progress["bad_pieces"] == 1
        (queued,) = await env.catalog.damaged(None, 10)
        assert "completion record" in queued[1] and "footer" in queued[1], queued[1]
        fixed = await run_job(env, "scrub")
        assert fixed.progress["repaired"] == 1
        assert (await inspect(version, context(env).sites, deep=True)).bad == {}
        assert (await run_job(env, "scrub")).progress.get("bad_pieces", 0) == 0
        assert await env.get("b", "parts") == data

    env.run(scenario)
