"""The master key file formats (plain, Argon2id passphrase), atomic replacement, the files of a
rotation in progress, and a keyring that opens under a previous master key."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from egide.crypto.aead import DecryptionError, new_key
from egide.crypto.keyfile import (
    V2_MAGIC,
    Argon2Params,
    KeyFileError,
    MasterKeyFiles,
    PassphraseNeeded,
    WrongPassphrase,
    decode_key_file,
    destroy_file,
    encode_key_file,
    read_key_file,
    write_key_file,
)
from egide.crypto.keyring import Keyring, create_master_key_file, load_master_key_file

#: Cheap Argon2id for tests; the default cost is measured, not weakened (docs/keys.md).
FAST = Argon2Params(memory_kib=1024, iterations=1, lanes=1)
BUCKET = b"B" * 16


def test_passphrase_round_trip() -> None:
    key = new_key()
    text = encode_key_file(key, "correct horse battery", FAST)
    assert text.startswith(V2_MAGIC + "\n") and key.hex() not in text
    assert decode_key_file(text, "correct horse battery", "f") == key


def test_default_parameters_are_written_in_the_file() -> None:
    text = encode_key_file(new_key(), "correct horse battery")
    assert "argon2id m=65536 t=3 p=4 salt=" in text.split("\n")[1]


def test_wrong_passphrase_is_named() -> None:
    text = encode_key_file(new_key(), "correct horse battery", FAST)
    with pytest.raises(WrongPassphrase, match="wrong passphrase"):
        decode_key_file(text, "correct horse battery!", "f")


def test_protected_file_without_passphrase_says_how_to_give_one() -> None:
    text = encode_key_file(new_key(), "correct horse battery", FAST)
    with pytest.raises(PassphraseNeeded, match="EGIDE_PASSPHRASE"):
        decode_key_file(text, None, "f")


def test_passphrase_is_asked_only_for_a_protected_file() -> None:
    def ask() -> str:
        raise AssertionError("asked for a passphrase")

    key = new_key()
    assert decode_key_file(encode_key_file(key), ask, "f") == key


def test_changed_parameters_break_the_seal() -> None:
    """The parameters are associated data: lowering them in the file cannot go unnoticed."""
    text = encode_key_file(new_key(), "correct horse battery", FAST)
    tampered = text.replace("t=1", "t=2")
    with pytest.raises(WrongPassphrase):
        decode_key_file(tampered, "correct horse battery", "f")


def test_unicode_passphrases_are_normalised() -> None:
    key = new_key()
    text = encode_key_file(key, "d\u00e9j\u00e0 vu", FAST)  # composed
    assert decode_key_file(text, "de\u0301ja\u0300 vu", "f") == key  # decomposed


def test_empty_passphrase_is_refused() -> None:
    with pytest.raises(KeyFileError, match="empty"):
        encode_key_file(new_key(), "", FAST)


def test_damaged_protected_file() -> None:
    text = encode_key_file(new_key(), "correct horse battery", FAST)
    lines = text.split("\n")
    with pytest.raises(KeyFileError):
        decode_key_file("\n".join([lines[0], "argon2id m=x", lines[2]]), "p", "f")
    with pytest.raises(KeyFileError):
        decode_key_file("\n".join([lines[0], lines[1], "zz"]), "correct horse battery", "f")


def test_replaced_atomically_and_owner_only(tmp_path: Path) -> None:
    path = tmp_path / "master.key"
    create_master_key_file(path)
    key = new_key()
    write_key_file(path, encode_key_file(key, "correct horse battery", FAST))
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert load_master_key_file(path, "correct horse battery") == key
    assert [p.name for p in tmp_path.iterdir()] == ["master.key"]  # no temporary file left


def test_create_refuses_to_overwrite(tmp_path: Path) -> None:
    path = tmp_path / "master.key"
    key = create_master_key_file(path)
    with pytest.raises(FileExistsError):
        create_master_key_file(path)
    assert read_key_file(path) == key


def test_destroy_overwrites_then_removes(tmp_path: Path) -> None:
    path = tmp_path / "old.key"
    path.write_text(encode_key_file(new_key()))
    destroy_file(path)
    assert not path.exists()


def test_destroy_never_overwrites_a_key_that_has_another_name(tmp_path: Path) -> None:
    """A killed swap leaves master.key.retired as a second name of the current key."""
    path = tmp_path / "master.key"
    key = create_master_key_file(path)
    os.link(path, tmp_path / "master.key.retired")
    destroy_file(tmp_path / "master.key.retired")
    assert read_key_file(path) == key


def test_pending_rotation_loads_the_new_key_first(tmp_path: Path) -> None:
    files = MasterKeyFiles(tmp_path / "master.key")
    old = create_master_key_file(files.current)
    assert files.load() == (old,)
    new = new_key()
    write_key_file(files.next, encode_key_file(new))
    assert files.load() == (new, old)


def test_pending_rotation_shares_one_passphrase_prompt(tmp_path: Path) -> None:
    files = MasterKeyFiles(tmp_path / "master.key")
    write_key_file(files.current, encode_key_file(new_key(), "correct horse battery", FAST))
    write_key_file(files.next, encode_key_file(new_key(), "correct horse battery", FAST))
    asked: list[int] = []

    def ask() -> str:
        asked.append(1)
        return "correct horse battery"

    assert len(files.load(ask)) == 2 and asked == [1]


def test_keyring_opens_under_previous_masters_but_wraps_under_the_first() -> None:
    old, new = new_key(), new_key()
    bucket_key, wrapped_old = Keyring(old).new_bucket_key(BUCKET)
    both = Keyring(new, (old,))
    assert both.bucket_key(BUCKET, wrapped_old) == bucket_key
    wrapped_new = both.wrap_bucket_key(BUCKET, bucket_key)
    assert Keyring(new).bucket_key(BUCKET, wrapped_new) == bucket_key
    with pytest.raises(DecryptionError):
        Keyring(old).bucket_key(BUCKET, wrapped_new)
    sealed = Keyring(old).seal_secret("AK", b"secret")
    assert both.open_secret("AK", sealed) == b"secret"
