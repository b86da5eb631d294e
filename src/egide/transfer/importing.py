"""The "import" job: a bucket brought into Égide from a bucket and prefix of any S3 endpoint,
from a directory written by `egide export` (metadata from its manifest), or from a plain
directory (each file an object, its key the relative path).

Job params: {"bucket": NAME, "source": location (egide.transfer.shared), "ledger": PATH,
"all_versions": true or absent (every version in order: `copy_versions`)}.
Nothing is imported twice: before writing a key, the job looks at the key's current version in
Égide; the same size and MD5 (or, when the source gives no MD5, the same size written since the
job began) means it is there already. Writes are conditional on the version looked at, and the
MD5 and SHA-256 the source announces are checked before the commit, so a bad transfer commits
nothing.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import mimetypes
import re
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import Any

from egide.domain import (
    Job,
    KeyNotFound,
    ObjectVersion,
    PreconditionFailed,
    WriteCondition,
)
from egide.engine.store import ObjectStore
from egide.maintenance.jobs import JobContext, Step, job_kind
from egide.transfer.dirlayout import (
    ALL_VERSIONS,
    HEADER_FILE,
    MANIFEST_FILE,
    Ledger,
    ManifestEntry,
    plain_files,
)
from egide.transfer.export import open_store
from egide.transfer.history import (
    done_prefix,
    entry_lock,
    key_history,
    lock_entry_fields,
    lock_headers,
    resume_index,
)
from egide.transfer.s3endpoint import ListedVersion, LockFields, S3Endpoint, TransferError
from egide.transfer.shared import (
    Cursor,
    Digests,
    Verification,
    describe,
    entry,
    join_headers,
    location_from_params,
    runtime_of,
)

READ_CHUNK = 1024 * 1024
MAX_KEY_BYTES = 1024
_PLAIN_MD5 = re.compile(r"^[0-9a-f]{32}$")


class ObjectSkipped(Exception):
    """One object cannot be imported (the import goes on); the message says why."""


@dataclass(frozen=True)
class Opened:
    """An object of the source being read."""

    etag: str
    last_modified: float
    headers: dict[str, str]
    metadata: dict[str, str]
    tags: dict[str, str]
    body: AsyncIterator[bytes]
    lock: LockFields = field(default_factory=LockFields)


@dataclass(frozen=True)
class Incoming:
    """An object the source lists, before it is read."""

    key: str
    size: int
    #: Known before reading (a single-part S3 ETag, a manifest line), for the duplicate check
    #: and to refuse a body that does not match.
    md5: str | None
    sha256: str | None
    open: Callable[[], Awaitable[Opened]]
    #: With --all-versions: the source's version id, and whether it is a delete marker.
    version_id: str = ""
    delete_marker: bool = False
    is_latest: bool = True


async def _no_body() -> Opened:
    raise TransferError("a delete marker has no body")


async def read_file(path: Path) -> AsyncIterator[bytes]:
    file = await asyncio.to_thread(open, path, "rb")
    try:
        while chunk := await asyncio.to_thread(file.read, READ_CHUNK):
            yield chunk
    finally:
        file.close()


def _file_md5(path: Path) -> str:
    digest = hashlib.md5()
    with open(path, "rb") as file:
        while chunk := file.read(4 * READ_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


class DirectorySource:
    """An export directory (with its manifest) or a plain directory of files."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.manifest = root / MANIFEST_FILE if (root / HEADER_FILE).exists() else None

    async def check(self, *, all_versions: bool = False) -> None:
        if not self.root.is_dir():
            raise TransferError(f"{self.root} is not a directory")
        if all_versions and not self.has_versions():
            raise TransferError(
                f"{self.root} was not written by `egide export --all-versions`: it holds no "
                "versions; import it without --all-versions"
            )

    def has_versions(self) -> bool:
        if self.manifest is None:
            return False
        header = json.loads((self.root / HEADER_FILE).read_text())
        return bool(header.get("versions") == ALL_VERSIONS)

    async def histories(
        self, after: str | None, after_version: str | None
    ) -> AsyncIterator[tuple[list[Incoming], int]]:
        """--all-versions: each key's versions from the manifest, in its order, and where
        the cursor resumes (see egide.transfer.history)."""
        assert self.manifest is not None
        keys: dict[str, list[Incoming]] = {}
        for item in await asyncio.to_thread(Ledger(self.manifest).history):
            opener = _no_body if item.delete_marker else self._opener(self.root / item.path, item)
            incoming = Incoming(item.key, item.size, item.md5 or None, item.sha256 or None,
                                opener, item.version_id, item.delete_marker,
                                item.is_latest)  # fmt: skip
            keys.setdefault(item.key, []).append(incoming)
        for key in sorted(keys):
            history = keys[key]
            if after is not None and (key < after or (key == after and after_version is None)):
                continue
            start = 0
            if key == after and after_version is not None:
                start = resume_index([v.version_id for v in history], after_version)
            yield history, start

    def _latest(self) -> list[ManifestEntry]:
        """An --all-versions export read without --all-versions: each key's latest version,
        unless it is a delete marker (the bucket as it looked)."""
        assert self.manifest is not None
        return [
            item
            for item in Ledger(self.manifest).history()
            if item.is_latest and not item.delete_marker
        ]

    def items(self, after: str | None) -> AsyncIterator[Incoming]:
        if self.manifest is not None:
            return self._exported(after)
        return self._plain(after)

    async def _exported(self, after: str | None) -> AsyncIterator[Incoming]:
        assert self.manifest is not None
        items = self._latest() if self.has_versions() else list(Ledger(self.manifest).entries())
        for item in sorted(items, key=lambda e: e.key):
            if after is None or item.key > after:
                yield Incoming(item.key, item.size, item.md5, item.sha256,
                               self._opener(self.root / item.path, item))  # fmt: skip

    def _opener(self, path: Path, item: ManifestEntry) -> Callable[[], Awaitable[Opened]]:
        async def open_it() -> Opened:
            try:
                stamp = datetime.fromisoformat(item.last_modified).timestamp()
            except ValueError:
                stamp = 0.0
            return Opened(item.etag, stamp, item.headers, item.metadata, item.tags,
                          read_file(path), entry_lock(item))  # fmt: skip

        return open_it

    async def _plain(self, after: str | None) -> AsyncIterator[Incoming]:
        for key in await asyncio.to_thread(plain_files, self.root):
            if after is not None and key <= after:
                continue
            path = self.root / key
            stat = path.stat()

            async def open_it(path: Path = path, mtime: float = stat.st_mtime) -> Opened:
                kind = mimetypes.guess_type(path.name)[0] or "binary/octet-stream"
                return Opened("", mtime, {"content-type": kind}, {}, {}, read_file(path))

            yield Incoming(key, stat.st_size, None, None, open_it)

    async def md5_of(self, item: Incoming) -> str | None:
        """The MD5 of a plain file, read only when a duplicate check needs it."""
        if self.manifest is not None:
            return item.md5
        return await asyncio.to_thread(_file_md5, self.root / item.key)


