"""Catalog rebuild from the shards: every version back, placement as found, losses reported."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import replace
from pathlib import Path

import pytest
from tests.engine.helpers import Env, chunks, make_env, payload
from tests.maintenance.helpers import run_job

from egide.catalog import Catalog, open_catalog_file
from egide.coding.shardfile import HEADER_SIZE, ShardHeader
from egide.crypto.keyring import Keyring
from egide.domain import (
    ObjectVersion,
    legacy_amendment_name,
    legacy_marker_record_name,
    legacy_settings_record_name,
    marker_record_name,
    shard_name,
)
from egide.engine.amendments import record_amendment
from egide.engine.credentialrecords import record_credentials
from egide.engine.manifest import write_completion_record
from egide.engine.multipart import MIN_PART_SIZE, CompletedPart
from egide.engine.settingsrecords import RECORD_NAME, record_settings
from egide.engine.siterecords import seal_document
from egide.engine.store import ObjectStore
from egide.engine.versioning import VERSIONING
from egide.recovery.rebuild import RebuildError, RebuildReport, rebuild_catalog
from egide.sites.base import write_file
from egide.sites.local import LocalSite


@pytest.fixture
def env(tmp_path: Path) -> Env:
    (tmp_path / "store").mkdir()
    return make_env(tmp_path / "store")


async def _all_versions(catalog: Catalog) -> dict[tuple[str, str, bytes], ObjectVersion]:
    found = {}
    for bucket in await catalog.list_buckets():
        for version, _ in await catalog.list_versions(bucket.id, "", None, 10_000):
            found[bucket.name, version.key, version.version_id] = version
    return found


def _order(versions: dict[tuple[str, str, bytes], ObjectVersion]) -> list[bytes]:
    return [v.version_id for v in sorted(versions.values(), key=lambda v: (v.key, v.seq))]


async def _fill(env: Env) -> dict[str, bytes]:
    """Plain, packed, multipart and versioned objects; their contents by key."""
    store = env.store
    await store.create_bucket("plain")
    await store.create_bucket("versioned")
    bucket = await store.bucket("versioned")
    await store.catalog.put_bucket_setting(bucket.id, VERSIONING, "Enabled")
    data = {"big": payload(300_000, 1), "small": payload(900, 2), "empty": b""}
    for key, body in data.items():
        headers = {"content-type": "text/plain", "x-amz-meta-owner": "émile", "cache-control": "no"}
        await env.put("plain", key, body, headers=headers)
    await env.put("plain", "small", data["small"])  # replaces the null version
    for n in range(3):
        await env.put("versioned", "doc", payload(500 + n, 10 + n))
    data["doc"] = payload(502, 12)
    mp = store.multipart
    upload = await mp.create("plain", "multi", {"content-type": "video/mp4"})
    one = await mp.upload_part(upload, 1, chunks(payload(MIN_PART_SIZE, 3)))
    await mp.upload_part(upload, 2, chunks(payload(10, 4)))  # replaced just below
    two = await mp.upload_part(upload, 2, chunks(payload(1000, 5)))
    await mp.complete(upload, [CompletedPart(1, one.etag, {}), CompletedPart(2, two.etag, {})])
    pending = await store.multipart.create("plain", "in-progress", {})  # never completed
    await mp.upload_part(pending, 1, chunks(payload(100, 6)))
    data["multi"] = payload(MIN_PART_SIZE, 3) + payload(1000, 5)
    await store.empty_trash()
    return data


def _store(env: Env, catalog: Catalog, sites: list[LocalSite] | None = None) -> ObjectStore:
    return ObjectStore(
        catalog, env.keyring, sites or env.sites, k=4, m=2, block_size=64 * 1024,
        pack_threshold=16 * 1024,
    )  # fmt: skip


@asynccontextmanager
async def _rebuilt(env: Env, into: Path) -> AsyncIterator[tuple[RebuildReport, Catalog]]:
    """The catalog rebuilt from every site of `env` into `into`, open, with its report."""
    report = await rebuild_catalog({s.name: s for s in env.sites}, env.keyring, into)
    rebuilt = open_catalog_file(into)
    try:
        yield report, rebuilt
    finally:
        await rebuilt.close()


async def _read_all(store: ObjectStore, bucket: str, key: str) -> bytes:
    version = await store.head_object(bucket, key)
    reader = await store.reader(version, 0, version.size - 1)
    return b"".join([c async for c in reader]) if version.size else b""


def test_rebuild_gives_back_every_version_identical(env: Env, tmp_path: Path) -> None:
    into = tmp_path / "rebuilt.sqlite3"

    async def scenario() -> None:
        data = await _fill(env)
        before = await _all_versions(env.catalog)
        sites = {s.name: s for s in env.sites}
        report = await rebuild_catalog(sites, env.keyring, into)
        assert report.unrecoverable == [] and report.degraded == 0
        assert report.buckets == 2
        assert report.uploads_without_record == 1  # the upload in progress
        rebuilt = open_catalog_file(into)
        try:
            after = await _all_versions(rebuilt)
            assert after == before  # every field: placement, pack, parts, is_null, headers …
            # The same order of versions for every key (seq numbers may have gaps before).
            assert _order(after) == _order(before)
            for bucket in ("plain", "versioned"):
                old = await env.catalog.get_bucket(bucket)
                assert old is not None and await rebuilt.get_bucket(bucket) == old
            versioned = await rebuilt.get_bucket("versioned")
            assert versioned is not None
            assert await rebuilt.get_bucket_setting(versioned.id, VERSIONING) == "Enabled"
            store = _store(env, rebuilt)
            for key, body in data.items():
                bucket = "versioned" if key == "doc" else "plain"
                assert await _read_all(store, bucket, key) == body
        finally:
            await rebuilt.close()

    env.run(scenario)


def test_rebuild_reports_where_shards_are_now(env: Env, tmp_path: Path) -> None:
    extra = LocalSite("site-6", tmp_path / "site-6")
    extra.prepare()

    async def scenario() -> None:
        await env.store.create_bucket("b")
        version = await env.put("b", "k", payload(100_000, 1))
        assert version.pack is None
        moved = env.shard_path(version.sites[0], shard_name(version.version_id, 0, 0))
        target = extra.root / "shards" / moved.parent.name
        target.mkdir(parents=True, exist_ok=True)
        shutil.move(moved, target / moved.name)
        # A truncated stale copy of piece 1 elsewhere: the complete one wins.
        stale = env.shard_path(version.sites[1], shard_name(version.version_id, 0, 1))
        (target / stale.name).write_bytes(stale.read_bytes()[:-10])
        sites = {s.name: s for s in [*env.sites, extra]}
        report = await rebuild_catalog(sites, env.keyring, tmp_path / "c.sqlite3")
        assert report.degraded == 0
        rebuilt = open_catalog_file(tmp_path / "c.sqlite3")
        try:
            found = await rebuilt.get_version_by_id(version.version_id)
            assert found is not None
            assert found.sites == ("site-6", *version.sites[1:])
            store = _store(env, rebuilt, [*env.sites, extra])
            assert await _read_all(store, "b", "k") == payload(100_000, 1)
        finally:
            await rebuilt.close()

    env.run(scenario)


def test_too_few_pieces_is_reported_unrecoverable(env: Env, tmp_path: Path) -> None:
    async def scenario() -> None:
        await env.store.create_bucket("b")
        lost = await env.put("b", "lost", payload(50_000, 1))
        kept = await env.put("b", "kept", payload(50_000, 2))
        for index in range(3):  # m = 2: three pieces gone is one too many
            env.shard_path(lost.sites[index], shard_name(lost.version_id, 0, index)).unlink()
        env.shard_path(kept.sites[5], shard_name(kept.version_id, 0, 5)).unlink()
        sites = {s.name: s for s in env.sites}
        report = await rebuild_catalog(sites, env.keyring, tmp_path / "c.sqlite3")
        assert report.unrecoverable == [
            {"bucket": "b", "key": "lost", "version": lost.version_id.hex(),
             "pieces_found": 3, "pieces_needed": 4}
        ]  # fmt: skip
        assert report.degraded == 1 and report.versions == 1

    env.run(scenario)


def test_wrong_master_key_is_a_clear_error(env: Env, tmp_path: Path) -> None:
    async def scenario() -> None:
        await env.store.create_bucket("b")
        await env.put("b", "k", b"x")
        sites = {s.name: s for s in env.sites}
        with pytest.raises(RebuildError, match="master key opens none"):
            await rebuild_catalog(sites, Keyring(os.urandom(32)), tmp_path / "c.sqlite3")
        assert not (tmp_path / "c.sqlite3").exists()

    env.run(scenario)


def test_never_overwrites_a_file(env: Env, tmp_path: Path) -> None:
    target = tmp_path / "exists.sqlite3"
    target.write_bytes(b"keep me")

    async def scenario() -> None:
        with pytest.raises(RebuildError, match="exists"):
            await rebuild_catalog({s.name: s for s in env.sites}, env.keyring, target)

    env.run(scenario)
    assert target.read_bytes() == b"keep me"


def test_delete_markers_come_back_and_removed_ones_do_not(env: Env, tmp_path: Path) -> None:
    async def scenario() -> None:
        store = env.store
        bucket = await store.create_bucket("v")
        await store.catalog.put_bucket_setting(bucket.id, VERSIONING, "Enabled")
        await env.put("v", "gone", payload(100, 1))
        await store.delete_object("v", "gone")  # hidden under a marker
        await env.put("v", "back", payload(100, 2))
        undone = await store.delete_object("v", "back")
        assert undone is not None
        await store.delete_object("v", "back", undone.s3_version_id)  # the marker removed
        await store.delete_object("v", "never-written")  # a marker alone
        await env.put("v", "null", payload(100, 3))
        await store.catalog.put_bucket_setting(bucket.id, VERSIONING, "Suspended")
        await env.put("v", "null", payload(100, 4))  # the null version
        await store.delete_object("v", "null")  # a null marker replaces it
        await run_job(env, "gc", {"grace": 0})  # notes the removed marker's record
        await run_job(env, "gc", {"grace": 0})  # and deletes it
        assert not any([await site.size(marker_record_name(undone.version_id))
                        for site in env.sites])  # fmt: skip
        before = await _all_versions(env.catalog)
        live = [v for v in before.values() if v.delete_marker]
        assert len(live) == 3
        for marker in live:  # garbage collection keeps the records of live markers
            name = marker_record_name(marker.version_id)
            assert all([await site.size(name) for site in env.sites])

        async with _rebuilt(env, tmp_path / "c.sqlite3") as (report, rebuilt):
            assert report.delete_markers == 3 and report.problems == []
            after = await _all_versions(rebuilt)
            assert after == before
            assert _order(after) == _order(before)
            assert await _read_all(_store(env, rebuilt), "v", "back") == payload(100, 2)
            for key in ("gone", "never-written", "null"):
                current = await rebuilt.get_object(bucket.id, key)
                assert current is not None and current.delete_marker, key

    env.run(scenario)


def test_tag_and_lock_changes_after_the_write_come_back(env: Env, tmp_path: Path) -> None:
    """What PutObjectTagging, PutObjectRetention and PutObjectLegalHold change after a write
    is recorded on the sites (as the S3 layer does it): a rebuild restores the newest state."""

    async def scenario() -> None:
        store = env.store
        bucket = await store.create_bucket("b")
        await store.catalog.put_bucket_setting(bucket.id, VERSIONING, "Enabled")
        tagged = await env.put("b", "tagged", payload(100, 1),
                               headers={"x-amz-tagging": "a=1"})  # fmt: skip
        held = await env.put("b", "held", payload(100, 2))
        untouched = await env.put("b", "untouched", payload(100, 3))
        for tags in ("a=2&b=3", "final=yes"):  # two changes: the newest wins
            await store.catalog.update_version_headers(
                tagged.version_id, {**tagged.headers, "x-amz-tagging": tags}
            )
            await record_amendment(store.vault, tagged.version_id)
        until = time.time() + 3600
        await store.catalog.set_lock(bucket.id, "held", held.version_id, legal_hold=True)
        await record_amendment(store.vault, held.version_id)
        await store.catalog.set_lock(
            bucket.id, "held", held.version_id, retention=("COMPLIANCE", until)
        )
        await record_amendment(store.vault, held.version_id)
        first = await run_job(env, "gc", {"grace": 3600})
        assert first.progress["deleted"] == 6 * 2  # per site, the two superseded records
        before = await _all_versions(env.catalog)
        assert before["b", "tagged", tagged.version_id].headers["x-amz-tagging"] == "final=yes"

        async with _rebuilt(env, tmp_path / "c.sqlite3") as (report, rebuilt):
            assert report.amended == 2 and report.problems == []
            after = await _all_versions(rebuilt)
            assert after == before
            restored = after["b", "held", held.version_id]
            assert restored.legal_hold and restored.retention_mode == "COMPLIANCE"
            assert restored.retain_until == until
            assert after["b", "untouched", untouched.version_id] == untouched

    env.run(scenario)


def test_bucket_settings_come_back_from_their_records(env: Env, tmp_path: Path) -> None:
    """Versioning turned on before any version, a policy and CORS rules: not guessed from the
    versions but read back from the newest settings record."""

    async def scenario() -> None:
        store = env.store
        empty = await store.create_bucket("empty")
        await store.catalog.put_bucket_setting(empty.id, VERSIONING, "Enabled")
        plain = await store.create_bucket("plain")
        await env.put("plain", "k", payload(100))
        await store.catalog.put_bucket_setting(plain.id, "cors", '[{"origin": "*"}]')
        await store.catalog.put_bucket_setting(plain.id, "policy", '{"k": 4, "m": 2}')
        await record_settings(store.vault)
        await store.catalog.put_bucket_setting(plain.id, "cors", None)  # changed again
        await record_settings(store.vault)
        await run_job(env, "gc", {"grace": 3600})
        assert len([n async for n in env.sites[0].list("bset-")]) == 2  # one per bucket

        async with _rebuilt(env, tmp_path / "c.sqlite3") as (report, rebuilt):
            assert report.recorded_settings == 2 and report.problems == []
            assert await rebuilt.get_bucket_setting(empty.id, VERSIONING) == "Enabled"
            assert await rebuilt.get_bucket_setting(plain.id, VERSIONING) is None
            assert await rebuilt.get_bucket_setting(plain.id, "policy") == '{"k": 4, "m": 2}'
            assert await rebuilt.get_bucket_setting(plain.id, "cors") is None

    env.run(scenario)


def test_access_keys_come_back_from_the_credentials_record(env: Env, tmp_path: Path) -> None:
    async def scenario() -> None:
        sealed = env.keyring.seal_secret("EGKEPTACCESSKEY00001", b"kept secret")
        await env.catalog.add_credential("EGKEPTACCESSKEY00001", sealed)
        assert await record_credentials(env.store.vault)
        async with _rebuilt(env, tmp_path / "c.sqlite3") as (report, rebuilt):
            assert report.credentials == 1
            found = await rebuilt.get_credential("EGKEPTACCESSKEY00001")
            assert found is not None
            assert env.keyring.open_secret("EGKEPTACCESSKEY00001", found) == b"kept secret"

    env.run(scenario)


def test_users_groups_and_key_status_come_back_from_the_credentials_record(
    env: Env, tmp_path: Path
) -> None:
    """A rebuilt catalog keeps the account id, the users (their ids), the groups and each
    key's user, status and expiry: nobody's access comes back wider than it was."""

    async def scenario() -> None:
        ids = env.store.identities
        await ids.create_user("erin")
        await ids.create_group("auditors")
        await ids.set_member("auditors", "erin", True)
        key, secret = await ids.create_key("erin", expires=3e9)
        await ids.set_key_active(key.access_key, False)
        before = await env.catalog.identities()
        async with _rebuilt(env, tmp_path / "c.sqlite3") as (report, rebuilt):
            assert report.credentials == 1
            assert await rebuilt.identities() == before
            holder = await rebuilt.key_holder(key.access_key)
            assert holder is not None and holder.key.status == "Inactive"
            assert holder.groups == ("auditors",)
            opened = env.keyring.open_secret(key.access_key, holder.sealed_secret)
            assert opened == secret.encode()

    env.run(scenario)


async def _rename_everywhere(env: Env, name: str, new: str, data: bytes | None = None) -> None:
    for site in env.sites:
        sealed = await site.read(name, 0, -1)
        await site.delete(name)
        await write_file(site, new, sealed if data is None else data)


def test_records_named_before_decision_0018_are_read_kept_and_collected(
    env: Env, tmp_path: Path
) -> None:
    """A store written before record names lost their bucket id rebuilds as before, and
    garbage collection keeps its records while they are current, then drops them."""

    async def scenario() -> None:
        store = env.store
        bucket = await store.create_bucket("v")
        await store.catalog.put_bucket_setting(bucket.id, VERSIONING, "Enabled")
        version = await env.put("v", "k", payload(100, 1))
        tagged = {**version.headers, "x-amz-tagging": "a=b"}
        await store.catalog.update_version_headers(version.version_id, tagged)
        await record_amendment(store.vault, version.version_id)
        marker = await store.delete_object("v", "k")
        assert marker is not None
        await record_settings(store.vault)
        # As an earlier Égide named them: the bucket id in each name.
        (amend,) = [n async for n in env.sites[0].list("amend-")]
        number = int(amend.rsplit("-", 1)[1])
        legacy_amend = legacy_amendment_name(bucket.id, version.version_id, number)
        await _rename_everywhere(env, amend, legacy_amend)
        legacy_mark = legacy_marker_record_name(bucket.id, marker.version_id)
        await _rename_everywhere(env, marker_record_name(marker.version_id), legacy_mark)
        current = await store.catalog.get_bucket_setting(bucket.id, RECORD_NAME)
        assert current is not None
        legacy_set = legacy_settings_record_name(bucket.id, 7)
        old = seal_document(
            store.bucket_key(bucket), {VERSIONING: "Enabled"},
            b"egide/bucket-settings/" + bucket.id + b"7",
        )  # fmt: skip
        await _rename_everywhere(env, current, legacy_set, old)
        await store.catalog.put_bucket_setting(bucket.id, RECORD_NAME, None)
        before = await _all_versions(env.catalog)

        async with _rebuilt(env, tmp_path / "c.sqlite3") as (report, rebuilt):
            assert report.problems == [] and report.delete_markers == 1
            assert report.amended == 1 and report.recorded_settings == 1
            assert await _all_versions(rebuilt) == before
            assert await rebuilt.get_bucket_setting(bucket.id, VERSIONING) == "Enabled"
        await run_job(env, "gc", {"grace": 0})
        await run_job(env, "gc", {"grace": 0})
        legacy = [legacy_amend, legacy_mark, legacy_set]
        for site in env.sites:  # current: kept
            assert all([await site.size(name) for name in legacy])
        await record_settings(store.vault)  # a new settings record (0018) supersedes the old one
        await store.delete_object("v", "k", marker.s3_version_id)
        await store.delete_object("v", "k", version.s3_version_id)
        await run_job(env, "gc", {"grace": 0})  # noted
        await run_job(env, "gc", {"grace": 0})  # deleted
        for site in env.sites:
            assert not any([await site.size(name) for name in legacy])

    env.run(scenario)


async def _as_before_0018(env: Env, version: ObjectVersion) -> ObjectVersion:
    """`version` (multipart) as an Égide before decision 0018 wrote it: part files named by
    version id and seq, with the bucket id, version id and seq in their clear header."""
    sites = {site.name: site for site in env.sites}
    for part in version.parts:
        for index, name in enumerate(version.sites):
            data = await sites[name].read(part.file(version.version_id, index), 0, -1)
            header = ShardHeader.decode(data[:HEADER_SIZE])
            assert header.bucket_id == bytes(16) and header.version_id == part.pid
            legacy = replace(header, part=part.seq, bucket_id=version.bucket_id,
                             version_id=version.version_id).encode()  # fmt: skip
            new_name = shard_name(version.version_id, part.seq, index)
            await write_file(sites[name], new_name, legacy + data[HEADER_SIZE:])
            await sites[name].delete(part.file(version.version_id, index))
    old = replace(version, parts=tuple(replace(p, pid=b"") for p in version.parts))
    await write_completion_record(env.store.vault, old)
    with sqlite3.connect(env.tmp / "catalog.sqlite3") as db:
        parts = json.dumps([p.fields() for p in old.parts])
        db.execute("UPDATE versions SET parts = ? WHERE version_id = ?", (parts, old.version_id))
        db.execute("DELETE FROM part_files")
    db.close()
    return old


def test_parts_named_before_decision_0018_read_rebuild_repair_and_go(
    env: Env, tmp_path: Path
) -> None:
    async def scenario() -> None:
        store = env.store
        await store.create_bucket("b")
        mp = store.multipart
        upload = await mp.create("b", "multi", {})
        one = await mp.upload_part(upload, 1, chunks(payload(MIN_PART_SIZE, 3)))
        two = await mp.upload_part(upload, 2, chunks(payload(1000, 5)))
        version = await mp.complete(
            upload, [CompletedPart(1, one.etag, {}), CompletedPart(2, two.etag, {})]
        )
        assert all(len(p.pid) == 16 for p in version.parts)
        old = await _as_before_0018(env, version)
        body = payload(MIN_PART_SIZE, 3) + payload(1000, 5)
        assert await _read_all(store, "b", "multi") == body
        before = await _all_versions(env.catalog)
        async with _rebuilt(env, tmp_path / "c.sqlite3") as (report, rebuilt):
            assert report.problems == [] and report.degraded == 0
            assert await _all_versions(rebuilt) == before
            assert await _read_all(_store(env, rebuilt), "b", "multi") == body
        files = [(site, name) for site, name in old.shard_files()]
        sites = {site.name: site for site in env.sites}
        await sites[files[-1][0]].delete(files[-1][1])  # a piece of part 2 lost
        await run_job(env, "repair", {})
        await run_job(env, "gc", {"grace": 0})
        await run_job(env, "gc", {"grace": 0})
        for site, name in files:  # repaired, and kept: still referenced under its old name
            assert await sites[site].size(name), name
        assert await _read_all(store, "b", "multi") == body
        await store.delete_object("b", "multi")
        await store.empty_trash()
        await run_job(env, "gc", {"grace": 0})
        await run_job(env, "gc", {"grace": 0})
        for site, name in files:
            assert await sites[site].size(name) is None, name

    env.run(scenario)
