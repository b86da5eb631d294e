"""The key hierarchy: master key → bucket key → data key of each object version.

The master key is a file the organisation holds (0600). It wraps one key per bucket; the bucket
key wraps one data key per object version and seals the shard manifests. Rotating the master key
rewraps bucket keys only; destroying a bucket key makes that bucket unreadable everywhere.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from cryptography.hazmat.primitives.hashes import SHA256
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from egide.crypto import aead
from egide.crypto.aead import DecryptionError
from egide.crypto.keyfile import (
    KeyFileError,
    Passphrase,
    encode_key_file,
    read_key_file,
    write_key_file,
)

__all__ = ["KeyFileError", "Keyring", "create_master_key_file", "load_master_key_file"]


def create_master_key_file(path: Path, passphrase: str | None = None) -> bytes:
    """Write a new random master key, readable by the owner only; refuse to overwrite."""
    key = aead.new_key()
    write_key_file(path, encode_key_file(key, passphrase), exclusive=True)
    return key


def load_master_key_file(path: Path, passphrase: Passphrase = None) -> bytes:
    """The key of a key file (egide.crypto.keyfile: plain, or sealed under a passphrase)."""
    return read_key_file(path, passphrase)


class Keyring:
    """Wraps and unwraps the keys below the master key; holds no state besides it.

    `previous` master keys are tried when unwrapping, never used to wrap: while a master key
    rotation is under way, some keys are still under the old master (docs/decisions/0013)."""

    def __init__(self, master_key: bytes, previous: Sequence[bytes] = ()) -> None:
        self._master = master_key
        self._masters = (master_key, *previous)
        self._session_keys: tuple[bytes, ...] | None = None

    def _unwrap(self, wrapped: bytes, context: bytes) -> bytes:
        for master in self._masters[:-1]:
            try:
                return aead.unwrap(master, wrapped, context)
            except DecryptionError:
                continue
        return aead.unwrap(self._masters[-1], wrapped, context)

    def new_bucket_key(self, bucket_id: bytes) -> tuple[bytes, bytes]:
        """A fresh bucket key and its master-wrapped form (what the catalog and shards keep)."""
        key = aead.new_key()
        return key, self.wrap_bucket_key(bucket_id, key)

    def wrap_bucket_key(self, bucket_id: bytes, key: bytes) -> bytes:
        return aead.wrap(self._master, key, b"egide/bucket-key/" + bucket_id)

    def bucket_key(self, bucket_id: bytes, wrapped: bytes) -> bytes:
        return self._unwrap(wrapped, b"egide/bucket-key/" + bucket_id)

    @staticmethod
    def new_data_key(bucket_key: bytes, version_id: bytes) -> tuple[bytes, bytes]:
        key = aead.new_key()
        return key, aead.wrap(bucket_key, key, b"egide/data-key/" + version_id)

    @staticmethod
    def wrap_data_key(bucket_key: bytes, version_id: bytes, key: bytes) -> bytes:
        """A data key wrapped again (under a new bucket key, by a bucket key rotation)."""
        return aead.wrap(bucket_key, key, b"egide/data-key/" + version_id)

    @staticmethod
    def data_key(bucket_key: bytes, version_id: bytes, wrapped: bytes) -> bytes:
        return aead.unwrap(bucket_key, wrapped, b"egide/data-key/" + version_id)

    def seal_record(self, kind: str, record_id: bytes, data: bytes) -> bytes:
        """Seal a record kept on the sites (bucket keys, catalog snapshots) under the master
        key: providers see its size only."""
        return aead.wrap(self._master, data, b"egide/record/" + kind.encode() + b"/" + record_id)

    def open_record(self, kind: str, record_id: bytes, sealed: bytes) -> bytes:
        return self._unwrap(sealed, b"egide/record/" + kind.encode() + b"/" + record_id)

    def seal_secret(self, name: str, secret: bytes) -> bytes:
        """Seal a credential secret so the catalog never holds it in clear."""
        return aead.wrap(self._master, secret, b"egide/secret/" + name.encode())

    def open_secret(self, name: str, sealed: bytes) -> bytes:
        return self._unwrap(sealed, b"egide/secret/" + name.encode())

    def _sessions(self) -> tuple[bytes, ...]:
        """Keys of STS session tokens, derived from each master key (HKDF-SHA256): tokens,
        sealed on every AssumeRole, do not count against the master key's own uses."""
        if self._session_keys is None:
            self._session_keys = tuple(
                HKDF(SHA256(), aead.KEY_SIZE, None, b"egide/sts-session-key/v1").derive(m)
                for m in self._masters
            )
        return self._session_keys

    def seal_session(self, data: bytes) -> bytes:
        """Seal an STS session token's content (docs/decisions/0032-sts.md)."""
        return aead.wrap(self._sessions()[0], data, b"egide/sts-session/v1")

    def open_session(self, sealed: bytes) -> bytes:
        """Raises DecryptionError for a token not sealed by this organisation, or altered."""
        for key in self._sessions()[:-1]:
            try:
                return aead.unwrap(key, sealed, b"egide/sts-session/v1")
            except DecryptionError:
                continue
        return aead.unwrap(self._sessions()[-1], sealed, b"egide/sts-session/v1")
