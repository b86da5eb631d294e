"""Evacuating a site and rebalancing after a policy change, on real local sites."""

from __future__ import annotations

from pathlib import Path

from tests.clocks import ManualClock
from tests.engine.helpers import BLOCK, PACK, make_env, payload
from tests.maintenance.helpers import context, run_job, wipe_site

from egide.catalog import open_catalog_file
from egide.domain import marker_record_name
from egide.engine.keyrecords import record_name
from egide.engine.placing import RETIRED_CACHE_SECONDS, retired_sites, store_policy
from egide.engine.store import ObjectStore
from egide.engine.versioning import VERSIONING
from egide.maintenance.evacuate import evacuate_job
from egide.maintenance.jobs import JobRunner, submit
from egide.placement import Policy
from egide.placement.settings import SiteProfileFields
from egide.recovery.rebuild import rebuild_catalog
from egide.sites.base import write_file


def test_evacuation_moves_every_piece_and_proves_the_site_empty(tmp_path: Path) -> None:
    clock = ManualClock()
    env = make_env(tmp_path, site_count=8, clock=clock)
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
        clock.advance(RETIRED_CACHE_SECONDS)
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


def test_a_site_gone_for_good_is_evacuated_and_proven_empty_on_the_catalog_side(
    tmp_path: Path,
) -> None:
    env = make_env(tmp_path, site_count=7)
    data = payload(4 * BLOCK)

    async def scenario() -> None:
        await env.store.create_bucket("b")
        version = await env.put("b", "k", data)
        await env.put("b", "gone", payload(BLOCK))
        await env.store.delete_object("b", "gone")  # trash on the dead site too
        victim = version.sites[2]
        wipe_site(env, victim)  # the directory itself is gone
        job = await run_job(env, "evacuate", {"site": victim}, evacuate_settle=0)
        assert job.state == "done", job.error
        assert job.cursor is not None
        proof = job.cursor["proof"]
        assert proof["site_reachable"] is False and proof["files_listed"] is None  # type: ignore[index]
        assert not any((await env.catalog.site_references(victim)).values())
        assert await env.get("b", "k") == data

    env.run(scenario)


def test_a_resumed_proof_sweeps_again_what_arrived_after_the_sweep(tmp_path: Path) -> None:
    env = make_env(tmp_path, site_count=7)

    async def scenario() -> None:
        await env.store.create_bucket("b")
        await env.put("b", "k", payload(2 * BLOCK))
        victim = env.sites[0]
        job = await submit(env.store.jobs, "evacuate", {"site": victim.name})
        runner = JobRunner(context(env, evacuate_settle=0))
        claimed = await runner.claim(job.id)
        assert claimed is not None
        # Interrupted right after its sweep: a stray file (a key record written by another
        # command meanwhile) lands on the site before the proof.
        steps = evacuate_job(context(env, evacuate_settle=0), claimed)
        async for step in steps:
            if step.cursor and step.cursor.get("phase") == "proof":
                await env.catalog.save_job(job.id, runner.owner, cursor=step.cursor,
                                           progress={}, lease=60)  # fmt: skip
                break
        await steps.aclose()
        await write_file(victim, "keys-" + "ab" * 16, b"sealed record")
        resumed = await runner.run(await env.catalog.get_job(job.id))  # type: ignore[arg-type]
        assert resumed.state == "done", resumed.error
        assert await victim.size("keys-" + "ab" * 16) is None

    env.run(scenario)


