"""Multipart uploads: parts written as they come, the object committed from a list of them.

An upload owns one data key and one version id from its creation; each part attempt gets a
fresh `seq` from the catalog, which names its shard files and enters its nonces. Completion is
one catalog transaction: the version becomes current and the parts left out go to the trash.
"""

from __future__ import annotations

import base64
import hashlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from egide.domain import (
    DomainError,
    InvalidPart,
    NoSuchUpload,
    ObjectVersion,
    Part,
    Upload,
    new_id,
)
from egide.engine.writer import Hasher, PartWriter
from egide.pipeline import PartCipher

if TYPE_CHECKING:
    from egide.engine.store import ObjectStore

MIN_PART_SIZE = 5 * 1024 * 1024
MAX_PART_SIZE = 5 * 1024**3
MAX_PARTS = 10_000


class Digest(Protocol):
    def update(self, data: bytes, /) -> None: ...

    def digest(self) -> bytes: ...


class InvalidPartOrder(DomainError):
    """The parts of a completion are not in ascending order."""


class PartTooSmall(DomainError):
    """A part other than the last is under MIN_PART_SIZE."""

    def __init__(self, number: int, size: int) -> None:
        super().__init__(f"part {number} is {size} bytes, under the minimum of {MIN_PART_SIZE}")
        self.number = number
        self.size = size


@dataclass(frozen=True)
class CompletedPart:
    """A part as the client names it in CompleteMultipartUpload."""

    number: int
    etag: str
    checksums: dict[str, str]


def multipart_etag(parts: Sequence[Part]) -> str:
    """The S3 ETag of a multipart object: MD5 of the parts' binary MD5s, dash, part count."""
    digest = hashlib.md5(b"".join(bytes.fromhex(p.etag) for p in parts)).hexdigest()
    return f"{digest}-{len(parts)}"


def composite_checksums(
    parts: Sequence[Part], algorithms: dict[str, Callable[[], Digest]]
) -> dict[str, str]:
    """x-amz-checksum-<alg> of the whole object, COMPOSITE type: the checksum of the parts'
    binary checksums, dash, part count; only for algorithms every part carries."""
    result: dict[str, str] = {}
    for name, make in algorithms.items():
        if not parts or any(name not in p.checksums for p in parts):
            continue
        hasher = make()
        for part in parts:
            hasher.update(base64.b64decode(part.checksums[name]))
        result[name] = f"{base64.b64encode(hasher.digest()).decode()}-{len(parts)}"
    return result