class S3Source:
    """A bucket and prefix of an S3 endpoint."""

    def __init__(self, endpoint: S3Endpoint) -> None:
        self.endpoint = endpoint

    async def check(self, *, all_versions: bool = False) -> None:
        await self.endpoint.check()

    async def histories(
        self, after: str | None, after_version: str | None
    ) -> AsyncIterator[tuple[list[Incoming], int]]:
        """--all-versions: each key's versions and delete markers (ListObjectVersions),
        oldest first, and where the cursor resumes."""
        if after is not None and after_version is not None:
            history = [self._incoming(v) for v in await self.endpoint.history(after)]
            yield history, resume_index([v.version_id for v in history], after_version)
        async for listed in self.endpoint.histories(after):
            yield [self._incoming(v) for v in listed], 0

    def _incoming(self, listed: ListedVersion) -> Incoming:
        md5 = listed.etag if _PLAIN_MD5.match(listed.etag) else None
        opener = _no_body if listed.delete_marker else self._opener(listed.key, listed.version_id)
        return Incoming(listed.key, listed.size, md5, None, opener, listed.version_id,
                        listed.delete_marker, listed.is_latest)  # fmt: skip

    async def items(self, after: str | None) -> AsyncIterator[Incoming]:
        async for listed in self.endpoint.list(after):
            md5 = listed.etag if _PLAIN_MD5.match(listed.etag) else None
            yield Incoming(listed.key, listed.size, md5, None, self._opener(listed.key))

    def _opener(self, key: str, version_id: str | None = None) -> Callable[[], Awaitable[Opened]]:
        async def open_it() -> Opened:
            fetched = await self.endpoint.get(key, version_id)
            tags = await self.endpoint.tags(key, version_id) if fetched.tag_count else {}
            stamp = fetched.last_modified.timestamp() if fetched.last_modified else 0.0
            return Opened(fetched.etag, stamp, fetched.headers, fetched.metadata, tags,
                          fetched.body, fetched.lock)  # fmt: skip

        return open_it

    async def md5_of(self, item: Incoming) -> str | None:
        return item.md5


