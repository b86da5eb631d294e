"""/_egide/metrics and /_egide/health/…: real servers, boto3 traffic, a real scrape parsed
with prometheus-client's parser."""

from __future__ import annotations

import http.client
import json
import os
import shutil
import time
from pathlib import Path

import pytest
from botocore.exceptions import ClientError
from prometheus_client.parser import text_string_to_metric_families
from tests.conftest import Server, ServerFactory

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def get(server: Server, path: str, headers: dict[str, str] | None = None) -> tuple[int, bytes]:
    """One request on a new connection (so that, with several workers, any may answer)."""
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    try:
        conn.request("GET", path, headers=headers or {})
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def scrape(server: Server) -> Samples:
    status, body = get(server, "/_egide/metrics")
    assert status == 200, body
    samples: Samples = {}
    for family in text_string_to_metric_families(body.decode()):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def scrape_until(server: Server, name: str, expected: float, **labels: str) -> Samples:
    """A scrape once `name{labels}` reached `expected`: the other workers flush every second."""
    deadline = time.monotonic() + 10
    while True:
        samples = scrape(server)
        if value(samples, name, **labels) >= expected or time.monotonic() > deadline:
            return samples
        time.sleep(0.2)


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def test_a_scrape_counts_the_requests_and_bytes_of_every_worker(
    make_server: ServerFactory,
) -> None:
    server = make_server("workers = 2")
    s3 = server.client(request_checksum_calculation="when_required")
    s3.create_bucket(Bucket="counted")
    sizes = [4096, 10_000, 1]
    for i, size in enumerate(sizes):
        s3.put_object(Bucket="counted", Key=f"k{i}", Body=os.urandom(size))
    for i in range(2):
        assert len(s3.get_object(Bucket="counted", Key=f"k{i}")["Body"].read()) == sizes[i]
    with pytest.raises(ClientError):
        s3.get_object(Bucket="counted", Key="missing")
    # Twenty connections of their own: both workers answer some (SO_REUSEPORT spreads them).
    for _ in range(20):
        assert get(server, "/_egide/health/live")[0] == 200

    samples = scrape_until(server, "egide_requests_total", 20, operation="Health", status="200")
    assert value(samples, "egide_requests_total", operation="CreateBucket", status="200") == 1
    assert value(samples, "egide_requests_total", operation="PutObject", status="200") == 3
    assert value(samples, "egide_requests_total", operation="GetObject", status="200") == 2
    assert value(samples, "egide_requests_total", operation="GetObject", status="404") == 1
    assert value(samples, "egide_requests_total", operation="Health", status="200") == 20
    assert value(samples, "egide_http_bytes_total", operation="PutObject", direction="in") == sum(
        sizes
    )
    got = value(samples, "egide_http_bytes_total", operation="GetObject", direction="out")
    assert got > sizes[0] + sizes[1]  # the two bodies and the 404's XML error
    assert value(samples, "egide_request_seconds_count", operation="PutObject") == 3
    assert value(samples, "egide_request_seconds_bucket", operation="PutObject", le="+Inf") == 3
    # Reads of shards were counted per site: 6 sites, each GET read k of them.
    reads = sum(v for (name, _), v in samples.items() if name == "egide_site_reads_total")
    assert reads >= 2 * 4
    assert value(samples, "egide_ready") == 1
    # Every worker wrote its counts: the 20 probes were spread over two processes.
    files = list((server.data_dir / "metrics").glob("counter_*.db"))
    assert len(files) >= 2, files
    # Labels never carry a bucket name or a key.
    assert not any("counted" in str(labels) for _, labels in samples)


