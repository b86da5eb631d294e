"""Scrub with real bit-rot: bytes flipped in shard files on two sites."""

from __future__ import annotations

from pathlib import Path

from tests.engine.helpers import BLOCK, Env, make_env, payload
from tests.maintenance.helpers import flip, run_job

from egide.domain import ObjectVersion


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