Source = DirectorySource | S3Source


def open_source(job: Job, ctx: JobContext) -> Source:
    source = location_from_params(job.params.get("source"))
    if isinstance(source, Path):
        return DirectorySource(source)
    return S3Source(S3Endpoint(source, runtime_of(ctx.options).credentials))


async def _current(store: ObjectStore, bucket: str, key: str) -> ObjectVersion | None:
    try:
        return await store.head_object(bucket, key)
    except KeyNotFound:
        return None


async def already_there(
    source: Source, item: Incoming, current: ObjectVersion | None, job: Job
) -> bool:
    """Whether the key's current version in Égide already holds the source's bytes."""
    if current is None or current.size != item.size:
        return False
    if item.md5 is None and current.last_modified >= job.created:
        return True  # written by this job: a step repeated after a crash
    return await source.md5_of(item) == current.etag


async def import_one(
    store: ObjectStore,
    bucket: str,
    item: Incoming,
    current: ObjectVersion | None,
    *,
    lock: bool = False,
    **extra: Any,
) -> tuple[ManifestEntry, ObjectVersion]:
    """Write one object; nothing is committed unless its bytes match what the source said.
    `lock`: give the new version the Object Lock the source read (the bucket has Object Lock).
    `extra`: more fields of the ledger line."""
    if len(item.key.encode()) > MAX_KEY_BYTES:
        raise ObjectSkipped(f"its key is longer than {MAX_KEY_BYTES} bytes")
    opened = await item.open()
    digests = Digests(md5=False)  # the engine's ETag is the MD5

    async def check(etag: str) -> None:
        if digests.size != item.size:
            raise ObjectSkipped(f"read {digests.size} bytes, the source listed {item.size}")
        if item.md5 is not None and etag != item.md5:
            raise ObjectSkipped(f"read with MD5 {etag}, the source says {item.md5}")
        if item.sha256 is not None and digests.sha256.hexdigest() != item.sha256:
            raise ObjectSkipped("its SHA-256 differs from the manifest's")

    # Only over what was looked at: a writer racing this job is not overwritten unseen.
    condition = (
        WriteCondition(if_none_match="*")
        if current is None
        else WriteCondition(if_version=current.version_id)
    )
    headers = join_headers(opened.headers, opened.metadata, opened.tags)
    stored = dict(headers)
    if lock:
        headers |= lock_headers(opened.lock)
    try:
        version = await store.put_object(
            bucket, item.key, opened.body, size=item.size, headers=headers, hashers=[digests],
            before_commit=check, condition=condition,
        )  # fmt: skip
    except PreconditionFailed as exc:
        raise ObjectSkipped("written by someone else during the import") from exc
    except ValueError as exc:  # the body was longer than listed
        raise ObjectSkipped(str(exc)) from exc
    if extra:
        extra |= lock_entry_fields(opened.lock) | {"dest_version": version.s3_version_id}
    line = entry(item.key, digests, opened.etag, opened.last_modified, stored, md5=version.etag,
                 **extra)  # fmt: skip
    return line, version


async def verify(store: ObjectStore, bucket: str, ledger: Ledger) -> Verification:
    """Every object imported, looked up again: the current version of its key has the size
    and the MD5 of the bytes read from the source."""
    result = Verification()
    for item in ledger.entries():
        current = await _current(store, bucket, item.key)
        if current is None:
            result.check(item.key, "missing in Égide")
        elif current.size != item.size:
            result.check(item.key, f"{current.size} bytes in Égide, {item.size} read")
        elif current.etag != item.md5:
            result.check(item.key, f"ETag {current.etag} in Égide, MD5 {item.md5} read")
        else:
            result.check(item.key, None)
    return result


def _same_in_egide(item: Incoming, there: ObjectVersion, job: Job) -> bool:
    """Whether a version in Égide holds the source version `item` (see `already_there`)."""
    if item.delete_marker or there.delete_marker:
        return item.delete_marker == there.delete_marker
    if there.size != item.size:
        return False
    if item.md5 is None:
        return there.last_modified >= job.created
    return there.etag == item.md5