def test_a_site_that_takes_no_writes_shows_in_the_metrics_and_makes_ready_503(
    make_server: ServerFactory, tmp_path: Path
) -> None:
    server = make_server("workers = 1\n[metrics]\nready_cache_seconds = 0")
    status, body = get(server, "/_egide/health/ready")
    assert status == 200, body
    assert json.loads(body)["status"] == "ready"
    site = server.site_dirs()[0]
    shutil.move(site, tmp_path / "gone")  # the disk is gone: nothing can be written there

    status, body = get(server, "/_egide/health/ready")
    assert status == 503
    document = json.loads(body)
    assert document["status"] == "not ready"
    assert document["sites"][site.name] == "not writable"
    assert document["catalog"] == "ok"
    assert "6 sites" in document["problems"][0] and "5 of 6" in document["problems"][0]
    assert str(site) not in body.decode()  # names, never paths or errors

    s3 = server.client(retries={"max_attempts": 1})
    s3.create_bucket(Bucket="bkt")
    with pytest.raises(ClientError):
        s3.put_object(Bucket="bkt", Key="k", Body=b"x" * 300_000)  # 4+2 needs all six
    samples = scrape_until(server, "egide_site_errors_total", 1, site=site.name)
    assert value(samples, "egide_ready") == 0
    assert value(samples, "egide_site_writable", site=site.name) == 0
    others = [d.name for d in server.site_dirs()]
    assert all(value(samples, "egide_site_writable", site=name) == 1 for name in others)
    assert value(samples, "egide_site_errors_total", site=site.name) >= 1
    assert value(samples, "egide_catalog_up") == 1

    shutil.move(tmp_path / "gone", site)
    assert get(server, "/_egide/health/ready")[0] == 200


def test_live_answers_and_unknown_health_paths_are_404(make_server: ServerFactory) -> None:
    server = make_server("workers = 1")
    status, body = get(server, "/_egide/health/live")
    assert (status, json.loads(body)) == (200, {"status": "live"})
    assert get(server, "/_egide/health/nothing")[0] == 404


def test_scrapes_from_other_addresses_or_without_the_token_are_refused(
    make_server: ServerFactory, tmp_path: Path
) -> None:
    token = tmp_path / "token"
    token.write_text("s3cr3t-scrape-token\n")
    server = make_server(f'workers = 1\n[metrics]\nbearer_token_file = "{token}"')
    assert get(server, "/_egide/metrics")[0] == 403
    assert get(server, "/_egide/metrics", {"authorization": "Bearer wrong"})[0] == 403
    status, body = get(server, "/_egide/metrics", {"authorization": "Bearer s3cr3t-scrape-token"})
    assert status == 200 and b"egide_requests_total" in body
    token.unlink()  # an unreadable token file refuses every scrape
    assert get(server, "/_egide/metrics", {"authorization": "Bearer s3cr3t-scrape-token"})[0] == 403

    elsewhere = make_server('workers = 1\n[metrics]\nallowed_addresses = ["10.0.0.0/8"]')
    status, body = get(elsewhere, "/_egide/metrics")
    assert status == 403 and b"AccessDenied" in body


def test_metrics_disabled_is_not_mounted(make_server: ServerFactory) -> None:
    server = make_server("workers = 1\n[metrics]\nenabled = false")
    status, body = get(server, "/_egide/metrics")
    assert status == 404 and json.loads(body)["code"] == "NotFound"
    assert get(server, "/_egide/health/live")[0] == 200
    assert not (server.data_dir / "metrics").exists()


def test_jobs_not_ended_and_the_repair_queue_are_in_the_metrics(
    make_server: ServerFactory,
) -> None:
    from tests.e2e.test_admin_api import admin, answer

    # No job runner in the server: what is queued stays queued.
    server = make_server("workers = 1\n[maintenance]\nrun_in_server = false")
    for kind in ("scrub", "repair", "repair"):
        body = json.dumps({"kind": kind, "params": {}}).encode()
        answer(admin(server, "POST", "/_egide/admin/jobs", body), 201)
    samples = scrape(server)
    assert value(samples, "egide_jobs", kind="scrub", state="queued") == 1
    assert value(samples, "egide_jobs", kind="repair", state="queued") == 2
    assert value(samples, "egide_repair_queue") == 2
