"""An observer of a real server's engine sees what S3 and the admin API changed, and who
asked (the access key that signed the request)."""

from __future__ import annotations

import json
import time

from tests.conftest import ACCESS_KEY, InProcessFactory
from tests.e2e.test_admin_api import admin, answer

from egide.auth.authorize import Authorizer, allow_all
from egide.engine.events import Event, EventKind
from egide.engine.placing import SETTING as POLICY

#: Longest the observer may take to see an event before the test fails.
DELIVERY_TIMEOUT = 10.0


def test_the_admin_api_s_changes_are_announced_with_who_asked(
    make_inprocess_server: InProcessFactory,
) -> None:
    seen: list[Event] = []

    async def observer(event: Event) -> None:
        seen.append(event)

    server = make_inprocess_server(Authorizer(allow_all), observer)
    server.client().create_bucket(Bucket="records")
    answer(admin(server, "DELETE", "/_egide/admin/buckets/records/policy"))
    body = json.dumps({"kind": "scrub", "params": {"from": "the admin API"}}).encode()
    job = answer(admin(server, "POST", "/_egide/admin/jobs", body), 201)

    def mine() -> list[Event]:
        # A bucket's creation also sets its owner and Object Ownership (decision 0031).
        return [
            e for e in seen
            if (e.kind != EventKind.JOB_CHANGED or e.job_id == job["id"])
            and (e.kind != EventKind.BUCKET_CHANGED or e.detail not in ("owner", "ownership"))
        ]  # fmt: skip

    deadline = time.monotonic() + DELIVERY_TIMEOUT
    while len(mine()) < 3:
        assert time.monotonic() < deadline, seen
        time.sleep(0.01)
    created, changed, queued = mine()[:3]
    assert (created.kind, created.bucket, created.principal) == (
        EventKind.BUCKET_CREATED, "records", ACCESS_KEY,
    )  # fmt: skip
    assert (changed.kind, changed.bucket, changed.detail, changed.principal) == (
        EventKind.BUCKET_CHANGED, "records", POLICY, ACCESS_KEY,
    )  # fmt: skip
    assert (queued.kind, queued.job_kind, queued.detail, queued.principal) == (
        EventKind.JOB_CHANGED, "scrub", "queued", ACCESS_KEY,
    )  # fmt: skip
    assert {(e.detail, e.principal) for e in seen if e.kind == EventKind.BUCKET_CHANGED} >= {
        ("owner", ACCESS_KEY), ("ownership", ACCESS_KEY),
    }  # fmt: skip
    # What the server's runner does with the job afterwards is its own doing.
    assert {e.principal for e in mine()[3:]} <= {"egide:jobs"}
