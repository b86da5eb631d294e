"""Owner-only files: the data directory, the catalog, private keys other users must not read."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from egide.config import ConfigError
from egide.owner_only import check_private_key, owner_only_dir, owner_only_file


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_a_new_directory_is_0700_and_an_open_one_is_tightened(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    new = tmp_path / "a" / "data"
    owner_only_dir(new)
    assert _mode(new) == 0o700
    old = tmp_path / "old"
    old.mkdir()
    old.chmod(0o755)
    owner_only_dir(old)
    assert _mode(old) == 0o700
    assert "mode 755" in caplog.text and str(old) in caplog.text


def test_a_new_file_is_0600_and_an_open_one_is_tightened(tmp_path: Path) -> None:
    previous = os.umask(0o022)
    try:
        owner_only_file(tmp_path / "new")
    finally:
        os.umask(previous)
    assert _mode(tmp_path / "new") == 0o600
    old = tmp_path / "old"
    old.write_bytes(b"names")
    old.chmod(0o644)
    owner_only_file(old)
    assert _mode(old) == 0o600
    assert old.read_bytes() == b"names"


@pytest.mark.parametrize("mode", [0o644, 0o604, 0o660])
def test_a_private_key_others_can_read_is_refused(tmp_path: Path, mode: int) -> None:
    key = tmp_path / "key.pem"
    key.write_text("key")
    key.chmod(mode)
    if os.getuid() == 0:
        os.chown(key, 65534, -1)  # root's group-readable keys are allowed (tested below)
    with pytest.raises(ConfigError, match=f"chmod 600 {key}"):
        check_private_key(key, "TLS key")


def test_an_owner_only_private_key_is_accepted(tmp_path: Path) -> None:
    key = tmp_path / "key.pem"
    key.write_text("key")
    key.chmod(0o600)
    check_private_key(key, "TLS key")


@pytest.mark.skipif(os.getuid() != 0, reason="needs a file owned by root")
def test_a_root_owned_key_readable_by_its_group_is_accepted(tmp_path: Path) -> None:
    """Debian's ssl-cert convention (root:ssl-cert 0640), which PostgreSQL accepts too."""
    key = tmp_path / "key.pem"
    key.write_text("key")
    key.chmod(0o640)
    check_private_key(key, "TLS key")
