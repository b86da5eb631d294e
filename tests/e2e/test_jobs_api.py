"""Jobs through the admin API, run by the server itself; a read that meets a missing shard
gets the version repaired by the server with no command run."""

from __future__ import annotations

import json
import sqlite3
import time
from pathlib import Path
from typing import Any

import pytest
from tests.conftest import Server, ServerFactory
from tests.e2e.test_admin_api import admin, answer

pytestmark = pytest.mark.timeout(120)

CONFIG = (
    "workers = 1\n[maintenance]\nscrub_period_days = 0\ngc_interval_hours = 0\n"
    "repair_queue_seconds = 0.5\n"
)


def _wait(server: Server, job_id: int, timeout: float = 30) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = answer(admin(server, "GET", f"/_egide/admin/jobs/{job_id}"))
        if job["state"] not in ("queued", "running"):
            return job
        time.sleep(0.2)
    raise AssertionError(f"job {job_id} did not end: {job}")


def test_jobs_are_queued_run_and_shown_through_the_admin_api(make_server: ServerFactory) -> None:
    server = make_server(CONFIG)
    s3 = server.client()
    s3.create_bucket(Bucket="jobs-api")
    for i in range(5):
        s3.put_object(Bucket="jobs-api", Key=f"k{i}", Body=bytes([i]) * 300_000)
    body = json.dumps({"kind": "scrub", "params": {"repair": False}}).encode()
    created = answer(admin(server, "POST", "/_egide/admin/jobs", body), 201)
    assert created["kind"] == "scrub" and created["state"] == "queued"
    done = _wait(server, created["id"])
    assert done["state"] == "done", done
    assert done["progress"]["items"] == 5 and done["progress"]["healthy"] == 5
    assert [j["id"] for j in answer(admin(server, "GET", "/_egide/admin/jobs?all"))["jobs"]] == [
        created["id"]
    ]
    assert answer(admin(server, "GET", "/_egide/admin/jobs"))["jobs"] == []  # none open
    refused = answer(admin(server, "POST", f"/_egide/admin/jobs/{created['id']}/cancel"), 409)
    assert refused["code"] == "InvalidJob" and "cannot become cancelled" in refused["message"]
    missing = answer(admin(server, "GET", "/_egide/admin/jobs/999"), 404)
    assert missing["code"] == "NoSuchJob"
    unknown = json.dumps({"kind": "format-disk"}).encode()
    answer(admin(server, "POST", "/_egide/admin/jobs", unknown), 409)
    answer(admin(server, "POST", "/_egide/admin/jobs", b"[1, 2]"), 400)


def _shards(server: Server, name: str) -> list[Path]:
    return [p for p in (server.data_dir / "sites").rglob(f"{name}-*") if p.is_file()]


def test_a_read_that_meets_a_missing_shard_gets_it_repaired(make_server: ServerFactory) -> None:
    server = make_server(CONFIG)
    s3 = server.client()
    s3.create_bucket(Bucket="jobs-api")
    body = bytes(range(256)) * 4096  # 1 MiB: its own shard files
    s3.put_object(Bucket="jobs-api", Key="doc", Body=body)
    with sqlite3.connect(f"file:{server.data_dir / 'catalog.sqlite3'}?mode=ro", uri=True) as db:
        (vid,) = db.execute("SELECT version_id FROM versions").fetchone()
    files = _shards(server, vid.hex())
    assert len(files) == 6
    (lost,) = [p for p in files if p.name == f"{vid.hex()}-0-0"]  # a data piece: always read
    lost.unlink()
    assert s3.get_object(Bucket="jobs-api", Key="doc")["Body"].read() == body
    deadline = time.monotonic() + 30
    while not lost.exists() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert lost.exists(), server.output()[-3000:]
    jobs = answer(admin(server, "GET", "/_egide/admin/jobs?all"))["jobs"]
    assert [(j["kind"], j["params"]) for j in jobs] == [("repair", {"queue_only": True})]
    assert "queued for repair" in server.output()
