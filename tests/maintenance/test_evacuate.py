"""Evacuating a site and rebalancing after a policy change, on real local sites."""

from __future__ import annotations

import asyncio
from pathlib import Path

from tests.engine.helpers import BLOCK, PACK, make_env, payload
from tests.maintenance.helpers import run_job

from egide.engine.placing import RETIRED_CACHE_SECONDS, store_policy
from egide.placement import Policy
from egide.placement.settings import SiteProfileFields


def test_evacuation_moves_every_piece_and_proves_the_site_empty(tmp_path: Path) -> None:
    env = make_env(tmp_path, site_count=8)
    data = {f"big{i}": payload(3 * BLOCK + i) for i in range(4)}
    data |= {f"small{i}": payload(PACK // 4 + i) for i in range(6)}

    async def scenario() -> None:
        await env.store.create_bucket("b")
        for key, value in data.items():
            await env.put("b", key, value)
        await env.put("b", "gone", payload(BLOCK))
        await env.store.delete_object("b", "gone")  # its shards wait in the trash
        victim = "site-0"
        job = await run_job(env, "evacuate", {"site": victim}, evacuate_settle=0)
        assert job.state == "done", job.error
        assert job.cursor is not None and job.cursor["phase"] == "done"
        assert (await env.catalog.site_references(victim)) == {
            "versions": 0, "uploads": 0, "packs": 0, "trash": 0,
        }  # fmt: skip
        assert [p for p in (env.site(victim).root / "shards").rglob("*") if p.is_file()] == []
        # New writes avoid the evacuated site (once the placer's cache of retired sites ends).
        await asyncio.sleep(RETIRED_CACHE_SECONDS)
        fresh = await env.put("b", "fresh", payload(2 * BLOCK))
        assert victim not in fresh.sites
        await env.store.create_bucket("later")  # its key record skips the emptied site too
        assert [p for p in (env.site(victim).root / "shards").rglob("*") if p.is_file()] == []
        for key, value in data.items():
            version = await env.store.head_object("b", key)
            assert victim not in version.sites
            assert await env.get("b", key) == value

    env.run(scenario)


def test_evacuating_a_dead_site_rebuilds_its_pieces(tmp_path: Path) -> None:
    env = make_env(tmp_path, site_count=7)
    data = payload(4 * BLOCK)

    async def scenario() -> None:
        await env.store.create_bucket("b")
        version = await env.put("b", "k", data)
        victim = version.sites[2]
        for path in (env.site(victim).root / "shards").rglob("*"):
            if path.is_file():
                path.unlink()
        job = await run_job(env, "evacuate", {"site": victim}, evacuate_settle=0)
        assert job.state == "done", job.error
        assert victim not in (await env.store.head_object("b", "k")).sites
        assert await env.get("b", "k") == data

    env.run(scenario)


def test_evacuation_without_room_fails_and_loses_nothing(tmp_path: Path) -> None:
    env = make_env(tmp_path)  # 6 sites for 4+2: nowhere to go

    async def scenario() -> None:
        await env.store.create_bucket("b")
        data = payload(2 * BLOCK)
        await env.put("b", "k", data)
        job = await run_job(env, "evacuate", {"site": "site-0"}, evacuate_settle=0)
        assert job.state == "failed"
        assert job.error is not None and "keep pieces on site-0" in job.error
        assert "site-0" in (await env.store.head_object("b", "k")).sites
        assert await env.get("b", "k") == data

    env.run(scenario)


def test_rebalance_moves_pieces_to_obey_a_changed_policy(tmp_path: Path) -> None:
    countries = ["de"] * 6 + ["fr"] * 4
    profiles = [
        SiteProfileFields(name=f"site-{i}", country=c).profile() for i, c in enumerate(countries)
    ]
    env = make_env(tmp_path, site_count=10, profiles=profiles)
    data = {f"k{i}": payload(2 * BLOCK + i) for i in range(4)}

    async def scenario() -> None:
        bucket = await env.store.create_bucket("b")
        await store_policy(env.catalog, bucket.id, Policy(k=4, m=2, countries=("de",)))
        env.store.placer.forget(bucket.id)
        for key, value in data.items():
            await env.put("b", key, value)
        await store_policy(env.catalog, bucket.id, Policy(k=4, m=2, min_in_country={"fr": 2}))
        env.store.placer.forget(bucket.id)
        job = await run_job(env, "rebalance", {"bucket": "b"})
        assert job.state == "done", job.error
        assert job.progress["moved"] == len(data)
        for key, value in data.items():
            version = await env.store.head_object("b", key)
            in_fr = [s for s in version.sites if countries[int(s.split("-")[1])] == "fr"]
            assert len(in_fr) >= 2
            assert await env.get("b", key) == value
        again = await run_job(env, "rebalance", {"bucket": "b"})
        assert again.progress.get("moved", 0) == 0

    env.run(scenario)
