"""AES-256-GCM sealing of blocks and wrapping of keys.

Pure functions over bytes. A block's nonce is derived from (part, block index) under a data key
that is unique to one object version (and one upload of a part), so a (key, nonce) pair is never
reused; the associated data binds the bucket, version, part and block index, so a shard moved to
another object or position fails to open.
"""

from __future__ import annotations

import functools
import os
import struct

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

KEY_SIZE = 32
TAG_SIZE = 16
NONCE_SIZE = 12
_BLOCK_AAD = b"egide/block/v1"
_BLOCK_NONCE = struct.Struct(">IQ")  # part, block index: 12 bytes


class DecryptionError(Exception):
    """Ciphertext failed authentication: wrong key, wrong position, or tampered bytes."""


def new_key() -> bytes:
    return os.urandom(KEY_SIZE)


def block_aad(bucket_id: bytes, version_id: bytes, part: int, index: int) -> bytes:
    return _BLOCK_AAD + bucket_id + version_id + _BLOCK_NONCE.pack(part, index)


def seal_block(
    cipher: AESGCM, bucket_id: bytes, version_id: bytes, part: int, index: int, plain: bytes
) -> bytes:
    """Encrypt one block; the result is len(plain) + TAG_SIZE bytes."""
    nonce = _BLOCK_NONCE.pack(part, index)
    return cipher.encrypt(nonce, plain, block_aad(bucket_id, version_id, part, index))


def open_block(
    cipher: AESGCM, bucket_id: bytes, version_id: bytes, part: int, index: int, sealed: bytes
) -> bytes:
    nonce = _BLOCK_NONCE.pack(part, index)
    try:
        return cipher.decrypt(nonce, sealed, block_aad(bucket_id, version_id, part, index))
    except InvalidTag as exc:
        raise DecryptionError(f"block {index} of part {part} failed authentication") from exc


@functools.lru_cache(maxsize=256)
def _key_cipher(kek: bytes) -> AESGCM:
    """Key-encryption keys are few (master, one per bucket): keep their key schedules."""
    return AESGCM(kek)


def wrap(kek: bytes, secret: bytes, context: bytes) -> bytes:
    """Seal `secret` under `kek` with a random nonce; `context` names what it is for."""
    nonce = os.urandom(NONCE_SIZE)
    return nonce + _key_cipher(kek).encrypt(nonce, secret, context)


def unwrap(kek: bytes, wrapped: bytes, context: bytes) -> bytes:
    if len(wrapped) < NONCE_SIZE + TAG_SIZE:
        raise DecryptionError(f"cannot unwrap {context.decode(errors='replace')}: too short")
    try:
        return _key_cipher(kek).decrypt(wrapped[:NONCE_SIZE], wrapped[NONCE_SIZE:], context)
    except InvalidTag as exc:
        raise DecryptionError(f"cannot unwrap {context.decode(errors='replace')}") from exc
