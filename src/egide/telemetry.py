"""The counters and histograms of the data path, shared by every server process (Prometheus).

A server runs several worker processes; a scrape reaches one of them. So the metrics are kept
in prometheus-client's multiprocess mode: each process writes its values to memory-mapped files
in one private directory (`<data_dir>/metrics`, emptied at each start by egide.server), and the
process that answers a scrape sums the files of all (egide.admin.metrics). The mode is chosen
when a metric's value is created, from PROMETHEUS_MULTIPROC_DIR: `start` sets it, and tells the
library again, since the library read the environment once when it was first imported.

Labels are bounded: S3 operation names, status codes, site names, directions; never a bucket
name, a key or an address. Only counters and histograms here (cheap on the data path); what is
read from the catalog or probed is computed when scraped.
"""

from __future__ import annotations

import asyncio
import functools
import os
import shutil
from bisect import bisect_left
from pathlib import Path

from prometheus_client import CollectorRegistry, Counter, Histogram, values

#: Latency buckets in seconds, from a cached 4 KiB GET to a slow multi-gigabyte upload.
REQUEST_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)
SITE_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10)
ENV = "PROMETHEUS_MULTIPROC_DIR"
#: Operation names a process labels with: the apps name their operations from fixed sets, but
#: one (STS) echoes the Action a client sent; past this many, the rest count as "Other".
MAX_OPERATIONS = 200


class Metrics:
    """The data path's metrics of one process.

    Recording is a dictionary update (and a bisection for a histogram): what the metrics cost a
    request. `flush`, every second from a background loop and before a scrape, adds what was
    recorded since to prometheus-client's values (in multiprocess mode a locked write to a
    memory-mapped file per value, ~5 µs each, ~15 µs a histogram observation: too much for each
    shard read). So a scrape may miss the last second of the other processes. Lives on one
    event loop; not thread-safe.

    Not registered anywhere global: in multiprocess mode the files are the registry; otherwise
    `registry` holds them (a test's in-process server).
    """

    def __init__(self) -> None:
        self.registry = registry = CollectorRegistry(auto_describe=True)
        self._operations: set[str] = set()
        self._counters = {
            "requests": Counter(
                "egide_requests", "Requests answered, by API operation and HTTP status.",
                ("operation", "status"), registry=registry,
            ),
            "bytes": Counter(
                "egide_http_bytes", "Body bytes received (in) and sent (out), by operation.",
                ("operation", "direction"), registry=registry,
            ),
            "site_reads": Counter(
                "egide_site_reads", "Shard reads a site answered (a missing shard is one).",
                ("site",), registry=registry,
            ),
            "site_read_bytes": Counter(
                "egide_site_read_bytes", "Bytes read from a site.", ("site",), registry=registry
            ),
            "site_errors": Counter(
                "egide_site_errors", "Failed site operations (unreachable, refused, timed out).",
                ("site",), registry=registry,
            ),
            "site_abandoned": Counter(
                "egide_site_abandoned_reads", "Site reads given up: other shards came first.",
                ("site",), registry=registry,
            ),
        }  # fmt: skip
        self._histograms = {
            "latency": Histogram(
                "egide_request_seconds", "Time from the request head to the last byte answered.",
                ("operation",), buckets=REQUEST_BUCKETS, registry=registry,
            ),
            "site_latency": Histogram(
                "egide_site_read_seconds", "Latency of the shard reads a site answered.",
                ("site",), buckets=SITE_BUCKETS, registry=registry,
            ),
        }  # fmt: skip
        #: Recorded and not flushed yet: (counter, labels) → amount; (histogram, labels) →
        #: [sum, count of bucket 0, …, count of +Inf].
        self._counts: dict[tuple[str, tuple[str, ...]], float] = {}
        self._observed: dict[tuple[str, tuple[str, ...]], list[float]] = {}

    def operation_label(self, operation: str | None) -> str:
        """`operation` as a label value, the number of values bounded (MAX_OPERATIONS)."""
        if operation is None:
            return "Unknown"
        seen = self._operations
        if operation in seen:
            return operation
        if len(seen) >= MAX_OPERATIONS or len(operation) > 64:
            return "Other"
        seen.add(operation)
        return operation

    def _count(self, name: str, labels: tuple[str, ...], amount: float = 1) -> None:
        counts = self._counts
        key = (name, labels)
        counts[key] = counts.get(key, 0) + amount

    def _observe(
        self, name: str, labels: tuple[str, ...], bounds: tuple[float, ...], value: float
    ) -> None:
        key = (name, labels)
        tally = self._observed.get(key)
        if tally is None:
            tally = self._observed[key] = [0.0] * (len(bounds) + 2)
        tally[0] += value
        tally[bisect_left(bounds, value) + 1] += 1  # the first bucket whose bound is >= value

    def request(
        self, operation: str | None, status: int, seconds: float, bytes_in: int, bytes_out: int
    ) -> None:
        """One request answered (`status` 0: the client left before an answer, counted 499)."""
        label = self.operation_label(operation)
        self._count("requests", (label, str(status or 499)))
        self._observe("latency", (label,), REQUEST_BUCKETS, seconds)
        if bytes_in:
            self._count("bytes", (label, "in"), bytes_in)
        if bytes_out:
            self._count("bytes", (label, "out"), bytes_out)

    def site_read(self, site: str, seconds: float, nbytes: int) -> None:
        self._count("site_reads", (site,))
        self._observe("site_latency", (site,), SITE_BUCKETS, seconds)
        if nbytes:
            self._count("site_read_bytes", (site,), nbytes)

    def site_error(self, site: str) -> None:
        self._count("site_errors", (site,))

    def site_abandoned(self, site: str) -> None:
        self._count("site_abandoned", (site,))

    def flush(self) -> None:
        """Add what was recorded since the last flush to the exported values."""
        counts, self._counts = self._counts, {}
        # list(): a copy taken at once, should another thread (a test's in-process servers
        # share this process's metrics) still add to the dictionary just swapped out.
        for (name, labels), amount in list(counts.items()):
            self._counters[name].labels(*labels).inc(amount)
        observed, self._observed = self._observed, {}
        for (name, labels), tally in list(observed.items()):
            child = self._histograms[name].labels(*labels)
            # Histogram.observe adds one value; these are many: its sum and buckets directly.
            child._sum.inc(tally[0])
            for bucket, count in zip(child._buckets, tally[1:], strict=True):
                if count:
                    bucket.inc(count)


async def publish(metrics: Metrics, interval: float = 1.0) -> None:
    """Flush `metrics` every `interval` seconds (a background loop of each server process)."""
    try:
        while True:
            await asyncio.sleep(interval)
            metrics.flush()
    finally:
        metrics.flush()  # the last counts of a process stopping


def multiprocess_dir() -> str | None:
    return os.environ.get(ENV)


def start(directory: Path) -> None:
    """Before any server process starts: an empty metrics directory (a previous run's files
    would add old counts), named in the environment the worker processes inherit."""
    if directory.exists():
        shutil.rmtree(directory)
    directory.mkdir(mode=0o700, parents=True)
    os.environ[ENV] = str(directory)
    values.ValueClass = values.get_value_class()  # type: ignore[no-untyped-call]


@functools.cache
def metrics() -> Metrics:
    """This process's metrics, created on first use (after `start` in the server)."""
    values.ValueClass = values.get_value_class()  # type: ignore[no-untyped-call]
    return Metrics()