def _found_entry(item: Incoming, there: ObjectVersion) -> ManifestEntry:
    return ManifestEntry(
        key=item.key, size=there.size, etag=there.etag, md5=there.etag,
        sha256=item.sha256 or "", last_modified="", version_id=item.version_id,
        is_latest=item.is_latest, delete_marker=item.delete_marker,
        dest_version=there.s3_version_id,
    )  # fmt: skip


async def import_version(
    store: ObjectStore, bucket: str, item: Incoming, newest: ObjectVersion | None, lock: bool
) -> tuple[ManifestEntry, ObjectVersion]:
    """One version written as the key's newest: a PUT conditional on `newest` (the key's
    newest version in Égide, delete markers included), or a delete marker."""
    fields: dict[str, Any] = {"version_id": item.version_id, "is_latest": item.is_latest,
              "delete_marker": item.delete_marker}  # fmt: skip
    if not item.delete_marker:
        return await import_one(store, bucket, item, newest, lock=lock, **fields)
    marker = await store.delete_object(bucket, item.key)
    assert marker is not None  # a versioned bucket always gets one
    line = ManifestEntry(key=item.key, size=0, etag="", md5="", sha256="", last_modified="",
                         dest_version=marker.s3_version_id, **fields)  # fmt: skip
    return line, marker


async def copy_versions(
    store: ObjectStore, bucket: str, source: Source, ledger: Ledger, cursor: Cursor, job: Job
) -> AsyncIterator[Step]:
    """--all-versions: each key's versions written in order, one step each. The versions of
    the key already in Égide that are the first of the source's (a version written before a
    crash, its step unsaved; or a whole history imported before) are not written again."""
    found = await store.bucket(bucket)
    lock = await store.bucket_settings.lock_configuration(found) is not None
    async for history, start in source.histories(cursor.after, cursor.after_version):
        key = history[0].key
        there = [version for version, _ in await key_history(store, bucket, key)]
        done = done_prefix(history, there, lambda item, v: _same_in_egide(item, v, job))
        newest = there[-1] if there else None
        for index in range(start, len(history)):
            item = history[index]
            after_version = None if index == len(history) - 1 else item.version_id
            which = f"{key} {item.version_id}"
            if index < done:
                line = _found_entry(item, there[len(there) - done + index])
                length = await asyncio.to_thread(ledger.append, line)
                cursor = replace(cursor, after=key, after_version=after_version,
                                 ledger_bytes=length)  # fmt: skip
                counts = {"items": 1, "unchanged": 1, "unchanged_bytes": item.size}
                yield Step(cursor.dump(), counts=counts)
                continue
            try:
                line, newest = await import_version(store, bucket, item, newest, lock)
            except ObjectSkipped as exc:
                cursor = replace(cursor.skip(which, str(exc), after_version), after=key)
                counts = {"skipped": 1, "skipped_bytes": item.size}
                yield Step(cursor.dump(), counts=counts, note=f"not imported: {which}: {exc}")
                continue
            length = await asyncio.to_thread(ledger.append, line)
            cursor = replace(cursor, after=key, after_version=after_version, ledger_bytes=length)
            yield Step(cursor.dump(), counts={"items": 1, "bytes": item.size})


async def verify_versions(store: ObjectStore, bucket: str, ledger: Ledger) -> Verification:
    """Each key's versions in Égide, listed again: they end with the versions the import
    wrote (or found), the same count, in order, each with its size and MD5 (its ETag)."""
    result = Verification()
    expected: dict[str, list[ManifestEntry]] = {}
    for item in ledger.history():
        expected.setdefault(item.key, []).append(item)
    for key, lines in expected.items():
        there = [version for version, _ in await key_history(store, bucket, key)]
        for name, problem in _compare_history(lines, there):
            result.check(name, problem)
    return result