def test_evacuated_sites_stay_retired_whatever_the_number_of_other_jobs(tmp_path: Path) -> None:
    env = make_env(tmp_path)

    async def scenario() -> None:
        evacuation = await submit(env.store.jobs, "evacuate", {"site": "site_with_underscore"})
        for _ in range(1100):
            done = await env.catalog.create_job("gc", {})
            await env.catalog.set_job_state(done.id, "done", only_from=("queued",))
        assert await retired_sites(env.catalog) == {"site_with_underscore"}
        await env.catalog.set_job_state(evacuation.id, "failed", only_from=("queued",))
        assert await retired_sites(env.catalog) == {"site_with_underscore"}  # to be resumed
        await env.store.jobs.cancel(evacuation.id)
        assert await retired_sites(env.catalog) == frozenset()
        # "_" is no LIKE wildcard: "site_0" shares nothing with "site-0", which holds data.
        await env.store.create_bucket("b")
        await env.put("b", "k", payload(2 * BLOCK))
        assert (await env.catalog.site_references("site-0"))["versions"] == 1
        assert (await env.catalog.site_references("site_0"))["versions"] == 0

    env.run(scenario)


def test_moving_to_new_sites_keeps_the_catalog_rebuildable(tmp_path: Path) -> None:
    """Every old site evacuated onto sites added later: the key and delete marker records go
    along, so a catalog rebuild from the new sites alone still opens every object and keeps
    deleted keys deleted."""
    env = make_env(tmp_path, site_count=12)
    old, new = env.sites[:6], env.sites[6:]
    data = {f"k{i}": payload(BLOCK + i * 1000, i) for i in range(4)}

    async def scenario() -> None:
        bucket = await env.store.create_bucket("b")
        await env.catalog.put_bucket_setting(bucket.id, VERSIONING, "Enabled")
        for key, value in data.items():
            await env.put("b", key, value)
        await env.put("b", "deleted", payload(100))
        marker = await env.store.delete_object("b", "deleted")
        assert marker is not None
        for site in new:  # added to the configuration after the bucket and the marker
            await site.delete(record_name(bucket.id))
            await site.delete(marker_record_name(marker.version_id))
        for site in old:
            job = await run_job(env, "evacuate", {"site": site.name}, evacuate_settle=0)
            assert job.state == "done", job.error
        for site in old:  # each proof still holds: no later move came back to a retired site
            left = [p for p in site.root.rglob("*") if p.is_file() and p.name != ".egide-site"]
            assert left == []
        into = tmp_path / "rebuilt.sqlite3"
        report = await rebuild_catalog({s.name: s for s in new}, env.keyring, into)
        assert report.buckets == 1 and report.unrecoverable == []
        assert report.delete_markers == 1
        rebuilt = open_catalog_file(into)
        try:
            store = ObjectStore(rebuilt, env.keyring, new, k=4, m=2, block_size=BLOCK)
            for key, value in data.items():
                version = await store.head_object("b", key)
                reader = await store.reader(version, 0, version.size - 1)
                assert b"".join([chunk async for chunk in reader]) == value
            current = await rebuilt.get_object(bucket.id, "deleted")
            assert current is not None and current.version_id == marker.version_id
        finally:
            await rebuilt.close()

    env.run(scenario)


def test_an_evacuation_stops_before_deleting_the_last_key_record(tmp_path: Path) -> None:
    env = make_env(tmp_path, site_count=7)

    async def scenario() -> None:
        bucket = await env.store.create_bucket("b")  # empty: nothing else to move
        victim = env.sites[0]
        for site in env.sites[1:]:
            await site.delete(record_name(bucket.id))
            (site.root / "tmp").rename(site.root / "tmp.off")  # no site that stays takes a file
        try:
            job = await run_job(env, "evacuate", {"site": victim.name}, evacuate_settle=0)
        finally:
            for site in env.sites[1:]:
                (site.root / "tmp.off").rename(site.root / "tmp")
        assert job.state == "failed" and "1 records kept on every site" in (job.error or "")
        assert await victim.size(record_name(bucket.id))  # still there
        resumed = await run_job(env, "evacuate", {"site": victim.name}, evacuate_settle=0)
        assert resumed.state == "done", resumed.error
        assert all([await site.size(record_name(bucket.id)) for site in env.sites[1:]])

    env.run(scenario)
