"""AES-GCM sealing of blocks (bound to bucket, version, part, index) and key wrapping."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from egide.crypto.aead import (
    KEY_SIZE,
    NONCE_SIZE,
    TAG_SIZE,
    DecryptionError,
    new_key,
    open_block,
    seal_block,
    unwrap,
    wrap,
)

BUCKET = bytes(range(16))
VERSION = bytes(range(16, 32))
PLAIN = b"the quick brown fox jumps over the lazy dog" * 10


@pytest.fixture
def cipher() -> AESGCM:
    return AESGCM(new_key())


def _flip(data: bytes, pos: int) -> bytes:
    return data[:pos] + bytes([data[pos] ^ 0x01]) + data[pos + 1 :]


def test_new_key_is_random_and_key_sized() -> None:
    a, b = new_key(), new_key()
    assert len(a) == len(b) == KEY_SIZE
    assert a != b


def test_seal_open_roundtrip(cipher: AESGCM) -> None:
    sealed = seal_block(cipher, BUCKET, VERSION, 2, 7, PLAIN)
    assert open_block(cipher, BUCKET, VERSION, 2, 7, sealed) == PLAIN


def test_sealed_block_is_plaintext_plus_tag(cipher: AESGCM) -> None:
    assert len(seal_block(cipher, BUCKET, VERSION, 0, 0, PLAIN)) == len(PLAIN) + TAG_SIZE
    assert len(seal_block(cipher, BUCKET, VERSION, 0, 0, b"")) == TAG_SIZE


def test_empty_block_roundtrips(cipher: AESGCM) -> None:
    sealed = seal_block(cipher, BUCKET, VERSION, 0, 0, b"")
    assert open_block(cipher, BUCKET, VERSION, 0, 0, sealed) == b""


def test_sealed_block_does_not_contain_plaintext(cipher: AESGCM) -> None:
    assert PLAIN[:16] not in seal_block(cipher, BUCKET, VERSION, 0, 0, PLAIN)


def test_same_plaintext_at_different_indices_gives_different_ciphertext(cipher: AESGCM) -> None:
    assert seal_block(cipher, BUCKET, VERSION, 0, 0, PLAIN) != seal_block(
        cipher, BUCKET, VERSION, 0, 1, PLAIN
    )


@pytest.mark.parametrize(
    ("bucket", "version", "part", "index"),
    [
        pytest.param(BUCKET, VERSION, 2, 8, id="other-index"),
        pytest.param(BUCKET, VERSION, 3, 7, id="other-part"),
        pytest.param(BUCKET, bytes(16), 2, 7, id="other-version"),
        pytest.param(bytes(16), VERSION, 2, 7, id="other-bucket"),
    ],
)
def test_block_opened_at_another_position_fails(
    cipher: AESGCM, bucket: bytes, version: bytes, part: int, index: int
) -> None:
    sealed = seal_block(cipher, BUCKET, VERSION, 2, 7, PLAIN)
    with pytest.raises(DecryptionError):
        open_block(cipher, bucket, version, part, index, sealed)


def test_block_opened_with_another_key_fails(cipher: AESGCM) -> None:
    sealed = seal_block(cipher, BUCKET, VERSION, 0, 0, PLAIN)
    with pytest.raises(DecryptionError):
        open_block(AESGCM(new_key()), BUCKET, VERSION, 0, 0, sealed)


@pytest.mark.parametrize("where", ["first", "middle", "tag"])
def test_tampered_byte_fails(cipher: AESGCM, where: str) -> None:
    sealed = seal_block(cipher, BUCKET, VERSION, 0, 0, PLAIN)
    pos = {"first": 0, "middle": len(sealed) // 2, "tag": len(sealed) - 1}[where]
    with pytest.raises(DecryptionError):
        open_block(cipher, BUCKET, VERSION, 0, 0, _flip(sealed, pos))


def test_truncated_block_fails(cipher: AESGCM) -> None:
    sealed = seal_block(cipher, BUCKET, VERSION, 0, 0, PLAIN)
    for cut in (sealed[:-1], sealed[:TAG_SIZE], sealed[:3], b""):
        with pytest.raises(DecryptionError):
            open_block(cipher, BUCKET, VERSION, 0, 0, cut)


def test_wrap_unwrap_roundtrip() -> None:
    kek, secret = new_key(), b"secret key material"
    assert unwrap(kek, wrap(kek, secret, b"ctx"), b"ctx") == secret


def test_wrap_uses_a_fresh_nonce_each_time() -> None:
    kek, secret = new_key(), new_key()
    a, b = wrap(kek, secret, b"ctx"), wrap(kek, secret, b"ctx")
    assert a[:NONCE_SIZE] != b[:NONCE_SIZE]
    assert a != b
    assert len(a) == NONCE_SIZE + len(secret) + TAG_SIZE


def test_unwrap_with_wrong_context_fails() -> None:
    kek = new_key()
    wrapped = wrap(kek, b"secret", b"egide/bucket-key/a")
    with pytest.raises(DecryptionError, match="egide/bucket-key/b"):
        unwrap(kek, wrapped, b"egide/bucket-key/b")


def test_unwrap_with_wrong_key_fails() -> None:
    wrapped = wrap(new_key(), b"secret", b"ctx")
    with pytest.raises(DecryptionError):
        unwrap(new_key(), wrapped, b"ctx")


@pytest.mark.parametrize("pos", [0, NONCE_SIZE, -1])
def test_unwrap_of_tampered_blob_fails(pos: int) -> None:
    kek = new_key()
    wrapped = wrap(kek, b"secret", b"ctx")
    with pytest.raises(DecryptionError):
        unwrap(kek, _flip(wrapped, pos % len(wrapped)), b"ctx")


def test_unwrap_of_truncated_blob_fails() -> None:
    kek = new_key()
    wrapped = wrap(kek, b"secret", b"ctx")
    for cut in (wrapped[:-1], wrapped[: NONCE_SIZE + 3], wrapped[:NONCE_SIZE]):
        with pytest.raises(DecryptionError):
            unwrap(kek, cut, b"ctx")


def test_unwrap_of_blob_shorter_than_a_nonce_fails_with_decryption_error() -> None:
    kek = new_key()
    for cut in (b"", b"\x00" * 5):
        with pytest.raises(DecryptionError):
            unwrap(kek, cut, b"ctx")
