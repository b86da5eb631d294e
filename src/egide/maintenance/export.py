"""The "export" job: every current object of a bucket, in clear, with its metadata, to a local
directory (egide.maintenance.dirlayout) or a bucket and prefix of any S3 endpoint.

Job params: {"bucket": NAME, "dest": location (egide.maintenance.transfer), "ledger": PATH for
S3 destinations}. One step per object, in key order; a step repeated after a crash rewrites
the same file (a directory) or finds the object already at the destination (S3).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncGenerator, AsyncIterator
from dataclasses import replace
from pathlib import Path

from egide.domain import Job, KeyNotFound, ObjectVersion
from egide.engine.store import ObjectStore
from egide.maintenance.dirlayout import (
    FORMAT,
    HEADER_FILE,
    MANIFEST_FILE,
    OBJECTS_DIR,
    TEMP_PREFIX,
    AtomicFile,
    Ledger,
    ManifestEntry,
    key_path,
    stray_files,
)
from egide.maintenance.jobs import JobContext, Step, job_kind
from egide.maintenance.s3endpoint import S3Endpoint, TransferError
from egide.maintenance.transfer import (
    Cursor,
    Digests,
    Verification,
    describe,
    entry,
    location_from_params,
    runtime_of,
    split_headers,
)

PAGE = 1000
HASH_CHUNK = 4 * 1024 * 1024


class ObjectSkipped(Exception):
    """One object cannot be exported (the export goes on); the message says why."""


async def plaintext(store: ObjectStore, version: ObjectVersion) -> AsyncIterator[bytes]:
    """The bytes of `version`, decrypted and decoded as they stream."""
    if version.size == 0:
        return
    reader = await store.reader(version, 0, version.size - 1)
    try:
        async for chunk in reader:
            yield chunk
    finally:
        reader.close()


async def current_versions(
    store: ObjectStore, bucket: str, after: str | None
) -> AsyncIterator[ObjectVersion]:
    """The current version of every key after `after`, in key order."""
    while True:
        page = await store.list_objects(bucket, after=after, max_keys=PAGE)
        for version in page.objects:
            yield version
        if not page.truncated or page.last is None:
            return
        after = page.last


class DirectorySink:
    """An export directory: egide-export.json, manifest.jsonl, objects/…"""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.ledger = Ledger(root / MANIFEST_FILE)

    def check_new(self) -> None:
        """Refuse a destination that already holds anything: an export writes a fresh tree."""
        if self.root.exists() and not self.root.is_dir():
            raise TransferError(f"{self.root} exists and is not a directory")
        if not self.root.exists() or not any(self.root.iterdir()):
            return
        if (self.root / HEADER_FILE).exists():
            raise TransferError(
                f"{self.root} already holds a finished Égide export; remove it or export to "
                "a new directory"
            )
        raise TransferError(
            f"{self.root} is not empty and holds no Égide export: export to a new or empty "
            "directory (nothing there was touched)"
        )

    async def start(self, bucket: str, job_id: int) -> None:
        header = self.root / HEADER_FILE
        if header.exists():
            found = json.loads(header.read_text())
            if found.get("bucket") != bucket:
                raise TransferError(f"{self.root} holds an export of bucket {found.get('bucket')}")
            return
        self.check_new()
        (self.root / OBJECTS_DIR).mkdir(parents=True, exist_ok=True)
        document = {"format": FORMAT, "bucket": bucket, "job": job_id, "manifest": MANIFEST_FILE,
                    "objects": OBJECTS_DIR, "layout": "docs/export-import.md"}  # fmt: skip
        file = AtomicFile(header)
        file.write(json.dumps(document, indent=2).encode() + b"\n")
        file.finish()

    async def write(self, store: ObjectStore, bucket: str, version: ObjectVersion) -> ManifestEntry:
        key = version.key
        also_directory = bool(
            (await store.list_objects(bucket, prefix=key + "/", max_keys=1)).objects
        )
        relative = f"{OBJECTS_DIR}/{key_path(key, also_directory=also_directory)}"
        final = self.root / relative
        try:
            file = await asyncio.to_thread(AtomicFile, final)
        except (NotADirectoryError, FileExistsError) as exc:
            # A key written during the export made a file's name a directory (or the reverse).
            raise ObjectSkipped(f"its path {relative} clashes with another object's") from exc
        digests = Digests()

        def take(chunk: bytes) -> None:
            digests.update(chunk)
            file.write(chunk)

        try:
            async for chunk in plaintext(store, version):
                await asyncio.to_thread(take, chunk)
            if final.is_dir():
                raise ObjectSkipped(f"its path {relative} is a directory of other objects")
            await asyncio.to_thread(file.finish)
        except BaseException:
            file.abort()
            raise
        check_read(version, digests)
        return entry(key, digests, version.etag, version.last_modified, version.headers,
                     path=relative)  # fmt: skip

    async def verify(self) -> Verification:
        """Each file of the manifest read again against its size and SHA-256; any other file
        under objects/ is a mismatch (temp files of interrupted writes are removed)."""
        result = Verification()
        expected = set()
        for item in self.ledger.entries():
            expected.add(item.path)
            result.check(item.key, await asyncio.to_thread(_check_file, self.root / item.path,
                                                           item))  # fmt: skip
        for path in stray_files(self.root / OBJECTS_DIR):
            relative = path.relative_to(self.root).as_posix()
            if path.name.startswith(TEMP_PREFIX):
                path.unlink(missing_ok=True)
            elif relative not in expected:
                result.check(relative, "a file under objects/ that no manifest line names")
        return result


def _check_file(path: Path, item: ManifestEntry) -> str | None:
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        return f"{item.path} is missing"
    if size != item.size:
        return f"{item.path} has {size} bytes, {item.size} were exported"
    digest = Digests()
    with open(path, "rb") as file:
        while chunk := file.read(HASH_CHUNK):
            digest.update(chunk)
    if digest.sha256.hexdigest() != item.sha256:
        return f"{item.path}: SHA-256 differs from the manifest's"
    return None


def check_read(version: ObjectVersion, digests: Digests) -> None:
    """What was read is what was stored: the size, and the MD5 of single-part objects."""
    if digests.size != version.size:
        raise TransferError(f"{version.key}: read {digests.size} bytes of {version.size}")
    if "-" not in version.etag and digests.md5_hex() != version.etag:
        raise ObjectSkipped(f"read back with MD5 {digests.md5_hex()}, ETag {version.etag}")


class S3Sink:
    """A bucket and prefix of an S3 endpoint; the ledger lives in Égide's data directory."""

    def __init__(self, endpoint: S3Endpoint, ledger: Path) -> None:
        self.endpoint = endpoint
        self.ledger = Ledger(ledger)

    async def check_new(self) -> None:
        await self.endpoint.check()
        if not await self.endpoint.is_empty():
            raise TransferError(
                f"{self.endpoint.location.url()} is not empty: export to an empty bucket or "
                "prefix (nothing there was touched)"
            )

    async def start(self, bucket: str, job_id: int) -> None:
        await self.check_new()

    async def write(self, store: ObjectStore, bucket: str, version: ObjectVersion) -> ManifestEntry:
        digests = Digests()

        async def body() -> AsyncIterator[bytes]:
            async for chunk in plaintext(store, version):
                digests.update(chunk)
                yield chunk

        headers, metadata, tags = split_headers(version.headers)
        there = await self.endpoint.head(version.key)
        if there is not None and there.size == version.size and there.etag == version.etag:
            # A step repeated after a crash: the object is there; read it only for the ledger
            # (writing it again would add a version to a versioned destination).
            async for _ in body():
                pass
            dest_etag = there.etag
        else:
            dest_etag = await self.endpoint.put(
                version.key, body(), version.size, headers=headers, metadata=metadata, tags=tags
            )
        check_read(version, digests)
        return entry(version.key, digests, version.etag, version.last_modified, version.headers,
                     path=self.endpoint.location.prefix + version.key,
                     dest_etag=dest_etag)  # fmt: skip

    async def verify(self) -> Verification:
        """The destination listed again: every exported key there with its size and the ETag
        its upload was given; keys nobody exported there are mismatches too."""
        result = Verification()
        expected = {item.key: item for item in self.ledger.entries()}
        async for listed in self.endpoint.list():
            item = expected.pop(listed.key, None)
            if item is None:
                result.check(listed.key, "at the destination but not exported")
            elif listed.size != item.size:
                result.check(item.key, f"{listed.size} bytes there, {item.size} exported")
            elif listed.etag != item.dest_etag:
                result.check(item.key, f"ETag {listed.etag} there, {item.dest_etag} expected")
            else:
                result.check(item.key, None)
        for key in expected:
            result.check(key, "missing at the destination")
        return result


