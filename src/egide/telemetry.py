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

import functools
import os
import shutil
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
    """The data path's metrics of one process. Not registered anywhere global: in multiprocess
    mode the files are the registry; otherwise `registry` holds them (a test's in-process
    server)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self._operations: set[str] = set()
        self.requests = Counter(
            "egide_requests", "Requests answered, by API operation and HTTP status.",
            ("operation", "status"), registry=self.registry,
        )  # fmt: skip
        self.latency = Histogram(
            "egide_request_seconds", "Time from the request head to the last byte answered.",
            ("operation",), buckets=REQUEST_BUCKETS, registry=self.registry,
        )  # fmt: skip
        self.bytes = Counter(
            "egide_http_bytes", "Body bytes received (in) and sent (out), by operation.",
            ("operation", "direction"), registry=self.registry,
        )  # fmt: skip
        self.site_reads = Counter(
            "egide_site_reads", "Shard reads a site answered (a missing shard is an answer).",
            ("site",), registry=self.registry,
        )  # fmt: skip
        self.site_read_bytes = Counter(
            "egide_site_read_bytes", "Bytes read from a site.", ("site",), registry=self.registry
        )
        self.site_errors = Counter(
            "egide_site_errors", "Failed site operations (unreachable, refused, timed out).",
            ("site",), registry=self.registry,
        )  # fmt: skip
        self.site_abandoned = Counter(
            "egide_site_abandoned_reads", "Site reads given up because other shards came first.",
            ("site",), registry=self.registry,
        )  # fmt: skip
        self.site_latency = Histogram(
            "egide_site_read_seconds", "Latency of the shard reads a site answered.",
            ("site",), buckets=SITE_BUCKETS, registry=self.registry,
        )  # fmt: skip

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
