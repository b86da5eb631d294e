"""`egide repair / gc / job …` and `egide site remove` over a store a real server wrote."""

from __future__ import annotations

from tests.cli.conftest import Store


def _cancel_open(store: Store) -> None:
    """The server that wrote the store queued its first scrub and GC; out of the way."""
    for job in store.json("job", "list"):
        store.egide("job", "cancel", str(job["id"]))


def test_repair_of_a_healthy_store_finds_nothing_to_do(store: Store) -> None:
    _cancel_open(store)
    job = store.json("repair")
    assert job["state"] == "done"
    assert job["progress"]["healthy"] == job["progress"]["items"] == len(store.versions())
    assert job["id"] in [j["id"] for j in store.json("job", "list", "--all")]
    assert store.json("job", "list") == []  # nothing open


def test_jobs_are_paused_resumed_and_cancelled_from_the_command_line(store: Store) -> None:
    _cancel_open(store)
    queued = store.egide("gc", "--background")
    assert queued.exit_code == 0, queued.output
    assert "queued; the servers run it" in queued.output
    (job,) = store.json("job", "list")
    assert job["kind"] == "gc" and job["state"] == "queued"
    assert "paused" in store.egide("job", "pause", str(job["id"])).output
    again = store.egide("job", "pause", str(job["id"]))
    assert again.exit_code == 2 and "is paused: it cannot become paused" in again.output
    assert "queued" in store.egide("job", "resume", str(job["id"])).output
    assert "cancelled" in store.egide("job", "cancel", str(job["id"])).output
    assert store.json("job", "show", str(job["id"]))["state"] == "cancelled"
    missing = store.egide("job", "show", "999")
    assert missing.exit_code == 2 and "no job 999" in missing.output


def test_bad_rates_and_busy_sites_are_refused_clearly(store: Store) -> None:
    rate = store.egide("repair", "--rate", "fast please")
    assert rate.exit_code == 2 and "is not a rate such as 50MB" in rate.output
    busy = store.egide("site", "remove", "lyon-1")
    assert busy.exit_code == 2
    assert "still holds data" in busy.output and "egide site evacuate lyon-1" in busy.output
    assert "lyon-1" in store.config.read_text()


def test_a_job_queued_with_json_prints_the_document_only(store: Store) -> None:
    _cancel_open(store)
    queued = store.json("gc", "--background")  # stdout must parse as JSON alone
    assert (queued["kind"], queued["state"]) == ("gc", "queued")
