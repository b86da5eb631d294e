"""`egide repair / scrub / gc / rebalance` and `egide job …`: maintenance jobs from the shell.

A maintenance command runs its job in this process with a progress bar, unless `--background`
leaves it to the servers. Running the same command again resumes the unfinished job with the
same parameters (after a crash, a SIGKILL, or Ctrl-C, which pauses it) instead of starting
over. Exit codes, with --json as without: 0 done and nothing left damaged, 1 done but something
could not be repaired (the summary or the document says what), 2 the job failed or could not
start.
"""

from __future__ import annotations

import asyncio
import re
import time
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from egide.cli.common import (
    ConfigOption,
    DataDirOption,
    Env,
    JsonOption,
    err,
    fail,
    load,
    out,
    print_json,
    run,
    size,
)
from egide.domain import Job
from egide.engine.jobs import JobQueue
from egide.maintenance import jobs
from egide.maintenance.jobs import OPEN_STATES, JobContext, JobError, JobRunner, job_dict

job_app = typer.Typer(help="Maintenance jobs: list, follow, pause, resume, cancel.",
                      no_args_is_help=True)  # fmt: skip

RateOption = Annotated[
    str | None,
    typer.Option("--rate", help="Most bytes per second of shard data, e.g. 50MB or 20MiB/s "
                 "(default: \\[maintenance] rate_bytes_per_second)."),
]  # fmt: skip
BackgroundOption = Annotated[
    bool, typer.Option("--background", help="Queue the job for the servers and return at once.")
]
#: Counters that mean something was left damaged.
TROUBLE = ("unrecoverable", "stuck", "damaged")
_UNITS = {"": 1, "k": 10**3, "m": 10**6, "g": 10**9, "ki": 2**10, "mi": 2**20, "gi": 2**30}


def parse_rate(text: str) -> int:
    """ "50MB", "20MiB/s", "1g", "0" → bytes per second."""
    found = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([kmg]i?)?b?(?:/s)?\s*", text.lower())
    if found is None:
        raise typer.BadParameter(f"{text!r} is not a rate such as 50MB or 20MiB/s")
    return int(float(found.group(1)) * _UNITS[found.group(2) or ""])


def job_context(env: Env) -> JobContext:
    """The context of jobs run by a command: the data directory's catalog and sites, the
    placement policies of the configuration, the object service on demand."""
    from egide.engine.placing import Placer
    from egide.placement import Policy
    from egide.sites.health import SiteHealth

    settings = env.settings
    catalog = env.require_catalog()
    sites = env.sites()
    code = settings.resolved_code()
    placer = Placer(
        catalog, list(sites), env.profiles, settings.bucket_policies(),
        Policy(k=code.k, m=code.m), SiteHealth(list(sites), settings.health),
    )  # fmt: skip

    async def store() -> Any:
        from egide.server import open_store

        return open_store(settings)

    config = settings.maintenance
    return JobContext(
        catalog, sites, placer=placer, store=store, rate=config.rate_bytes_per_second,
        lease=config.lease_seconds, options={"gc_grace": config.gc_grace_hours * 3600},
        queue=job_queue(env),
    )  # fmt: skip


def job_queue(env: Env) -> JobQueue:
    """The job queue of the data directory's catalog, for this command."""
    return JobQueue(env.require_catalog())


async def find_or_submit(env: Env, kind: str, params: dict[str, object], say: Console = out) -> Job:
    """The unfinished job of this kind and parameters (resumed if paused), else a new one."""
    queue = job_queue(env)
    wanted = _identity(params)
    for job in await queue.listed(OPEN_STATES, limit=1000):
        if job.kind == kind and _identity(job.params) == wanted:
            if job.state in ("paused", "failed"):
                job = await queue.resume(job.id)
            say.print(f"resuming job {job.id} ({kind}), {_done(job)}")
            return job
    job = await jobs.submit(queue, kind, params)
    say.print(f"job {job.id} ({kind}) created")
    return job


def _identity(params: dict[str, object]) -> dict[str, object]:
    """What makes two jobs the same job: their parameters but the rate limit."""
    return {name: value for name, value in params.items() if name != "rate"}


def _done(job: Job) -> str:
    items, total = job.progress.get("items", 0), job.progress.get("total")
    return f"{items} of {total} done" if total is not None else f"{items} done"


