"""How each site has been answering: latency, errors, bytes read, and a circuit breaker.

One `SiteHealth` per server process is shared by every read, so that what one request learns
(this provider is slow, that one is down) spares the next. Reads use it three ways: to ask the
sites that answer fastest, to hedge a read slower than its site usually is (`hedge_delay`), and
to stop asking a site that keeps failing: its breaker opens after `failures_to_open`
consecutive failures, lets one probe read through after a cool-down (half-open) that doubles
after each failed probe, and closes on the first success.

Pure bookkeeping: no I/O, and time comes from an injectable clock so tests can move it. Not
thread-safe: it lives on the event loop of its process.
"""

from __future__ import annotations

import logging
import math
import statistics
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum

from egide.clock import SYSTEM_CLOCK, Clock
from egide.config import HealthConfig
from egide.telemetry import Metrics

log = logging.getLogger("egide.health")


class Breaker(StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half-open"


class _Window:
    """The last `size` latency samples, none older than the horizon given: (when, seconds) in
    two deques, oldest first, with a running sum (the mean of every site is asked for every
    block) and a quantile sorted again only once 1/16 of the window is new."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.when: deque[float] = deque()
        self.seconds: deque[float] = deque()
        self.total = 0.0
        self._quantile: tuple[float, float] | None = None  # (q, value)
        self._new = 0

    def add(self, now: float, seconds: float) -> None:
        if len(self.seconds) >= self.size:
            self.when.popleft()
            self.total -= self.seconds.popleft()
        self.when.append(now)
        self.seconds.append(seconds)
        self.total += seconds
        self._new += 1

    def count(self, horizon: float) -> int:
        """How many samples are left once those older than `horizon` are dropped."""
        when = self.when
        if when and when[0] < horizon:
            while when and when[0] < horizon:
                when.popleft()
                self.seconds.popleft()
            self.total = math.fsum(self.seconds)
            self._quantile = None
        return len(when)

    def mean(self) -> float:
        return self.total / len(self.seconds)

    def quantile(self, q: float) -> float:
        """Nearest-rank quantile; the window must not be empty."""
        cached = self._quantile
        if cached is None or cached[0] != q or self._new * 16 >= len(self.seconds):
            values = sorted(self.seconds)
            cached = self._quantile = (q, values[max(math.ceil(q * len(values)) - 1, 0)])
            self.total = math.fsum(values)  # no drift from the running sum
            self._new = 0
        return cached[1]


@dataclass
class _Site:
    #: Every read: answered ones, and abandoned ones for the time they were waited for.
    waited: _Window
    #: Answered reads only: what the hedge delay is taken from.
    answered: _Window
    consecutive_failures: int = 0
    #: When the breaker opened; None while it is closed.
    opened_at: float | None = None
    cooldown: float = 0.0
    #: When the half-open probe started, if one is under way.
    probe_started: float | None = None
    reads: int = 0
    bytes_read: int = 0
    errors: int = 0
    abandoned: int = 0
    last_error: str | None = None
    last_error_at: float | None = None


class SiteHealth:
    """Per-site latency estimate, counters and circuit breaker (see the module docstring)."""

    def __init__(
        self,
        sites: Iterable[str] = (),
        config: HealthConfig | None = None,
        *,
        clock: Clock = SYSTEM_CLOCK,
        metrics: Metrics | None = None,
    ) -> None:
        self.config = config or HealthConfig()
        self.clock = clock
        #: Where what reads report is counted for Prometheus too (egide.telemetry), if anywhere.
        self.metrics = metrics
        self._sites: dict[str, _Site] = {}
        for name in sites:
            self._site(name)

    def _site(self, name: str) -> _Site:
        site = self._sites.get(name)
        if site is None:
            size = self.config.latency_window
            site = self._sites[name] = _Site(_Window(size), _Window(size))
        return site

    # -- what reads report ----------------------------------------------------------------------

    def begin(self, site: str) -> None:
        """A read of `site` starts. In the half-open state it is the probe: others wait for it."""
        state = self._sites.get(site)
        now = self.clock.monotonic()
        if state is not None and self._breaker(state, now) is Breaker.HALF_OPEN:
            state.probe_started = now

    def record_success(self, site: str, seconds: float, nbytes: int = 0) -> None:
        """`site` answered in `seconds` (a missing shard is an answer too): a latency sample,
        and the breaker closes."""
        state = self._site(site)
        state.reads += 1
        state.bytes_read += nbytes
        if self.metrics is not None:
            self.metrics.site_read(site, seconds, nbytes)
        now = self.clock.monotonic()
        state.waited.add(now, seconds)
        state.answered.add(now, seconds)
        state.consecutive_failures = 0
        if state.opened_at is not None:
            log.info("site %s answers again: asking it again", site)
            state.opened_at, state.cooldown, state.probe_started = None, 0.0, None

    def record_failure(self, site: str, error: str) -> None:
        """`site` failed (unreachable, refused, timed out): counts towards opening its breaker."""
        state = self._site(site)
        now = self.clock.monotonic()
        state.errors += 1
        if self.metrics is not None:
            self.metrics.site_error(site)
        state.consecutive_failures += 1
        state.last_error, state.last_error_at = error, now
        breaker = self._breaker(state, now)
        config = self.config
        if breaker is Breaker.CLOSED and state.consecutive_failures >= config.failures_to_open:
            state.opened_at, state.cooldown = now, config.cooldown_seconds
        elif breaker is Breaker.HALF_OPEN:
            state.opened_at = now
            state.cooldown = min(state.cooldown * 2, config.cooldown_max_seconds)
        else:
            return  # still closed, or a read started before the breaker opened
        state.probe_started = None
        log.warning(
            "site %s failed %d times in a row; not asked for %.0f s unless no other shard is "
            "left. Last error: %s",
            site, state.consecutive_failures, state.cooldown, error,
        )  # fmt: skip

    def record_abandoned(self, site: str, seconds: float) -> None:
        """A read of `site` was given up after `seconds` without an answer, because other
        shards came first. Not a failure; its latency was at least that, which counts in the
        ranking (a site that turned slow is asked later) but not in the hedge delay (which
        would otherwise grow with each hedge, until a site slow one time in ten is never
        hedged)."""
        state = self._site(site)
        state.abandoned += 1
        if self.metrics is not None:
            self.metrics.site_abandoned(site)
        state.waited.add(self.clock.monotonic(), seconds)

    # -- what reads ask ---------------------------------------------------------------------------

    def _breaker(self, state: _Site, now: float) -> Breaker:
        if state.opened_at is None:
            return Breaker.CLOSED
        return Breaker.OPEN if now < state.opened_at + state.cooldown else Breaker.HALF_OPEN

    def is_available(self, site: str) -> bool:
        """False while the breaker of `site` is open, or half-open with its probe under way.
        A probe that never reported (cancelled) stops counting after `cooldown_seconds`."""
        state = self._sites.get(site)
        if state is None:
            return True
        now = self.clock.monotonic()
        breaker = self._breaker(state, now)
        if breaker is Breaker.HALF_OPEN:
            started = state.probe_started
            return started is None or now - started >= self.config.cooldown_seconds
        return breaker is Breaker.CLOSED

    def unavailable(self) -> frozenset[str]:
        return frozenset(name for name in self._sites if not self.is_available(name))

    def _horizon(self) -> float:
        return self.clock.monotonic() - self.config.latency_max_age_seconds

    def latency(self, site: str) -> float | None:
        """Mean seconds of the recent reads of `site` (reads given up count for the time they
        were waited for), None if it was not read recently: what choosing the fastest ranks."""
        state = self._sites.get(site)
        if state is None or not state.waited.count(self._horizon()):
            return None
        return state.waited.mean()

    def tail_latency(self, site: str) -> float | None:
        """The hedge_quantile (p90 by default) of the recent reads of `site`, reads given up
        counting for the time they were waited for: what ranking the fastest sites uses, so
        that a site slow one time in ten ranks behind one that never is (the mean would not
        tell them apart once hedging cuts each slow read short)."""
        state = self._sites.get(site)
        if state is None or not state.waited.count(self._horizon()):
            return None
        return state.waited.quantile(self.config.hedge_quantile)

    def _answered_tail(self, site: str) -> float | None:
        state = self._sites.get(site)
        if state is None or not state.answered.count(self._horizon()):
            return None
        return state.answered.quantile(self.config.hedge_quantile)

    def hedge_delay(self, site: str) -> float:
        """Seconds after which a read of `site` still unanswered is hedged: hedge_factor × the
        hedge_quantile of its recent answered reads, within [hedge_min_ms, hedge_max_ms]. A
        site with no recent answer gets the median delay of those with one (its slowness alone
        is no reason to wait longer), or hedge_initial_ms when no site has one."""
        tail = self._answered_tail(site)
        if tail is not None:
            return self._clamp(tail * self.config.hedge_factor)
        others = [t for name in self._sites if (t := self._answered_tail(name)) is not None]
        if others:
            return self._clamp(statistics.median(others) * self.config.hedge_factor)
        return self.config.hedge_initial_ms / 1000

    def _clamp(self, delay: float) -> float:
        config = self.config
        return min(max(delay, config.hedge_min_ms / 1000), config.hedge_max_ms / 1000)

    def snapshot(self) -> dict[str, dict[str, object]]:
        """Per site, for `egide site list` and the console: breaker state, mean and tail
        (hedge_quantile) latency, hedge delay, counters, last error."""
        now = self.clock.monotonic()
        report: dict[str, dict[str, object]] = {}
        for name, state in self._sites.items():
            mean, tail = self.latency(name), self.tail_latency(name)
            breaker = self._breaker(state, now)
            opened_at = state.opened_at
            retry_in = None
            if breaker is Breaker.OPEN and opened_at is not None:
                retry_in = round(opened_at + state.cooldown - now, 3)
            report[name] = {
                "state": breaker.value,
                "latency_ms": round(mean * 1000, 3) if mean is not None else None,
                "tail_latency_ms": round(tail * 1000, 3) if tail is not None else None,
                "hedge_delay_ms": round(self.hedge_delay(name) * 1000, 3),
                "reads": state.reads,
                "bytes_read": state.bytes_read,
                "abandoned": state.abandoned,
                "errors": state.errors,
                "consecutive_errors": state.consecutive_failures,
                "last_error": state.last_error,
                "last_error_seconds_ago": (
                    round(now - state.last_error_at, 3) if state.last_error_at is not None else None
                ),
                "retry_in_seconds": retry_in,
            }
        return report
