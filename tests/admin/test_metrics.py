"""What a scrape reads from the catalog's jobs (the rest: tests/e2e/test_metrics.py)."""

from __future__ import annotations

from egide.admin.metrics import job_families
from egide.domain import Job


def _job(job_id: int, kind: str, state: str, progress: dict[str, int]) -> Job:
    return Job(job_id, kind, {}, state, None, progress, 0.0, 0.0)


def test_running_and_paused_jobs_report_their_counters() -> None:
    jobs = [
        _job(1, "repair", "running", {"versions": 10, "bytes": 4096}),
        _job(2, "scrub", "paused", {"versions": 3}),
        _job(3, "repair", "queued", {}),
        _job(4, "evacuate", "failed", {"versions": 7}),
    ]
    families = {family.name: family for family in job_families(jobs)}
    progress = {
        (s.labels["job"], s.labels["counter"]): s.value
        for s in families["egide_job_progress"].samples
    }
    assert progress == {("1", "bytes"): 4096, ("1", "versions"): 10, ("2", "versions"): 3}
    assert families["egide_repair_queue"].samples[0].value == 2  # queued and running repairs
    states = {
        (s.labels["kind"], s.labels["state"]): s.value for s in families["egide_jobs"].samples
    }
    assert states == {
        ("evacuate", "failed"): 1, ("repair", "queued"): 1, ("repair", "running"): 1,
        ("scrub", "paused"): 1,
    }  # fmt: skip
