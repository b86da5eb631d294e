"""The key hierarchy: master key → bucket key → data key of each object version.

The master key is a file the organisation holds (0600). It wraps one key per bucket; the bucket
key wraps one data key per object version and seals the shard manifests. Rotating the master key
rewraps bucket keys only; destroying a bucket key makes that bucket unreadable everywhere.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from egide.crypto import aead

_MAGIC = "egide-master-key-v1"


class KeyFileError(Exception):
    """The master key file is missing, malformed or readable by others."""


def create_master_key_file(path: Path) -> bytes:
    """Write a new random master key, readable by the owner only; refuse to overwrite."""
    key = aead.new_key()
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(f"{_MAGIC}\n{key.hex()}\n")
        f.flush()
        os.fsync(f.fileno())
    return key


def load_master_key_file(path: Path) -> bytes:
    try:
        mode = path.stat().st_mode
        text = path.read_text()
    except FileNotFoundError as exc:
        raise KeyFileError(f"master key file {path} does not exist") from exc
    except UnicodeDecodeError as exc:
        raise KeyFileError(f"master key file {path} is not an Égide key file") from exc
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise KeyFileError(
            f"master key file {path} is accessible by other users "
            f"(mode {stat.S_IMODE(mode):o}); run: chmod 600 {path}"
        )
    lines = text.split()
    if len(lines) != 2 or lines[0] != _MAGIC:
        raise KeyFileError(f"master key file {path} is not an Égide key file")
    try:
        key = bytes.fromhex(lines[1])
    except ValueError as exc:
        raise KeyFileError(f"master key file {path} holds no valid key") from exc
    if len(key) != aead.KEY_SIZE:
        raise KeyFileError(f"master key file {path} holds a key of the wrong size")
    return key


class Keyring:
    """Wraps and unwraps the keys below the master key; holds no state besides it."""

    def __init__(self, master_key: bytes) -> None:
        self._master = master_key

    def new_bucket_key(self, bucket_id: bytes) -> tuple[bytes, bytes]:
        """A fresh bucket key and its master-wrapped form (what the catalog and shards keep)."""
        key = aead.new_key()
        return key, self.wrap_bucket_key(bucket_id, key)

    def wrap_bucket_key(self, bucket_id: bytes, key: bytes) -> bytes:
        return aead.wrap(self._master, key, b"egide/bucket-key/" + bucket_id)

    def bucket_key(self, bucket_id: bytes, wrapped: bytes) -> bytes:
        return aead.unwrap(self._master, wrapped, b"egide/bucket-key/" + bucket_id)

    @staticmethod
    def new_data_key(bucket_key: bytes, version_id: bytes) -> tuple[bytes, bytes]:
        key = aead.new_key()
        return key, aead.wrap(bucket_key, key, b"egide/data-key/" + version_id)

    @staticmethod
    def data_key(bucket_key: bytes, version_id: bytes, wrapped: bytes) -> bytes:
        return aead.unwrap(bucket_key, wrapped, b"egide/data-key/" + version_id)

    def seal_record(self, kind: str, record_id: bytes, data: bytes) -> bytes:
        """Seal a record kept on the sites (bucket keys, catalog snapshots) under the master
        key: providers see its size only."""
        return aead.wrap(self._master, data, b"egide/record/" + kind.encode() + b"/" + record_id)

    def open_record(self, kind: str, record_id: bytes, sealed: bytes) -> bytes:
        return aead.unwrap(
            self._master, sealed, b"egide/record/" + kind.encode() + b"/" + record_id
        )

    def seal_secret(self, name: str, secret: bytes) -> bytes:
        """Seal a credential secret so the catalog never holds it in clear."""
        return aead.wrap(self._master, secret, b"egide/secret/" + name.encode())

    def open_secret(self, name: str, sealed: bytes) -> bytes:
        return aead.unwrap(self._master, sealed, b"egide/secret/" + name.encode())