async def run_here(env: Env, job: Job, say: Console = out, rate: int | None = None) -> Job:
    """Run the job in this process with a progress bar; follow it if another runner has it.
    Ctrl-C pauses it."""
    runner = JobRunner(job_context(env), stop_state="paused")
    claimed = await runner.claim(job.id)
    with Progress(
        TextColumn(f"{job.kind} job {job.id}"), BarColumn(), MofNCompleteColumn(),
        TextColumn("{task.fields[detail]}"), TimeElapsedColumn(), console=say,
        transient=False,
    ) as progress:  # fmt: skip
        task = progress.add_task(job.kind, total=None, detail="")

        def show(now: Job) -> None:
            counts = now.progress
            detail = ", ".join(
                size(n) if k == "bytes" else f"{n} {k}"
                for k, n in counts.items() if k not in ("items", "total")
            )  # fmt: skip
            progress.update(task, completed=counts.get("items", 0), total=counts.get("total"),
                            detail=detail)  # fmt: skip

        if claimed is not None:
            return await runner.run(claimed, on_step=show, rate=rate)
        say.print(f"job {job.id} is run by {job.owner or 'another process'}: following it")
        queue = job_queue(env)
        while True:
            now = await queue.get(job.id)
            show(now)
            if now.state not in ("queued", "running"):
                return now
            await asyncio.sleep(1.0)


def summary(job: Job, elapsed: float) -> int:
    """Print how the job ended; the exit code."""
    counts = {k: v for k, v in job.progress.items() if k != "total"}
    moved = counts.get("bytes", 0)
    rate = f", {moved / elapsed / 1e6:.1f} MB/s" if elapsed > 0 and moved else ""
    out.print(f"job {job.id} ({job.kind}) {job.state} in {elapsed:.1f} s{rate}: " + ", ".join(
        f"{n} {k}" if k != "bytes" else f"{size(n)}" for k, n in counts.items()
    ))  # fmt: skip
    if job.error:
        out.print(f"error: {job.error}")
    if job.state == "paused":
        out.print(f"paused: `egide job resume {job.id}` or the same command again goes on")
    return exit_code(job)


def exit_code(job: Job) -> int:
    """2 the job failed, 1 something was left damaged, 0 otherwise (with --json too)."""
    if job.state == "failed":
        return 2
    return 1 if any(job.progress.get(k) for k in TROUBLE) else 0


def start(
    config: Any, data_dir: Any, kind: str, params: dict[str, object], rate: str | None,
    background: bool, as_json: bool,
) -> None:  # fmt: skip
    """The body of every maintenance command."""
    settings = load(config, data_dir)
    if rate is not None:
        params["rate"] = parse_rate(rate)

    say = err if as_json else out  # --json: stdout holds the document only

    async def command(env: Env) -> tuple[Job, float]:
        try:
            job = await find_or_submit(env, kind, params, say)
        except JobError as exc:
            fail(str(exc))
        if background:
            return job, 0.0
        began = time.monotonic()
        rate = params.get("rate")
        limit = rate if isinstance(rate, int) else None
        return await run_here(env, job, say, limit), time.monotonic() - began

    try:
        job, elapsed = run(settings, command)
    except KeyboardInterrupt:
        out.print(f"interrupted: the {kind} job is paused; the same command again resumes it")
        raise typer.Exit(130) from None
    if as_json:
        print_json(job_dict(job))
    if background:
        say.print(f"job {job.id} queued; the servers run it. Follow: egide job show {job.id} "
                  "--follow")  # fmt: skip
        return
    raise typer.Exit(exit_code(job) if as_json else summary(job, elapsed))


def repair(
    config: ConfigOption = None,
    data_dir: DataDirOption = None,
    deep: Annotated[bool, typer.Option("--deep", help="Read every byte and check every "
                                       "checksum (as scrub) instead of file sizes.")] = False,
    queue_only: Annotated[bool, typer.Option("--queue-only", help="Only the versions reads "
                                             "and scrubs found damaged.")] = False,
    rate: RateOption = None,
    background: BackgroundOption = False,
    as_json: JsonOption = False,
) -> None:  # fmt: skip
    """Bring every version back to full redundancy: rebuild missing or damaged shards, in
    place or on sites the bucket's policy allows."""
    start(config, data_dir, "repair", {"deep": deep, "queue_only": queue_only}, rate,
          background, as_json)  # fmt: skip


