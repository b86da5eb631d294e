"""Garbage collection: orphans go after a grace period, referenced files never do."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from tests.engine.helpers import BLOCK, PACK, chunks, make_env, payload
from tests.maintenance.helpers import run_job

from egide.domain import marker_record_name, new_id, shard_name
from egide.engine.amendments import record_amendment
from egide.engine.keyrecords import record_name
from egide.engine.multipart import MIN_PART_SIZE, CompletedPart
from egide.engine.settingsrecords import RECORD_NAME, record_settings
from egide.engine.versioning import VERSIONING


def test_orphans_are_deleted_after_the_grace_period_only(tmp_path: Path) -> None:
    env = make_env(tmp_path)
    big, small = payload(2 * BLOCK), payload(PACK // 2)

    async def scenario() -> None:
        await env.store.create_bucket("b")
        await env.put("b", "big", big)
        await env.put("b", "small", small)
        site = env.sites[0]
        orphans = [shard_name(new_id(), 0, 0), f"pack-{new_id().hex()}"]
        for name in orphans:  # what a crash between shards and commit leaves
            writer = await site.writer(name)
            await writer.write(b"leftover")
            await writer.commit()
        foreign = site.root / "shards" / "no" / "not-ours.txt"
        foreign.parent.mkdir(parents=True, exist_ok=True)
        foreign.write_text("an operator's file")
        first = await run_job(env, "gc", {"grace": 3600})
        assert first.progress["noted"] == 2 and first.progress.get("deleted", 0) == 0
        assert all([await site.size(name) for name in orphans])
        second = await run_job(env, "gc", {"grace": 0})
        assert second.progress["deleted"] == 2
        assert [await site.size(name) for name in orphans] == [None, None]
        assert foreign.exists()
        assert await env.get("b", "big") == big
        assert await env.get("b", "small") == small
        third = await run_job(env, "gc", {"grace": 0})
        assert third.progress.get("deleted", 0) == 0

    env.run(scenario)


def test_an_orphan_referenced_meanwhile_is_kept(tmp_path: Path) -> None:
    env = make_env(tmp_path)

    async def scenario() -> None:
        await env.store.create_bucket("b")
        version = await env.put("b", "k", payload(2 * BLOCK))
        site = env.site(version.sites[0])
        name = shard_name(version.version_id, 0, 0)
        await env.catalog.record_sightings(site.name, [name])  # seen as an orphan once
        job = await run_job(env, "gc", {"grace": 0})
        assert job.progress.get("deleted", 0) == 0
        assert await site.size(name)
        assert await env.catalog.sightings(site.name) == {}

    env.run(scenario)


def test_sites_added_later_get_the_key_records_but_shredded_buckets_stay_shredded(
    tmp_path: Path,
) -> None:
    env = make_env(tmp_path, site_count=8)

    async def scenario() -> None:
        kept = await env.store.create_bucket("kept")
        shredded = await env.store.create_bucket("shredded")
        new_sites = env.sites[6:]  # as if added to the configuration after both buckets
        for site in new_sites:
            for bucket in (kept, shredded):
                await site.delete(record_name(bucket.id))
        # A shred that site-0 missed (offline): its stale record must not spread again.
        await env.catalog.delete_bucket("shredded")
        for site in env.sites[1:6]:
            await site.delete(record_name(shredded.id))
        job = await run_job(env, "gc", {"grace": 3600})
        assert job.progress["records_copied"] == 2
        original = await env.sites[0].read(record_name(kept.id), 0, -1)
        for site in new_sites:
            assert await site.read(record_name(kept.id), 0, -1) == original
            assert await site.size(record_name(shredded.id)) is None
        again = await run_job(env, "gc", {"grace": 3600})
        assert again.progress["records_copied"] == 0

    env.run(scenario)


def test_records_follow_their_versions(tmp_path: Path) -> None:
    """Amendment and delete marker records: copied onto a site that lacks them while their
    version lives, removed (after the grace period) once it is gone."""
    env = make_env(tmp_path)

    async def scenario() -> None:
        bucket = await env.store.create_bucket("b")
        await env.catalog.put_bucket_setting(bucket.id, VERSIONING, "Enabled")
        version = await env.put("b", "k", payload(BLOCK))
        await env.catalog.update_version_headers(version.version_id, {"x-amz-tagging": "a=b"})
        await record_amendment(env.store.vault, version.version_id)
        marker = await env.store.delete_object("b", "k")
        assert marker is not None
        lacking = env.sites[5]
        amendment = [name async for name in env.sites[0].list("amend-")]
        names = [*amendment, marker_record_name(marker.version_id)]
        for name in names:
            await lacking.delete(name)
        job = await run_job(env, "gc", {"grace": 0})
        assert job.progress["records_copied"] == 2
        assert all([await lacking.size(name) for name in names])
        # The version and its marker removed for good: their records are garbage now.
        await env.store.delete_object("b", "k", marker.s3_version_id)
        await env.store.delete_object("b", "k", version.s3_version_id)
        await run_job(env, "gc", {"grace": 0})  # noted
        await run_job(env, "gc", {"grace": 0})  # deleted
        for site in env.sites:
            assert not any([await site.size(name) for name in names])

    env.run(scenario)


def test_settings_records_of_a_deleted_bucket_go(tmp_path: Path) -> None:
    env = make_env(tmp_path)

    async def scenario() -> None:
        kept = await env.store.create_bucket("kept")
        await env.store.create_bucket("gone")
        assert await record_settings(env.store.vault) == 2
        await env.catalog.delete_bucket("gone")
        await run_job(env, "gc", {"grace": 0})  # noted
        await run_job(env, "gc", {"grace": 0})  # deleted
        current = await env.catalog.get_bucket_setting(kept.id, RECORD_NAME)
        for site in env.sites:
            assert [n async for n in site.list("bset-")] == [current]

    env.run(scenario)


def test_part_files_named_by_their_own_ids_go_with_their_parts_only(tmp_path: Path) -> None:
    """A part file (decision 0018) names neither its upload nor its version: the catalog's
    index of part file ids keeps it while its upload or version has it, and no longer."""
    env = make_env(tmp_path)

    async def scenario() -> None:
        await env.store.create_bucket("b")
        mp = env.store.multipart
        upload = await mp.create("b", "k", {})
        one = await mp.upload_part(upload, 1, chunks(payload(MIN_PART_SIZE, 1)))
        replaced = await mp.upload_part(upload, 2, chunks(payload(10, 2)))
        two = await mp.upload_part(upload, 2, chunks(payload(20, 3)))
        files = [(site, one.file(upload.upload_id, i)) for i, site in enumerate(upload.sites)]
        files += [(site, two.file(upload.upload_id, i)) for i, site in enumerate(upload.sites)]
        gone = [(site, replaced.file(upload.upload_id, i)) for i, site in enumerate(upload.sites)]
        sites = {site.name: site for site in env.sites}

        async def present(listed: list[tuple[str, str]]) -> list[bool]:
            return [bool(await sites[site].size(name)) for site, name in listed]

        await env.store.empty_trash()  # the replaced attempt's files
        await run_job(env, "gc", {"grace": 0})
        await run_job(env, "gc", {"grace": 0})
        assert all(await present(files)) and not any(await present(gone))  # in progress
        await mp.complete(upload, [CompletedPart(1, one.etag, {}), CompletedPart(2, two.etag, {})])
        await run_job(env, "gc", {"grace": 0})
        await run_job(env, "gc", {"grace": 0})
        assert all(await present(files))  # completed
        aborted = await mp.create("b", "aborted", {})
        await mp.upload_part(aborted, 1, chunks(payload(30, 4)))
        await mp.abort(aborted)
        await env.store.delete_object("b", "k")
        await env.store.empty_trash()
        await run_job(env, "gc", {"grace": 0})
        await run_job(env, "gc", {"grace": 0})
        assert not any(await present(files))
        # And the index forgets them: no row outlives its part.
        with sqlite3.connect(env.tmp / "catalog.sqlite3") as db:
            assert db.execute("SELECT count(*) FROM part_files").fetchone() == (0,)
        db.close()

    env.run(scenario)
