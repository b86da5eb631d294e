"""Running maintenance jobs against an engine test environment (real sites on disk)."""

from __future__ import annotations

import shutil
from pathlib import Path

from tests.engine.helpers import Env

from egide.domain import Job
from egide.maintenance.jobs import JobContext, JobRunner, submit


def context(env: Env, **options: object) -> JobContext:
    return JobContext(
        env.catalog,
        {s.name: s for s in env.sites},
        placer=env.store.placer,
        options=dict(options),
        queue=env.store.jobs,
    )


async def run_job(
    env: Env, kind: str, params: dict[str, object] | None = None, **options: object
) -> Job:
    """Submit a job and run it to its end in this process."""
    job = await submit(env.store.jobs, kind, params or {})
    runner = JobRunner(context(env, **options))
    claimed = await runner.claim(job.id)
    assert claimed is not None
    return await runner.run(claimed)


def wipe_site(env: Env, name: str) -> None:
    """Lose a whole site: its directory is gone."""
    shutil.rmtree(env.site(name).root)


def flip(path: Path, at: int) -> None:
    """Bit-rot: invert one byte of a file in place."""
    with path.open("r+b") as f:
        f.seek(at)
        byte = f.read(1)
        f.seek(at)
        f.write(bytes([byte[0] ^ 0xFF]))
