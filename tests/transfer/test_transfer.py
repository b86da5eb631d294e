"""Export and import jobs over a real engine (SQLite catalog, six local sites): keys that are
not file paths, metadata round trips, resumption after a repeated step, no duplicate versions."""

from __future__ import annotations

import json
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from tests.engine.helpers import Env, chunks, make_env, payload

from egide.domain import Job
from egide.engine.versioning import (
    LOCK_HOLD,
    LOCK_MODE,
    LOCK_UNTIL,
    OBJECT_LOCK,
    VERSIONING,
    LockConfiguration,
)
from egide.maintenance.jobs import JobContext, JobRunner, Step, submit
from egide.transfer.dirlayout import (
    HEADER_FILE,
    MANIFEST_FILE,
    TEMP_PREFIX,
    ManifestEntry,
    key_path,
    path_key,
)
from egide.transfer.export import export_job
from egide.transfer.importing import import_job
from egide.transfer.shared import Cursor, find_unfinished, location_params

ODD_KEYS = [
    "a", "a/b", "a/b/c", "dir/", "dir/file", "/lead", "a//b", "../up", "x/./y", "x/../y",
    "100%.txt", "%41", "sp ace/é ü", "tab\there", "L" * 300, "deep/" + "n" * 260 + "/end",
    ".", "..", "./", "//",
]  # fmt: skip


@pytest.mark.parametrize("key", ODD_KEYS)
def test_key_paths_are_safe_and_round_trip(key: str) -> None:
    for also_directory in (False, True):
        path = key_path(key, also_directory=also_directory)
        names = path.split("/")
        assert all(name not in ("", ".", "..") for name in names)
        assert all(len(name.encode()) <= 255 for name in names)
        assert not path.startswith("/")
        decoded = path_key(path)
        assert decoded in (key, None)  # None: a shortened name, its key in the manifest
        assert (decoded is None) == (len(key.encode()) > 250)


def test_key_paths_are_unique() -> None:
    paths = [key_path(key) for key in ODD_KEYS] + [key_path("a", also_directory=True)]
    assert len(set(paths)) == len(paths)


def _env(tmp_path: Path) -> Env:
    (tmp_path / "store").mkdir()
    return make_env(tmp_path / "store")


def _context(env: Env, **options: Any) -> JobContext:
    async def store() -> Any:
        return env.store

    return JobContext(env.catalog, {s.name: s for s in env.sites}, store=store, options=options)


async def _run(env: Env, kind: str, params: dict[str, object]) -> Job:
    job = await submit(env.store.jobs, kind, params)
    runner = JobRunner(_context(env))
    claimed = await runner.claim(job.id)
    assert claimed is not None
    return await runner.run(claimed)


async def _fill(env: Env, bucket: str) -> dict[str, bytes]:
    await env.store.create_bucket(bucket)
    objects = {key: payload(i * 37 % 500, seed=i) for i, key in enumerate(ODD_KEYS)}
    objects["big"] = payload(300_000, seed=99)  # several blocks, past the pack threshold
    objects["empty"] = b""
    for key, data in objects.items():
        headers = {
            "content-type": "text/plain; charset=utf-8",
            "cache-control": "no-cache",
            "x-amz-meta-owner": "mairie de Lyon",
            "x-amz-tagging": "class=public&year=2024",
        }
        await env.store.put_object(bucket, key, chunks(data), size=len(data), headers=headers)
    return objects


async def _contents(env: Env, bucket: str) -> dict[str, tuple[bytes, dict[str, str]]]:
    listing = await env.store.list_objects(bucket, max_keys=10_000)
    found = {}
    for version in listing.objects:
        found[version.key] = (await env.read(version), version.headers)
    return found


