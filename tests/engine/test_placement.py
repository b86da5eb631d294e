"""The store places each new version by its bucket's policy, over real local sites and the real
catalog: which sites and which code, the catalog's setting over the configuration's, writing
around a site that fails before the body is consumed, failing cleanly (and remembering the site)
when one fails later, and refusing to write below the policy."""

from __future__ import annotations

import asyncio
import os
import shutil
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from tests.clocks import ManualClock
from tests.engine.helpers import BLOCK, PACK, Env, chunks, files_under, payload

from egide.catalog import open_catalog
from egide.coding.shardfile import HEADER_SIZE
from egide.config import Settings
from egide.crypto.keyring import Keyring
from egide.domain import KeyNotFound, ObjectVersion, SitesUnavailable
from egide.engine.multipart import CompletedPart
from egide.engine.placing import SETTING, SUSPECT_SECONDS, NoPlacement, store_policy
from egide.engine.store import ObjectStore
from egide.placement import Placement, Policy, SiteProfile, check
from egide.placement.settings import BucketPolicies
from egide.sites.base import ShardWriter, SiteError
from egide.sites.local import LocalSite

STREAMED = 3 * BLOCK + 5
SMALL = 1000

#: name → (provider, city, storage price). Prices make "cheapest" predictable: alpha-1,
#: beta-1 and gamma-1 are the cheapest of their providers, in that order.
SITES = {
    "alpha-1": ("Alpha", "Lyon", 0.001),
    "alpha-2": ("Alpha", "Lyon", 0.010),
    "beta-1": ("Beta", "Paris", 0.002),
    "beta-2": ("Beta", "Paris", 0.010),
    "gamma-1": ("Gamma", "Frankfurt", 0.003),
    "gamma-2": ("Gamma", "Frankfurt", 0.010),
    "aws-1": ("AWS", "Paris", 0.010),
    "aws-2": ("AWS", "Paris", 0.010),
}
POLICIES = BucketPolicies(
    default=Policy(k=4, m=2),
    buckets={
        "no-aws": Policy(k=3, m=2, exclude_providers=("AWS",), max_per_provider=2),
        "small": Policy(k=2, m=1),
        "cheap": Policy(k=2, m=1, objective="cheapest", max_per_provider=1),
        "strict": Policy(k=2, m=1, providers=("Alpha", "Beta", "Gamma"), max_per_provider=1),
        "cheap-1-2": Policy(k=1, m=2, objective="cheapest", max_per_provider=1),
    },
)


class FlakySite(LocalSite):
    """A local site whose writes can be made to fail after the shard header (mid-stream)."""

    fail_writes = False

    async def writer(self, shard: str) -> Any:
        return _FlakyWriter(self, await super().writer(shard))


class _FlakyWriter:
    def __init__(self, site: FlakySite, inner: ShardWriter) -> None:
        self.site, self.inner, self.written = site, inner, 0

    async def write(self, data: bytes) -> None:
        self.written += len(data)
        if self.site.fail_writes and self.written > HEADER_SIZE:
            raise SiteError(f"site {self.site.name}: write failed: injected fault")
        await self.inner.write(data)

    async def commit(self) -> None:
        await self.inner.commit()

    async def abort(self) -> None:
        await self.inner.abort()


def _profile(name: str) -> SiteProfile:
    provider, city, price = SITES[name]
    return SiteProfile(name=name, provider=provider, city=city, storage_gb_month=price)


@pytest.fixture
def env(tmp_path: Path) -> Env:
    catalog = open_catalog(Settings(data_dir=tmp_path))
    sites = []
    for name in SITES:
        site = FlakySite(name, tmp_path / name)
        site.prepare()
        sites.append(site)
    store = ObjectStore(
        catalog, Keyring(os.urandom(32)), sites, k=4, m=2, block_size=BLOCK, trash_grace=0,
        pack_threshold=PACK, profiles=[_profile(n) for n in SITES], policies=POLICIES,
    )  # fmt: skip
    return Env(tmp_path, catalog, list(sites), store.keyring, store)


