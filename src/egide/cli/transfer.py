"""`egide export BUCKET DEST` and `egide import SRC BUCKET`: leave Égide, or come in from
another cloud (docs/export-import.md).

Each runs a resumable job (egide.transfer.export / .importing) in this process, with a
progress bar. Running the same command again resumes the unfinished job doing the same transfer
(same kind, bucket, source and destination) instead of starting over. S3 credentials come from
the options or the AWS_* variables at each run; the catalog, where jobs live, never holds them.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)

from egide.catalog import catalog_exists
from egide.cli.common import (
    ConfigOption,
    DataDirOption,
    JsonOption,
    err,
    load,
    out,
    print_json,
    size,
)
from egide.config import Settings
from egide.domain import BucketNotFound, Job
from egide.engine import changes
from egide.engine.store import ObjectStore
from egide.engine.versioning import VERSIONING
from egide.maintenance import jobs
from egide.maintenance.jobs import JobContext, JobRunner
from egide.transfer.export import DirectorySink, S3Sink
from egide.transfer.importing import DirectorySource, S3Source, check_target
from egide.transfer.s3endpoint import S3Credentials, S3Endpoint, S3Location, TransferError
from egide.transfer.shared import (
    Cursor,
    Location,
    TransferRuntime,
    describe,
    find_unfinished,
    ledger_path,
    location_params,
)

EndpointOption = Annotated[
    str | None,
    typer.Option("--endpoint-url", help="The S3 endpoint of an s3:// location (default: AWS)."),
]
RegionOption = Annotated[str | None, typer.Option("--region", help="Its region.")]
AccessOption = Annotated[
    str | None,
    typer.Option("--access-key", envvar="AWS_ACCESS_KEY_ID", show_default=False,
                 help="S3 access key (or AWS_ACCESS_KEY_ID)."),
]  # fmt: skip
SecretOption = Annotated[
    str | None,
    typer.Option("--secret-key", envvar="AWS_SECRET_ACCESS_KEY", show_default=False,
                 show_envvar=False, help="S3 secret key (or AWS_SECRET_ACCESS_KEY)."),
]  # fmt: skip
RateOption = Annotated[
    str | None,
    typer.Option("--rate", help="At most this many bytes per second: 50M, 1G, 500K."),
]
AllVersionsOption = Annotated[
    bool,
    typer.Option("--all-versions", help="Every version of every key, delete markers included, "
                 "oldest first (a versioned bucket's whole history)."),
]  # fmt: skip
_RATE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmgt]?)(?:i?b)?\s*$", re.IGNORECASE)


def fail(message: str, code: int = 2) -> NoReturn:
    """Paths and URLs in messages stay on one line (rich would wrap them at 80 columns)."""
    err.print(message, markup=False, highlight=False, soft_wrap=True)
    raise typer.Exit(code)


def parse_rate(text: str | None) -> int:
    if text is None:
        return 0
    found = _RATE.match(text)
    if found is None:
        fail(f"--rate {text!r}: expected bytes per second, such as 50M or 1G")
    scale = 1024 ** "_kmgt".index(found.group(2).lower() or "_")
    return int(float(found.group(1)) * scale)


def parse_location(text: str, endpoint: str | None, region: str | None) -> Location:
    if text.startswith("s3://"):
        try:
            return S3Location.parse(text, endpoint, region)
        except TransferError as exc:
            fail(str(exc))
    if endpoint is not None:
        fail(f"--endpoint-url is for s3:// locations; {text!r} is a directory")
    return Path(text).expanduser().resolve()


def export(
    bucket: Annotated[str, typer.Argument(help="The Égide bucket to export.")],
    dest: Annotated[str, typer.Argument(help="A new or empty directory, or s3://BUCKET/PREFIX.")],
    endpoint_url: EndpointOption = None,
    region: RegionOption = None,
    access_key: AccessOption = None,
    secret_key: SecretOption = None,
    rate: RateOption = None,
    all_versions: AllVersionsOption = False,
    json_output: JsonOption = False,
    config: ConfigOption = None,
    data_dir: DataDirOption = None,
) -> None:
    """Write every current object of BUCKET in clear, with its metadata, to DEST; then check
    the destination object by object. Run it again to resume an interrupted export."""
    settings = load(config, data_dir)
    location = parse_location(dest, endpoint_url, region)
    credentials = S3Credentials(access_key, secret_key)
    params: dict[str, object] = {"bucket": bucket, "dest": location_params(location)}
    if all_versions:  # absent otherwise: a rerun of an older command still finds its job
        params["all_versions"] = True

    async def check_new(store: ObjectStore) -> dict[str, object]:
        try:
            await store.bucket(bucket)
        except BucketNotFound:
            raise TransferError(f"no bucket {bucket!r} in Égide") from None
        if isinstance(location, Path):
            DirectorySink(location).check_new()
            return {}
        sink = S3Sink(S3Endpoint(location, credentials), Path(), all_versions=all_versions)
        await sink.check_new()
        return {"ledger": str(ledger_path(settings.data_dir, "export"))}

    _transfer(settings, "export", params, credentials, parse_rate(rate), json_output, check_new,
              f"{bucket} → {describe(location)}")  # fmt: skip


def import_(
    src: Annotated[str, typer.Argument(help="A directory, or s3://BUCKET/PREFIX.")],
    bucket: Annotated[str, typer.Argument(help="The Égide bucket (created if missing).")],
    endpoint_url: EndpointOption = None,
    region: RegionOption = None,
    access_key: AccessOption = None,
    secret_key: SecretOption = None,
    rate: RateOption = None,
    all_versions: AllVersionsOption = False,
    json_output: JsonOption = False,
    config: ConfigOption = None,
    data_dir: DataDirOption = None,
) -> None:
    """Bring SRC into BUCKET: an S3 bucket of another cloud, a directory written by
    `egide export` (metadata restored), or any directory (each file an object). Keys already
    there with the same bytes are left alone. Run it again to resume an interrupted import."""
    settings = load(config, data_dir)
    location = parse_location(src, endpoint_url, region)
    credentials = S3Credentials(access_key, secret_key)
    params: dict[str, object] = {"bucket": bucket, "source": location_params(location)}
    if all_versions:
        params["all_versions"] = True

    async def check_new(store: ObjectStore) -> dict[str, object]:
        if isinstance(location, Path):
            await DirectorySource(location).check(all_versions=all_versions)
        else:
            await S3Source(S3Endpoint(location, credentials)).check(all_versions=all_versions)
        try:
            await store.bucket(bucket)
            if all_versions:
                await check_target(store, bucket)
        except BucketNotFound:
            from egide.s3.bucket import check_bucket_name
            from egide.s3.errors import S3Error

            try:
                check_bucket_name(bucket)
            except S3Error as exc:
                raise TransferError(f"cannot create bucket {bucket!r}: {exc}") from None
            created = await store.create_bucket(bucket)
            if all_versions:  # its versions need somewhere to live
                await changes.put_bucket_setting(store, created, VERSIONING, "Enabled")
            versioned = " (versioning enabled)" if all_versions else ""
            err.print(f"created bucket {bucket}{versioned}", markup=False, highlight=False)
        return {"ledger": str(ledger_path(settings.data_dir, "import"))}

    _transfer(settings, "import", params, credentials, parse_rate(rate), json_output, check_new,
              f"{describe(location)} → {bucket}")  # fmt: skip


def _transfer(
    settings: Settings,
    kind: str,
    params: dict[str, object],
    credentials: S3Credentials,
    rate: int,
    json_output: bool,
    check_new: Callable[[ObjectStore], Awaitable[dict[str, object]]],
    title: str,
) -> None:
    if not catalog_exists(settings):
        fail(f"no Égide data in {settings.data_dir}: run `egide serve` first")
    # The job's failure is reported below, in one line; its traceback is for the server logs.
    logging.getLogger("egide.jobs").setLevel(logging.CRITICAL)
    from egide.server import open_store

    async def main() -> tuple[Job, Timing, int, bool]:
        store = open_store(settings)

        async def opened() -> ObjectStore:
            return store

        runtime = TransferRuntime(credentials, settings.data_dir)
        context = JobContext(store.catalog, store.sites, store=opened, rate=rate,
                             options={"transfer": runtime}, queue=store.jobs)  # fmt: skip
        try:
            job = await find_unfinished(store.jobs, kind, params)
            resumed = job is not None
            if job is None:
                extra = await check_new(store)
                job = await jobs.submit(store.jobs, kind, {**params, **extra})
            elif job.state in ("paused", "failed"):
                job = await store.jobs.resume(job.id)
            runner = JobRunner(context)
            claimed = await runner.claim(job.id)
            if claimed is None:
                raise TransferError(
                    f"job {job.id} ({kind} {title}) is already running ({job.owner}); "
                    "wait for it to end, or stop that process first"
                )
            before = claimed.progress.get("bytes", 0)
            started = time.monotonic()
            with _Bar(title, enabled=not json_output) as bar:
                if resumed:
                    bar.note(f"resuming job {claimed.id}")
                if claimed.cursor is not None:
                    bar.update(claimed)
                final = await runner.run(claimed, on_step=bar.update)
            moved = final.progress.get("bytes", 0) - before
            timing = Timing(time.monotonic() - started, bar.copy_seconds())
            return final, timing, moved, resumed
        finally:
            await store.catalog.close()

    try:
        final, timing, moved, resumed = asyncio.run(main())
    except TransferError as exc:
        fail(f"{kind} failed: {exc}")
    except KeyboardInterrupt:
        fail(f"{kind} interrupted: run the same command again to resume", 130)
    _report(final, timing, moved, resumed, json_output, title)


@dataclass(frozen=True)
class Timing:
    """Seconds of the whole run (count, copy, verification) and of the copy alone."""

    total: float
    copy: float


class _Bar:
    """The rich progress bar of a foreground run, fed by the runner's `on_step`."""

    def __init__(self, title: str, *, enabled: bool) -> None:
        self.enabled = enabled
        self.progress = Progress(
            TextColumn("{task.description}"), BarColumn(), DownloadColumn(),
            TransferSpeedColumn(), TextColumn("{task.fields[objects]}"), TimeRemainingColumn(),
            console=err, transient=False, disable=not enabled,
        )  # fmt: skip
        self.task: TaskID = self.progress.add_task(title, total=None, objects="")
        #: When the copy began and ended in this run (monotonic), for its throughput apart
        #: from counting and verifying.
        self.copy_started: float | None = None
        self.copy_ended: float | None = None

    def copy_seconds(self) -> float:
        if self.copy_started is None:
            return 0.0
        return (self.copy_ended or time.monotonic()) - self.copy_started

    def __enter__(self) -> _Bar:
        self.progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.progress.stop()

    def note(self, text: str) -> None:
        if self.enabled:
            err.print(text, markup=False, highlight=False)

    def update(self, job: Job) -> None:
        cursor = Cursor.load(job.cursor)
        now = time.monotonic()
        if cursor.phase == "copy" and self.copy_started is None:
            self.copy_started = now
        elif cursor.phase != "copy" and self.copy_started is not None and not self.copy_ended:
            self.copy_ended = now
        p = job.progress
        done = p.get("bytes", 0) + p.get("unchanged_bytes", 0) + p.get("skipped_bytes", 0)
        objects = p.get("items", 0) + p.get("skipped", 0)
        label = {"verify": "verifying", "done": "verified"}.get(cursor.phase, "")
        self.progress.update(
            self.task, completed=done, total=cursor.total_bytes or None,
            objects=f"{objects}/{cursor.total} objects {label}".rstrip(),
        )  # fmt: skip


