"""Reads across slow and failing sites: hedged requests, fastest sites first, circuit breakers.

Sites are real (local directories, and a SeaweedFS server behind a delaying TCP proxy) with
real delays and faults injected in front of them. Nothing here asserts a duration: where a test
shows that a slow site was not waited for, the site is made so slow (10 s and more) that
waiting would show in what the sites saw (an answered read instead of a cancelled one), and
that is what the test checks.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import replace
from pathlib import Path

import pytest
from tests.clocks import ManualClock
from tests.delays import DelayingProxy, SlowSite
from tests.engine.helpers import BLOCK, PACK, Env, K, make_env, payload
from tests.providers import Provider, running_seaweedfs

from egide.clock import SYSTEM_CLOCK, Clock
from egide.config import HealthConfig
from egide.domain import ObjectVersion, ShardsUnavailable
from egide.engine.store import ObjectStore
from egide.sites.base import Site
from egide.sites.health import SiteHealth
from egide.sites.s3 import S3Site

#: Longer than any test would wait for: a read that waited for it would not be cancelled.
VERY_SLOW = 10.0
SIZES = {"packed": PACK // 2, "one-block": BLOCK - 100, "blocks": 6 * BLOCK + 7}


def hedging_env(
    env: Env, sites: Sequence[Site], clock: Clock = SYSTEM_CLOCK, **config: object
) -> tuple[Env, SiteHealth]:
    """`env` with a store over `sites` and a health of the given settings."""
    health = SiteHealth(
        [site.name for site in sites], HealthConfig.model_validate(config), clock=clock
    )
    store = ObjectStore(
        env.catalog, env.keyring, sites, k=K, m=len(sites) - K, block_size=BLOCK,
        pack_threshold=PACK, trash_grace=0, health=health,
    )  # fmt: skip
    return replace(env, store=store), health


def slow_sites(env: Env) -> list[SlowSite]:
    return [SlowSite(site) for site in env.sites]


def by_name(sites: Sequence[SlowSite], version: ObjectVersion) -> list[SlowSite]:
    """The sites of `version` in shard order: data shards first, then parity."""
    named = {site.name: site for site in sites}
    return [named[name] for name in version.sites]


def reader_tasks() -> list[asyncio.Task[object]]:
    """Tasks of readers still alive (block and piece reads)."""
    return [
        task
        for task in asyncio.all_tasks()
        if getattr(task.get_coro(), "__qualname__", "").startswith("ObjectReader.")
    ]


async def until(condition: Callable[[], bool], what: str, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"still not {what} after {timeout} s"
        await asyncio.sleep(0.01)


# -- hedged requests ----------------------------------------------------------------------------


@pytest.mark.parametrize("size", SIZES.values(), ids=SIZES.keys())
def test_a_slow_data_site_is_hedged_with_parity_and_its_read_cancelled(
    tmp_path: Path, size: int
) -> None:
    base = make_env(tmp_path)
    sites = slow_sites(base)
    env, health = hedging_env(base, sites, hedge_initial_ms=20)
    data = payload(size, seed=size)

    async def scenario() -> None:
        await env.store.create_bucket("b")
        version = await env.put("b", "k", data)
        ordered = by_name(sites, version)
        slow = ordered[0]
        slow.delay = VERY_SLOW
        assert await env.read(version) == data
        # The slow site was asked (it held data shard 0) and every read of it was cancelled;
        # a parity site answered in its place.
        assert slow.started >= 1
        assert (slow.answered, slow.cancelled) == (0, slow.started)
        assert any(parity.answered for parity in ordered[K:])
        assert health.snapshot()[slow.name]["abandoned"] == slow.started
        assert reader_tasks() == []

    env.run(scenario)


def test_after_a_hedge_the_slow_site_is_passed_over_for_the_following_blocks(
    tmp_path: Path,
) -> None:
    base = make_env(tmp_path)
    sites = slow_sites(base)
    env, _ = hedging_env(base, sites, hedge_initial_ms=20)
    data = payload(40 * BLOCK, seed=3)

    async def scenario() -> None:
        await env.store.create_bucket("b")
        version = await env.put("b", "k", data)
        slow = by_name(sites, version)[1]
        slow.delay = VERY_SLOW
        assert await env.read(version) == data
        # Only the blocks already under way when the first hedge happened asked it (read-ahead
        # of 4 blocks); the other 36 went to a parity site straight away.
        assert 1 <= slow.started <= 4
        assert slow.cancelled == slow.started

    env.run(scenario)


def test_without_hedging_the_slow_site_is_waited_for_then_avoided(tmp_path: Path) -> None:
    base = make_env(tmp_path)
    sites = slow_sites(base)
    env, health = hedging_env(base, sites, hedge=False)
    data = payload(BLOCK - 1, seed=4)

    async def scenario() -> None:
        await env.store.create_bucket("b")
        version = await env.put("b", "k", data)
        ordered = by_name(sites, version)
        slow = ordered[2]
        slow.delay = 0.3
        assert await env.read(version) == data
        assert (slow.answered, slow.cancelled) == (1, 0)
        assert [p.started for p in ordered[K:]] == [0, 0]
        # Its latency is now known to be far above the others': the next read asks the
        # fastest k sites, a parity one among them, and not the slow one.
        assert health.latency(slow.name) == max(health.latency(s.name) or 0 for s in sites)
        slow.reset()
        assert await env.read(version) == data
        assert slow.started == 0
        assert any(p.answered for p in ordered[K:])

    env.run(scenario)


def test_a_slow_site_is_waited_for_when_no_other_shard_is_left(tmp_path: Path) -> None:
    base = make_env(tmp_path)
    sites = slow_sites(base)
    env, _ = hedging_env(base, sites, hedge_initial_ms=10)
    data = payload(3 * BLOCK, seed=5)

    async def scenario() -> None:
        await env.store.create_bucket("b")
        version = await env.put("b", "k", data)
        ordered = by_name(sites, version)
        ordered[0].delay = 0.2
        ordered[1].failing = ordered[4].failing = "unreachable"
        # Four shards remain, one of them slow: the read hedges, finds nothing else, waits.
        assert await env.read(version) == data
        assert ordered[0].answered >= 1
        ordered[3].failing = "unreachable"
        with pytest.raises(ShardsUnavailable):
            await env.read(version)
        # Blocks prefetched behind the failed one are cancelled; they end a few loop turns later.
        await until(lambda: not reader_tasks(), "all reader tasks ended")

    env.run(scenario)


def test_hedging_around_a_slow_site_and_a_corrupt_piece_rebuilds_the_right_bytes(
    tmp_path: Path,
) -> None:
    base = make_env(tmp_path)
    sites = slow_sites(base)
    env, _ = hedging_env(base, sites, hedge_initial_ms=10)
    data = payload(2 * BLOCK, seed=6)

    async def scenario() -> None:
        await env.store.create_bucket("b")
        version = await env.put("b", "k", data)
        ordered = by_name(sites, version)
        ordered[0].delay = VERY_SLOW
        path = env.shard_paths(version)[1]
        raw = bytearray(path.read_bytes())
        raw[200] ^= 1  # in the first block's piece of shard 1
        path.write_bytes(bytes(raw))
        assert await env.read(version) == data
        assert ordered[0].answered == 0

    env.run(scenario)


def test_closing_a_reader_cancels_its_hedged_reads(tmp_path: Path) -> None:
    base = make_env(tmp_path)
    sites = slow_sites(base)
    env, _ = hedging_env(base, sites, hedge_initial_ms=10)
    data = payload(20 * BLOCK, seed=7)

    async def scenario() -> None:
        await env.store.create_bucket("b")
        version = await env.put("b", "k", data)
        reader = await env.store.reader(version, 0, version.size - 1)
        # The first blocks are read (or being read); the next ones will find every data site
        # slow, so that reads are in flight, hedged or not, when the reader is closed.
        data_sites = by_name(sites, version)[:K]
        for site in data_sites:
            site.delay = VERY_SLOW
            site.reset()
        chunks = aiter(reader)  # type: ignore[arg-type]
        assert await anext(chunks) == data[:BLOCK]
        await until(lambda: any(site.started for site in data_sites), "reading a slow site")
        reader.close()
        await until(lambda: not reader_tasks(), "all reader tasks ended")
        assert all(site.started == site.cancelled + site.answered for site in sites)
        assert sum(site.cancelled for site in data_sites) >= 1

    env.run(scenario)


# -- circuit breaker ----------------------------------------------------------------------------


def test_a_failing_site_opens_its_breaker_and_a_probe_closes_it(tmp_path: Path) -> None:
    base = make_env(tmp_path)
    sites = slow_sites(base)
    clock = ManualClock()
    env, health = hedging_env(base, sites, clock, failures_to_open=3, cooldown_seconds=10)
    data = payload(BLOCK - 5, seed=8)  # one block: one read of each site per GET

    async def scenario() -> None:
        await env.store.create_bucket("b")
        version = await env.put("b", "k", data)
        failing = by_name(sites, version)[0]
        failing.failing = "503 Service Unavailable"
        for _ in range(3):
            assert await env.read(version) == data
        assert failing.failed == 3
        assert not health.is_available(failing.name)
        assert health.snapshot()[failing.name]["state"] == "open"

        # Open: not asked any more, by any read.
        for _ in range(5):
            assert await env.read(version) == data
        assert failing.started == 3

        # Still failing when the cool-down ends: the probe fails, the cool-down doubles.
        clock.now += 10
        assert await env.read(version) == data
        assert failing.started == 4
        assert health.snapshot()[failing.name]["retry_in_seconds"] == 20
        clock.now += 19
        assert await env.read(version) == data
        assert failing.started == 4

        # Back up: the next probe succeeds, the breaker closes, every read asks it again.
        failing.failing = None
        clock.now += 1
        assert await env.read(version) == data
        assert (failing.started, failing.answered) == (5, 1)
        assert health.snapshot()[failing.name]["state"] == "closed"
        for _ in range(3):
            assert await env.read(version) == data
        assert failing.answered == 4

    env.run(scenario)


def test_a_site_with_an_open_breaker_is_read_when_too_few_others_remain(tmp_path: Path) -> None:
    base = make_env(tmp_path)
    sites = slow_sites(base)
    env, health = hedging_env(base, sites, ManualClock(), failures_to_open=1)
    data = payload(2 * BLOCK, seed=9)

    async def scenario() -> None:
        await env.store.create_bucket("b")
        version = await env.put("b", "k", data)
        ordered = by_name(sites, version)
        ordered[0].failing = "connection reset"
        assert await env.read(version) == data
        assert not health.is_available(ordered[0].name)
        ordered[0].failing = None  # it recovered, but its breaker is still open
        ordered[1].failing = ordered[2].failing = "connection reset"
        assert await env.read(version) == data
        assert ordered[0].answered >= 1
        assert health.is_available(ordered[0].name)  # the answer closed it

    env.run(scenario)


# -- a real S3 server behind a delaying proxy ---------------------------------------------------


@pytest.fixture(scope="module")
def weed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Provider]:
    with running_seaweedfs(tmp_path_factory.mktemp("weed")) as provider:
        yield provider


async def _put_on_data_shard(env: Env, site: str, data: bytes) -> ObjectVersion:
    """Put objects until one has a data shard on `site` (placement rotates by version id)."""
    for attempt in range(50):
        version = await env.put("b", f"k{attempt}", data)
        if version.sites.index(site) < K:
            return version
    raise AssertionError(f"no version placed a data shard on {site}")


def test_a_slow_provider_is_hedged_and_its_request_dropped(tmp_path: Path, weed: Provider) -> None:
    base = make_env(tmp_path)
    data = payload(3 * BLOCK + 11, seed=10)

    async def scenario() -> None:
        async with DelayingProxy(weed.endpoint) as proxy:
            config = weed.site_config("provider", weed.new_bucket("hedge"), "s/", max_retries=0)
            provider = S3Site(config.model_copy(update={"endpoint": proxy.endpoint}))
            env, health = hedging_env(base, [provider, *base.sites[1:]], hedge_initial_ms=50)
            await env.store.create_bucket("b")
            version = await _put_on_data_shard(env, "provider", data)
            proxy.delay = 30.0
            assert await env.read(version) == data
            # The reads of the provider were abandoned and their requests dropped with their
            # connections: nothing is left waiting for the provider's answers.
            assert health.snapshot()["provider"]["abandoned"] != 0
            await until(lambda: proxy.held == 0, "all held requests dropped")
            assert proxy.dropped_while_held >= 1
            assert reader_tasks() == []

    base.run(scenario)


def test_a_dead_provider_opens_its_breaker_and_is_asked_again_once_back(
    tmp_path: Path, weed: Provider
) -> None:
    base = make_env(tmp_path)
    data = payload(BLOCK // 2, seed=11)
    clock = ManualClock()

    async def scenario() -> None:
        async with DelayingProxy(weed.endpoint) as proxy:
            config = weed.site_config("provider", weed.new_bucket("dead"), "s/", max_retries=0)
            provider = S3Site(config.model_copy(update={"endpoint": proxy.endpoint}))
            env, health = hedging_env(
                base, [provider, *base.sites[1:]], clock, failures_to_open=3, cooldown_seconds=5
            )
            await env.store.create_bucket("b")
            version = await _put_on_data_shard(env, "provider", data)
            proxy.cut()
            for _ in range(3):
                assert await env.read(version) == data
            assert not health.is_available("provider")
            error = health.snapshot()["provider"]["last_error"]
            assert isinstance(error, str) and "site provider: read" in error
            refused = proxy.accepted
            for _ in range(5):
                assert await env.read(version) == data
            assert proxy.accepted == refused  # not even a connection attempt

            proxy.refuse = False
            clock.now += 5
            assert await env.read(version) == data
            assert proxy.accepted > refused
            assert health.snapshot()["provider"]["state"] == "closed"

    base.run(scenario)
