"""SiteHealth: latency window, hedge delays and the circuit breaker, on a clock the test moves."""

from __future__ import annotations

from pathlib import Path

import pytest
from tests.clocks import ManualClock as Clock

from egide.config import ConfigError, HealthConfig, load_settings
from egide.sites.health import SiteHealth


def health(clock: Clock, **config: object) -> SiteHealth:
    return SiteHealth(["a", "b"], HealthConfig.model_validate(config), clock=clock)


def test_unmeasured_site_has_no_latency_and_the_initial_hedge_delay() -> None:
    h = health(Clock(), hedge_initial_ms=150)
    assert h.latency("a") is None
    assert h.hedge_delay("a") == pytest.approx(0.150)
    assert h.hedge_delay("never-seen") == pytest.approx(0.150)
    assert h.is_available("never-seen")
    assert h.unavailable() == frozenset()


def test_a_site_without_answers_is_hedged_like_the_median_measured_site() -> None:
    h = SiteHealth(
        ["a", "b", "c", "d"],
        HealthConfig(hedge_factor=2, hedge_min_ms=1, hedge_initial_ms=500),
        clock=Clock(),
    )
    h.record_success("a", 0.010)
    h.record_success("b", 0.020)
    h.record_success("c", 0.900)  # one very slow site does not set the others' delay
    assert h.hedge_delay("d") == pytest.approx(2 * 0.020)
    h.record_abandoned("d", 0.040)  # given up on, never answered: still no tail of its own
    assert h.hedge_delay("d") == pytest.approx(2 * 0.020)


def test_latency_is_the_window_mean_and_the_hedge_delay_its_quantile_times_the_factor() -> None:
    h = health(Clock(), hedge_quantile=0.9, hedge_factor=2, hedge_min_ms=1, latency_window=10)
    for ms in [5, 1, 2, 3, 4, 6, 7, 8, 9, 10]:
        h.record_success("a", ms / 1000, nbytes=100)
    assert h.latency("a") == pytest.approx(0.0055)
    assert h.hedge_delay("a") == pytest.approx(2 * 0.009)  # nearest rank: 9th of 10
    # The window keeps the last 10 reads: ten slow ones push the fast ones out.
    for _ in range(10):
        h.record_success("a", 0.050)
    assert h.latency("a") == pytest.approx(0.050)
    assert h.latency("b") is None
    assert h.snapshot()["a"]["bytes_read"] == 1000
    assert h.snapshot()["a"]["reads"] == 20


def test_hedge_delay_is_kept_between_floor_and_ceiling() -> None:
    h = health(Clock(), hedge_min_ms=10, hedge_max_ms=500, hedge_factor=2)
    h.record_success("a", 0.0001)
    h.record_success("b", 30.0)
    assert h.hedge_delay("a") == pytest.approx(0.010)
    assert h.hedge_delay("b") == pytest.approx(0.500)


def test_old_samples_are_forgotten_so_a_site_left_alone_is_measured_again() -> None:
    clock = Clock()
    h = health(clock, latency_max_age_seconds=60)
    h.record_success("a", 0.200)
    clock.now += 30
    h.record_success("a", 0.100)
    assert h.latency("a") == pytest.approx(0.150)
    clock.now += 31  # the first sample is now 61 s old
    assert h.latency("a") == pytest.approx(0.100)
    clock.now += 30
    assert h.latency("a") is None


def test_abandoned_reads_count_in_the_mean_not_in_the_hedge_delay_nor_as_failures() -> None:
    h = health(Clock(), failures_to_open=1, hedge_min_ms=1, hedge_factor=2)
    h.record_success("a", 0.001)
    h.record_abandoned("a", 0.199)
    assert h.latency("a") == pytest.approx(0.100)
    # Hedged reads that were given up do not raise the delay after which the next is hedged,
    # but they do rank the site behind faster ones.
    for _ in range(20):
        h.record_abandoned("a", 0.199)
    assert h.hedge_delay("a") == pytest.approx(0.002)
    assert h.tail_latency("a") == pytest.approx(0.199)
    assert h.is_available("a")
    snap = h.snapshot()["a"]
    assert (snap["abandoned"], snap["errors"], snap["state"]) == (21, 0, "closed")


