"""Catalog snapshots: sealed, chunked, pruned, scheduled; restore catches up with the shards."""

from __future__ import annotations

import fcntl
import sqlite3
import stat
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from tests.clocks import ManualClock
from tests.engine.helpers import Env, make_env, payload

from egide.catalog import open_catalog_file
from egide.domain import shard_name
from egide.engine.amendments import record_amendment
from egide.engine.settingsrecords import record_settings
from egide.engine.versioning import VERSIONING
from egide.recovery import snapshots
from egide.recovery.restore import restore_catalog
from egide.recovery.snapshots import (
    LOCK_FILE,
    delete_all_snapshots,
    fetch_snapshot,
    list_snapshots,
    snapshot_if_due,
    take_snapshot,
)
from egide.sites.local import LocalSite


@pytest.fixture
def env(tmp_path: Path) -> Env:
    (tmp_path / "store").mkdir()
    return make_env(tmp_path / "store")


def _dump(path: Path) -> list[str]:
    with sqlite3.connect(path) as db:
        return [line for line in db.iterdump() if "sqlite_sequence" not in line]


def _snapshot_files(env: Env) -> list[str]:
    return sorted(p.name for s in env.sites for p in (s.root / "shards").rglob("snap-*"))


def test_snapshot_reads_back_identical_in_chunks(
    env: Env, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(snapshots, "CHUNK", 2048)  # several chunks for a small catalog

    async def scenario() -> None:
        await env.store.create_bucket("b")
        for n in range(30):
            await env.put("b", f"k{n}", payload(100, n))
        sites = {s.name: s for s in env.sites}
        info = await take_snapshot(env.catalog, env.keyring, sites, data_dir=env.tmp)
        assert info.chunks > 2 and len(info.sites) == 3
        assert [i.name for i in await list_snapshots(sites, env.keyring)] == [info.name]
        await fetch_snapshot(sites, env.keyring, tmp_path / "back.sqlite3")
        assert _dump(tmp_path / "back.sqlite3") == _dump(env.db_path)
        # Nothing readable on the sites: the catalog holds bucket and key names.
        for file in (s.root / "shards" for s in env.sites):
            for path in file.rglob("snap-*"):
                assert b"CREATE TABLE" not in path.read_bytes()

    env.run(scenario)


def test_keeps_the_newest_and_deletes_all_on_request(env: Env) -> None:
    async def scenario() -> None:
        await env.store.create_bucket("b")
        sites = {s.name: s for s in env.sites}
        taken = [
            await take_snapshot(env.catalog, env.keyring, sites, data_dir=env.tmp, keep=2)
            for _ in range(4)
        ]
        listed = await list_snapshots(sites, env.keyring)
        assert [i.name for i in listed] == [taken[3].name, taken[2].name]
        assert await delete_all_snapshots(sites) > 0
        assert await list_snapshots(sites, env.keyring) == []
        assert _snapshot_files(env) == []

    env.run(scenario)


def test_schedule_takes_one_when_due_and_one_process_only(env: Env) -> None:
    async def scenario() -> None:
        sites = {s.name: s for s in env.sites}
        clock = ManualClock()
        due: dict[str, Any] = {"data_dir": env.tmp, "interval": 0.05, "clock": clock}
        hourly: dict[str, Any] = {"data_dir": env.tmp, "interval": 3600, "clock": clock}
        assert await snapshot_if_due(env.catalog, env.keyring, sites, **due) is None  # clock set
        assert await snapshot_if_due(env.catalog, env.keyring, sites, **hourly) is None
        clock.advance(0.1)
        with open(env.db_path.with_name(LOCK_FILE), "a") as held:  # another worker at it
            fcntl.flock(held, fcntl.LOCK_EX)
            assert await snapshot_if_due(env.catalog, env.keyring, sites, **due) is None
        info = await snapshot_if_due(env.catalog, env.keyring, sites, **due)
        assert info is not None
        assert await snapshot_if_due(env.catalog, env.keyring, sites, **hourly) is None
        assert (
            await snapshot_if_due(env.catalog, env.keyring, sites, data_dir=env.tmp, interval=0)
            is None
        )

    env.run(scenario)


def test_restore_catches_up_with_what_came_after(env: Env, tmp_path: Path) -> None:
    into = tmp_path / "restored.sqlite3"

    async def scenario() -> None:
        store = env.store
        await store.create_bucket("b")
        bucket = await store.bucket("b")
        await store.catalog.put_bucket_setting(bucket.id, VERSIONING, "Enabled")
        kept = await env.put("b", "kept", payload(50_000, 1))
        await env.put("b", "marked", payload(10, 2))
        marker = await store.delete_object("b", "marked")
        doomed = await env.put("b", "doomed", payload(40_000, 3))
        moving = await env.put("b", "moving", payload(40_000, 4))
        sites = {s.name: s for s in env.sites}
        await take_snapshot(env.catalog, env.keyring, sites, data_dir=env.tmp)
        # After the snapshot: a new version, a new bucket, a deletion, a delete marker, a moved
        # piece.
        newer = await env.put("b", "kept", payload(60_000, 5))
        await store.create_bucket("later")
        await env.put("later", "x", payload(20_000, 6))
        await store.delete_object("b", "doomed", doomed.version_id.hex())
        later_marker = await store.delete_object("b", "moving")  # a marker after the snapshot
        tags = {**kept.headers, "x-amz-tagging": "after=snapshot"}  # a change after it
        await store.catalog.update_version_headers(kept.version_id, tags)
        await record_amendment(store.vault, kept.version_id)
        await store.catalog.put_bucket_setting(bucket.id, "cors", '[{"origin": "*"}]')
        await record_settings(store.vault)  # as the servers' housekeeping does
        await store.empty_trash()
        extra = env.tmp.parent / "extra"
        name = shard_name(moving.version_id, 0, 2)
        source = env.shard_path(moving.sites[2], name)
        site = LocalSite("site-extra", extra)
        site.prepare()
        (extra / "shards" / name[:2]).mkdir(parents=True, exist_ok=True)
        source.rename(extra / "shards" / name[:2] / name)
        sites[site.name] = site

        report = await restore_catalog(sites, env.keyring, into)
        assert report.gone == [{"bucket": "b", "key": "doomed", "version": doomed.version_id.hex()}]
        assert report.added == 3 and report.added_buckets == 1 and report.moved == 1
        assert report.delete_markers == 1 and report.amended == 1
        assert report.recorded_settings == 2  # "b" changed, "later" is new
        assert report.unrecoverable == []
        restored = open_catalog_file(into)
        try:
            b = await restored.get_bucket("b")
            assert b is not None
            assert await restored.get_bucket_setting(b.id, VERSIONING) == "Enabled"
            assert await restored.get_bucket_setting(b.id, "cors") == '[{"origin": "*"}]'
            current = await restored.get_object(b.id, "kept")
            assert current is not None and current.version_id == newer.version_id
            assert await restored.get_version(b.id, "kept", kept.version_id) == replace(
                kept, headers=tags
            )
            assert marker is not None
            assert await restored.get_object(b.id, "marked") == marker  # from the snapshot
            assert await restored.get_version(b.id, "doomed", doomed.version_id) is None
            found = await restored.get_version_by_id(moving.version_id)
            assert found is not None and found.sites[2] == "site-extra"
            assert later_marker is not None  # from its record on the sites
            assert await restored.get_object(b.id, "moving") == later_marker
            later = await restored.get_bucket("later")
            assert later is not None and await restored.get_object(later.id, "x") is not None
        finally:
            await restored.close()

    env.run(scenario)


def test_a_fetched_snapshot_and_a_catalog_are_owner_only(env: Env, tmp_path: Path) -> None:
    """Both hold bucket and object names, metadata and tags in clear."""
    assert stat.S_IMODE(env.db_path.stat().st_mode) == 0o600
    into = tmp_path / "back.sqlite3"

    async def scenario() -> None:
        await env.store.create_bucket("b")
        await env.put("b", "k", payload(100))
        sites = {s.name: s for s in env.sites}
        await take_snapshot(env.catalog, env.keyring, sites, data_dir=env.tmp)
        await fetch_snapshot(sites, env.keyring, into)

    env.run(scenario)
    assert stat.S_IMODE(into.stat().st_mode) == 0o600
