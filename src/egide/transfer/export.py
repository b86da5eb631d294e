"""The "export" job: every current object of a bucket, in clear, with its metadata, to a local
directory (egide.transfer.dirlayout) or a bucket and prefix of any S3 endpoint.

Job params: {"bucket": NAME, "dest": location (egide.transfer.shared), "ledger": PATH for
S3 destinations, "all_versions": true or absent}. One step per object, in key order; a step
repeated after a crash rewrites the same file (a directory) or finds the object already at the
destination (S3). With all_versions, one step per version, a key's oldest first, delete markers
included (egide.transfer.history).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncGenerator, AsyncIterator
from dataclasses import replace
from functools import partial
from pathlib import Path

from egide.domain import Job, KeyNotFound, ObjectVersion
from egide.engine.customer_keys import under_customer_key
from egide.engine.store import ObjectStore
from egide.maintenance.jobs import JobContext, Step, job_kind
from egide.transfer.dirlayout import (
    ALL_VERSIONS,
    FORMAT,
    HEADER_FILE,
    MANIFEST_FILE,
    OBJECTS_DIR,
    TEMP_PREFIX,
    VERSIONS_DIR,
    AtomicFile,
    Ledger,
    ManifestEntry,
    key_path,
    stray_files,
    version_path,
)
from egide.transfer.history import (
    History,
    done_prefix,
    key_histories,
    marker_entry,
    version_fields,
    version_lock,
)
from egide.transfer.s3endpoint import PART_SIZE, ListedVersion, S3Endpoint, TransferError
from egide.transfer.shared import (
    Cursor,
    Digests,
    Verification,
    describe,
    entry,
    iso8601,
    location_from_params,
    runtime_of,
    split_headers,
)

PAGE = 1000
HASH_CHUNK = 4 * 1024 * 1024


class ObjectSkipped(Exception):
    """One object cannot be exported (the export goes on); the message says why."""


def check_exportable(version: ObjectVersion) -> None:
    """ObjectSkipped for a version stored under a customer-provided key (SSE-C): Égide never
    keeps that key, so it cannot read the bytes; it says so rather than write anything."""
    if under_customer_key(version.headers):
        raise ObjectSkipped(
            "it is stored under a customer-provided key (SSE-C), which Égide never keeps: "
            "only a GET that sends that key can read it"
        )


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
    """An export directory: egide-export.json, manifest.jsonl, objects/… (and versions/…
    with --all-versions)."""

    def __init__(self, root: Path, *, all_versions: bool = False) -> None:
        self.root = root
        self.all_versions = all_versions
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
        if self.all_versions:
            document |= {"versions": ALL_VERSIONS, "versions_dir": VERSIONS_DIR}
        file = AtomicFile(header)
        file.write(json.dumps(document, indent=2).encode() + b"\n")
        file.finish()

    async def write(self, store: ObjectStore, bucket: str, version: ObjectVersion) -> ManifestEntry:
        check_exportable(version)
        relative = await self._object_path(store, bucket, version.key)
        digests = await self._write_file(store, version, relative)
        return entry(version.key, digests, version.etag, version.last_modified, version.headers,
                     path=relative)  # fmt: skip

    async def write_version(
        self, store: ObjectStore, bucket: str, version: ObjectVersion, latest: bool
    ) -> ManifestEntry:
        """One version: the latest under objects/ (the bucket as it looks), the others under
        versions/; a delete marker only in the manifest."""
        if version.delete_marker:
            return marker_entry(version, latest)
        check_exportable(version)
        if latest:
            relative = await self._object_path(store, bucket, version.key)
        else:
            relative = version_path(version.key, version.s3_version_id)
        digests = await self._write_file(store, version, relative)
        return entry(version.key, digests, version.etag, version.last_modified, version.headers,
                     path=relative, **version_fields(version, latest))  # fmt: skip

    async def _object_path(self, store: ObjectStore, bucket: str, key: str) -> str:
        also_directory = bool(
            (await store.list_objects(bucket, prefix=key + "/", max_keys=1)).objects
        )
        return f"{OBJECTS_DIR}/{key_path(key, also_directory=also_directory)}"

    async def _write_file(
        self, store: ObjectStore, version: ObjectVersion, relative: str
    ) -> Digests:
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
        return digests

    async def verify(self) -> Verification:
        """Each file of the manifest read again against its size and SHA-256; any other file
        under objects/ or versions/ is a mismatch (temp files of interrupted writes are
        removed)."""
        result = Verification()
        expected = set()
        items = self.ledger.history() if self.all_versions else list(self.ledger.entries())
        for item in items:
            if item.delete_marker:
                result.check(item.key, None)
                continue
            expected.add(item.path)
            name = f"{item.key} {item.version_id}".rstrip()
            result.check(name, await asyncio.to_thread(_check_file, self.root / item.path,
                                                       item))  # fmt: skip
        strays = [*stray_files(self.root / OBJECTS_DIR), *stray_files(self.root / VERSIONS_DIR)]
        for path in strays:
            relative = path.relative_to(self.root).as_posix()
            if path.name.startswith(TEMP_PREFIX):
                path.unlink(missing_ok=True)
            elif relative not in expected:
                result.check(relative, "a file that no manifest line names")
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


async def hashed(
    store: ObjectStore, version: ObjectVersion, digests: Digests
) -> AsyncIterator[bytes]:
    """The plaintext of `version`, every chunk counted into `digests` on its way out."""
    async for chunk in plaintext(store, version):
        digests.update(chunk)
        yield chunk


class S3Sink:
    """A bucket and prefix of an S3 endpoint; the ledger lives in Égide's data directory."""

    def __init__(self, endpoint: S3Endpoint, ledger: Path, *, all_versions: bool = False) -> None:
        self.endpoint = endpoint
        self.ledger = Ledger(ledger)
        self.all_versions = all_versions
        #: Whether versions are written with their Object Lock (the bucket has it).
        self.lock = False

    async def check_new(self) -> None:
        await self.endpoint.check()
        where = self.endpoint.location.url()
        if self.all_versions and not await self.endpoint.versioning_enabled():
            raise TransferError(
                f"--all-versions needs a destination bucket with versioning enabled, and "
                f"{where} has not: enable it (PutBucketVersioning) or export without "
                "--all-versions"
            )
        empty = not await self.endpoint.has_versions() if self.all_versions else True
        if not empty or not await self.endpoint.is_empty():
            raise TransferError(
                f"{where} is not empty: export to an empty bucket or prefix (nothing there was "
                "touched)"
            )

    async def start(self, bucket: str, job_id: int) -> None:
        await self.check_new()

    async def resume(self) -> None:
        if self.all_versions:
            self.lock = await self.endpoint.lock_enabled()

    async def write(self, store: ObjectStore, bucket: str, version: ObjectVersion) -> ManifestEntry:
        check_exportable(version)
        digests = Digests()
        body = partial(hashed, store, version, digests)

        headers, metadata, tags = split_headers(version.headers)
        there = await self.endpoint.head(version.key)
        if there is not None and there.size == version.size and there.etag == version.etag:
            # A step repeated after a crash: the object is there; read it only for the ledger
            # (writing it again would add a version to a versioned destination).
            async for _ in body():
                pass
            dest_etag = there.etag
        else:
            written = await self.endpoint.put(
                version.key, body(), version.size, headers=headers, metadata=metadata, tags=tags
            )
            dest_etag = written.etag
        check_read(version, digests)
        return entry(version.key, digests, version.etag, version.last_modified, version.headers,
                     path=self.endpoint.location.prefix + version.key,
                     dest_etag=dest_etag)  # fmt: skip

    async def done_versions(self, history: History) -> list[ListedVersion]:
        """The versions of the key already at the destination that are the first of
        `history` (the destination was empty when the export began: a version whose write
        finished before a crash, its step unsaved), in the same order."""
        there = await self.endpoint.history(history[0][0].key)
        count = done_prefix(history, there, _same_at_destination)
        return there[len(there) - count :] if count else []

    async def write_version(
        self, store: ObjectStore, version: ObjectVersion, latest: bool, found: ListedVersion | None
    ) -> ManifestEntry:
        """One version, written after those before it: a PUT, or DeleteObject for a marker.
        `found`: the destination holds it already (see `done_versions`)."""
        fields = version_fields(version, latest)
        path = self.endpoint.location.prefix + version.key
        if found is not None:
            return ManifestEntry(key=version.key, size=found.size, etag=version.etag, md5="",
                                 sha256="", last_modified=iso8601(version.last_modified),
                                 path=path, dest_etag=found.etag, dest_version=found.version_id,
                                 **fields)  # fmt: skip
        if version.delete_marker:
            marker = await self.endpoint.delete_marker(version.key)
            return marker_entry(version, latest, path=path, dest_version=marker)
        check_exportable(version)
        digests = Digests()
        body = partial(hashed, store, version, digests)

        headers, metadata, tags = split_headers(version.headers)
        written = await self.endpoint.put(
            version.key, body(), version.size, headers=headers, metadata=metadata, tags=tags,
            lock=version_lock(version) if self.lock else None,
        )  # fmt: skip
        check_read(version, digests)
        return entry(version.key, digests, version.etag, version.last_modified, version.headers,
                     path=path, dest_etag=written.etag, dest_version=written.version_id,
                     **fields)  # fmt: skip

    async def verify_versions(self) -> Verification:
        """The destination's versions listed again, key by key: the same count, in the same
        order, each with the size, ETag and version id its write was given."""
        result = Verification()
        expected: dict[str, list[ManifestEntry]] = {}
        for item in self.ledger.history():
            expected.setdefault(item.key, []).append(item)
        async for there in self.endpoint.histories():
            for name, problem in _compare_history(expected.pop(there[0].key, []), there):
                result.check(name, problem)
        for key in expected:
            result.check(key, "missing at the destination")
        return result

    async def verify(self) -> Verification:
        """The destination listed again: every exported key there with its size and the ETag
        its upload was given; keys nobody exported there are mismatches too."""
        if self.all_versions:
            return await self.verify_versions()
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


