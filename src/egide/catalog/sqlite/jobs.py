"""Maintenance jobs in SQLite."""

from __future__ import annotations

import json
import sqlite3
from functools import partial

from egide.catalog import rules
from egide.catalog.sqlite.connection import SQLiteConnection
from egide.catalog.sqlite.rows import _JOB_COLUMNS, _job
from egide.domain import Job


class SQLiteJobs(SQLiteConnection):
    """`catalog.jobs.JobCatalog`."""

    async def create_job(self, kind: str, params: dict[str, object]) -> Job:
        job = await self._create_job(kind, params, unless_open=False)
        assert job is not None
        return job

    async def create_job_once(self, kind: str, params: dict[str, object]) -> Job | None:
        """A new queued job, unless one of its kind is queued, running or paused (None then):
        scheduled jobs are queued by every server process, and must exist once."""
        return await self._create_job(kind, params, unless_open=True)

    async def _create_job(
        self, kind: str, params: dict[str, object], *, unless_open: bool
    ) -> Job | None:

        def run(db: sqlite3.Connection) -> int | None:
            now = self._clock.time()
            if (
                unless_open
                and db.execute(
                    "SELECT 1 FROM jobs "
                    "WHERE kind = ? AND state IN ('queued', 'running', 'paused')",
                    (kind,),
                ).fetchone()
            ):
                return None
            cursor = db.execute(
                "INSERT INTO jobs (kind, params, state, progress, created, updated) "
                "VALUES (?, ?, 'queued', '{}', ?, ?)",
                (kind, json.dumps(params), now, now),
            )
            return int(cursor.lastrowid or 0)

        created = await self._call(partial(self._in_transaction, run))
        return await self.get_job(created) if created is not None else None

    async def get_job(self, job_id: int) -> Job | None:
        def run(db: sqlite3.Connection) -> Job | None:
            row = db.execute(f"SELECT {_JOB_COLUMNS} FROM jobs WHERE id = ?", (job_id,)).fetchone()
            return _job(row) if row else None

        return self._read(run)

    async def newest_job(self, kind: str) -> Job | None:
        """The most recently created job of a kind, whatever its state."""

        def run(db: sqlite3.Connection) -> Job | None:
            row = db.execute(
                f"SELECT {_JOB_COLUMNS} FROM jobs WHERE kind = ? ORDER BY id DESC LIMIT 1",
                (kind,),
            ).fetchone()
            return _job(row) if row else None

        return self._read(run)

    async def list_jobs(
        self, states: tuple[str, ...] = (), limit: int = 100, *, kind: str | None = None
    ) -> list[Job]:
        """The newest jobs first, of these states (all without), of one kind if given."""

        def run(db: sqlite3.Connection) -> list[Job]:
            clauses: list[str] = []
            args: list[object] = list(states)
            if states:
                clauses.append(f"state IN ({','.join('?' * len(states))})")
            if kind is not None:
                clauses.append("kind = ?")
                args.append(kind)
            where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
            rows = db.execute(
                f"SELECT {_JOB_COLUMNS} FROM jobs {where} ORDER BY id DESC LIMIT ?",
                (*args, limit),
            ).fetchall()
            return [_job(row) for row in rows]

        return self._read(run)

    async def claim_job(
        self, job_id: int | None, kinds: tuple[str, ...], owner: str, lease: float
    ) -> Job | None:
        """Take a job to run: this one (or the oldest of `kinds`) if it is queued, or running
        under a lease that expired (its runner died). None if there is none to take."""

        def run(db: sqlite3.Connection) -> int | None:
            now = self._clock.time()
            where = "(state = 'queued' OR (state = 'running' AND lease_until < ?))"
            args: list[object] = [now]
            if job_id is not None:
                where += " AND id = ?"
                args.append(job_id)
            if kinds:
                where += f" AND kind IN ({','.join('?' * len(kinds))})"
                args += kinds
            row = db.execute(f"SELECT id FROM jobs WHERE {where} ORDER BY id LIMIT 1", args)
            found = row.fetchone()
            if found is None:
                return None
            db.execute(
                "UPDATE jobs SET state = 'running', owner = ?, lease_until = ?, updated = ? "
                "WHERE id = ?",
                (owner, now + lease, now, found[0]),
            )
            return int(found[0])

        claimed = await self._call(partial(self._in_transaction, run))
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

        def run(db: sqlite3.Connection) -> str:
            now = self._clock.time()
            db.execute(
                "UPDATE jobs SET cursor = ?, progress = ?, lease_until = ?, updated = ? "
                "WHERE id = ? AND state = 'running' AND owner = ?",
                (json.dumps(cursor), json.dumps(progress), now + lease, now, job_id, owner),
            )
            # A step finished just after a pause or cancel request: its work is done, so its
            # position is kept (nothing else can have run the job since: it was not queued).
            db.execute(
                "UPDATE jobs SET cursor = ?, progress = ?, updated = ? "
                "WHERE id = ? AND state IN ('paused', 'cancelled') AND owner IS NULL",
                (json.dumps(cursor), json.dumps(progress), now, job_id),
            )
            row = db.execute("SELECT state, owner FROM jobs WHERE id = ?", (job_id,)).fetchone()
            return rules.job_state_seen(owner, (str(row[0]), row[1]) if row else None)

        return await self._call(run)

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
        given); the job as it is afterwards, None if there is no such job."""

        def run(db: sqlite3.Connection) -> None:
            where = f"id = ? AND state IN ({','.join('?' * len(only_from))})"
            args: list[object] = [job_id, *only_from]
            if owner is not None:
                where += " AND owner = ?"
                args.append(owner)
            release = state != "running"
            db.execute(
                "UPDATE jobs SET state = ?, error = coalesce(?, error), updated = ?"
                + (", owner = NULL, lease_until = NULL" if release else "")
                + f" WHERE {where}",
                (state, error, self._clock.time(), *args),
            )

        await self._call(run)
        return await self.get_job(job_id)