def test_export_to_a_directory_then_import_restores_everything(tmp_path: Path) -> None:
    env = _env(tmp_path)
    dest = tmp_path / "export"

    async def scenario() -> None:
        objects = await _fill(env, "source")
        job = await _run(env, "export", {"bucket": "source", "dest": location_params(dest)})
        assert job.state == "done", job.error
        cursor = Cursor.load(job.cursor)
        assert (cursor.total, cursor.verified, cursor.mismatch_count) == (len(objects),) * 2 + (0,)
        assert json.loads((dest / HEADER_FILE).read_text())["bucket"] == "source"
        lines = (dest / MANIFEST_FILE).read_text().splitlines()
        entries = [ManifestEntry.loads(line) for line in lines]
        assert [e.key for e in entries] == sorted(objects)
        for item in entries:
            assert (dest / item.path).read_bytes() == objects[item.key]
            assert item.metadata == {"owner": "mairie de Lyon"}
            assert item.tags == {"class": "public", "year": "2024"}
            assert item.headers["cache-control"] == "no-cache"
        assert (dest / "objects/a/b%~").read_bytes() == objects["a/b"]  # a file and a directory
        assert (dest / "objects/dir%2F").read_bytes() == objects["dir/"]

        await env.store.create_bucket("back")
        imported = await _run(env, "import", {"bucket": "back", "source": location_params(dest),
                                             "ledger": str(tmp_path / "ledger.jsonl")})  # fmt: skip
        assert imported.state == "done", imported.error
        assert Cursor.load(imported.cursor).mismatch_count == 0
        assert await _contents(env, "back") == await _contents(env, "source")

    env.run(scenario)


def test_import_of_a_plain_directory_takes_files_as_objects(tmp_path: Path) -> None:
    env = _env(tmp_path)
    source = tmp_path / "plain"
    (source / "docs" / "2024").mkdir(parents=True)
    (source / "docs" / "2024" / "report.pdf").write_bytes(b"%PDF report")
    (source / "100% sure.txt").write_bytes(b"sure")
    (source / "empty").write_bytes(b"")

    async def scenario() -> None:
        await env.store.create_bucket("plain")
        job = await _run(env, "import", {"bucket": "plain", "source": location_params(source),
                                         "ledger": str(tmp_path / "l.jsonl")})  # fmt: skip
        assert job.state == "done", job.error
        found = await _contents(env, "plain")
        assert {k: v[0] for k, v in found.items()} == {
            "100% sure.txt": b"sure", "docs/2024/report.pdf": b"%PDF report", "empty": b"",
        }  # fmt: skip
        assert found["docs/2024/report.pdf"][1]["content-type"] == "application/pdf"

    env.run(scenario)


async def _steps(env: Env, code: Any, job: Job, count: int | None = None) -> list[Step]:
    """Run a job's code directly for `count` steps (all without), as a runner would."""
    steps = []
    generator = code(_context(env), job)
    async for step in generator:
        steps.append(step)
        if count is not None and len(steps) == count:
            break
    await generator.aclose()
    return steps


def test_a_repeated_step_duplicates_nothing(tmp_path: Path) -> None:
    """A crash after a step's work but before its cursor was saved: the job resumes from the
    cursor before it, repeats the step, and neither the manifest nor a versioned bucket holds
    anything twice."""
    env = _env(tmp_path)
    dest = tmp_path / "export"

    async def scenario() -> None:
        objects = await _fill(env, "source")
        export = await submit(env.store.jobs, "export",
                              {"bucket": "source", "dest": location_params(dest)})  # fmt: skip
        first = await _steps(env, export_job, export, 6)
        resumed = replace(export, cursor=first[-2].cursor)
        rest = await _steps(env, export_job, resumed)
        assert Cursor.load(rest[-1].cursor).mismatch_count == 0
        keys = [json.loads(line)["key"] for line in (dest / MANIFEST_FILE).open()]
        assert keys == sorted(objects)
        assert not [p for p in dest.rglob(f"{TEMP_PREFIX}*")]

        bucket = await env.store.create_bucket("versioned")
        await env.catalog.put_bucket_setting(bucket.id, "versioning", "Enabled")
        params: dict[str, object] = {"bucket": "versioned", "source": location_params(dest),
                                     "ledger": str(tmp_path / "import.jsonl")}  # fmt: skip
        imported = await submit(env.store.jobs, "import", params)
        first = await _steps(env, import_job, imported, 5)
        rest = await _steps(env, import_job, replace(imported, cursor=first[-2].cursor))
        assert Cursor.load(rest[-1].cursor).mismatch_count == 0
        assert sum(step.counts.get("unchanged", 0) for step in rest) == 1  # the repeated one
        versions = (await env.store.list_versions("versioned", max_keys=10_000)).versions
        assert sorted(v.key for v, _ in versions) == sorted(objects)

        # The same import run again later: every object is already there, nothing is written.
        again = await _run(env, "import", {**params, "ledger": str(tmp_path / "again.jsonl")})
        assert again.progress.get("unchanged") == len(objects)
        assert len((await env.store.list_versions("versioned", max_keys=10_000)).versions) == len(
            objects
        )

    env.run(scenario)