def test_breaker_opens_after_consecutive_failures_only() -> None:
    clock = Clock()
    h = health(clock, failures_to_open=3)
    h.record_failure("a", "boom 1")
    h.record_failure("a", "boom 2")
    h.record_success("a", 0.001)  # a success in between starts the count again
    h.record_failure("a", "boom 3")
    h.record_failure("a", "boom 4")
    assert h.is_available("a")
    h.record_failure("a", "boom 5")
    assert not h.is_available("a")
    assert h.unavailable() == frozenset({"a"})
    snap = h.snapshot()["a"]
    assert snap["state"] == "open"
    assert snap["errors"] == 5
    assert snap["consecutive_errors"] == 3
    assert snap["last_error"] == "boom 5"
    assert snap["retry_in_seconds"] == pytest.approx(1.0)


def test_half_open_probe_closes_the_breaker_on_success() -> None:
    clock = Clock()
    h = health(clock, failures_to_open=1, cooldown_seconds=2)
    h.record_failure("a", "down")
    clock.now += 1.9
    assert not h.is_available("a")
    clock.now += 0.1
    assert h.is_available("a")  # half-open: one probe may go
    assert h.snapshot()["a"]["state"] == "half-open"
    h.begin("a")
    assert not h.is_available("a")  # the others wait for the probe
    h.record_success("a", 0.004)
    assert h.is_available("a")
    assert h.snapshot()["a"]["state"] == "closed"
    # Closed again: it takes failures_to_open new failures to open it, with the first cool-down.
    h.record_failure("a", "down again")
    assert h.snapshot()["a"]["retry_in_seconds"] == pytest.approx(2.0)


def test_each_failed_probe_doubles_the_cool_down_up_to_its_ceiling() -> None:
    clock = Clock()
    h = health(clock, failures_to_open=2, cooldown_seconds=1, cooldown_max_seconds=5)
    h.record_failure("a", "x")
    h.record_failure("a", "x")
    cooldowns = []
    for _ in range(5):
        retry_in = h.snapshot()["a"]["retry_in_seconds"]
        assert isinstance(retry_in, float)
        cooldowns.append(retry_in)
        clock.now += retry_in
        assert h.is_available("a")
        h.begin("a")
        h.record_failure("a", "still down")
        assert not h.is_available("a")
    assert cooldowns == [1.0, 2.0, 4.0, 5.0, 5.0]


def test_failures_of_reads_started_before_the_breaker_opened_do_not_lengthen_it() -> None:
    clock = Clock()
    h = health(clock, failures_to_open=1, cooldown_seconds=1)
    for _ in range(4):  # four reads were under way when the site went down
        h.record_failure("a", "down")
    assert h.snapshot()["a"]["retry_in_seconds"] == pytest.approx(1.0)


def test_a_probe_that_never_reports_does_not_block_the_site_forever() -> None:
    clock = Clock()
    h = health(clock, failures_to_open=1, cooldown_seconds=1)
    h.record_failure("a", "down")
    clock.now += 1
    h.begin("a")  # the probe is cancelled (another shard answered first): no report
    assert not h.is_available("a")
    clock.now += 1
    assert h.is_available("a")


def test_snapshot_lists_every_known_site() -> None:
    h = health(Clock())
    h.record_success("c", 0.002, nbytes=10)
    snap = h.snapshot()
    assert set(snap) == {"a", "b", "c"}
    assert snap["a"]["latency_ms"] is None
    assert snap["c"]["latency_ms"] == pytest.approx(2.0)
    assert snap["c"]["tail_latency_ms"] == pytest.approx(2.0)
    assert snap["c"]["hedge_delay_ms"] == pytest.approx(10.0)  # 2 × 2 ms, raised to the floor
    assert snap["c"]["state"] == "closed"
    assert snap["c"]["last_error"] is None


def test_health_settings_come_from_the_health_table(tmp_path: Path) -> None:
    config = tmp_path / "egide.toml"
    config.write_text("[health]\nhedge = false\nhedge_factor = 3\nfailures_to_open = 5\n")
    settings = load_settings(config)
    assert settings.health.hedge is False
    assert settings.health.hedge_factor == 3
    assert settings.health.failures_to_open == 5
    assert load_settings(None).health == HealthConfig()
    config.write_text("[health]\nhedge_min_ms = 2000\nhedge_max_ms = 1000\n")
    with pytest.raises(ConfigError, match=r"health: .*hedge_min_ms is above hedge_max_ms"):
        load_settings(config)
    config.write_text("[health]\nhedge_after = 3\n")
    with pytest.raises(ConfigError, match=r"health\.hedge_after"):
        load_settings(config)