def _flaky(env: Env, name: str) -> FlakySite:
    site = env.site(name)
    assert isinstance(site, FlakySite)
    return site


def _files(env: Env, name: str) -> list[Path]:
    return files_under(env.site(name).root / "shards")


async def _buckets(env: Env, *names: str) -> None:
    for name in names:
        await env.store.create_bucket(name)


# -- the policy decides the sites ----------------------------------------------------------------


def test_a_policy_excluding_a_provider_keeps_every_shard_off_its_sites(env: Env) -> None:
    profiles = [_profile(n) for n in SITES]
    policy = POLICIES.buckets["no-aws"]
    sources: list[ObjectVersion] = []

    async def scenario() -> None:
        await _buckets(env, "no-aws", "photos")
        versions = [
            await env.put("no-aws", f"obj-{i}", payload(size, seed=i))
            for i, size in enumerate([0, SMALL, PACK, STREAMED] * 4)
        ]
        versions += await asyncio.gather(
            *(env.put("no-aws", f"burst-{i}", payload(SMALL, seed=i)) for i in range(20))
        )
        # A multipart upload takes its sites when it is created.
        upload = await env.store.multipart.create("no-aws", "multi", {})
        part = await env.store.multipart.upload_part(upload, 1, chunks(payload(STREAMED)))
        versions.append(
            await env.store.multipart.complete(upload, [CompletedPart(1, part.etag, {})])
        )
        # A copy is a new version of the target bucket: its policy, not the source's.
        source = await env.put("photos", "src", payload(STREAMED, seed=99))
        sources.append(source)
        reader = await env.store.reader(source, 0, source.size - 1)
        versions.append(
            await env.store.put_object(
                "no-aws", "copy", reader.__aiter__(), size=source.size, headers={}
            )
        )
        for version in versions:
            assert (version.k, version.m) == (3, 2)
            assert not {"aws-1", "aws-2"} & set(version.sites)
            assert check(policy, profiles, _placement(version)) == []
            assert await env.read(version) == await env.get("no-aws", version.key)
        assert await env.get("no-aws", "copy") == payload(STREAMED, seed=99)
        used = Counter(site for v in versions for site in v.sites)
        assert set(used) == set(SITES) - {"aws-1", "aws-2"}  # spread over all allowed sites

    env.run(scenario)
    # The photos source may use AWS; nothing of no-aws is there.
    aws_files = _files(env, "aws-1") + _files(env, "aws-2")
    assert all(path.name.startswith(sources[0].version_id.hex()) for path in aws_files)


def _placement(version: ObjectVersion) -> Placement:
    return Placement(sites=version.sites, k=version.k, m=version.m)


def test_each_bucket_gets_its_own_code(env: Env) -> None:
    async def scenario() -> None:
        await _buckets(env, "small", "photos")
        small = await env.put("small", "s", payload(STREAMED, seed=1))
        wide = await env.put("photos", "w", payload(STREAMED, seed=2))
        assert (small.k, small.m, len(small.sites)) == (2, 1, 3)
        assert (wide.k, wide.m, len(wide.sites)) == (4, 2, 6)
        assert await env.read(small) == payload(STREAMED, seed=1)
        assert await env.read(wide) == payload(STREAMED, seed=2)
        for version in (small, wide):
            assert all(path.exists() for path in env.shard_paths(version))
        assert env.sql("SELECT k, m FROM versions ORDER BY k") == [(2, 1), (4, 2)]

    env.run(scenario)