def _same_at_destination(version: tuple[ObjectVersion, bool], there: ListedVersion) -> bool:
    egide, _ = version
    if egide.delete_marker or there.delete_marker:
        return egide.delete_marker == there.delete_marker
    # A single PUT's ETag is the MD5; a multipart upload's comes from the export's own parts.
    single = "-" not in egide.etag and egide.size <= PART_SIZE
    return there.size == egide.size and (not single or there.etag == egide.etag)


def _compare_history(
    exported: list[ManifestEntry], there: list[ListedVersion]
) -> list[tuple[str, str | None]]:
    """(version, problem or None) for each version exported, against the key's versions at
    the destination; a count that differs is one problem for the key."""
    key = (exported or there)[0].key
    if len(exported) != len(there):
        return [(key, f"{len(there)} versions at the destination, {len(exported)} exported")]
    checked: list[tuple[str, str | None]] = []
    for item, found in zip(exported, there, strict=True):
        problem = None
        if item.delete_marker != found.delete_marker:
            problem = "a delete marker on one side only"
        elif found.version_id != item.dest_version:
            problem = f"version id {found.version_id} there, {item.dest_version} written"
        elif not item.delete_marker and (found.size, found.etag) != (item.size, item.dest_etag):
            problem = (f"{found.size} bytes, ETag {found.etag} there; {item.size} bytes, ETag "
                       f"{item.dest_etag} exported")  # fmt: skip
        checked.append((f"{item.key} {item.version_id}", problem))
    return checked


