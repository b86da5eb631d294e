"""The master key file, plain or sealed under a passphrase, and the files of a key rotation.

Two formats, both text, owner-only (0600), always replaced atomically (temporary file, fsync,
rename, fsync of the directory) so a crash leaves the old file or the new one, never half:

    egide-master-key-v1                     egide-master-key-v2-argon2id
    <64 hex digits: the key>                argon2id m=65536 t=3 p=4 salt=<32 hex digits>
                                            <hex: nonce + AES-256-GCM(key)>

In v2 the key is sealed under Argon2id(passphrase, salt); the first two lines are the associated
data, so the parameters cannot be changed without the seal failing. A rotation in progress adds
`master.key.next` (the new key, same protection) and, just before it ends, `master.key.retired`
(a hard link to the old key, destroyed last); see docs/decisions/0013-key-rotation.md.
"""

from __future__ import annotations

import os
import secrets
import stat
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.argon2 import Argon2id

from egide.crypto import aead

V1_MAGIC = "egide-master-key-v1"
V2_MAGIC = "egide-master-key-v2-argon2id"
_SALT_SIZE = 16

#: A passphrase, or what asks for one (called only if a file turns out to be protected).
Passphrase = str | Callable[[], str] | None


class KeyFileError(Exception):
    """The master key file is missing, malformed or readable by others."""


class PassphraseNeeded(KeyFileError):
    """The key file is protected by a passphrase and none was given."""


class WrongPassphrase(KeyFileError):
    """The passphrase does not open the key file (or the file was tampered with)."""


@dataclass(frozen=True)
class Argon2Params:
    """Argon2id cost. The defaults (64 MiB, 3 passes, 4 lanes: RFC 9106's second recommended
    option) take about 0.15 s on one core here: once per start, far beyond a guessing budget."""

    memory_kib: int = 64 * 1024
    iterations: int = 3
    lanes: int = 4

    def text(self) -> str:
        return f"m={self.memory_kib} t={self.iterations} p={self.lanes}"


def _derive(passphrase: str, salt: bytes, params: Argon2Params) -> bytes:
    kdf = Argon2id(
        salt=salt, length=aead.KEY_SIZE, iterations=params.iterations, lanes=params.lanes,
        memory_cost=params.memory_kib,
    )  # fmt: skip
    # NFC: the same passphrase typed on two systems must give the same bytes.
    return kdf.derive(unicodedata.normalize("NFC", passphrase).encode())


def encode_key_file(
    key: bytes, passphrase: str | None = None, params: Argon2Params = Argon2Params()
) -> str:
    """The text of a key file holding `key`, sealed under `passphrase` if one is given."""
    if passphrase is None:
        return f"{V1_MAGIC}\n{key.hex()}\n"
    if not passphrase:
        raise KeyFileError("an empty passphrase protects nothing")
    salt = secrets.token_bytes(_SALT_SIZE)
    header = f"{V2_MAGIC}\nargon2id {params.text()} salt={salt.hex()}"
    nonce = secrets.token_bytes(aead.NONCE_SIZE)
    sealed = AESGCM(_derive(passphrase, salt, params)).encrypt(nonce, key, header.encode())
    return f"{header}\n{(nonce + sealed).hex()}\n"


def is_protected(text: str) -> bool:
    return text.startswith(V2_MAGIC + "\n")


def _parse_params(line: str, where: str) -> tuple[Argon2Params, bytes]:
    fields = line.split()
    try:
        if fields[0] != "argon2id" or len(fields) != 5:
            raise ValueError(line)
        values = dict(field.split("=", 1) for field in fields[1:])
        params = Argon2Params(int(values["m"]), int(values["t"]), int(values["p"]))
        return params, bytes.fromhex(values["salt"])
    except (ValueError, KeyError, IndexError) as exc:
        raise KeyFileError(f"master key file {where}: unreadable Argon2id parameters") from exc


