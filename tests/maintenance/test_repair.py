"""Repair with real damage: shard files deleted, a whole site directory removed, rot."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

from tests.engine.helpers import BLOCK, PACK, make_env, payload
from tests.maintenance.helpers import context, flip, run_job, wipe_site

from egide.domain import SITE_RECORD_PREFIXES, shard_name
from egide.maintenance.damage import inspect
from egide.maintenance.repair import mend


def test_deleted_shard_files_are_rebuilt_in_place(tmp_path: Path) -> None:
    env = make_env(tmp_path)
    big, small = payload(5 * BLOCK + 123), payload(PACK // 2)

    async def scenario() -> None:
        await env.store.create_bucket("b")
        v_big = await env.put("b", "big", big)
        v_small = await env.put("b", "small", small)
        lost = env.shard_path(v_big.sites[1], shard_name(v_big.version_id, 0, 1))
        lost.unlink()
        env.shard_paths(v_small)[3].unlink()  # the pack file on that site
        job = await run_job(env, "repair")
        assert job.state == "done", job.error
        assert job.progress["repaired"] == 2
        assert lost.exists()
        after_small = await env.catalog.get_version_by_id(v_small.version_id)
        assert after_small is not None and after_small.pack is None  # left its broken pack
        # Full redundancy again: any two sites may go now.
        for site in env.sites[:2]:
            for path in site.root.joinpath("shards").rglob("*"):
                if path.is_file() and not path.name.startswith(SITE_RECORD_PREFIXES):
                    path.unlink()
        assert await env.get("b", "big") == big
        assert await env.get("b", "small") == small
        again = await run_job(env, "repair")
        assert again.progress.get("repaired") == 2

    env.run(scenario)


def test_a_lost_site_is_replaced_by_a_site_the_policy_allows(tmp_path: Path) -> None:
    env = make_env(tmp_path, site_count=8)
    data = [payload(3 * BLOCK + i) for i in range(5)]

    async def scenario() -> None:
        await env.store.create_bucket("b")
        versions = [await env.put("b", f"k{i}", d) for i, d in enumerate(data)]
        victim = versions[0].sites[0]
        wipe_site(env, victim)
        job = await run_job(env, "repair")
        assert job.state == "done", job.error
        touched = [v for v in versions if victim in v.sites]
        assert job.progress["repaired"] == len(touched)
        for version in touched:
            now = await env.catalog.get_version_by_id(version.version_id)
            assert now is not None and victim not in now.sites
            assert len(set(now.sites)) == 6
        # A further loss of two more sites still loses nothing.
        for name in {s for v in versions for s in v.sites} - {victim}:
            if name in ("site-1", "site-2"):
                wipe_site(env, name)
        for i, d in enumerate(data):
            assert await env.get("b", f"k{i}") == d

    env.run(scenario)


def test_rot_found_only_by_a_deep_check(tmp_path: Path) -> None:
    env = make_env(tmp_path)
    data = payload(4 * BLOCK)

    async def scenario() -> None:
        await env.store.create_bucket("b")
        version = await env.put("b", "k", data)
        paths = env.shard_paths(version)
        flip(paths[0], 200)
        flip(paths[5], os.path.getsize(paths[5]) // 2)
        shallow = await run_job(env, "repair")
        assert shallow.progress.get("repaired", 0) == 0  # sizes are right: not seen
        deep = await run_job(env, "repair", {"deep": True})
        assert deep.progress["repaired"] == 1
        assert deep.progress["bad_pieces"] == 2
        clean = await run_job(env, "repair", {"deep": True})
        assert clean.progress.get("bad_pieces", 0) == 0
        assert await env.get("b", "k") == data

    env.run(scenario)


def test_too_few_pieces_is_reported_and_queued(tmp_path: Path) -> None:
    env = make_env(tmp_path)

    async def scenario() -> None:
        await env.store.create_bucket("b")
        version = await env.put("b", "k", payload(2 * BLOCK))
        for path in env.shard_paths(version)[:3]:
            path.unlink()
        job = await run_job(env, "repair")
        assert job.state == "done"
        assert job.progress["unrecoverable"] == 1
        queued = await env.catalog.damaged(None, 10)
        assert [vid for vid, _ in queued] == [version.version_id]
        assert queued[0][1].startswith("3 of 4 needed pieces left")

    env.run(scenario)


def test_a_read_that_meets_a_missing_piece_queues_the_version_for_repair(tmp_path: Path) -> None:
    env = make_env(tmp_path)
    data = payload(3 * BLOCK)

    async def scenario() -> None:
        await env.store.create_bucket("b")
        version = await env.put("b", "k", data)
        env.shard_paths(version)[0].unlink()  # a data piece: every read needs it
        assert await env.get("b", "k") == data
        await asyncio.sleep(0.05)  # the queueing does not hold up the read
        queued = await env.catalog.damaged(None, 10)
        assert [vid for vid, _ in queued] == [version.version_id]
        assert "missing" in queued[0][1]
        job = await run_job(env, "repair", {"queue_only": True})
        assert job.progress["repaired"] == 1
        assert job.progress.get("items", 0) == 0  # the queue only, no scan of the store
        assert await env.catalog.damaged(None, 10) == []
        assert env.shard_paths(version)[0].exists()

    env.run(scenario)


def test_two_jobs_moving_the_same_version_at_once_lose_nothing(tmp_path: Path) -> None:
    env = make_env(tmp_path, site_count=8)
    data = payload(3 * BLOCK)

    async def scenario() -> None:
        await env.store.create_bucket("b")
        version = await env.put("b", "k", data)
        wipe_site(env, version.sites[1])
        ctx = context(env)
        first, second = await asyncio.gather(mend(ctx, version), mend(ctx, version))
        assert sorted([first.state, second.state]) == ["changed", "repaired"]
        await env.store.empty_trash()  # what the loser trashed must not be the winner's
        now = await env.catalog.get_version_by_id(version.version_id)
        assert now is not None and version.sites[1] not in now.sites
        for i, site in enumerate(now.sites):
            assert env.shard_path(site, shard_name(version.version_id, 0, i)).exists()
        for name in now.sites[:2]:  # two more losses, still readable
            wipe_site(env, name)
        assert await env.get("b", "k") == data

    env.run(scenario)


def test_a_piece_moved_back_before_the_trash_pass_is_not_deleted_with_its_old_copy(
    tmp_path: Path,
) -> None:
    env = make_env(tmp_path, site_count=7)
    data = payload(3 * BLOCK)

    async def scenario() -> None:
        await env.store.create_bucket("b")
        version = await env.put("b", "k", data)
        ctx = context(env)
        away = version.sites[1]
        spare = next(s.name for s in env.sites if s.name not in version.sites)
        assert (await mend(ctx, version, leaving={away})).state == "moved"  # away → spare
        moved = await env.catalog.get_version_by_id(version.version_id)
        assert moved is not None and moved.sites[1] == spare
        assert (await mend(ctx, moved, leaving={spare})).state == "moved"  # and back
        back = await env.catalog.get_version_by_id(version.version_id)
        assert back is not None and back.sites[1] == away
        await env.store.empty_trash()
        assert (await inspect(back, ctx.sites, deep=True)).bad == {}
        assert await env.get("b", "k") == data

    env.run(scenario)


def test_a_queued_version_found_healthy_leaves_the_queue(tmp_path: Path) -> None:
    env = make_env(tmp_path)

    async def scenario() -> None:
        await env.store.create_bucket("b")
        version = await env.put("b", "k", payload(2 * BLOCK))
        await env.catalog.mark_damaged(version.version_id, "a read raced a repair")
        job = await run_job(env, "repair", {"queue_only": True})
        assert job.progress["healthy"] == 1
        assert await env.catalog.damaged(None, 10) == []

    env.run(scenario)


def test_a_repair_copies_the_site_records_onto_replaced_sites(tmp_path: Path) -> None:
    env = make_env(tmp_path)

    def records(site: str) -> set[str]:
        found = env.site(site).root.rglob("*")
        return {p.name for p in found if p.is_file() and p.name.startswith(SITE_RECORD_PREFIXES)}

    async def scenario() -> None:
        for bucket in ("a", "b"):
            await env.store.create_bucket(bucket)
            await env.put(bucket, "k", payload(2 * BLOCK))
        kept = records("site-5")
        assert len(kept) == 2  # the two buckets' key records
        for name in ("site-0", "site-3"):  # replaced by empty directories
            wipe_site(env, name)
            env.site(name).prepare()
        job = await run_job(env, "repair")
        assert job.progress["records_copied"] == 4
        assert job.progress["repaired"] == 2
        for name in ("site-0", "site-3"):
            assert records(name) == kept

    env.run(scenario)