Sink = DirectorySink | S3Sink


def open_sink(job: Job, ctx: JobContext) -> Sink:
    dest = location_from_params(job.params.get("dest"))
    all_versions = bool(job.params.get("all_versions"))
    if isinstance(dest, Path):
        return DirectorySink(dest, all_versions=all_versions)
    return S3Sink(S3Endpoint(dest, runtime_of(ctx.options).credentials),
                  Path(str(job.params["ledger"])), all_versions=all_versions)  # fmt: skip


async def open_store(ctx: JobContext) -> ObjectStore:
    if ctx.store is None:
        raise TransferError("export and import need the object store (keys): none was given")
    return await ctx.store()


async def count_objects(store: ObjectStore, bucket: str, all_versions: bool) -> tuple[int, int]:
    count = size = 0
    if all_versions:
        async for history, _ in key_histories(store, bucket, None, None):
            count += len(history)
            size += sum(version.size for version, _ in history)
        return count, size
    async for version in current_versions(store, bucket, None):
        count, size = count + 1, size + version.size
    return count, size


async def copy_versions(
    store: ObjectStore, bucket: str, sink: Sink, cursor: Cursor
) -> AsyncIterator[Step]:
    """--all-versions: each key's versions, oldest first, one step each."""
    async for history, start in key_histories(store, bucket, cursor.after, cursor.after_version):
        found = await sink.done_versions(history) if isinstance(sink, S3Sink) else []
        for index in range(start, len(history)):
            version, latest = history[index]
            after_version = None if index == len(history) - 1 else version.s3_version_id
            there = found[index] if index < len(found) else None
            try:
                if isinstance(sink, S3Sink):
                    written = await sink.write_version(store, version, latest, there)
                else:
                    written = await sink.write_version(store, bucket, version, latest)
            except ObjectSkipped as exc:
                which = f"{version.key} {version.s3_version_id}"
                cursor = cursor.skip(which, str(exc), after_version)
                cursor = replace(cursor, after=version.key)
                counts = {"skipped": 1, "skipped_bytes": version.size}
                yield Step(cursor.dump(), counts=counts, note=f"not exported: {which}: {exc}")
                continue
            length = await asyncio.to_thread(sink.ledger.append, written)
            cursor = replace(cursor, after=version.key, after_version=after_version,
                             ledger_bytes=length)  # fmt: skip
            counts = {"items": 1, "bytes": version.size}
            if there is not None:
                counts |= {"unchanged": 1, "unchanged_bytes": version.size, "bytes": 0}
            yield Step(cursor.dump(), counts=counts)


