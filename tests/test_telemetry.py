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