def decode_key_file(text: str, passphrase: Passphrase, where: str) -> bytes:
    """The key held by a key file's `text`; `where` names the file in errors."""
    lines = text.strip().split("\n")
    if lines[0] == V1_MAGIC and len(lines) == 2:
        try:
            key = bytes.fromhex(lines[1].strip())
        except ValueError as exc:
            raise KeyFileError(f"master key file {where} holds no valid key") from exc
    elif lines[0] == V2_MAGIC and len(lines) == 3:
        params, salt = _parse_params(lines[1], where)
        if passphrase is None:
            raise PassphraseNeeded(
                f"master key file {where} is protected by a passphrase: set EGIDE_PASSPHRASE, "
                "set passphrase_file in egide.toml, or run in a terminal to be asked for it"
            )
        phrase = passphrase if isinstance(passphrase, str) else passphrase()
        try:
            sealed = bytes.fromhex(lines[2].strip())
            derived = _derive(phrase, salt, params)
            key = AESGCM(derived).decrypt(
                sealed[: aead.NONCE_SIZE], sealed[aead.NONCE_SIZE :], "\n".join(lines[:2]).encode()
            )
        except InvalidTag as exc:
            raise WrongPassphrase(f"wrong passphrase for the master key file {where}") from exc
        except ValueError as exc:  # bad hex, or Argon2 parameters out of range
            raise KeyFileError(f"master key file {where} is damaged: {exc}") from exc
    else:
        raise KeyFileError(f"master key file {where} is not an Égide key file")
    if len(key) != aead.KEY_SIZE:
        raise KeyFileError(f"master key file {where} holds a key of the wrong size")
    return key


def read_key_text(path: Path) -> str:
    """A key file's text, refusing one that other users can read."""
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
    return text


def read_key_file(path: Path, passphrase: Passphrase = None) -> bytes:
    return decode_key_file(read_key_text(path), passphrase, str(path))


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_key_file(path: Path, text: str, *, exclusive: bool = False) -> None:
    """Replace (or, `exclusive`, create) `path` atomically with `text`, mode 0600."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if exclusive and path.exists():
        raise FileExistsError(f"{path} already exists")
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        if exclusive:
            os.link(tmp, path)  # fails if another process created it meanwhile
            tmp.unlink()
        else:
            os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)


def destroy_file(path: Path) -> None:
    """Overwrite a key file's bytes, then remove it. On copy-on-write file systems and SSDs the
    old blocks may survive the overwrite: the guarantee is that no Égide file names them."""
    try:
        info = path.stat()
    except FileNotFoundError:
        return
    if info.st_nlink > 1:  # another name still holds this key: only this name goes
        path.unlink()
        _fsync_dir(path.parent)
        return
    size = info.st_size
    with path.open("r+b") as f:
        f.write(secrets.token_bytes(max(size, 1)))
        f.flush()
        os.fsync(f.fileno())
    path.unlink()
    _fsync_dir(path.parent)


def once(ask: Callable[[], str]) -> Callable[[], str]:
    """`ask`, called at most once (a current and a pending key file share the passphrase)."""
    answer: list[str] = []

    def memo() -> str:
        if not answer:
            answer.append(ask())
        return answer[0]

    return memo


@dataclass(frozen=True)
class MasterKeyFiles:
    """The key file of a data directory and the files a rotation adds beside it."""

    current: Path

    @property
    def next(self) -> Path:
        """The new master key of a rotation in progress (docs/decisions/0013)."""
        return self.current.with_name(self.current.name + ".next")

    @property
    def retired(self) -> Path:
        """The old master key between the swap and its destruction."""
        return self.current.with_name(self.current.name + ".retired")

    def rotation_pending(self) -> bool:
        return self.next.exists()

    def protected(self) -> bool:
        return is_protected(read_key_text(self.current))

    def load(self, passphrase: Passphrase = None) -> tuple[bytes, ...]:
        """The master keys to use, the one new wraps go under first: the pending key of an
        unfinished rotation, then the current one (everything opens under one of them)."""
        ask = once(passphrase) if callable(passphrase) else passphrase
        current = read_key_file(self.current, ask)
        if self.next.exists():
            return read_key_file(self.next, ask), current
        return (current,)