def _compare_history(
    lines: list[ManifestEntry], there: list[ObjectVersion]
) -> list[tuple[str, str | None]]:
    """(version, problem or None) for each version imported, against the key's versions in
    Égide; a count that differs is one more problem."""
    if len(there) < len(lines):
        name = lines[0].key
        return [(name, f"{len(there)} versions in Égide, {len(lines)} imported")]
    checked: list[tuple[str, str | None]] = []
    for item, version in zip(lines, there[len(there) - len(lines) :], strict=True):
        problem = None
        if version.s3_version_id != item.dest_version:
            problem = f"Égide's version {version.s3_version_id}, not {item.dest_version}"
        elif version.delete_marker != item.delete_marker:
            problem = "a delete marker on one side only"
        elif not item.delete_marker and (version.size, version.etag) != (item.size, item.md5):
            problem = (f"{version.size} bytes, MD5 {version.etag} in Égide; {item.size} bytes, "
                       f"MD5 {item.md5} read")  # fmt: skip
        checked.append((f"{item.key} {item.version_id}", problem))
    return checked


async def check_target(store: ObjectStore, bucket: str) -> None:
    """--all-versions writes versions beside each other: the bucket must keep them."""
    if await store.versioning(bucket) != "Enabled":
        raise TransferError(
            f"--all-versions needs versioning enabled on bucket {bucket!r}, and it is not: "
            "enable it (PutBucketVersioning), or import into a new bucket (created versioned)"
        )


@job_kind("import")
async def import_job(ctx: JobContext, job: Job) -> AsyncGenerator[Step, None]:
    """Import params["source"] into params["bucket"]; with params["all_versions"], every
    version of every key, in order."""
    bucket = str(job.params["bucket"])
    all_versions = bool(job.params.get("all_versions"))
    store = await open_store(ctx)
    source = open_source(job, ctx)
    ledger = Ledger(Path(str(job.params["ledger"])))
    cursor = Cursor.load(job.cursor)
    if cursor.phase == "start":
        await store.bucket(bucket)
        await source.check(all_versions=all_versions)
        ledger.reset(0)
        total = total_bytes = 0
        if all_versions:
            await check_target(store, bucket)
            async for history, _ in source.histories(None, None):
                total += len(history)
                total_bytes += sum(item.size for item in history)
        else:
            async for item in source.items(None):
                total, total_bytes = total + 1, total_bytes + item.size
        cursor = replace(cursor, phase="copy", total=total, total_bytes=total_bytes)
        where = describe(location_from_params(job.params.get("source")))
        what = "versions" if all_versions else "objects"
        note = f"{total} {what}, {total_bytes} bytes from {where} into {bucket}"
        yield Step(cursor.dump(), total=total, note=note)
    if cursor.phase == "copy" and all_versions:
        ledger.reset(cursor.ledger_bytes)
        await check_target(store, bucket)
        async for step in copy_versions(store, bucket, source, ledger, cursor, job):
            cursor = Cursor.load(step.cursor)
            yield step
        cursor = replace(cursor, phase="verify")
        yield Step(cursor.dump(), note="copy done; verifying")
    if cursor.phase == "copy":
        ledger.reset(cursor.ledger_bytes)
        async for item in source.items(cursor.after):
            current = await _current(store, bucket, item.key)
            if await already_there(source, item, current, job):
                assert current is not None
                found = ManifestEntry(key=item.key, size=current.size, etag=current.etag,
                                      md5=current.etag, sha256=item.sha256 or "",
                                      last_modified="")  # fmt: skip
                length = await asyncio.to_thread(ledger.append, found)
                cursor = replace(cursor, after=item.key, ledger_bytes=length)
                counts = {"items": 1, "unchanged": 1, "unchanged_bytes": item.size}
                yield Step(cursor.dump(), counts=counts)
                continue
            try:
                written, _ = await import_one(store, bucket, item, current)
            except ObjectSkipped as exc:
                cursor = cursor.skip(item.key, str(exc))
                yield Step(cursor.dump(), counts={"skipped": 1, "skipped_bytes": item.size},
                           note=f"not imported: {item.key}: {exc}")  # fmt: skip
                continue
            length = await asyncio.to_thread(ledger.append, written)
            cursor = replace(cursor, after=item.key, ledger_bytes=length)
            yield Step(cursor.dump(), counts={"items": 1, "bytes": item.size})
        cursor = replace(cursor, phase="verify")
        yield Step(cursor.dump(), note="copy done; verifying")
    if cursor.phase == "verify":
        if all_versions:
            result = await verify_versions(store, bucket, ledger)
        else:
            result = await verify(store, bucket, ledger)
        cursor = result.into(cursor)
        yield Step(cursor.dump(), note=f"verified {result.verified} objects, "
                   f"{result.mismatch_count} mismatches")  # fmt: skip