def _summary(job: Job, timing: Timing, moved: int, resumed: bool) -> dict[str, Any]:
    cursor = Cursor.load(job.cursor)
    p = job.progress
    return {
        "job": job.id, "kind": job.kind, "state": job.state, "error": job.error,
        "resumed": resumed, "all_versions": bool(job.params.get("all_versions")),
        "objects": {"listed": cursor.total, "copied": p.get("items", 0) - p.get("unchanged", 0),
                    "unchanged": p.get("unchanged", 0), "skipped": cursor.skipped_count},
        "bytes": {"listed": cursor.total_bytes, "copied": p.get("bytes", 0),
                  "this_run": moved},
        "seconds": round(timing.total, 3),
        "copy_seconds": round(timing.copy, 3),
        "mb_per_s": round(moved / 1e6 / timing.copy, 1) if timing.copy > 0 else 0.0,
        "verified": cursor.verified,
        "mismatch_count": cursor.mismatch_count,
        "mismatches": [{"key": k, "problem": why} for k, why in cursor.mismatches],
        "skipped": [{"key": k, "problem": why} for k, why in cursor.skipped],
        "ok": job.state == "done" and cursor.mismatch_count == 0 and cursor.skipped_count == 0,
    }  # fmt: skip


def _line(text: str) -> None:
    out.print(text, soft_wrap=True)


