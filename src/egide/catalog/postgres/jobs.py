"""Maintenance jobs in PostgreSQL. Claiming locks the job's row (`FOR UPDATE SKIP LOCKED`:
two gateways claiming at once take different jobs, or one each); queuing a job once per kind
holds that kind's advisory lock while it looks and inserts."""

from __future__ import annotations

import json

from egide.catalog import rules
from egide.catalog.postgres.connection import Db, PostgresConnection, one, rows
from egide.catalog.postgres.rows import JOB_COLUMNS, job
from egide.catalog.postgres.schema import JOB_KIND_LOCK_CLASS
from egide.domain import Job


class PostgresJobs(PostgresConnection):
    """`catalog.jobs.JobCatalog`."""

    async def create_job(self, kind: str, params: dict[str, object]) -> Job:
        created = await self._create_job(kind, params, unless_open=False)
        assert created is not None
        return created

    async def create_job_once(self, kind: str, params: dict[str, object]) -> Job | None:
        """A new queued job, unless one of its kind is queued, running or paused (None then):
        scheduled jobs are queued by every server process, and must exist once."""
        return await self._create_job(kind, params, unless_open=True)

    async def _create_job(
        self, kind: str, params: dict[str, object], *, unless_open: bool
    ) -> Job | None:
        async def write(db: Db) -> int | None:
            now = self._clock.time()
            if unless_open:
                await db.execute(
                    "SELECT pg_advisory_xact_lock(%s, hashtext(%s))", (JOB_KIND_LOCK_CLASS, kind)
                )
                if await one(
                    db,
                    "SELECT 1 FROM jobs "
                    "WHERE kind = %s AND state IN ('queued', 'running', 'paused')",
                    (kind,),
                ):
                    return None
            row = await one(
                db,
                "INSERT INTO jobs (kind, params, state, progress, created, updated) "
                "VALUES (%s, %s, 'queued', '{}', %s, %s) RETURNING id",
                (kind, json.dumps(params), now, now),
            )
            assert row is not None
            return int(row[0])

        created = await self._transaction(write)
        return await self.get_job(created) if created is not None else None

    async def get_job(self, job_id: int) -> Job | None:
        async def read(db: Db) -> Job | None:
            row = await one(db, f"SELECT {JOB_COLUMNS} FROM jobs WHERE id = %s", (job_id,))
            return job(row) if row else None

        return await self._read(read)

    async def newest_job(self, kind: str) -> Job | None:
        """The most recently created job of a kind, whatever its state."""

        async def read(db: Db) -> Job | None:
            row = await one(
                db,
                f"SELECT {JOB_COLUMNS} FROM jobs WHERE kind = %s ORDER BY id DESC LIMIT 1",
                (kind,),
            )
            return job(row) if row else None

        return await self._read(read)

    async def list_jobs(
        self, states: tuple[str, ...] = (), limit: int = 100, *, kind: str | None = None
    ) -> list[Job]:
        """The newest jobs first, of these states (all without), of one kind if given."""

        async def read(db: Db) -> list[Job]:
            clauses: list[str] = []
            args: list[object] = []
            if states:
                clauses.append("state = ANY(%s)")
                args.append(list(states))
            if kind is not None:
                clauses.append("kind = %s")
                args.append(kind)
            where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
            found = await rows(
                db,
                f"SELECT {JOB_COLUMNS} FROM jobs {where} ORDER BY id DESC LIMIT %s",
                (*args, limit),
            )
            return [job(row) for row in found]

        return await self._read(read)

    async def claim_job(
        self, job_id: int | None, kinds: tuple[str, ...], owner: str, lease: float
    ) -> Job | None:
        """Take a job to run: this one (or the oldest of `kinds`) if it is queued, or running
        under a lease that expired (its runner died). None if there is none to take."""

        async def write(db: Db) -> int | None:
            now = self._clock.time()
            where = "(state = 'queued' OR (state = 'running' AND lease_until < %s))"
            args: list[object] = [now]
            if job_id is not None:
                where += " AND id = %s"
                args.append(job_id)
            if kinds:
                where += " AND kind = ANY(%s)"
                args.append(list(kinds))
            found = await one(
                db,
                f"SELECT id FROM jobs WHERE {where} ORDER BY id LIMIT 1 FOR UPDATE SKIP LOCKED",
                args,
            )
            if found is None:
                return None
            await db.execute(
                "UPDATE jobs SET state = 'running', owner = %s, lease_until = %s, updated = %s "
                "WHERE id = %s",
                (owner, now + lease, now, found[0]),
            )
            return int(found[0])

        claimed = await self._transaction(write)
        return await self.get_job(claimed) if claimed is not None else None

    async def save_job(
        self,
        job_id: int,
        owner: str,
        *,
        cursor: dict[str, object] | None,
        progress: dict[str, int],
        lease: float,
    ) -> str:
        """Record a running job's position and renew its lease; the job's state now (a runner
        that sees anything but "running" stops: paused, cancelled, or taken by another)."""

        async def write(db: Db) -> str:
            now = self._clock.time()
            row = await one(db, "SELECT state, owner FROM jobs WHERE id = %s FOR UPDATE", (job_id,))
            await db.execute(
                "UPDATE jobs SET cursor = %s, progress = %s, lease_until = %s, updated = %s "
                "WHERE id = %s AND state = 'running' AND owner = %s",
                (json.dumps(cursor), json.dumps(progress), now + lease, now, job_id, owner),
            )
            # A step finished just after a pause or cancel request: its work is done, so its
            # position is kept (nothing else can have run the job since: it was not queued).
            await db.execute(
                "UPDATE jobs SET cursor = %s, progress = %s, updated = %s "
                "WHERE id = %s AND state IN ('paused', 'cancelled') AND owner IS NULL",
                (json.dumps(cursor), json.dumps(progress), now, job_id),
            )
            return rules.job_state_seen(owner, (str(row[0]), row[1]) if row else None)

        return await self._transaction(write)

    async def set_job_state(
        self,
        job_id: int,
        state: str,
        *,
        only_from: tuple[str, ...],
        owner: str | None = None,
        error: str | None = None,
    ) -> Job | None:
        """Move a job to `state` if it is in one of `only_from` (and held by `owner`, if
        given), in one conditional statement; the job as it is afterwards, None if there is
        no such job."""

        async def write(db: Db) -> None:
            where = "id = %s AND state = ANY(%s)"
            args: list[object] = [job_id, list(only_from)]
            if owner is not None:
                where += " AND owner = %s"
                args.append(owner)
            release = state != "running"
            await db.execute(
                "UPDATE jobs SET state = %s, error = coalesce(%s, error), updated = %s"
                + (", owner = NULL, lease_until = NULL" if release else "")
                + f" WHERE {where}",
                (state, error, self._clock.time(), *args),
            )

        await self._read(write)
        return await self.get_job(job_id)