def test_packs_shared_by_buckets_with_different_codes(env: Env) -> None:
    """cheap (2+1) and cheap-1-2 (1+2) both choose alpha-1, beta-1, gamma-1: one site set, so
    their small objects share packs, each segment carrying its own code."""
    bodies = {(bucket, i): payload(SMALL + i, seed=i) for bucket in ("cheap", "cheap-1-2")
              for i in range(12)}  # fmt: skip

    async def scenario() -> None:
        await _buckets(env, "cheap", "cheap-1-2", "small")
        versions = await asyncio.gather(
            *(env.put(bucket, f"k{i}", data) for (bucket, i), data in bodies.items()),
            *(env.put("small", f"k{i}", payload(SMALL, seed=50 + i)) for i in range(12)),
        )
        cheap = versions[: len(bodies)]
        assert {v.sites for v in cheap} == {("alpha-1", "beta-1", "gamma-1")}
        assert {(v.k, v.m) for v in cheap} == {(2, 1), (1, 2)}
        packs = {v.pack for v in cheap}
        assert None not in packs and len(packs) < len(cheap)
        assert any(
            {(v.k, v.m) for v in cheap if v.pack == pack} == {(2, 1), (1, 2)} for pack in packs
        )
        for (bucket, i), data in bodies.items():
            assert await env.get(bucket, f"k{i}") == data
        for i in range(12):
            assert await env.get("small", f"k{i}") == payload(SMALL, seed=50 + i)

    env.run(scenario)


def test_placement_is_deterministic_per_version_and_spreads(env: Env) -> None:
    async def scenario() -> None:
        bucket = await env.store.create_bucket("photos")
        ids = [os.urandom(16) for _ in range(200)]
        first = [await env.store.place(bucket, vid) for vid in ids]
        again = [await env.store.place(bucket, vid) for vid in ids]
        assert first == again
        counts = Counter(site for p in first for site in p.sites)
        assert set(counts) == set(SITES)
        assert min(counts.values()) > 200 * 6 / 8 / 2  # no site starved

    env.run(scenario)


def test_without_any_policy_the_global_code_spans_all_sites(tmp_path: Path) -> None:
    catalog = open_catalog(Settings(data_dir=tmp_path))
    sites = [LocalSite(f"s{i}", tmp_path / f"s{i}") for i in range(5)]
    for site in sites:
        site.prepare()
    store = ObjectStore(catalog, Keyring(os.urandom(32)), sites, k=3, m=1, block_size=BLOCK)
    env = Env(tmp_path, catalog, sites, store.keyring, store)

    async def scenario() -> None:
        await store.create_bucket("b")
        versions = [await env.put("b", f"k{i}", payload(STREAMED, seed=i)) for i in range(12)]
        assert {(v.k, v.m, len(v.sites)) for v in versions} == {(3, 1, 4)}
        assert {s for v in versions for s in v.sites} == {s.name for s in sites}

    env.run(scenario)


def test_the_catalog_setting_overrides_the_configuration(env: Env) -> None:
    async def scenario() -> None:
        bucket = await env.store.create_bucket("no-aws")
        assert (await env.put("no-aws", "before", payload(SMALL))).k == 3
        only_gamma_beta = Policy(k=2, m=2, providers=("Gamma", "Beta"))
        await store_policy(env.catalog, bucket.id, only_gamma_beta)
        env.store.placer.forget(bucket.id)
        during = await env.put("no-aws", "during", payload(STREAMED))
        assert (during.k, during.m) == (2, 2)
        assert set(during.sites) == {"beta-1", "beta-2", "gamma-1", "gamma-2"}
        assert await env.get("no-aws", "during") == payload(STREAMED)
        await store_policy(env.catalog, bucket.id, None)
        env.store.placer.forget(bucket.id)
        assert (await env.put("no-aws", "after", payload(SMALL))).k == 3

    env.run(scenario)


def test_a_policy_another_process_set_applies_once_the_cache_ends(env: Env) -> None:
    """A policy stored by another process (the CLI, another gateway) governs this store's new
    versions once its cache of the bucket's policy has aged `cache_seconds`, not before."""
    clock = ManualClock()
    env.store.placer.clock = clock

    async def scenario() -> None:
        bucket = await env.store.create_bucket("later")
        code = (await env.put("later", "before", payload(SMALL))).k
        assert code != 2
        await store_policy(env.catalog, bucket.id, Policy(k=2, m=2, providers=("Gamma", "Beta")))
        clock.advance(env.store.placer.cache_seconds - 0.25)
        assert (await env.put("later", "cached", payload(SMALL))).k == code
        clock.advance(0.25)
        assert (await env.put("later", "after", payload(SMALL))).k == 2

    env.run(scenario)


