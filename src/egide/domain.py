"""Plain values shared by every layer, and the domain errors the S3 layer maps to S3 codes."""

from __future__ import annotations

import os
from dataclasses import dataclass, field


def new_id() -> bytes:
    """A random 128-bit id: opaque, reveals nothing, never reused."""
    return os.urandom(16)


@dataclass(frozen=True)
class Bucket:
    id: bytes
    name: str
    created: float
    wrapped_key: bytes


@dataclass(frozen=True)
class Part:
    """One part of a multipart upload (or of the object it completed into).

    `seq` is the attempt's own number, unique within the upload: it names the part's shard
    files and enters its nonces, so a part uploaded again under the same `number` never reuses
    the nonces of the attempt it replaces (DESIGN.md, Blocks).
    """

    number: int
    seq: int
    size: int
    etag: str
    last_modified: float = 0.0
    #: x-amz-checksum-<algorithm> → base64 value, as the client sent it.
    checksums: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Upload:
    """A multipart upload in progress. Its id becomes the version id of the completed object,
    and its data key that version's data key."""

    upload_id: bytes
    bucket_id: bytes
    key: str
    created: float
    wrapped_data_key: bytes
    k: int
    m: int
    block_size: int
    sites: tuple[str, ...]
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class ObjectVersion:
    """One committed version of an object and everything needed to read it back."""

    bucket_id: bytes
    key: str
    version_id: bytes
    size: int
    etag: str
    last_modified: float
    wrapped_data_key: bytes
    k: int
    m: int
    block_size: int
    sites: tuple[str, ...]
    #: Standard headers kept with the object (content-type, cache-control …) and x-amz-meta-*.
    headers: dict[str, str] = field(default_factory=dict)
    #: For a small object written in a pack: the pack file's name on every site, and where
    #: the object's shard segment starts in it (the same offset on every site).
    pack: str | None = None
    pack_offset: int = 0
    #: For an object completed from a multipart upload: its parts, in order (else empty).
    parts: tuple[Part, ...] = ()

    def shard(self, index: int, seq: int = 0) -> str:
        """The name of the file holding shard `index` (of part attempt `seq`) on its site."""
        return self.pack if self.pack is not None else shard_name(self.version_id, seq, index)

    def shard_files(self) -> list[tuple[str, str]]:
        """(site, file) of every shard file the version owns (a pack's files are shared)."""
        seqs = [part.seq for part in self.parts] or [0]
        return [
            (site, shard_name(self.version_id, seq, i))
            for seq in seqs
            for i, site in enumerate(self.sites)
        ]


def shard_name(version_id: bytes, part: int, index: int) -> str:
    """Opaque shard file name: random version id, part and piece index only."""
    return f"{version_id.hex()}-{part}-{index}"


class DomainError(Exception):
    """Base of the errors the engine raises for the API layer to translate."""


class BucketNotFound(DomainError):
    pass


class BucketExists(DomainError):
    pass


class BucketNotEmpty(DomainError):
    pass


class KeyNotFound(DomainError):
    pass


class ShardsUnavailable(DomainError):
    """Fewer than k healthy shards of a block could be read: the object cannot be served now."""


class NoSuchUpload(DomainError):
    """The multipart upload does not exist: never created, completed or aborted."""


class InvalidPart(DomainError):
    """A part named in a completion was not uploaded, or its ETag differs."""


class SitesUnavailable(DomainError):
    """A write could not place all its shards; nothing was committed."""
