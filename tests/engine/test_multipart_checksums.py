"""Checksums of multipart objects: FULL_OBJECT CRCs combined from the parts', COMPOSITE
checksums of the parts' checksums, and the client's whole-object value checked before commit."""

from __future__ import annotations

import base64
import hashlib
import random
import zlib

import pytest
from awscrt import checksums as crt
from tests.engine.helpers import Env, chunks, payload

from egide.domain import KeyNotFound, Part
from egide.engine.multipart import (
    ALGORITHM_HEADER,
    COMPOSITE,
    FULL_OBJECT,
    MIN_PART_SIZE,
    TYPE_HEADER,
    ChecksumMismatch,
    CompletedPart,
    PartChecksumMissing,
    check_object_checksum,
    checksum_type,
    full_object_checksum,
)
from egide.s3.auth.checksums import Checksum, ChecksumAlgorithm

CRC32 = "x-amz-checksum-crc32"


def b64(value: int, size: int) -> str:
    return base64.b64encode(value.to_bytes(size, "big")).decode()


def parts_of(pieces: list[bytes], header: str, crc: object, size: int) -> list[Part]:
    return [
        Part(n, n, len(p), hashlib.md5(p).hexdigest(), 0.0, {header: b64(crc(p), size)})  # type: ignore[operator]
        for n, p in enumerate(pieces, start=1)
    ]


@pytest.mark.parametrize("seed", range(5))
def test_full_object_crc32_is_zlibs_crc_of_the_whole(seed: int) -> None:
    rng = random.Random(seed)
    # Part sizes include empty parts and parts of one byte: the combination must not care.
    pieces = [rng.randbytes(rng.choice((0, 1, 7, 4096, 100_003))) for _ in range(rng.randint(1, 6))]
    parts = parts_of(pieces, CRC32, zlib.crc32, 4)
    assert full_object_checksum(CRC32, parts) == b64(zlib.crc32(b"".join(pieces)), 4)


@pytest.mark.parametrize(
    ("header", "crc", "size"),
    [
        ("x-amz-checksum-crc32c", crt.crc32c, 4),
        ("x-amz-checksum-crc64nvme", crt.crc64nvme, 8),
    ],
)
def test_full_object_crc32c_and_crc64nvme(header: str, crc: object, size: int) -> None:
    pieces = [payload(70_000, 1), payload(3, 2), b"", payload(12_345, 3)]
    parts = parts_of(pieces, header, crc, size)
    assert full_object_checksum(header, parts) == b64(crc(b"".join(pieces)), size)  # type: ignore[operator]


def test_full_object_checksum_needs_every_part() -> None:
    parts = parts_of([b"one", b"two"], CRC32, zlib.crc32, 4)
    parts[1].checksums.clear()
    assert full_object_checksum(CRC32, parts) is None


def test_checksum_type_defaults() -> None:
    assert checksum_type({}) is None
    assert checksum_type({ALGORITHM_HEADER: "CRC64NVME"}) == FULL_OBJECT
    assert checksum_type({ALGORITHM_HEADER: "SHA256"}) == COMPOSITE
    assert checksum_type({ALGORITHM_HEADER: "CRC32", TYPE_HEADER: FULL_OBJECT}) == FULL_OBJECT


def test_composite_value_may_omit_its_part_count() -> None:
    headers = {CRC32: "AAAAAA==-3", TYPE_HEADER: COMPOSITE}
    check_object_checksum(headers, CRC32, "AAAAAA==", 3)
    check_object_checksum(headers, CRC32, "AAAAAA==-3", 3)
    with pytest.raises(ChecksumMismatch):
        check_object_checksum(headers, CRC32, "AAAAAA==-2", 3)
    # A full-object value is compared as it is.
    with pytest.raises(ChecksumMismatch) as exc:
        check_object_checksum({CRC32: "AAAAAA==", TYPE_HEADER: FULL_OBJECT}, CRC32, "AAAAAA==-1", 1)
    assert exc.value.computed == "AAAAAA=="
    with pytest.raises(ChecksumMismatch) as exc:
        check_object_checksum({}, CRC32, "AAAAAA==", 1)
    assert exc.value.computed is None


def crc_of(algorithm: ChecksumAlgorithm, data: bytes) -> str:
    checksum = Checksum(algorithm)
    checksum.update(data)
    return checksum.b64()


def test_complete_combines_and_checks_before_commit(env: Env) -> None:
    pieces = [payload(MIN_PART_SIZE, 1), payload(1000, 2)]
    whole = crc_of(ChecksumAlgorithm.CRC32C, b"".join(pieces))
    header = ChecksumAlgorithm.CRC32C.header

    async def scenario() -> None:
        await env.store.create_bucket("b")
        mp = env.store.multipart
        upload = await mp.create(
            "b", "k", {ALGORITHM_HEADER: "CRC32C", TYPE_HEADER: FULL_OBJECT, "content-type": "x/y"}
        )
        done = []
        for number, piece in enumerate(pieces, start=1):
            checksum = {header: crc_of(ChecksumAlgorithm.CRC32C, piece)}

            async def keep(_: str, checksum: dict[str, str] = checksum) -> dict[str, str]:
                return checksum

            part = await mp.upload_part(upload, number, chunks(piece), before_commit=keep)
            done.append(CompletedPart(number, part.etag, {}))
        with pytest.raises(ChecksumMismatch):
            await mp.complete(upload, done, expected_checksum=(header, "AAAAAA=="))
        with pytest.raises(KeyNotFound):
            await env.store.head_object("b", "k")
        version = await mp.complete(upload, done, expected_checksum=(header, whole))
        # The object keeps its checksum and type, not the upload's algorithm header.
        assert version.headers[header] == whole
        assert version.headers[TYPE_HEADER] == FULL_OBJECT
        assert ALGORITHM_HEADER not in version.headers
        assert await env.get("b", "k") == b"".join(pieces)

    env.run(scenario)


def test_composite_complete_lists_every_part_checksum(env: Env) -> None:
    header = ChecksumAlgorithm.SHA1.header

    async def scenario() -> None:
        await env.store.create_bucket("b")
        mp = env.store.multipart
        upload = await mp.create("b", "k", {ALGORITHM_HEADER: "SHA1"})

        async def keep(_: str) -> dict[str, str]:
            return {header: crc_of(ChecksumAlgorithm.SHA1, b"abc")}

        part = await mp.upload_part(upload, 1, chunks(b"abc"), before_commit=keep)
        with pytest.raises(PartChecksumMissing) as exc:
            await mp.complete(upload, [CompletedPart(1, part.etag, {})])
        assert (exc.value.number, exc.value.algorithm) == (1, "sha1")
        # The hash of a composite checksum comes from the caller (the S3 layer's Checksum).
        version = await mp.complete(
            upload,
            [CompletedPart(1, part.etag, part.checksums)],
            checksum_algorithms={header: lambda: Checksum(ChecksumAlgorithm.SHA1)},
        )
        sha1 = hashlib.sha1(hashlib.sha1(b"abc").digest()).digest()
        assert version.headers[header] == base64.b64encode(sha1).decode() + "-1"
        assert version.headers[TYPE_HEADER] == COMPOSITE

    env.run(scenario)