def test_a_rerun_finds_the_unfinished_job(tmp_path: Path) -> None:
    env = _env(tmp_path)
    params = {"bucket": "b", "dest": location_params(tmp_path / "d")}

    async def scenario() -> None:
        job = await submit(env.store.jobs, "export", params)
        assert await find_unfinished(env.store.jobs, "export", dict(params)) == job
        assert await find_unfinished(env.store.jobs, "import", dict(params)) is None
        other = {**params, "dest": location_params(tmp_path / "elsewhere")}
        assert await find_unfinished(env.store.jobs, "export", other) is None

    env.run(scenario)


def test_export_refuses_a_directory_with_foreign_files(tmp_path: Path) -> None:
    env = _env(tmp_path)
    dest = tmp_path / "busy"
    dest.mkdir()
    (dest / "holiday.jpg").write_bytes(b"mine")

    async def scenario() -> None:
        await env.store.create_bucket("source")
        job = await _run(env, "export", {"bucket": "source", "dest": location_params(dest)})
        assert job.state == "failed"
        assert "is not empty and holds no Égide export" in (job.error or "")
        assert [p.name for p in dest.iterdir()] == ["holiday.jpg"]

    env.run(scenario)


# -- --all-versions ---------------------------------------------------------------------------


async def _fill_history(env: Env, bucket: str, *, lock: bool = False) -> None:
    """A versioned bucket with a history: three versions of a key then a delete marker, a key
    deleted then written again, metadata and tags per version, a large object, and (with
    `lock`) a version under legal hold and retention."""
    made = await env.store.create_bucket(bucket)
    await env.catalog.put_bucket_setting(made.id, VERSIONING, "Enabled")
    if lock:
        await env.catalog.put_bucket_setting(made.id, OBJECT_LOCK, LockConfiguration().dumps())

    async def put(key: str, data: bytes, rev: str, **extra: str) -> None:
        headers = {"content-type": "text/plain", "x-amz-meta-rev": rev,
                   "x-amz-tagging": f"rev={rev}", **extra}  # fmt: skip
        await env.store.put_object(bucket, key, chunks(data), size=len(data), headers=headers)

    for rev in "123":
        await put("doc.txt", payload(100 * int(rev), seed=int(rev)), rev)
    await env.store.delete_object(bucket, "doc.txt")
    await put("gone-and-back", b"first life", "1")
    await env.store.delete_object(bucket, "gone-and-back")
    await put("gone-and-back", b"second life", "2")
    await put("a", b"A", "1")
    await put("a/b", b"AB", "1")
    await put("a/b", b"AB2", "2")
    await put("big", payload(300_000, seed=5), "1")
    await put("big", payload(300_001, seed=6), "2")
    if lock:
        until = repr(time.time() + 3600)
        await put("held", b"kept", "1", **{LOCK_HOLD: "ON", LOCK_MODE: "GOVERNANCE",
                                         LOCK_UNTIL: until})  # fmt: skip


async def _history(env: Env, bucket: str) -> list[tuple[Any, ...]]:
    """ListObjectVersions as a client sees it, minus version ids and times."""
    listing = await env.store.list_versions(bucket, max_keys=10_000)
    found = []
    for version, latest in listing.versions:
        data = b"" if version.delete_marker else await env.read(version)
        # The manifest keeps the retain-until date to the microsecond.
        until = None if version.retain_until is None else int(version.retain_until * 1000)
        found.append((version.key, latest, version.delete_marker, version.size, version.etag,
                      data, version.headers, version.retention_mode, until,
                      version.legal_hold))  # fmt: skip
    return found