Sink = DirectorySink | S3Sink


def open_sink(job: Job, ctx: JobContext) -> Sink:
    dest = location_from_params(job.params.get("dest"))
    if isinstance(dest, Path):
        return DirectorySink(dest)
    return S3Sink(S3Endpoint(dest, runtime_of(ctx.options).credentials),
                  Path(str(job.params["ledger"])))  # fmt: skip


async def open_store(ctx: JobContext) -> ObjectStore:
    if ctx.store is None:
        raise TransferError("export and import need the object store (keys): none was given")
    return await ctx.store()


async def count_objects(store: ObjectStore, bucket: str) -> tuple[int, int]:
    count = size = 0
    async for version in current_versions(store, bucket, None):
        count, size = count + 1, size + version.size
    return count, size


@job_kind("export")
async def export_job(ctx: JobContext, job: Job) -> AsyncGenerator[Step, None]:
    """Export the current objects of params["bucket"] to params["dest"]."""
    bucket = str(job.params["bucket"])
    store = await open_store(ctx)
    sink = open_sink(job, ctx)
    cursor = Cursor.load(job.cursor)
    if cursor.phase == "start":
        await store.bucket(bucket)
        await sink.start(bucket, job.id)
        sink.ledger.reset(0)
        total, total_bytes = await count_objects(store, bucket)
        cursor = replace(cursor, phase="copy", total=total, total_bytes=total_bytes)
        where = describe(location_from_params(job.params.get("dest")))
        note = f"{total} objects, {total_bytes} bytes from {bucket} to {where}"
        yield Step(cursor.dump(), total=total, note=note)
    if cursor.phase == "copy":
        sink.ledger.reset(cursor.ledger_bytes)
        async for listed in current_versions(store, bucket, cursor.after):
            try:
                version = await store.head_object(bucket, listed.key)
            except KeyNotFound:
                continue  # deleted since it was listed: not part of the export
            try:
                written = await sink.write(store, bucket, version)
            except ObjectSkipped as exc:
                cursor = cursor.skip(version.key, str(exc))
                yield Step(cursor.dump(), counts={"skipped": 1, "skipped_bytes": version.size},
                           note=f"not exported: {version.key}: {exc}")  # fmt: skip
                continue
            length = await asyncio.to_thread(sink.ledger.append, written)
            cursor = replace(cursor, after=version.key, ledger_bytes=length)
            yield Step(cursor.dump(), counts={"items": 1, "bytes": version.size})
        cursor = replace(cursor, phase="verify")
        yield Step(cursor.dump(), note="copy done; verifying the destination")
    if cursor.phase == "verify":
        result = await sink.verify()
        cursor = result.into(cursor)
        yield Step(cursor.dump(), note=f"verified {result.verified} objects, "
                   f"{result.mismatch_count} mismatches")  # fmt: skip
