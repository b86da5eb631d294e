"""The master key file and the key hierarchy master → bucket key → data key."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from egide.crypto.aead import KEY_SIZE, DecryptionError, new_key
from egide.crypto.keyring import (
    KeyFileError,
    Keyring,
    create_master_key_file,
    load_master_key_file,
)

MAGIC = "egide-master-key-v1"
BUCKET_A = b"A" * 16
BUCKET_B = b"B" * 16
VERSION_A = b"a" * 16
VERSION_B = b"b" * 16


def _write_key_file(path: Path, text: str | bytes, mode: int = 0o600) -> Path:
    if isinstance(text, str):
        path.write_text(text)
    else:
        path.write_bytes(text)
    os.chmod(path, mode)
    return path


# -- master key file ------------------------------------------------------------------------


def test_created_master_key_file_is_owner_only(tmp_path: Path) -> None:
    path = tmp_path / "master.key"
    create_master_key_file(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_created_master_key_loads_back(tmp_path: Path) -> None:
    path = tmp_path / "master.key"
    key = create_master_key_file(path)
    assert len(key) == KEY_SIZE
    assert load_master_key_file(path) == key


def test_create_makes_missing_parent_directories(tmp_path: Path) -> None:
    path = tmp_path / "a" / "b" / "master.key"
    key = create_master_key_file(path)
    assert load_master_key_file(path) == key


def test_create_refuses_to_overwrite_an_existing_file(tmp_path: Path) -> None:
    path = tmp_path / "master.key"
    key = create_master_key_file(path)
    before = path.read_bytes()
    with pytest.raises(FileExistsError):
        create_master_key_file(path)
    assert path.read_bytes() == before
    assert load_master_key_file(path) == key


def test_two_created_keys_differ(tmp_path: Path) -> None:
    assert create_master_key_file(tmp_path / "1") != create_master_key_file(tmp_path / "2")


def test_load_accepts_owner_read_only_file(tmp_path: Path) -> None:
    key = new_key()
    path = _write_key_file(tmp_path / "k", f"{MAGIC}\n{key.hex()}\n", 0o400)
    assert load_master_key_file(path) == key


@pytest.mark.parametrize("mode", [0o640, 0o604, 0o644, 0o660, 0o606, 0o610, 0o601])
def test_load_refuses_file_accessible_by_others_and_says_how_to_fix(
    tmp_path: Path, mode: int
) -> None:
    path = _write_key_file(tmp_path / "k", f"{MAGIC}\n{new_key().hex()}\n", mode)
    with pytest.raises(KeyFileError) as info:
        load_master_key_file(path)
    message = str(info.value)
    assert f"chmod 600 {path}" in message
    assert f"{mode:o}" in message


def test_load_of_missing_file_fails(tmp_path: Path) -> None:
    with pytest.raises(KeyFileError, match="does not exist"):
        load_master_key_file(tmp_path / "nope.key")


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("", id="empty"),
        pytest.param(f"{MAGIC}\n", id="magic-only"),
        pytest.param(f"{'00' * KEY_SIZE}\n", id="key-only"),
        pytest.param(f"egide-master-key-v2\n{'00' * KEY_SIZE}\n", id="wrong-magic"),
        pytest.param(f"{MAGIC}\n{'00' * KEY_SIZE}\nextra\n", id="extra-token"),
        pytest.param(f"{MAGIC}\n{'zz' * KEY_SIZE}\n", id="not-hex"),
        pytest.param(f"{MAGIC}\n{'0' * (2 * KEY_SIZE - 1)}\n", id="odd-hex"),
        pytest.param(f"{MAGIC}\n{'00' * (KEY_SIZE - 1)}\n", id="short-key"),
        pytest.param(f"{MAGIC}\n{'00' * (KEY_SIZE + 1)}\n", id="long-key"),
    ],
)
def test_load_refuses_malformed_file(tmp_path: Path, text: str) -> None:
    path = _write_key_file(tmp_path / "k", text)
    with pytest.raises(KeyFileError, match=str(path)):
        load_master_key_file(path)


def test_load_refuses_binary_garbage_with_key_file_error(tmp_path: Path) -> None:
    path = _write_key_file(tmp_path / "k", b"\xff\xfe\x00garbage" + os.urandom(32))
    with pytest.raises(KeyFileError):
        load_master_key_file(path)


# -- hierarchy ------------------------------------------------------------------------------


@pytest.fixture
def keyring() -> Keyring:
    return Keyring(new_key())


def test_bucket_key_wrap_unwrap(keyring: Keyring) -> None:
    key, wrapped = keyring.new_bucket_key(BUCKET_A)
    assert len(key) == KEY_SIZE
    assert key not in wrapped
    assert keyring.bucket_key(BUCKET_A, wrapped) == key


def test_bucket_key_is_bound_to_its_bucket(keyring: Keyring) -> None:
    _, wrapped = keyring.new_bucket_key(BUCKET_A)
    with pytest.raises(DecryptionError):
        keyring.bucket_key(BUCKET_B, wrapped)


def test_bucket_key_needs_the_same_master_key(keyring: Keyring) -> None:
    _, wrapped = keyring.new_bucket_key(BUCKET_A)
    with pytest.raises(DecryptionError):
        Keyring(new_key()).bucket_key(BUCKET_A, wrapped)


def test_bucket_keys_are_fresh(keyring: Keyring) -> None:
    assert keyring.new_bucket_key(BUCKET_A)[0] != keyring.new_bucket_key(BUCKET_A)[0]


def test_rewrapping_a_bucket_key_under_a_new_master_key(keyring: Keyring) -> None:
    key, old_wrapped = keyring.new_bucket_key(BUCKET_A)
    rotated = Keyring(new_key())
    new_wrapped = rotated.wrap_bucket_key(BUCKET_A, keyring.bucket_key(BUCKET_A, old_wrapped))
    assert rotated.bucket_key(BUCKET_A, new_wrapped) == key
    with pytest.raises(DecryptionError):
        rotated.bucket_key(BUCKET_A, old_wrapped)


def test_data_key_wrap_unwrap() -> None:
    bucket_key = new_key()
    key, wrapped = Keyring.new_data_key(bucket_key, VERSION_A)
    assert len(key) == KEY_SIZE
    assert Keyring.data_key(bucket_key, VERSION_A, wrapped) == key


def test_data_key_is_bound_to_its_version_id() -> None:
    bucket_key = new_key()
    _, wrapped = Keyring.new_data_key(bucket_key, VERSION_A)
    with pytest.raises(DecryptionError):
        Keyring.data_key(bucket_key, VERSION_B, wrapped)


def test_data_key_needs_its_bucket_key() -> None:
    _, wrapped = Keyring.new_data_key(new_key(), VERSION_A)
    with pytest.raises(DecryptionError):
        Keyring.data_key(new_key(), VERSION_A, wrapped)


def test_data_key_is_not_a_bucket_key() -> None:
    """Contexts separate the layers: a wrapped data key never unwraps as a bucket key."""
    master = new_key()
    _, wrapped = Keyring.new_data_key(master, BUCKET_A)
    with pytest.raises(DecryptionError):
        Keyring(master).bucket_key(BUCKET_A, wrapped)


def test_secret_sealing_roundtrip(keyring: Keyring) -> None:
    sealed = keyring.seal_secret("EGACCESS1", b"s3cr3t-value")
    assert b"s3cr3t-value" not in sealed
    assert keyring.open_secret("EGACCESS1", sealed) == b"s3cr3t-value"


def test_secret_is_bound_to_the_access_key_name(keyring: Keyring) -> None:
    sealed = keyring.seal_secret("EGACCESS1", b"s3cr3t-value")
    with pytest.raises(DecryptionError):
        keyring.open_secret("EGACCESS2", sealed)


def test_secret_needs_the_same_master_key(keyring: Keyring) -> None:
    sealed = keyring.seal_secret("EGACCESS1", b"s3cr3t-value")
    with pytest.raises(DecryptionError):
        Keyring(new_key()).open_secret("EGACCESS1", sealed)