def test_an_invalid_policy_in_the_catalog_refuses_writes(env: Env) -> None:
    async def scenario() -> None:
        bucket = await env.store.create_bucket("photos")
        await env.catalog.put_bucket_setting(
            bucket.id, SETTING, '{"k": 2, "m": 1, "max_per_provider": 0}'
        )
        with pytest.raises(NoPlacement, match="placement policy in the catalog is invalid"):
            await env.put("photos", "k", payload(SMALL))

    env.run(scenario)


# -- sites failing -------------------------------------------------------------------------------


@pytest.mark.parametrize("size", [SMALL, STREAMED])
def test_a_site_failing_before_the_body_is_written_around(env: Env, size: int) -> None:
    """The "cheap" policy always prefers alpha-1; with its directory gone, the write opens
    there, fails, and goes to the next cheapest sites (a packed object fails at its pack)."""
    shutil.rmtree(env.site("alpha-1").root)

    async def scenario() -> None:
        await _buckets(env, "cheap")
        version = await env.put("cheap", "k", payload(size, seed=3))
        assert version.sites[:2] == ("beta-1", "gamma-1") and "alpha-1" not in version.sites
        assert await env.get("cheap", "k") == payload(size, seed=3)
        assert "alpha-1" in env.store.placer.suspects()
        # One failure per pack that tried the site: the ten share one pack, or two or three
        # when a loaded machine splits the gather window; never one per object.
        assert 1 <= env.store.health.snapshot()["alpha-1"]["errors"] <= 3
        again = await env.put("cheap", "k2", payload(size, seed=4))  # avoided from the start
        assert "alpha-1" not in again.sites
        # One failure per pack that tried the site: the ten share one pack, or two or three
        # when a loaded machine splits the gather window; never one per object.
        assert 1 <= env.store.health.snapshot()["alpha-1"]["errors"] <= 3

    env.run(scenario)
    assert env.sql("SELECT count(*) FROM versions") == [(2,)]


def test_a_site_failing_mid_stream_fails_the_write_cleanly_and_is_avoided_next(env: Env) -> None:
    alpha = _flaky(env, "alpha-1")
    clock = ManualClock()
    env.store.placer.clock = clock

    async def scenario() -> None:
        await _buckets(env, "cheap")
        alpha.fail_writes = True
        with pytest.raises(SitesUnavailable, match="alpha-1") as info:
            await env.put("cheap", "k", payload(STREAMED, seed=5))
        assert not isinstance(info.value, NoPlacement)
        assert info.value.sites == ("alpha-1",)
        with pytest.raises(KeyNotFound):
            await env.store.head_object("cheap", "k")
        # The next write avoids the site that failed...
        version = await env.put("cheap", "k", payload(STREAMED, seed=6))
        assert "alpha-1" not in version.sites
        assert await env.get("cheap", "k") == payload(STREAMED, seed=6)
        # ... until it has had time to recover.
        alpha.fail_writes = False
        clock.advance(SUSPECT_SECONDS + 1)
        back = await env.put("cheap", "k", payload(STREAMED, seed=7))
        assert back.sites[0] == "alpha-1"
        assert await env.get("cheap", "k") == payload(STREAMED, seed=7)

    env.run(scenario)
    assert env.all_files("tmp") == []
    assert env.sql("SELECT count(*) FROM versions") == [(1,)]  # the last; none of the failed


