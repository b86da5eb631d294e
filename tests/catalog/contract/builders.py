"""Values for the catalog contract tests: buckets, versions, delete markers, uploads, parts,
and read-backs through the interface (what is in the trash)."""

from __future__ import annotations

import time
from dataclasses import replace
from typing import Any

from egide.catalog.base import Catalog
from egide.domain import Bucket, ObjectVersion, Part, Upload, new_id, shard_name

SITES = ("paris", "lyon", "lille", "nantes", "brest", "nice")
#: The highest code point: the last character a key can end with.
MAX = "\U0010ffff"
#: A retention date an hour away (retentions in force), and one long past.
HOUR = 3600.0


def future() -> float:
    return time.time() + HOUR


def new_bucket(name: str = "photos", *, wrapped_key: bytes | None = None) -> Bucket:
    return Bucket(
        id=new_id(), name=name, created=1_700_000_000.5,
        wrapped_key=wrapped_key if wrapped_key is not None else b"bucket-key-" + new_id(),
    )  # fmt: skip


def version(
    bucket: Bucket,
    key: str,
    *,
    null: bool = True,
    k: int = 4,
    m: int = 2,
    size: int = 10,
    etag: str | None = None,
    **changes: Any,
) -> ObjectVersion:
    """A committed-shape version of `key` with its own shards on the first k+m sites (a null
    version unless `null=False`)."""
    built = ObjectVersion(
        bucket_id=bucket.id, key=key, version_id=new_id(), size=size,
        etag=etag if etag is not None else f'"{new_id().hex()}"', last_modified=1_700_000_001.25,
        wrapped_data_key=b"data-key-" + new_id(), k=k, m=m, block_size=1024 * 1024,
        sites=SITES[: k + m], headers={"content-type": "text/plain", "x-amz-meta-é": "😀"},
        is_null=null,
    )  # fmt: skip
    return replace(built, **changes) if changes else built


def marker(bucket: Bucket, key: str, *, null: bool = False) -> ObjectVersion:
    """A delete marker (no data, no shards)."""
    return ObjectVersion(
        bucket_id=bucket.id, key=key, version_id=new_id(), size=0, etag="",
        last_modified=1_700_000_002.0, wrapped_data_key=b"", k=0, m=0, block_size=0, sites=(),
        delete_marker=True, is_null=null,
    )  # fmt: skip


def packed(bucket: Bucket, key: str, pack: str, offset: int, **changes: Any) -> ObjectVersion:
    """A small version stored in `pack` (a file shared with other versions)."""
    return version(bucket, key, size=100, pack=pack, pack_offset=offset, **changes)


def upload(
    bucket: Bucket,
    key: str,
    *,
    created: float = 1_700_000_000.0,
    sites: tuple[str, ...] = SITES,
) -> Upload:
    return Upload(
        upload_id=new_id(), bucket_id=bucket.id, key=key, created=created,
        wrapped_data_key=b"upload-key-" + new_id(), k=4, m=2, block_size=1024 * 1024,
        sites=sites, headers={"content-type": "video/mp4"},
    )  # fmt: skip


def part(number: int, seq: int, *, size: int = 5 * 1024 * 1024) -> Part:
    return Part(
        number=number, seq=seq, size=size, etag=f'"part-{number}-{seq}"',
        last_modified=1_700_000_003.0, checksums={"crc32": "AAAAAA=="},
    )  # fmt: skip


def completed(up: Upload, parts: list[Part], **changes: Any) -> ObjectVersion:
    """The version an upload completes into: its id and data key, these parts."""
    built = ObjectVersion(
        bucket_id=up.bucket_id, key=up.key, version_id=up.upload_id,
        size=sum(p.size for p in parts), etag=f'"multi-{len(parts)}"',
        last_modified=1_700_000_004.0, wrapped_data_key=up.wrapped_data_key, k=up.k, m=up.m,
        block_size=up.block_size, sites=up.sites, headers=dict(up.headers), parts=tuple(parts),
    )  # fmt: skip
    return replace(built, **changes) if changes else built


def part_files(up: Upload, seq: int) -> set[tuple[str, str]]:
    """(site, file) of the shards of one part attempt of an upload."""
    return {(site, shard_name(up.upload_id, seq, i)) for i, site in enumerate(up.sites)}


async def trashed(catalog: Catalog) -> list[tuple[str, str]]:
    """Every (site, file) waiting in the trash, grace period or not."""
    due = await catalog.trash_due(time.time() + HOUR, 100_000)
    return [(t.site, t.shard) for t in due]


def keys(versions: list[ObjectVersion]) -> list[str]:
    return [v.key for v in versions]
