"""The directory side of `egide export` / `egide import`: object keys as file paths, the
manifest, files that appear complete or not at all, and plain directories taken as buckets.

An export directory holds `egide-export.json` (what it is), `manifest.jsonl` (one JSON line per
object, in key order: key, path, size, checksums, headers, metadata, tags) and `objects/`, where
each object's bytes sit at a path derived from its key (`key_path`). The manifest is the
authority: import reads keys and metadata from it, never from the file names.

Escape (docs/export-import.md): a "/" separates directories only when it has a character other
than "/" on both sides; any other "/" (leading, trailing, doubled) is written `%2F`. "%" itself,
control characters and a whole component "." or ".." are percent-encoded. Names no encoding can
produce (a "%" not followed by two hex digits) are Égide's: `NAME%~` is the object NAME when
other keys continue NAME/… (NAME is then also a directory), `…%#HASH` a component cut to fit
the file system's 255 bytes, `%tmp-…` a file still being written.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import IO, Any
from urllib.parse import unquote

FORMAT = "egide-export/1"
HEADER_FILE = "egide-export.json"
MANIFEST_FILE = "manifest.jsonl"
OBJECTS_DIR = "objects"
#: With --all-versions: the bytes of every version that is not the key's latest.
VERSIONS_DIR = "versions"
#: The header's "versions" value of an export made with --all-versions.
ALL_VERSIONS = "all"
TEMP_PREFIX = "%tmp-"
#: The suffix of an object's file when its key is also the "directory" of other keys.
ALSO_DIRECTORY = "%~"
#: Marks a component shortened to fit NAME_MAX; only the manifest knows its key.
SHORTENED = "%#"
NAME_MAX = 255
#: Bytes of a component kept before `SHORTENED` and the hash.
KEEP = 200
_ESCAPE = re.compile(r"%[0-9A-F]{0,2}$")


@dataclass(frozen=True)
class ManifestEntry:
    """One line of manifest.jsonl: an object as exported (or imported)."""

    key: str
    size: int
    #: The source's ETag (an MD5 for single-part uploads; "md5-N" for multipart ones).
    etag: str
    md5: str
    sha256: str
    #: ISO 8601, UTC.
    last_modified: str
    #: Where the bytes are: a path relative to the export directory, or a destination key.
    path: str = ""
    #: content-type, cache-control, content-disposition, content-encoding, content-language,
    #: expires, as stored with the object.
    headers: dict[str, str] = field(default_factory=dict)
    #: User metadata (x-amz-meta-NAME), by NAME.
    metadata: dict[str, str] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)
    #: What the destination is expected to report as ETag (S3 destinations).
    dest_etag: str = ""
    # With --all-versions only (absent from the lines of a current-only export):
    #: The version id at the source, as it shows it ("null", Égide's hex id, another cloud's).
    version_id: str = ""
    is_latest: bool = True
    #: A delete marker: no bytes, no file (`path` is empty).
    delete_marker: bool = False
    #: Object Lock: GOVERNANCE or COMPLIANCE until `retain_until` (ISO 8601), legal hold.
    retention_mode: str | None = None
    retain_until: str | None = None
    legal_hold: bool = False
    #: The version id the destination gave the copy (S3 destinations, imports).
    dest_version: str = ""

    def dumps(self) -> str:
        data = asdict(self)
        if not self.version_id:
            for name in VERSION_FIELDS:
                del data[name]
        return json.dumps(data, ensure_ascii=False, separators=(",", ":"))

    @classmethod
    def loads(cls, line: str) -> ManifestEntry:
        data: dict[str, Any] = json.loads(line)
        known = {name: data[name] for name in cls.__dataclass_fields__ if name in data}
        return cls(**known)


VERSION_FIELDS = (
    "version_id", "is_latest", "delete_marker", "retention_mode", "retain_until", "legal_hold",
    "dest_version",
)  # fmt: skip


def _escape_component(part: str) -> str:
    if part in (".", ".."):
        return "%2E" * len(part)
    out = []
    for ch in part:
        if ch in "%/" or ord(ch) < 0x20 or ch == "\x7f":
            out.append("".join(f"%{b:02X}" for b in ch.encode()))
        else:
            out.append(ch)
    return "".join(out)


def _fit(name: str, key: str) -> str:
    """`name` if the file system takes it, else its first bytes and a hash of the key."""
    if len(name.encode()) <= NAME_MAX:
        return name
    cut = name.encode()[:KEEP].decode(errors="ignore")
    cut = _ESCAPE.sub("", cut)  # never end inside a %XX escape
    return f"{cut}{SHORTENED}{hashlib.sha256(key.encode()).hexdigest()[:16]}"


def key_path(key: str, *, also_directory: bool = False) -> str:
    """The path (relative, "/"-separated) of the file holding `key`'s bytes under objects/.
    `also_directory`: other keys continue `key + "/"`, so its name is a directory too."""
    if not key:
        raise ValueError("an object key cannot be empty")
    parts: list[str] = []
    current: list[str] = []
    for i, ch in enumerate(key):
        separator = ch == "/" and 0 < i < len(key) - 1 and "/" not in (key[i - 1], key[i + 1])
        if separator:
            parts.append("".join(current))
            current = []
        else:
            current.append(ch)
    parts.append("".join(current))
    names = [_escape_component(part) for part in parts]
    if also_directory:
        names[-1] += ALSO_DIRECTORY
    return "/".join(_fit(name, key) for name in names)


def version_path(key: str, version_id: str) -> str:
    """Where a version that is not its key's latest goes: `versions/`, the key's path with
    `%~` (a name no other key's path can take), then the version id as a file name."""
    folder = key_path(key, also_directory=True)
    return f"{VERSIONS_DIR}/{folder}/{_fit(_escape_component(version_id), key + version_id)}"


def path_key(path: str) -> str | None:
    """The key an export path stands for (the inverse of `key_path`), or None for a
    shortened name, whose key only the manifest holds."""
    names = path.split("/")
    if any(SHORTENED in name for name in names):
        return None
    if names[-1].endswith(ALSO_DIRECTORY):
        names[-1] = names[-1][: -len(ALSO_DIRECTORY)]
    return "/".join(unquote(name, errors="strict") for name in names)


class AtomicFile:
    """A file written under a temp name beside its final one and renamed when complete and
    synced: a SIGKILL leaves a `%tmp-` file, never a short file under the final name."""

    def __init__(self, final: Path) -> None:
        self.final = final
        self.tmp = final.parent / f"{TEMP_PREFIX}{os.urandom(6).hex()}"
        final.parent.mkdir(parents=True, exist_ok=True)
        self._file: IO[bytes] = open(self.tmp, "xb")  # noqa: SIM115 (closed in finish/abort)

    def write(self, data: bytes) -> None:
        self._file.write(data)

    def finish(self) -> None:
        self._file.flush()
        os.fsync(self._file.fileno())
        self._file.close()
        os.replace(self.tmp, self.final)

    def abort(self) -> None:
        self._file.close()
        with contextlib.suppress(FileNotFoundError):
            self.tmp.unlink()


class Ledger:
    """An append-only JSON-lines file of `ManifestEntry`s. Its length after each object goes
    into the job's cursor, so a resumed job first cuts what a crashed step appended."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def reset(self, length: int) -> None:
        """Keep the first `length` bytes (those the saved cursor vouches for)."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path, "ab") as file:
            file.truncate(length)

    def append(self, entry: ManifestEntry) -> int:
        """Append durably; the ledger's length after it."""
        with open(self.path, "ab") as file:
            file.write(entry.dumps().encode() + b"\n")
            file.flush()
            os.fsync(file.fileno())
            return file.tell()

    def entries(self) -> Iterator[ManifestEntry]:
        """Every entry, the last one of each key only (a repeated step writes a key again)."""
        if not self.path.exists():
            return
        seen: dict[str, ManifestEntry] = {}
        with open(self.path, encoding="utf-8") as file:
            for line in file:
                if line.strip():
                    entry = ManifestEntry.loads(line)
                    seen[entry.key] = entry
        yield from seen.values()

    def history(self) -> list[ManifestEntry]:
        """Every entry in ledger order, one per (key, version id): the versions of an
        --all-versions transfer, a key's oldest first."""
        if not self.path.exists():
            return []
        seen: dict[tuple[str, str], ManifestEntry] = {}
        with open(self.path, encoding="utf-8") as file:
            for line in file:
                if line.strip():
                    entry = ManifestEntry.loads(line)
                    seen[entry.key, entry.version_id] = entry
        return list(seen.values())


def plain_files(root: Path) -> list[str]:
    """The regular files under `root` as keys ("/"-separated relative paths), in the order S3
    lists keys (by UTF-8 bytes, which is code point order). Symlinked files are followed,
    symlinked directories are not (a loop must not make an endless bucket)."""
    keys: list[str] = []
    for top, dirs, files in os.walk(root):
        dirs.sort()
        relative = Path(top).relative_to(root)
        for name in files:
            path = Path(top) / name
            if path.is_file():
                keys.append((relative / name).as_posix())
    keys.sort()
    return keys


def stray_files(root: Path) -> Iterator[Path]:
    """Files under `root` (recursively), temp files of interrupted writes included."""
    for top, _dirs, files in os.walk(root):
        for name in files:
            yield Path(top) / name