class Multipart:
    """The multipart operations of one store."""

    def __init__(self, store: ObjectStore) -> None:
        self.store = store
        self.catalog = store.catalog

    async def create(self, bucket_name: str, key: str, headers: dict[str, str]) -> Upload:
        store = self.store
        bucket = await store.bucket(bucket_name, cached=True)
        upload_id = new_id()
        _, wrapped = store.keyring.new_data_key(store.bucket_key(bucket), upload_id)
        upload = Upload(
            upload_id=upload_id, bucket_id=bucket.id, key=key, created=time.time(),
            wrapped_data_key=wrapped, k=store.k, m=store.m, block_size=store.block_size,
            sites=store.place(upload_id), headers=headers,
        )  # fmt: skip
        await self.catalog.create_upload(upload)
        return upload

    async def upload(self, bucket_name: str, key: str, upload_id: bytes) -> Upload:
        """The upload `upload_id` of `key`, or NoSuchUpload."""
        bucket = await self.store.bucket(bucket_name, cached=True)
        upload = await self.catalog.get_upload(upload_id)
        if upload is None or upload.bucket_id != bucket.id or upload.key != key:
            raise NoSuchUpload(upload_id.hex())
        return upload

    async def upload_part(
        self,
        upload: Upload,
        number: int,
        body: AsyncIterator[bytes],
        *,
        hashers: Sequence[Hasher] = (),
        before_commit: Callable[[str], Awaitable[dict[str, str]]] | None = None,
    ) -> Part:
        """Write part `number` from `body`; `before_commit` gets its MD5 and may refuse it, or
        return the checksums to keep with it."""
        store = self.store
        bucket = await store._bucket_by_id(upload.bucket_id)
        bucket_key = store.bucket_key(bucket)
        seq = await self.catalog.next_part_seq(upload.upload_id)
        data_key = store.keyring.data_key(bucket_key, upload.upload_id, upload.wrapped_data_key)
        ctx = PartCipher(
            AESGCM(data_key), bucket.id, upload.upload_id, seq, store.code(upload.k, upload.m)
        )
        writer = PartWriter(ctx, [store.sites[n] for n in upload.sites], upload.block_size)
        md5 = hashlib.md5()
        await writer.open()
        try:
            await writer.write_stream(body, [md5, *hashers])
            etag = md5.hexdigest()
            checksums = await before_commit(etag) if before_commit is not None else {}
            manifest: dict[str, object] = {
                "bucket": bucket.name, "key": upload.key, "upload": upload.upload_id.hex(),
                "part": number, "etag": etag, "size": writer.size,
                "headers": upload.headers, "sites": upload.sites,
                "data_key": upload.wrapped_data_key.hex(),
            }  # fmt: skip
            footer = store.seal_footer(
                bucket, bucket_key, upload.upload_id, manifest, writer.block_count, writer.size
            )
            await writer.finish(footer)
            await writer.commit()
        except BaseException:
            await writer.abort()
            raise
        part = Part(number, seq, writer.size, etag, time.time(), checksums)
        await self.catalog.commit_part(upload.upload_id, part, upload.sites)
        return part

    async def complete(
        self,
        upload: Upload,
        requested: Sequence[CompletedPart],
        *,
        checksum_algorithms: dict[str, Callable[[], Digest]] | None = None,
    ) -> ObjectVersion:
        """Commit the object from the `requested` parts; InvalidPartOrder, InvalidPart,
        PartTooSmall, NoSuchUpload."""
        numbers = [p.number for p in requested]
        if numbers != sorted(set(numbers)):
            raise InvalidPartOrder("the parts must be listed in ascending order, each once")
        stored = {p.number: p for p in await self.catalog.list_parts(upload.upload_id)}
        parts: list[Part] = []
        for want in requested:
            part = stored.get(want.number)
            if part is None or part.etag != want.etag.strip('"'):
                raise InvalidPart(
                    f"part {want.number} was not uploaded, or its ETag is not {want.etag}"
                )
            for name, value in want.checksums.items():
                if part.checksums.get(name) not in (None, value):
                    raise InvalidPart(f"part {want.number}: {name} does not match the upload")
            parts.append(part)
        for part in parts[:-1]:
            if part.size < MIN_PART_SIZE:
                raise PartTooSmall(part.number, part.size)
        headers = dict(upload.headers)
        headers.update(composite_checksums(parts, checksum_algorithms or {}))
        version = ObjectVersion(
            bucket_id=upload.bucket_id, key=upload.key, version_id=upload.upload_id,
            size=sum(p.size for p in parts), etag=multipart_etag(parts),
            last_modified=time.time(), wrapped_data_key=upload.wrapped_data_key, k=upload.k,
            m=upload.m, block_size=upload.block_size, sites=upload.sites, headers=headers,
            parts=tuple(parts),
        )  # fmt: skip
        await self.catalog.complete_upload(version)
        return version

    async def abort(self, upload: Upload) -> None:
        await self.catalog.abort_upload(upload.upload_id)

    async def list_parts(self, upload: Upload, after: int, limit: int) -> list[Part]:
        return await self.catalog.list_parts(upload.upload_id, after, limit)

    async def list_uploads(
        self, bucket_name: str, prefix: str, after: tuple[str, bytes] | None, limit: int
    ) -> list[Upload]:
        bucket = await self.store.bucket(bucket_name, cached=True)
        return await self.catalog.list_uploads(bucket.id, prefix, after, limit)

    async def abort_abandoned(self, older_than: float) -> int:
        """Abort uploads started more than `older_than` seconds ago; their parts go to the
        trash like any replaced shard."""
        aborted = 0
        while batch := await self.catalog.uploads_before(time.time() - older_than, 100):
            for upload in batch:
                try:
                    await self.catalog.abort_upload(upload.upload_id)
                except NoSuchUpload:
                    continue  # completed or aborted meanwhile
                aborted += 1
        return aborted