@job_kind("export")
async def export_job(ctx: JobContext, job: Job) -> AsyncGenerator[Step, None]:
    """Export the current objects of params["bucket"] to params["dest"]; with
    params["all_versions"], every version of every key."""
    bucket = str(job.params["bucket"])
    all_versions = bool(job.params.get("all_versions"))
    store = await open_store(ctx)
    sink = open_sink(job, ctx)
    cursor = Cursor.load(job.cursor)
    if cursor.phase == "start":
        await store.bucket(bucket)
        if all_versions and await store.versioning(bucket) is None:
            note = f"bucket {bucket} was never versioned: each key has one version"
            yield Step(cursor.dump(), note=note)
        await sink.start(bucket, job.id)
        sink.ledger.reset(0)
        total, total_bytes = await count_objects(store, bucket, all_versions)
        cursor = replace(cursor, phase="copy", total=total, total_bytes=total_bytes)
        where = describe(location_from_params(job.params.get("dest")))
        what = "versions" if all_versions else "objects"
        note = f"{total} {what}, {total_bytes} bytes from {bucket} to {where}"
        yield Step(cursor.dump(), total=total, note=note)
    if cursor.phase == "copy" and all_versions:
        sink.ledger.reset(cursor.ledger_bytes)
        if isinstance(sink, S3Sink):
            await sink.resume()
        async for step in copy_versions(store, bucket, sink, cursor):
            cursor = Cursor.load(step.cursor)
            yield step
        cursor = replace(cursor, phase="verify")
        yield Step(cursor.dump(), note="copy done; verifying the destination")
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