def test_all_versions_through_a_directory_and_back(tmp_path: Path) -> None:
    env = _env(tmp_path)
    dest = tmp_path / "export"

    async def scenario() -> None:
        await _fill_history(env, "source", lock=True)
        job = await _run(env, "export", {"bucket": "source", "dest": location_params(dest),
                                         "all_versions": True})  # fmt: skip
        assert job.state == "done", job.error
        cursor = Cursor.load(job.cursor)
        assert (cursor.total, cursor.verified, cursor.mismatch_count) == (13, 13, 0)
        header = json.loads((dest / HEADER_FILE).read_text())
        assert header["versions"] == "all"
        lines = [ManifestEntry.loads(line) for line in (dest / MANIFEST_FILE).open()]
        doc = [item for item in lines if item.key == "doc.txt"]
        assert [(i.size, i.delete_marker, i.is_latest) for i in doc] == [
            (100, False, False), (200, False, False), (300, False, False), (0, True, True),
        ]  # fmt: skip
        assert [i.metadata for i in doc[:3]] == [{"rev": "1"}, {"rev": "2"}, {"rev": "3"}]
        assert doc[0].path == f"versions/doc.txt%~/{doc[0].version_id}"
        back = [(i.delete_marker, i.path) for i in lines if i.key == "gone-and-back"]
        assert back == [(False, back[0][1]), (True, ""), (False, "objects/gone-and-back")]
        held = next(item for item in lines if item.key == "held")
        assert (held.legal_hold, held.retention_mode) == (True, "GOVERNANCE")
        assert held.retain_until is not None
        assert not (dest / "objects/doc.txt").exists()  # its latest is a delete marker
        assert (dest / "objects/a%~").read_bytes() == b"A"

        # Into a bucket that is not versioned: refused, nothing written.
        await env.store.create_bucket("flat")
        params: dict[str, object] = {"bucket": "flat", "source": location_params(dest),
                                     "all_versions": True,
                                     "ledger": str(tmp_path / "flat.jsonl")}  # fmt: skip
        refused = await _run(env, "import", params)
        assert refused.state == "failed" and "versioning enabled" in (refused.error or "")

        made = await env.store.create_bucket("back")
        await env.catalog.put_bucket_setting(made.id, VERSIONING, "Enabled")
        await env.catalog.put_bucket_setting(made.id, OBJECT_LOCK, LockConfiguration().dumps())
        imported = await _run(env, "import", {**params, "bucket": "back"})
        assert imported.state == "done", imported.error
        assert Cursor.load(imported.cursor).verified == 13
        assert await _history(env, "back") == await _history(env, "source")

        # Without --all-versions, the same directory gives the bucket as it looked.
        await env.store.create_bucket("now")
        latest = await _run(env, "import", {"bucket": "now", "source": location_params(dest),
                                            "ledger": str(tmp_path / "now.jsonl")})  # fmt: skip
        assert latest.state == "done", latest.error
        assert sorted(await _contents(env, "now")) == ["a", "a/b", "big", "gone-and-back",
                                                         "held"]  # fmt: skip

    env.run(scenario)


def test_a_repeated_version_step_duplicates_no_version(tmp_path: Path) -> None:
    """A crash after a version's commit but before its step was saved, in the middle of a
    key's history: the resumed import recognises the version and writes the rest once."""
    env = _env(tmp_path)
    dest = tmp_path / "export"

    async def scenario() -> None:
        await _fill_history(env, "source")
        job = await _run(env, "export", {"bucket": "source", "dest": location_params(dest),
                                         "all_versions": True})  # fmt: skip
        assert job.state == "done", job.error
        made = await env.store.create_bucket("back")
        await env.catalog.put_bucket_setting(made.id, VERSIONING, "Enabled")
        params: dict[str, object] = {"bucket": "back", "source": location_params(dest),
                                     "all_versions": True,
                                     "ledger": str(tmp_path / "import.jsonl")}  # fmt: skip
        imported = await submit(env.store.jobs, "import", params)
        # Keys in order: a, a/b (2), big (2), doc.txt (3 + marker), gone-and-back (v, marker,
        # v). Each crash lands inside a history: after a/b's 2nd version, doc.txt's marker
        # and gone-and-back's marker were committed, their steps lost.
        for count in (4, 7, 3):
            first = await _steps(env, import_job, imported, count)
            imported = replace(imported, cursor=first[-2].cursor)
            assert Cursor.load(first[-2].cursor).after_version is not None
        rest = await _steps(env, import_job, imported)
        assert Cursor.load(rest[-1].cursor).mismatch_count == 0
        assert sum(step.counts.get("unchanged", 0) for step in rest) == 1
        assert await _history(env, "back") == await _history(env, "source")

        # Run again as a new job: every history is there already; nothing is written.
        again = await _run(env, "import", {**params, "ledger": str(tmp_path / "again.jsonl")})
        assert again.state == "done" and again.progress.get("unchanged") == 12, again.progress
        assert await _history(env, "back") == await _history(env, "source")

    env.run(scenario)