@pytest.mark.parametrize("size", [SMALL, STREAMED])
def test_no_placement_within_the_policy_fails_with_the_solvers_reason(env: Env, size: int) -> None:
    """strict needs one site from each of Alpha, Beta and Gamma: with both Gamma sites gone
    there is none, and nothing may be written on two providers instead."""
    for name in ("gamma-1", "gamma-2"):
        shutil.rmtree(env.site(name).root)

    async def scenario() -> None:
        await _buckets(env, "strict")
        with pytest.raises(NoPlacement) as info:
            await env.put("strict", "k", payload(size))
        message = str(info.value)
        assert message.startswith("bucket strict: no placement meets its policy")
        assert "max_per_provider = 1" in message and "only 2 providers" in message
        assert "down: gamma-1, gamma-2" in message
        with pytest.raises(KeyNotFound):
            await env.store.head_object("strict", "k")

    env.run(scenario)
    assert env.sql("SELECT count(*) FROM versions") == [(0,)]
    assert env.all_files("shards") == [] and env.all_files("tmp") == []


def test_a_suspected_site_is_still_used_when_the_policy_needs_it(env: Env) -> None:
    gamma = _flaky(env, "gamma-1")
    gone = env.site("gamma-2").root
    shutil.move(gone, env.tmp / "away")

    async def scenario() -> None:
        await _buckets(env, "strict")
        gamma.fail_writes = True
        with pytest.raises(SitesUnavailable):
            await env.put("strict", "a", payload(STREAMED))
        assert set(env.store.placer.suspects()) >= {"gamma-1"}
        gamma.fail_writes = False  # back, but still suspected: the only Gamma site left
        version = await env.put("strict", "b", payload(STREAMED))
        assert "gamma-1" in version.sites
        assert await env.get("strict", "b") == payload(STREAMED)

    env.run(scenario)


def test_a_site_whose_breaker_is_open_is_never_chosen(env: Env) -> None:
    async def scenario() -> None:
        await _buckets(env, "cheap")
        for _ in range(env.store.health.config.failures_to_open):
            env.store.health.record_failure("alpha-1", "unreachable")
        assert "alpha-1" in env.store.health.unavailable()
        versions = [await env.put("cheap", f"k{i}", payload(SMALL, seed=i)) for i in range(5)]
        assert all("alpha-1" not in v.sites for v in versions)

    env.run(scenario)


def test_a_multipart_upload_uses_its_buckets_policy_and_fails_cleanly(env: Env) -> None:
    alpha = _flaky(env, "alpha-1")

    async def scenario() -> None:
        await _buckets(env, "cheap")
        upload = await env.store.multipart.create("cheap", "m", {})
        assert (upload.k, upload.m, upload.sites) == (2, 1, ("alpha-1", "beta-1", "gamma-1"))
        alpha.fail_writes = True
        with pytest.raises(SitesUnavailable, match="alpha-1"):
            await env.store.multipart.upload_part(upload, 1, chunks(payload(STREAMED)))
        assert "alpha-1" in env.store.placer.suspects()
        later = await env.store.multipart.create("cheap", "m2", {})
        assert "alpha-1" not in later.sites

    env.run(scenario)


def test_a_failed_pack_is_written_around_and_counted_once(env: Env) -> None:
    """Ten small objects wait for the same pack; alpha-1 fails it: each is placed again
    without it, and the site's health counts the failed pack, not ten failures."""
    shutil.rmtree(env.site("alpha-1").root)
    bodies = {f"k{i}": payload(SMALL, seed=i) for i in range(10)}

    async def scenario() -> None:
        await _buckets(env, "cheap")
        versions = await asyncio.gather(*(env.put("cheap", k, d) for k, d in bodies.items()))
        assert all("alpha-1" not in v.sites for v in versions)
        # One failure per pack that tried the site: the ten share one pack, or two or three
        # when a loaded machine splits the gather window; never one per object.
        assert 1 <= env.store.health.snapshot()["alpha-1"]["errors"] <= 3
        for key, data in bodies.items():
            assert await env.get("cheap", key) == data

    env.run(scenario)