def _report(
    job: Job, timing: Timing, moved: int, resumed: bool, json_output: bool, title: str
) -> None:
    summary = _summary(job, timing, moved, resumed)
    if json_output:
        print_json(summary)
    else:
        objects, nbytes = summary["objects"], summary["bytes"]
        what = "versions" if summary["all_versions"] else "objects"
        _line(f"{job.kind} {title}: job {job.id} {job.state}")
        if job.error:
            _line(f"  error     {job.error}")
        _line(
            f"  {what:<9} {objects['listed']} listed, {objects['copied']} copied, "
            f"{objects['unchanged']} already there, {objects['skipped']} not copied"
        )
        _line(
            f"  bytes     {size(nbytes['copied'])} copied; {size(moved)} this run in "
            f"{timing.copy:.1f} s, {summary['mb_per_s']} MB/s (whole run {timing.total:.1f} s)"
        )
        if job.state == "done":
            _line(
                f"  verified  {summary['verified']} {what} match, "
                f"{summary['mismatch_count']} mismatches"
            )
        for item in summary["skipped"]:
            _line(f"  not copied  {item['key']}: {item['problem']}")
        for item in summary["mismatches"]:
            _line(f"  MISMATCH  {item['key']}: {item['problem']}")
    if job.state == "failed":
        err.print(f"{job.kind} failed: run the same command again to resume", markup=False,
                  soft_wrap=True)  # fmt: skip
        raise typer.Exit(2)
    if job.state != "done":
        raise typer.Exit(2)
    if not summary["ok"]:
        raise typer.Exit(1)
