"""The "import" job: a bucket brought into Égide from a bucket and prefix of any S3 endpoint,
from a directory written by `egide export` (metadata from its manifest), or from a plain
directory (each file an object, its key the relative path).

Job params: {"bucket": NAME, "source": location (egide.maintenance.transfer), "ledger": PATH}.
Nothing is imported twice: before writing a key, the job looks at the key's current version in
Égide; the same size and MD5 (or, when the source gives no MD5, the same size written since the
job began) means it is there already. Writes are conditional on the version looked at, and the
MD5 and SHA-256 the source announces are checked before the commit, so a bad transfer commits
nothing.
"""

from __future__ import annotations

import asyncio
import hashlib
import mimetypes
import re
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path

from egide.domain import (
    Job,
    KeyNotFound,
    ObjectVersion,
    PreconditionFailed,
    WriteCondition,
)
from egide.engine.store import ObjectStore
from egide.maintenance.dirlayout import (
    HEADER_FILE,
    MANIFEST_FILE,
    Ledger,
    ManifestEntry,
    plain_files,
)
from egide.maintenance.export import open_store
from egide.maintenance.jobs import JobContext, Step, job_kind
from egide.maintenance.s3endpoint import S3Endpoint, TransferError
from egide.maintenance.transfer import (
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

    async def check(self) -> None:
        if not self.root.is_dir():
            raise TransferError(f"{self.root} is not a directory")

    def items(self, after: str | None) -> AsyncIterator[Incoming]:
        if self.manifest is not None:
            return self._exported(after)
        return self._plain(after)

    async def _exported(self, after: str | None) -> AsyncIterator[Incoming]:
        assert self.manifest is not None
        for item in sorted(Ledger(self.manifest).entries(), key=lambda e: e.key):
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
                          read_file(path))  # fmt: skip

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

    async def check(self) -> None:
        await self.endpoint.check()

    async def items(self, after: str | None) -> AsyncIterator[Incoming]:
        async for listed in self.endpoint.list(after):
            md5 = listed.etag if _PLAIN_MD5.match(listed.etag) else None
            yield Incoming(listed.key, listed.size, md5, None, self._opener(listed.key))

    def _opener(self, key: str) -> Callable[[], Awaitable[Opened]]:
        async def open_it() -> Opened:
            fetched = await self.endpoint.get(key)
            tags = await self.endpoint.tags(key) if fetched.tag_count else {}
            stamp = fetched.last_modified.timestamp() if fetched.last_modified else 0.0
            return Opened(fetched.etag, stamp, fetched.headers, fetched.metadata, tags,
                          fetched.body)  # fmt: skip

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
    store: ObjectStore, bucket: str, item: Incoming, current: ObjectVersion | None
) -> ManifestEntry:
    """Write one object; nothing is committed unless its bytes match what the source said."""
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
    try:
        version = await store.put_object(
            bucket, item.key, opened.body, size=item.size, headers=headers, hashers=[digests],
            before_commit=check, condition=condition,
        )  # fmt: skip
    except PreconditionFailed as exc:
        raise ObjectSkipped("written by someone else during the import") from exc
    except ValueError as exc:  # the body was longer than listed
        raise ObjectSkipped(str(exc)) from exc
    return entry(item.key, digests, opened.etag, opened.last_modified, headers, md5=version.etag)


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


@job_kind("import")
async def import_job(ctx: JobContext, job: Job) -> AsyncGenerator[Step, None]:
    """Import params["source"] into params["bucket"]."""
    bucket = str(job.params["bucket"])
    store = await open_store(ctx)
    source = open_source(job, ctx)
    ledger = Ledger(Path(str(job.params["ledger"])))
    cursor = Cursor.load(job.cursor)
    if cursor.phase == "start":
        await store.bucket(bucket)
        await source.check()
        ledger.reset(0)
        total = total_bytes = 0
        async for item in source.items(None):
            total, total_bytes = total + 1, total_bytes + item.size
        cursor = replace(cursor, phase="copy", total=total, total_bytes=total_bytes)
        where = describe(location_from_params(job.params.get("source")))
        note = f"{total} objects, {total_bytes} bytes from {where} into {bucket}"
        yield Step(cursor.dump(), total=total, note=note)
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
                written = await import_one(store, bucket, item, current)
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
        result = await verify(store, bucket, ledger)
        cursor = result.into(cursor)
        yield Step(cursor.dump(), note=f"verified {result.verified} objects, "
                   f"{result.mismatch_count} mismatches")  # fmt: skip
