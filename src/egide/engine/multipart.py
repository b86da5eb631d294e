"""Multipart uploads: parts written as they come, the object committed from a list of them.

An upload owns one data key and one version id from its creation; each part attempt gets a
fresh `seq` from the catalog, which names its shard files and enters its nonces. Completion is
one catalog transaction: the version becomes current and the parts left out go to the trash.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from awscrt import checksums as crt
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from egide.clock import Clock
from egide.coding.erasure import ErasureCode
from egide.domain import (
    DomainError,
    InvalidPart,
    NoSuchUpload,
    ObjectVersion,
    Part,
    SitesUnavailable,
    Upload,
    WriteCondition,
    new_id,
)
from egide.engine import customer_keys
from egide.engine.events import EventKind
from egide.engine.manifest import (
    remove_completion_record,
    seal_footer,
    write_completion_record,
)
from egide.engine.vault import Vault
from egide.engine.versioning import new_version_fields
from egide.engine.writer import Hasher, PartWriter
from egide.pipeline import PartCipher

MIN_PART_SIZE = 5 * 1024 * 1024
MAX_PART_SIZE = 5 * 1024**3
MAX_PARTS = 10_000

#: Kept in an upload's headers: the checksum algorithm chosen at creation (CRC32, SHA256 …)
#: and whether the object's checksum covers the whole object or the parts' checksums.
ALGORITHM_HEADER = "x-amz-checksum-algorithm"
TYPE_HEADER = "x-amz-checksum-type"
COMPOSITE = "COMPOSITE"
FULL_OBJECT = "FULL_OBJECT"
#: CRCs combine: crc(A‖B) follows from crc(A), crc(B) and len(B) (zlib's crc32_combine, over
#: GF(2)), so a full-object CRC comes from the parts' CRCs without reading the object again.
_CRC_COMBINE: dict[str, tuple[Callable[[int, int, int], int], int]] = {
    "x-amz-checksum-crc32": (crt.combine_crc32, 4),
    "x-amz-checksum-crc32c": (crt.combine_crc32c, 4),
    "x-amz-checksum-crc64nvme": (crt.combine_crc64nvme, 8),
}


class Digest(Protocol):
    def update(self, data: bytes, /) -> None: ...

    def digest(self) -> bytes: ...


class InvalidPartOrder(DomainError):
    """The parts of a completion are not in ascending order."""


class ChecksumMismatch(DomainError):
    """The whole-object checksum a completion carries is not the object's.

    `computed` is None when the object has no checksum of that algorithm to compare with."""

    def __init__(self, header: str, computed: str | None) -> None:
        super().__init__(f"{header} does not match the object's ({computed})")
        self.header = header
        self.computed = computed


class PartChecksumMissing(DomainError):
    """A COMPOSITE upload's completion must name every part's checksum (S3 refuses it too)."""

    def __init__(self, number: int, algorithm: str) -> None:
        super().__init__(f"part {number} is listed without its {algorithm} checksum")
        self.number = number
        self.algorithm = algorithm


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


def full_object_checksum(header: str, parts: Sequence[Part]) -> str | None:
    """x-amz-checksum-<crc> of the whole object, FULL_OBJECT type, combined from the parts'
    CRCs; None when a part has none."""
    combine, size = _CRC_COMBINE[header]
    crc = 0  # the CRC of no bytes, for each of the three
    for part in parts:
        value = part.checksums.get(header)
        if value is None:
            return None
        crc = combine(crc, int.from_bytes(base64.b64decode(value), "big"), part.size)
    return base64.b64encode(crc.to_bytes(size, "big")).decode()


def checksum_type(headers: dict[str, str]) -> str | None:
    """The checksum type of an upload: as created, else S3's default for its algorithm
    (FULL_OBJECT for CRC64NVME, COMPOSITE for the others); None without an algorithm."""
    algorithm = headers.get(ALGORITHM_HEADER)
    if algorithm is None:
        return None
    return headers.get(TYPE_HEADER) or (FULL_OBJECT if algorithm == "CRC64NVME" else COMPOSITE)


def object_checksums(
    upload_headers: dict[str, str],
    parts: Sequence[Part],
    algorithms: dict[str, Callable[[], Digest]],
) -> dict[str, str]:
    """The checksum headers of the completed object, with its x-amz-checksum-type."""
    algorithm = upload_headers.get(ALGORITHM_HEADER)
    if checksum_type(upload_headers) == FULL_OBJECT and algorithm is not None:
        header = "x-amz-checksum-" + algorithm.lower()
        value = full_object_checksum(header, parts)
        return {header: value, TYPE_HEADER: FULL_OBJECT} if value is not None else {}
    composite = composite_checksums(parts, algorithms)
    return {**composite, TYPE_HEADER: COMPOSITE} if composite else {}


def check_object_checksum(headers: dict[str, str], header: str, value: str, parts: int) -> None:
    """Compare the whole-object checksum a client sends at completion with the object's;
    a COMPOSITE value may leave out its `-<part count>` suffix."""
    computed = headers.get(header)
    given = value.strip()
    if headers.get(TYPE_HEADER) == COMPOSITE and "-" not in given:
        given = f"{given}-{parts}"
    if computed is None or not hmac.compare_digest(given.encode(), computed.encode()):
        raise ChecksumMismatch(header, computed)


class Multipart:
    """The multipart operations of one store (`ObjectStore.multipart`), over its vault: new
    uploads take the store's `block_size`, `code(k, m)` is its erasure codes, and `announce`
    tells its observers of each object completed."""

    def __init__(
        self,
        vault: Vault,
        *,
        block_size: int,
        code: Callable[[int, int], ErasureCode],
        announce: Callable[[EventKind, str, ObjectVersion], None],
        clock: Clock,
    ) -> None:
        self.vault = vault
        self.catalog = vault.catalog
        self.block_size = block_size
        self.code = code
        self.announce = announce
        self.clock = clock

    async def create(
        self, bucket_name: str, key: str, headers: dict[str, str],
        customer_key: bytes | None = None,
    ) -> Upload:  # fmt: skip
        """A new upload; with a `customer_key` (SSE-C) its data key is wrapped under it too,
        and each part needs it (egide.engine.customer_keys)."""
        buckets = self.vault.buckets
        bucket = await buckets.named(bucket_name, cached=True)
        upload_id = new_id()
        bucket_key = buckets.key(bucket)
        data_key, wrapped = buckets.keyring.new_data_key(bucket_key, upload_id)
        if customer_key is not None:
            inner = customer_keys.seal_data_key(customer_key, upload_id, data_key)
            wrapped = buckets.keyring.wrap_data_key(bucket_key, upload_id, inner)
            headers = headers | customer_keys.stored_headers(customer_key)
        # Every part goes to these sites.
        placement = await self.vault.placer.place(bucket, upload_id)
        upload = Upload(
            upload_id=upload_id, bucket_id=bucket.id, key=key, created=self.clock.time(),
            wrapped_data_key=wrapped, k=placement.k, m=placement.m, block_size=self.block_size,
            sites=placement.sites, headers=headers,
        )  # fmt: skip
        await self.catalog.create_upload(upload)
        return upload

    async def upload(self, bucket_name: str, key: str, upload_id: bytes) -> Upload:
        """The upload `upload_id` of `key`, or NoSuchUpload."""
        bucket = await self.vault.buckets.named(bucket_name, cached=True)
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
        customer_key: bytes | None = None,
    ) -> Part:
        """Write part `number` from `body`; `before_commit` gets its MD5 and may refuse it, or
        return the checksums to keep with it. An upload under a customer key needs it."""
        vault, buckets = self.vault, self.vault.buckets
        bucket = await buckets.by_id(upload.bucket_id)
        bucket_key = buckets.key(bucket)
        seq = await self.catalog.next_part_seq(upload.upload_id)
        inner = await buckets.data_key(bucket.id, upload.upload_id, upload.wrapped_data_key)
        data_key = customer_keys.open_data_key(
            customer_key, upload.upload_id, inner, upload.headers
        )
        ctx = PartCipher(
            AESGCM(data_key), bucket.id, upload.upload_id, seq, self.code(upload.k, upload.m)
        )
        pad = await vault.pads(bucket)
        pid = new_id()  # names its files: nothing on a site ties them to the upload's others
        sites = [vault.sites[n] for n in upload.sites]
        writer = PartWriter(ctx, sites, upload.block_size, pad=pad, name=(pid, 0))
        md5 = hashlib.md5()
        try:
            await writer.open()  # the upload's sites are fixed: a part cannot go elsewhere
            await writer.write_stream(body, [md5, *hashers])
            etag = md5.hexdigest()
            checksums = await before_commit(etag) if before_commit is not None else {}
            manifest: dict[str, object] = {
                "bucket": bucket.name, "key": upload.key, "upload": upload.upload_id.hex(),
                "part": number, "etag": etag, "size": writer.size,
                "headers": upload.headers, "sites": upload.sites,
                "data_key": upload.wrapped_data_key.hex(),
            }  # fmt: skip
            if writer.padded_size is not None:
                manifest["padded_size"] = writer.padded_size
            footer = seal_footer(
                bucket_key, upload.upload_id, manifest, writer.block_count,
                writer.stored_size, pad=pad,
            )  # fmt: skip
            await writer.finish(footer)
            await writer.commit()
        except BaseException as exc:
            await writer.abort()
            if isinstance(exc, SitesUnavailable):  # new uploads avoid the site
                vault.placer.failed(exc)
            raise
        part = Part(number, seq, writer.size, etag, time.time(), checksums, pid, writer.padded_size)
        await self.catalog.commit_part(upload.upload_id, part, upload.sites)
        return part

    async def complete(
        self,
        upload: Upload,
        requested: Sequence[CompletedPart],
        *,
        checksum_algorithms: dict[str, Callable[[], Digest]] | None = None,
        condition: WriteCondition | None = None,
        expected_checksum: tuple[str, str] | None = None,
    ) -> ObjectVersion:
        """Commit the object from the `requested` parts, if `condition` holds at commit;
        InvalidPartOrder, InvalidPart, PartTooSmall, NoSuchUpload, PreconditionFailed, and
        ChecksumMismatch when `expected_checksum` (header, value: the client's checksum of the
        whole object) is not the object's, PartChecksumMissing."""
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
        # The algorithm and type are the upload's; the object keeps its checksum and type.
        headers = {
            n: v for n, v in upload.headers.items() if n not in (ALGORITHM_HEADER, TYPE_HEADER)
        }
        headers.update(object_checksums(upload.headers, parts, checksum_algorithms or {}))
        if expected_checksum is not None:
            check_object_checksum(headers, *expected_checksum, len(parts))
        algorithm = upload.headers.get(ALGORITHM_HEADER)
        if algorithm is not None and checksum_type(upload.headers) == COMPOSITE:
            header = "x-amz-checksum-" + algorithm.lower()
            for want in requested:
                if header not in want.checksums:
                    raise PartChecksumMissing(want.number, algorithm.lower())
        fields = await new_version_fields(self.catalog, upload.bucket_id, headers)
        version = ObjectVersion(
            bucket_id=upload.bucket_id, key=upload.key, version_id=upload.upload_id,
            size=sum(p.size for p in parts), etag=multipart_etag(parts),
            last_modified=time.time(), wrapped_data_key=upload.wrapped_data_key, k=upload.k,
            m=upload.m, block_size=upload.block_size, sites=upload.sites, headers=headers,
            parts=tuple(parts), **fields,
        )  # fmt: skip
        # The parts kept are known only now: a record of them goes to the sites first, so a
        # catalog rebuild finds the object (egide.engine.manifest).
        await write_completion_record(self.vault, version)
        try:
            await self.catalog.complete_upload(version, condition)
        except DomainError as exc:
            if not isinstance(exc, NoSuchUpload):  # else a racing completion owns the record
                await remove_completion_record(self.vault.sites, version)
            raise
        bucket = await self.vault.buckets.by_id(upload.bucket_id)
        self.announce(EventKind.OBJECT_CREATED, bucket.name, version)
        return version

    async def abort(self, upload: Upload) -> None:
        await self.catalog.abort_upload(upload.upload_id)

    async def list_parts(self, upload: Upload, after: int, limit: int) -> list[Part]:
        return await self.catalog.list_parts(upload.upload_id, after, limit)

    async def list_uploads(
        self, bucket_name: str, prefix: str, after: tuple[str, bytes] | None, limit: int
    ) -> list[Upload]:
        bucket = await self.vault.buckets.named(bucket_name, cached=True)
        return await self.catalog.list_uploads(bucket.id, prefix, after, limit)

    async def abort_abandoned(self, older_than: float) -> int:
        """Abort uploads started more than `older_than` seconds ago; their parts go to the
        trash like any replaced shard."""
        aborted = 0
        cutoff = self.clock.time() - older_than
        while batch := await self.catalog.uploads_before(cutoff, 100):
            for upload in batch:
                try:
                    await self.catalog.abort_upload(upload.upload_id)
                except NoSuchUpload:
                    continue  # completed or aborted meanwhile
                aborted += 1
        return aborted
