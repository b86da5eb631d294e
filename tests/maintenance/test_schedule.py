"""The servers' scheduler: what it queues, when, and never twice."""

from __future__ import annotations

from pathlib import Path

from tests.engine.helpers import make_env

from egide.config import MaintenanceConfig
from egide.domain import new_id
from egide.maintenance.schedule import queue_if_due


def test_scheduled_jobs_are_queued_once_per_period(tmp_path: Path) -> None:
    env = make_env(tmp_path)
    config = MaintenanceConfig(scrub_period_days=1, gc_interval_hours=6, gc_grace_hours=2)

    async def scenario() -> None:
        catalog = env.catalog
        first = await queue_if_due(catalog, config, now=1_000_000.0)
        assert sorted(first) == ["gc", "scrub"]
        assert await queue_if_due(catalog, config, now=1_000_000.0) == []  # still open
        for job in await catalog.list_jobs():
            await catalog.set_job_state(job.id, "done", only_from=("queued",))
        created = max(job.created for job in await catalog.list_jobs())
        assert await queue_if_due(catalog, config, now=created + 3600) == []  # not due yet
        assert await queue_if_due(catalog, config, now=created + 7 * 3600) == ["gc"]
        scrub = next(j for j in await catalog.list_jobs() if j.kind == "scrub")
        assert scrub.params == {"period": 86_400.0}  # spread over the period
        await catalog.mark_damaged(new_id(), "a read found piece 2 missing")
        assert await queue_if_due(catalog, config, now=created + 7 * 3600) == ["repair"]
        repair = next(j for j in await catalog.list_jobs() if j.kind == "repair")
        assert repair.params == {"queue_only": True}

    env.run(scenario)


def test_nothing_is_scheduled_when_switched_off(tmp_path: Path) -> None:
    env = make_env(tmp_path)
    config = MaintenanceConfig(scrub_period_days=0, gc_interval_hours=0)

    async def scenario() -> None:
        assert await queue_if_due(env.catalog, config, now=1e9) == []

    env.run(scenario)
