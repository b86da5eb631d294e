"""Maintenance jobs (egide.maintenance): queued, claimed under a lease, resumed after a crash."""

from __future__ import annotations

from typing import Protocol

from egide.domain import Job


class JobCatalog(Protocol):
    async def create_job(self, kind: str, params: dict[str, object]) -> Job: ...

    async def create_job_once(self, kind: str, params: dict[str, object]) -> Job | None: ...

    async def get_job(self, job_id: int) -> Job | None: ...

    async def newest_job(self, kind: str) -> Job | None: ...

    async def list_jobs(
        self, states: tuple[str, ...] = (), limit: int = 100, *, kind: str | None = None
    ) -> list[Job]: ...

    async def claim_job(
        self, job_id: int | None, kinds: tuple[str, ...], owner: str, lease: float
    ) -> Job | None: ...

    async def save_job(
        self,
        job_id: int,
        owner: str,
        *,
        cursor: dict[str, object] | None,
        progress: dict[str, int],
        lease: float,
    ) -> str: ...

    async def set_job_state(
        self,
        job_id: int,
        state: str,
        *,
        only_from: tuple[str, ...],
        owner: str | None = None,
        error: str | None = None,
    ) -> Job | None: ...
