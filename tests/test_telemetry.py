"""The data path's metrics: bounded labels."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from egide.config import MetricsConfig
from egide.telemetry import MAX_OPERATIONS, Metrics


def test_operation_labels_are_bounded_whatever_clients_send() -> None:
    metrics = Metrics()
    assert metrics.operation_label(None) == "Unknown"
    assert metrics.operation_label("PutObject") == "PutObject"
    labels = {metrics.operation_label(f"STS.Action{i}") for i in range(MAX_OPERATIONS * 2)}
    assert len(labels) == MAX_OPERATIONS  # 199 new names, then "Other" for the rest
    assert "Other" in labels
    assert metrics.operation_label("PutObject") == "PutObject"  # a known one stays itself
    assert Metrics().operation_label("x" * 65) == "Other"


def test_allowed_addresses_must_be_networks() -> None:
    assert MetricsConfig(allowed_addresses=["10.0.0.0/8", "::1"]).allowed_addresses
    with pytest.raises(ValidationError, match=r"10\.0\.0\.300"):
        MetricsConfig(allowed_addresses=["10.0.0.300/8"])


def test_what_is_recorded_is_exported_once_flushed() -> None:
    metrics = Metrics()
    metrics.request("PutObject", 200, 0.003, 4096, 0)
    metrics.request("PutObject", 200, 0.2, 10, 0)
    metrics.request("GetObject", 0, 0.001, 0, 0)
    metrics.site_read("site-1", 0.0007, 1100)
    metrics.site_error("site-2")
    registry = metrics.registry
    assert (
        registry.get_sample_value(
            "egide_requests_total", {"operation": "PutObject", "status": "200"}
        )
        is None
    )
    metrics.flush()
    sample = registry.get_sample_value
    assert sample("egide_requests_total", {"operation": "PutObject", "status": "200"}) == 2
    assert sample("egide_requests_total", {"operation": "GetObject", "status": "499"}) == 1
    assert sample("egide_http_bytes_total", {"operation": "PutObject", "direction": "in"}) == 4106
    put = {"operation": "PutObject"}
    assert sample("egide_request_seconds_bucket", {**put, "le": "0.0025"}) == 0
    assert sample("egide_request_seconds_bucket", {**put, "le": "0.005"}) == 1
    assert sample("egide_request_seconds_bucket", {**put, "le": "0.25"}) == 2
    assert sample("egide_request_seconds_count", put) == 2
    assert sample("egide_request_seconds_sum", put) == pytest.approx(0.203)
    assert sample("egide_site_read_bytes_total", {"site": "site-1"}) == 1100
    assert sample("egide_site_read_seconds_bucket", {"site": "site-1", "le": "0.001"}) == 1
    assert sample("egide_site_errors_total", {"site": "site-2"}) == 1
    metrics.flush()  # nothing new: nothing added twice
    assert sample("egide_requests_total", {"operation": "PutObject", "status": "200"}) == 2
