"""Files of the gateway's own disk that only its user may read: the data directory (0700), the
catalog and its copies (0600), the private keys it is given.

The catalog holds bucket and object names, metadata and tags in clear, and SQLite creates its
files with the process umask (usually 0644); its -wal and -shm files take the mode of the
database file, so creating that file 0600 first covers all three. A private key other users
can read is refused, as ssh does and as the master key file already is.
"""

from __future__ import annotations

import logging
import os
import stat
from pathlib import Path

from egide.config import ConfigError

log = logging.getLogger(__name__)

SHARED = stat.S_IRWXG | stat.S_IRWXO


def owner_only_dir(path: Path) -> None:
    """Create the directory 0700, or take group and other access away from an existing one
    (data directories of earlier versions were 0755), saying so."""
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    tighten(path)


def owner_only_file(path: Path) -> None:
    """Create the file empty with mode 0600 if it is missing; take group and other access away
    from an existing one, saying so."""
    try:
        os.close(open_new_owner_only(path))
    except FileExistsError:
        tighten(path)


def tighten(path: Path) -> None:
    """Take group and other access away from `path` if it exists and has any, saying so; a
    process that does not own it (an admin's read-only command) says so and goes on."""
    try:
        mode = stat.S_IMODE(path.stat().st_mode)
    except FileNotFoundError:
        return
    if not mode & SHARED:
        return
    try:
        path.chmod(mode & ~SHARED)
    except PermissionError:
        log.warning("%s is open to other users (mode %o) and not ours to change", path, mode)
        return
    log.warning("%s was open to other users (mode %o): now %o", path, mode, mode & ~SHARED)


def open_new_owner_only(path: Path) -> int:
    """A descriptor on a new file `path` (FileExistsError if there is one), mode 0600."""
    return os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)


def check_private_key(path: Path, what: str) -> None:
    """Refuse a private key file other users can access: it may have leaked already, and
    tightening it silently would hide that. Read access for the group is allowed to a file
    owned by root (Debian's root:ssl-cert 0640 convention, which PostgreSQL accepts too)."""
    try:
        info = path.stat()
    except OSError as exc:
        raise ConfigError(f"cannot read the {what} {path}: {exc.strerror}") from exc
    mode = stat.S_IMODE(info.st_mode)
    group_read_of_root = info.st_uid == 0 and mode & stat.S_IRWXG == stat.S_IRGRP
    if mode & stat.S_IRWXO or (mode & stat.S_IRWXG and not group_read_of_root):
        raise ConfigError(
            f"the {what} {path} is accessible by other users (mode {mode:o}); run: chmod 600 {path}"
        )
