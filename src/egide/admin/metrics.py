"""The Prometheus endpoint, `GET /_egide/metrics`: the text exposition format, unsigned.

Who may scrape is `[metrics]`'s: client addresses (loopback only by default) and, if
`bearer_token_file` is set, `Authorization: Bearer <token>`; anything else is 403, with no
hint of which check failed. A scrape reaches one worker process; it reads the counters and
histograms of every process from the shared directory (egide.telemetry) and adds what it
reads at scrape time, the same for every process:

- the readiness check's results (egide.admin.health, cached a few seconds): catalog
  reachable, each site taking writes, the time its probe took, ready or not;
- maintenance jobs not ended, by kind and state (a repair queue is its queued and running
  repair jobs), and the counters of the running and paused ones;
- this process's engine event queues (waiting, dropped) and its circuit breakers.
"""

from __future__ import annotations

import hmac
import ipaddress
import logging
from collections import Counter as Tally
from collections.abc import Iterable
from pathlib import Path

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector

from egide.admin.health import Readiness, ReadinessCheck
from egide.config import MetricsConfig
from egide.domain import Job
from egide.engine.jobs import OPEN_STATES
from egide.engine.store import ObjectStore
from egide.telemetry import metrics, multiprocess_dir
from egide.web.dispatch import Call, json_response, send_response
from egide.web.http import Response, Send

log = logging.getLogger("egide.metrics")

PATH = "/_egide/metrics"
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
#: Open jobs reported at most (the catalog keeps them few; a flood is not a label explosion).
MAX_JOBS = 500


class _Snapshot(Collector):
    """The gauges of one scrape, computed before `generate_latest` (which is synchronous)."""

    def __init__(self, families: list[Metric]) -> None:
        self.families = families

    def collect(self) -> Iterable[Metric]:
        return self.families


def _gauge(name: str, documentation: str, labels: tuple[str, ...] = ()) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, documentation, labels=list(labels))


def readiness_families(readiness: Readiness) -> list[Metric]:
    ready = _gauge("egide_ready", "1 when /_egide/health/ready answers 200.")
    ready.add_metric([], float(readiness.ready))
    catalog = _gauge("egide_catalog_up", "1 when the catalog answered the readiness check.")
    catalog.add_metric([], float(readiness.catalog))
    writable = _gauge(
        "egide_site_writable", "1 when the site took the readiness check's write.", ("site",)
    )
    probe = _gauge(
        "egide_site_probe_seconds", "Time the readiness write and delete took.", ("site",)
    )
    for name, check in sorted(readiness.sites.items()):
        writable.add_metric([name], float(check.writable))
        probe.add_metric([name], check.seconds)
    return [ready, catalog, writable, probe]


def job_families(jobs: list[Job]) -> list[Metric]:
    open_jobs = _gauge(
        "egide_jobs", "Maintenance jobs not ended, by kind and state.", ("kind", "state")
    )
    for (kind, state), count in sorted(Tally((job.kind, job.state) for job in jobs).items()):
        open_jobs.add_metric([kind, state], count)
    repair = _gauge("egide_repair_queue", "Repair jobs queued or running.")
    repair.add_metric(
        [], sum(j.kind == "repair" and j.state in ("queued", "running") for j in jobs)
    )
    progress = _gauge(
        "egide_job_progress", "The counters of running and paused jobs (objects, bytes …).",
        ("job", "kind", "counter"),
    )  # fmt: skip
    for job in jobs:
        if job.state in ("running", "paused"):
            for counter, value in sorted(job.progress.items()):
                progress.add_metric([str(job.id), job.kind, counter], value)
    return [open_jobs, repair, progress]


def process_families(store: ObjectStore) -> list[Metric]:
    waiting = _gauge(
        "egide_event_queue_waiting", "Engine events waiting for an observer, in the process "
        "that answered the scrape.", ("observer",),
    )  # fmt: skip
    dropped = _gauge(
        "egide_event_queue_dropped", "Engine events dropped because an observer's queue was "
        "full, in the process that answered the scrape.", ("observer",),
    )  # fmt: skip
    queued: Tally[str] = Tally()
    lost: Tally[str] = Tally()
    for sub in store.events.subscriptions:
        queued[sub.name] += sub.waiting
        lost[sub.name] += sub.dropped
    for name in sorted(queued):
        waiting.add_metric([name], queued[name])
        dropped.add_metric([name], lost[name])
    breaker = _gauge(
        "egide_site_breaker_open", "1 while reads avoid the site (its circuit breaker is open), "
        "in the process that answered the scrape.", ("site",),
    )  # fmt: skip
    down = store.health.unavailable()
    for name in store.sites:
        breaker.add_metric([name], float(name in down))
    return [waiting, dropped, breaker]


class MetricsApp:
    """Mounted at PATH (see the module docstring)."""

    def __init__(self, store: ObjectStore, readiness: ReadinessCheck, config: MetricsConfig):
        self.store = store
        self.readiness = readiness
        self.networks = [ipaddress.ip_network(n, strict=False) for n in config.allowed_addresses]
        self.token_file: Path | None = config.bearer_token_file

    def _allowed(self, call: Call) -> bool:
        if call.client is None:
            return False
        try:
            address = ipaddress.ip_address(call.client[0])
        except ValueError:
            return False
        if not any(address in network for network in self.networks):
            return False
        if self.token_file is None:
            return True
        # Read at each scrape: a rotated token applies without a restart.
        try:
            expected = self.token_file.read_text(encoding="utf-8").strip()
        except OSError as exc:  # refused, and said where the operator looks
            log.warning("metrics: the bearer token file cannot be read: %s", exc)
            return False
        given = call.head.header("authorization") or ""
        return bool(expected) and hmac.compare_digest(given.encode(), f"Bearer {expected}".encode())

    async def serve(self, call: Call, send: Send) -> None:
        call.exchange.operation = "Metrics"
        head = call.head
        if head.path.rstrip("/") != PATH:
            response = json_response(
                404, {"code": "NotFound", "message": f"no such resource: {head.path}"}
            )
        elif head.method not in ("GET", "HEAD"):
            response = json_response(
                405, {"code": "MethodNotAllowed", "message": f"{head.method}: GET or HEAD only"}
            )
        elif not self._allowed(call):
            response = json_response(
                403, {"code": "AccessDenied", "message": "This client may not read the metrics."}
            )
        else:
            response = Response(200, {"content-type": CONTENT_TYPE}, await self.exposition())
        await send_response(response, call, send)

    async def exposition(self) -> bytes:
        store = self.store
        metrics().flush()  # this process's last second; the others flush every second
        registry = CollectorRegistry()
        directory = multiprocess_dir()
        if directory is not None:
            MultiProcessCollector(registry, directory)  # type: ignore[no-untyped-call]
        else:
            registry.register(_Registered(metrics().registry))
        families = readiness_families(await self.readiness.current())
        try:
            jobs = await store.catalog.list_jobs(OPEN_STATES, limit=MAX_JOBS)
        except Exception as exc:  # the readiness gauges say the catalog is down
            log.warning("metrics: jobs not read from the catalog: %s", exc)
        else:
            families += job_families(jobs)
        families += process_families(store)
        registry.register(_Snapshot(families))
        return generate_latest(registry)


class _Registered(Collector):
    """Another registry's metrics, for the single-process case (no shared directory)."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry

    def collect(self) -> Iterable[Metric]:
        return self.registry.collect()