def scrub(
    config: ConfigOption = None,
    data_dir: DataDirOption = None,
    no_repair: Annotated[bool, typer.Option("--no-repair", help="Report and queue damaged "
                                            "versions only.")] = False,
    period: Annotated[float, typer.Option("--period-hours", help="Spread the pass over this "
                                          "many hours (0: as fast as the rate allows).")] = 0,
    rate: RateOption = None,
    background: BackgroundOption = False,
    as_json: JsonOption = False,
) -> None:  # fmt: skip
    """Read every shard and check every block's checksum (no key needed); repair bit-rot."""
    params: dict[str, object] = {"repair": not no_repair, "period": period * 3600}
    start(config, data_dir, "scrub", params, rate, background, as_json)


def gc(
    config: ConfigOption = None,
    data_dir: DataDirOption = None,
    grace: Annotated[float | None, typer.Option("--grace-hours", help="Delete files unreferenced "
                     "for this long (default: \\[maintenance] gc_grace_hours).")] = None,
    background: BackgroundOption = False,
    as_json: JsonOption = False,
) -> None:  # fmt: skip
    """Delete shard files that no version, upload or pack references (crashed writes …)."""
    params: dict[str, object] = {}
    if grace is not None:
        params["grace"] = grace * 3600
    start(config, data_dir, "gc", params, None, background, as_json)


def rebalance(
    config: ConfigOption = None,
    data_dir: DataDirOption = None,
    bucket: Annotated[str | None, typer.Option("--bucket", help="Only this bucket.")] = None,
    rate: RateOption = None,
    background: BackgroundOption = False,
    as_json: JsonOption = False,
) -> None:  # fmt: skip
    """Move shards so every version obeys its bucket's current placement policy."""
    params: dict[str, object] = {"bucket": bucket} if bucket else {}
    start(config, data_dir, "rebalance", params, rate, background, as_json)


@job_app.command("list")
def job_list(
    config: ConfigOption = None,
    data_dir: DataDirOption = None,
    everything: Annotated[bool, typer.Option("--all", help="Ended jobs too.")] = False,
    as_json: JsonOption = False,
) -> None:
    """The jobs not ended (with --all, the last 100 of any state)."""
    settings = load(config, data_dir)
    states = () if everything else OPEN_STATES

    async def command(env: Env) -> list[Job]:
        return await job_queue(env).listed(states)

    found = run(settings, command)
    if as_json:
        print_json([job_dict(job) for job in found])
        return
    table = Table("id", "kind", "state", "progress", "params", "updated", "error")
    for job in found:
        table.add_row(
            str(job.id), job.kind, job.state, _done(job),
            ", ".join(f"{k}={v}" for k, v in job.params.items()),
            time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(job.updated)), job.error or "",
        )  # fmt: skip
    out.print(table if found else "no jobs")


@job_app.command("show")
def job_show(
    job_id: int,
    config: ConfigOption = None,
    data_dir: DataDirOption = None,
    follow: Annotated[bool, typer.Option("--follow", help="Show progress until it ends.")] = False,
    as_json: JsonOption = False,
) -> None:
    """One job: its state, counters and where it stands."""
    settings = load(config, data_dir)

    async def command(env: Env) -> Job:
        job = await job_queue(env).find(job_id)
        if job is None:
            fail(f"no job {job_id}")
        if follow and job.state in ("queued", "running"):
            began = time.monotonic()
            job = await run_here(env, job) if job.state == "queued" else await _follow(env, job)
            summary(job, time.monotonic() - began)
        return job

    job = run(settings, command)
    if as_json:
        print_json(job_dict(job))
        return
    for name, value in job_dict(job).items():
        out.print(f"{name:9} {value}")


async def _follow(env: Env, job: Job) -> Job:
    queue = job_queue(env)
    while job.state in ("queued", "running"):
        await asyncio.sleep(1.0)
        job = await queue.get(job.id)
        out.print(f"{job.state}: {_done(job)}")
    return job


def _transition(action: str) -> Any:
    def command(job_id: int, config: ConfigOption = None, data_dir: DataDirOption = None) -> None:
        settings = load(config, data_dir)

        async def change(env: Env) -> Job:
            try:
                job: Job = await getattr(job_queue(env), action)(job_id)
            except JobError as exc:
                fail(str(exc))
            return job

        job = run(settings, change)
        out.print(f"job {job.id} ({job.kind}) {job.state}")

    command.__doc__ = {
        "pause": "Pause a job; it stops after its current step.",
        "resume": "Queue a paused or failed job again, from where it stopped.",
        "cancel": "Cancel a job for good; what it did stays done.",
    }[action]
    return command


for _action in ("pause", "resume", "cancel"):
    job_app.command(_action)(_transition(_action))
