"""Shard manifests: what each shard footer tells a catalog rebuild about its object version,
and the completion record of a multipart object.

The manifest is sealed under the bucket key in every shard footer (egide.coding.shardfile). It
holds what is known when the shards are written; what is decided later (tag changes, lock
changes, delete markers, bucket settings) lives in the catalog only and comes back from a
catalog snapshot (docs/decisions/0014-catalog-recovery.md).

A multipart object's parts are written before anyone knows which of them the completion will
keep, so CompleteMultipartUpload writes a *completion record*: a shard file of the version
with no blocks, named as part attempt 0 (`<version>-0-<index>`, never a real part, whose seqs
start at 1) on each of the upload's sites, whose manifest lists the parts kept.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from egide.coding.padding import pad_manifest
from egide.coding.shardfile import ShardFooter, ShardHeader
from egide.crypto import aead
from egide.domain import NO_BUCKET_ID, ObjectVersion, Part, SitesUnavailable, shard_name
from egide.engine.vault import Vault
from egide.sites.base import Site, write_file

log = logging.getLogger("egide.manifest")

#: 1: bucket, key, etag, headers, size, created, sites, data_key (before 0014).
#: 2: also is_null and the Object Lock fields at write time; completion records add parts.
FORMAT = 2
#: The part attempt number of a completion record (real part attempts start at 1).
COMPLETION_SEQ = 0


def version_manifest(bucket_name: str, version: ObjectVersion) -> dict[str, object]:
    """The manifest of a version's shards (or of its completion record, with its parts)."""
    manifest: dict[str, object] = {
        "format": FORMAT,
        "bucket": bucket_name,
        "key": version.key,
        "etag": version.etag,
        "headers": version.headers,
        "size": version.size,
        "created": version.last_modified,
        "sites": version.sites,
        "data_key": version.wrapped_data_key.hex(),
        "is_null": version.is_null,
        "retention_mode": version.retention_mode,
        "retain_until": version.retain_until,
        "legal_hold": version.legal_hold,
    }
    if version.padded_size is not None:
        # The footer's size field holds this, the size laid out (decision 0017).
        manifest["padded_size"] = version.padded_size
    if version.parts:
        manifest["parts"] = [p.fields() for p in version.parts]
    return manifest


def seal_footer(
    bucket_key: bytes, version_id: bytes, manifest: dict[str, object], blocks: int, size: int,
    *, pad: bool,
) -> ShardFooter:  # fmt: skip
    """The shard footer: what rebuilding the catalog from the shards needs, sealed under
    the bucket key. `size` is the plaintext the blocks hold (padded: the class, never the
    true size, which only the manifest says); with `pad` the manifest is padded too."""
    document = json.dumps(manifest).encode()
    sealed = aead.wrap(
        bucket_key, pad_manifest(document) if pad else document,
        b"egide/manifest/" + version_id,
    )  # fmt: skip
    # No master-wrapped bucket key in the footer: a copy there would survive shredding the
    # bucket; the key records on the sites carry it (docs/decisions/0013-key-rotation.md).
    return ShardFooter(blocks, size, b"", sealed)


@dataclass(frozen=True)
class Manifest:
    """A manifest read back from a shard footer, whatever its format."""

    bucket: str
    key: str
    etag: str
    headers: dict[str, str]
    size: int
    created: float
    sites: tuple[str, ...]
    wrapped_data_key: bytes
    #: None when the manifest predates format 2 (the rebuild then infers it).
    is_null: bool | None
    retention_mode: str | None = None
    retain_until: float | None = None
    legal_hold: bool = False
    #: The manifest of one part file of a multipart upload: its number (else None).
    part_number: int | None = None
    #: A completion record's parts (else empty).
    parts: tuple[Part, ...] = field(default=())
    #: The plaintext bytes the blocks hold, padding included (None: `size`, no padding).
    padded_size: int | None = None

    @property
    def stored_size(self) -> int:
        return self.size if self.padded_size is None else self.padded_size

    @property
    def is_completion(self) -> bool:
        return bool(self.parts)

    @classmethod
    def from_document(cls, doc: dict[str, Any]) -> Manifest:
        """Raises KeyError, TypeError or ValueError on a document that is no manifest."""
        parts = tuple(Part.from_fields(list(fields)) for fields in doc.get("parts") or ())
        padded_size = doc.get("padded_size")
        is_null = doc.get("is_null")
        return cls(
            bucket=str(doc["bucket"]), key=str(doc["key"]), etag=str(doc["etag"]),
            headers={str(k): str(v) for k, v in doc["headers"].items()}, size=int(doc["size"]),
            created=float(doc.get("created") or 0.0), sites=tuple(doc["sites"]),
            wrapped_data_key=bytes.fromhex(doc["data_key"]),
            is_null=None if is_null is None else bool(is_null),
            retention_mode=doc.get("retention_mode"), retain_until=doc.get("retain_until"),
            legal_hold=bool(doc.get("legal_hold", False)),
            part_number=int(doc["part"]) if "part" in doc else None, parts=parts,
            padded_size=None if padded_size is None else int(padded_size),
        )  # fmt: skip


async def write_completion_record(vault: Vault, version: ObjectVersion) -> None:
    """Write the completion record of `version` (completed from its parts) on its sites,
    before the catalog commits it. A site that fails is logged: any one copy is enough for a
    rebuild; SitesUnavailable only if every site failed."""
    bucket = await vault.buckets.by_id(version.bucket_id)
    manifest = version_manifest(bucket.name, version)
    footer = seal_footer(
        vault.buckets.key(bucket), version.version_id, manifest, 0, 0,
        pad=await vault.pads(bucket),
    ).encode()  # fmt: skip

    async def one(index: int) -> None:
        site = vault.sites[version.sites[index]]
        header = ShardHeader(
            version.k, version.m, index, COMPLETION_SEQ, version.block_size, NO_BUCKET_ID,
            version.version_id,
        ).encode()  # fmt: skip
        name = shard_name(version.version_id, COMPLETION_SEQ, index)
        await write_file(site, name, header + footer)

    indexes = [i for i, name in enumerate(version.sites) if name in vault.sites]
    results = await asyncio.gather(*(one(i) for i in indexes), return_exceptions=True)
    failed = [
        (version.sites[i], r)
        for i, r in zip(indexes, results, strict=True)
        if isinstance(r, Exception)
    ]
    for name, exc in failed:
        log.warning("completion record of %s not written on %s: %s", version.key, name, exc)
    if len(failed) == len(indexes):
        raise SitesUnavailable(
            f"no site took the completion record of {version.key}",
            tuple(name for name, _ in failed),
        )


async def remove_completion_record(sites: Mapping[str, Site], version: ObjectVersion) -> None:
    """Best effort: the catalog refused the completion, so its record must not make a rebuild
    show an object that never was (garbage collection removes what is left)."""
    for index, name in enumerate(version.sites):
        site = sites.get(name)
        if site is not None:
            try:
                await site.delete(shard_name(version.version_id, COMPLETION_SEQ, index))
            except Exception as exc:  # best effort, logged
                log.warning("completion record on %s not removed: %s", name, exc)
