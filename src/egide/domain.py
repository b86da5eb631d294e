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

    def shard(self, index: int) -> str:
        """The name of the file holding shard `index` on its site."""
        return self.pack if self.pack is not None else shard_name(self.version_id, 0, index)


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


class SitesUnavailable(DomainError):
    """A write could not place all its shards; nothing was committed."""
