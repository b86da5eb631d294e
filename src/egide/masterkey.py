"""The master key of a data directory: its files, where its passphrase comes from, the keyring.

The passphrase of a protected key file (docs/keys.md) is looked for, first found wins, in
EGIDE_PASSPHRASE, in the `passphrase_file` setting, then asked for when standard input is a
terminal; only when the key file turns out to be protected.
"""

from __future__ import annotations

import getpass
import os
import stat
import sys
from collections.abc import Callable
from pathlib import Path

from egide.config import Settings
from egide.crypto.keyfile import KeyFileError, MasterKeyFiles, PassphraseNeeded
from egide.crypto.keyring import Keyring

PASSPHRASE_ENV = "EGIDE_PASSPHRASE"


def key_files(settings: Settings) -> MasterKeyFiles:
    return MasterKeyFiles(settings.data_dir / "master.key")


def read_passphrase_file(path: Path) -> str:
    """A passphrase file's content without its final newline; like the key file, owner-only."""
    try:
        mode = path.stat().st_mode
        text = path.read_text()
    except OSError as exc:
        raise KeyFileError(f"cannot read the passphrase file {path}: {exc.strerror}") from exc
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise KeyFileError(
            f"passphrase file {path} is accessible by other users "
            f"(mode {stat.S_IMODE(mode):o}); run: chmod 600 {path}"
        )
    phrase = text.removesuffix("\n").removesuffix("\r")
    if not phrase:
        raise KeyFileError(f"passphrase file {path} is empty")
    return phrase


def passphrase_source(settings: Settings) -> Callable[[], str]:
    """What finds the passphrase of this data directory's key file, when one is needed."""

    def find() -> str:
        if phrase := os.environ.get(PASSPHRASE_ENV):
            return phrase
        if settings.passphrase_file is not None:
            return read_passphrase_file(settings.passphrase_file)
        if sys.stdin.isatty():
            return getpass.getpass(f"Passphrase of the master key {key_files(settings).current}: ")
        raise PassphraseNeeded(
            f"the master key {key_files(settings).current} is protected by a passphrase: set "
            f"{PASSPHRASE_ENV}, set passphrase_file in egide.toml, or run in a terminal"
        )

    return find


def load_keyring(settings: Settings) -> Keyring:
    """The keyring of an existing key file; with a master key rotation pending, new wraps go
    under the pending key and both keys open (docs/decisions/0013-key-rotation.md)."""
    keys = key_files(settings).load(passphrase_source(settings))
    return Keyring(keys[0], keys[1:])


def unlock_for_workers(settings: Settings) -> None:
    """Ask a protected key's passphrase once, at start, if no setting gives it: it is kept in
    this process's EGIDE_PASSPHRASE, which the server processes started later inherit."""
    files = key_files(settings)
    if not files.current.exists() or not files.protected():
        return
    if os.environ.get(PASSPHRASE_ENV) or settings.passphrase_file is not None:
        return
    phrase = passphrase_source(settings)()
    files.load(phrase)  # a wrong passphrase fails here, before anything starts
    os.environ[PASSPHRASE_ENV] = phrase
