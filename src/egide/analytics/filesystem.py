"""`egide://bucket/key`: an fsspec filesystem over the engine, for DuckDB and pyarrow.

One instance serves one caller (its rights are checked by `ObjectAccess`) for one query: it
remembers the version of each object it looked at, so that every thread reading a file reads
the same version, and a file's size, date and bytes always agree.

Reads are positional: `cat_file(path, start, end)` and `EgideReadFile.read` after `seek` carry
their offset to the engine, which fetches and decrypts only the blocks covering it. DuckDB calls
`seek` then `read` on one handle from several threads at once; a position shared between them
would return another thread's bytes, so the offset a thread seeks to is kept for that thread
(its next `read` starts there). Writes stream: a file opened "wb" sends a part each
`part_size` bytes (a multipart upload) and commits the object on `close`; it never holds more
than a part.
"""

from __future__ import annotations

import contextlib
import io
import mimetypes
import threading
from collections.abc import Coroutine
from datetime import UTC, datetime
from typing import Any, TypeVar

from fsspec import AbstractFileSystem

from egide.analytics.access import ObjectAccess, QueryAccessDenied
from egide.analytics.bridge import Bridge
from egide.domain import BucketNotFound, KeyNotFound, ObjectVersion, Part, Upload

T = TypeVar("T")
PROTOCOL = "egide"
#: Bytes a file opened for writing sends at a time (a multipart part, ≥ S3's 5 MiB minimum).
PART_SIZE = 8 * 1024 * 1024
_TYPES = {
    ".parquet": "application/vnd.apache.parquet",
    ".arrow": "application/vnd.apache.arrow.stream",
    ".csv": "text/csv",
    ".json": "application/json",
    ".jsonl": "application/x-ndjson",
}


def content_type(key: str) -> str:
    dot = key.rfind(".")
    suffix = key[dot:].lower() if dot >= 0 else ""
    return _TYPES.get(suffix) or mimetypes.guess_type(key)[0] or "application/octet-stream"


def _file_info(bucket: str, version: ObjectVersion) -> dict[str, Any]:
    return {
        "name": f"{bucket}/{version.key}", "size": version.size, "type": "file",
        "ETag": version.etag, "LastModified": _date(version),
        "version_id": version.version_id.hex(),
    }  # fmt: skip


def _dir_info(name: str) -> dict[str, Any]:
    return {"name": name, "size": 0, "type": "directory"}


def _date(version: ObjectVersion) -> datetime:
    return datetime.fromtimestamp(version.last_modified, UTC)


class EgideFileSystem(AbstractFileSystem):  # type: ignore[misc]
    """The objects one caller may reach, as files under egide://bucket/key."""

    protocol = PROTOCOL
    root_marker = ""
    cachable = False  # one instance per caller and query, never shared by fsspec's cache

    def __init__(
        self, access: ObjectAccess, bridge: Bridge, *, part_size: int = PART_SIZE, **kw: Any
    ) -> None:
        super().__init__(**kw)
        self.access = access
        self.bridge = bridge
        self.part_size = part_size
        self._versions: dict[str, ObjectVersion] = {}
        self._lock = threading.Lock()

    def _run(self, coro: Coroutine[Any, Any, T]) -> T:
        return self.bridge.run(coro)

    @staticmethod
    def split(path: str) -> tuple[str, str]:
        """(bucket, key) of a path with or without egide://."""
        stripped = EgideFileSystem._strip_protocol(path)
        bucket, _, key = stripped.partition("/")
        if "://" in stripped or (not bucket and key):
            raise FileNotFoundError(path)
        return bucket, key

    def version(self, path: str) -> ObjectVersion:
        """The version of the object at `path` this filesystem reads (looked up once)."""
        bucket, key = self.split(path)
        name = f"{bucket}/{key}"
        with self._lock:
            held = self._versions.get(name)
        if held is not None:
            return held
        if not bucket or not key:
            raise IsADirectoryError(path)
        try:
            version = self._run(self.access.head(bucket, key))
        except (KeyNotFound, BucketNotFound):
            raise FileNotFoundError(path) from None
        with self._lock:
            self._versions[name] = version
        return version

    def forget(self, path: str) -> None:
        bucket, key = self.split(path)
        with self._lock:
            self._versions.pop(f"{bucket}/{key}", None)

    # -- what exists -------------------------------------------------------------------------

    def info(self, path: str, **kwargs: Any) -> dict[str, Any]:
        bucket, key = self.split(path)
        if not bucket:
            return _dir_info("")
        if not key:
            try:
                self._run(self.access.head_bucket(bucket))
            except BucketNotFound:
                raise FileNotFoundError(path) from None
            return _dir_info(bucket)
        refused: QueryAccessDenied | None = None
        try:
            return _file_info(bucket, self.version(path))
        except FileNotFoundError:
            pass
        except QueryAccessDenied as exc:  # it may still be a "directory" the caller may list
            refused = exc
        try:
            if self._first(bucket, key.rstrip("/") + "/"):
                return _dir_info(f"{bucket}/{key.rstrip('/')}")
        except QueryAccessDenied:
            if refused is None:
                raise
        if refused is not None:
            raise refused
        raise FileNotFoundError(path)

    def _first(self, bucket: str, prefix: str) -> bool:
        async def probe() -> bool:
            async for _ in self.access.entries(bucket, prefix, limit=1):
                return True
            return False

        try:
            return self._run(probe())
        except BucketNotFound:
            raise FileNotFoundError(f"{PROTOCOL}://{bucket}") from None

    def modified(self, path: str) -> datetime:
        return _date(self.version(path))

    def ls(self, path: str, detail: bool = True, **kwargs: Any) -> list[Any]:
        bucket, key = self.split(path)
        if not bucket:
            names = [b.name for b in self._run(self.access.buckets())]
            found = [_dir_info(n) for n in names]
        else:
            prefix = key.rstrip("/") + "/" if key else ""
            found = self._listing(bucket, prefix, "/")
            if not found and key:
                found = [self.info(path)]  # a file lists as itself
        return found if detail else [f["name"] for f in found]

    def _listing(self, bucket: str, prefix: str, delimiter: str) -> list[dict[str, Any]]:
        async def collect() -> list[dict[str, Any]]:
            out = []
            async for entry in self.access.entries(bucket, prefix, delimiter):
                if entry.version is None:
                    out.append(_dir_info(f"{bucket}/{entry.key.rstrip('/')}"))
                elif not entry.key.endswith("/"):  # a "folder" marker is no file
                    out.append(_file_info(bucket, entry.version))
            return out

        try:
            return self._run(collect())
        except BucketNotFound:
            raise FileNotFoundError(f"{PROTOCOL}://{bucket}") from None

    def find(
        self,
        path: str,
        maxdepth: int | None = None,
        withdirs: bool = False,
        detail: bool = False,
        **kwargs: Any,
    ) -> Any:
        """Every object under `path` from one flat listing (not a walk, directory by
        directory); the directories they imply with `withdirs` (what `glob` asks)."""
        bucket, key = self.split(path)
        if not bucket:
            return super().find(path, maxdepth, withdirs, detail, **kwargs)
        found: dict[str, dict[str, Any]] = {}
        base = f"{bucket}/{key.rstrip('/')}" if key else bucket
        # One listing (s3:ListBucket) holds the object at `path` itself and those under it.
        for info in self._listing(bucket, key.rstrip("/"), ""):
            if info["name"] == base:
                found[base] = info
                continue
            if not info["name"].startswith(base + "/"):
                continue  # "data2/…" under the prefix "data"
            depth = info["name"][len(base) + 1 :].count("/") + 1
            if maxdepth is not None and depth > maxdepth:
                continue
            found[info["name"]] = info
            if withdirs:
                parent = info["name"].rpartition("/")[0]
                while len(parent) > len(base):
                    found.setdefault(parent, _dir_info(parent))
                    parent = parent.rpartition("/")[0]
        names = sorted(found)
        return {n: found[n] for n in names} if detail else names

    def glob(self, path: str, maxdepth: int | None = None, **kwargs: Any) -> Any:
        """fsspec's glob; a path without a wildcard is looked up, so that a refusal to read it
        is told as such (fsspec would call it absent)."""
        if any(c in self._strip_protocol(path) for c in "*?["):
            return super().glob(path, maxdepth=maxdepth, **kwargs)
        try:
            info = self.info(path)
        except FileNotFoundError:
            return {} if kwargs.get("detail") else []
        return {info["name"]: info} if kwargs.get("detail") else [info["name"]]

    # -- bytes -------------------------------------------------------------------------------

    def read_range(self, version: ObjectVersion, start: int, end: int) -> bytes:
        """Bytes start..end (end excluded, both within the object) of `version`."""
        if end <= start:
            return b""
        return self._run(self.access.read(version, start, end - 1))

    def cat_file(
        self, path: str, start: int | None = None, end: int | None = None, **kwargs: Any
    ) -> bytes:
        version = self.version(path)
        lo = 0 if start is None else (start if start >= 0 else max(0, version.size + start))
        hi = version.size if end is None else (end if end >= 0 else version.size + end)
        return self.read_range(version, min(lo, version.size), min(hi, version.size))

    def _open(self, path: str, mode: str = "rb", **kwargs: Any) -> Any:
        if mode == "rb":
            return EgideReadFile(self, path, self.version(path))
        if mode == "wb":
            bucket, key = self.split(path)
            if not bucket or not key or key.endswith("/"):
                raise IsADirectoryError(path)
            # Refused at once, not after a part's worth of bytes was produced.
            self._run(self.access.check("s3:PutObject", bucket, key))
            self.forget(path)
            return EgideWriteFile(self, bucket, key, autocommit=kwargs.get("autocommit", True))
        raise ValueError(f"{PROTOCOL}:// files open for reading or writing (rb, wb), not {mode!r}")

    def staged(self, path: str) -> EgideWriteFile | None:
        """The file written to `path` in the open transaction, not committed yet."""
        if not self._intrans:
            return None
        bucket, key = self.split(path)
        for f in self.transaction.files:
            if isinstance(f, EgideWriteFile) and (f.bucket, f.key) == (bucket, key):
                return f
        return None

    def rm_file(self, path: str) -> None:
        """A file written in the open transaction is dropped (DuckDB removes what a failed
        COPY wrote): the store never sees it. Any other object is deleted."""
        pending = self.staged(path)
        if pending is not None:
            self.transaction.files.remove(pending)
            pending.discard()
            return
        bucket, key = self.split(path)
        self._run(self.access.delete(bucket, key))
        self.forget(path)

    def mv(self, path1: str, path2: str, recursive: bool = False, **kwargs: Any) -> None:
        """DuckDB's COPY over an existing object writes a temporary one, then moves it. A
        small one still in the transaction just takes the new name; a larger one (parts
        already sent under its key) is committed, copied and deleted."""
        pending = self.staged(path1)
        if pending is None:
            super().mv(path1, path2, recursive=recursive, **kwargs)
            return
        bucket, key = self.split(path2)
        if pending.retarget(bucket, key):
            return
        self.transaction.files.remove(pending)
        pending.commit()
        self.cp_file(path1, path2)
        self.rm_file(path1)

    def _rm(self, path: str) -> None:
        self.rm_file(path)

    def cp_file(self, path1: str, path2: str, **kwargs: Any) -> None:
        """Copied through the engine, a part at a time (read back, written anew)."""
        version = self.version(path1)
        with self.open(path2, "wb") as target:
            for start in range(0, version.size, self.part_size):
                target.write(self.read_range(version, start, min(start + self.part_size,
                                                                   version.size)))  # fmt: skip

    def mkdir(self, path: str, create_parents: bool = True, **kwargs: Any) -> None:
        """Nothing to do: a "directory" is a key prefix, there as soon as a key is under it."""

    def makedirs(self, path: str, exist_ok: bool = False) -> None:
        """As `mkdir`."""

    def rmdir(self, path: str) -> None:
        """As `mkdir`."""


class EgideReadFile:
    """A read-only handle on one version: positional reads, safe from several threads."""

    def __init__(self, fs: EgideFileSystem, path: str, version: ObjectVersion) -> None:
        self.fs = fs
        self.path = path
        self.version = version
        self.size = version.size
        self.mode = "rb"
        self.closed = False
        #: Where the next sequential read starts (reads without a seek of their own).
        self._position = 0
        self._lock = threading.Lock()
        #: The offset each thread sought last, for its next read alone.
        self._sought = threading.local()

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def writable(self) -> bool:
        return False

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        if whence == io.SEEK_CUR:
            offset += self.tell()
        elif whence == io.SEEK_END:
            offset += self.size
        elif whence != io.SEEK_SET:
            raise ValueError(f"invalid whence {whence}")
        if offset < 0:
            raise ValueError("negative seek position")
        self._sought.offset = offset
        with self._lock:
            self._position = offset
        return offset

    def tell(self) -> int:
        sought: int | None = getattr(self._sought, "offset", None)
        if sought is not None:
            return sought
        with self._lock:
            return self._position

    def read(self, length: int = -1) -> bytes:
        if self.closed:
            raise ValueError("I/O operation on closed file")
        start: int | None = getattr(self._sought, "offset", None)
        self._sought.offset = None
        with self._lock:
            if start is None:
                start = self._position
            start = min(start, self.size)
            end = self.size if length is None or length < 0 else min(self.size, start + length)
            self._position = end
        return self.read_at(start, end - start)

    def read_at(self, offset: int, length: int) -> bytes:
        """`length` bytes from `offset` (fewer at the end), without touching any position."""
        end = min(self.size, offset + length)
        return self.fs.read_range(self.version, min(offset, self.size), end)

    def readinto(self, buffer: Any) -> int:
        data = self.read(len(buffer))
        memoryview(buffer)[: len(data)] = data
        return len(data)

    def close(self) -> None:
        self.closed = True

    def flush(self) -> None:
        pass

    def __enter__(self) -> EgideReadFile:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class EgideWriteFile:
    """An object being written: parts sent as they fill, the object committed on `close`."""

    def __init__(
        self, fs: EgideFileSystem, bucket: str, key: str, *, autocommit: bool = True
    ) -> None:
        self.fs = fs
        self.bucket, self.key = bucket, key
        self.path = f"{bucket}/{key}"
        self.mode = "wb"
        self.closed = False
        #: False inside the filesystem's transaction (a query): `close` sends the last part
        #: and the transaction's end commits or discards.
        self.autocommit = autocommit
        self._done = False
        self._buffer = bytearray()
        self._written = 0
        self._upload: Upload | None = None
        self._parts: list[Part] = []
        self._lock = threading.Lock()
        self._type = content_type(key)

    def readable(self) -> bool:
        return False

    def seekable(self) -> bool:
        return True  # to where it is only: DuckDB seeks before each write

    def writable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._written

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        target = {io.SEEK_SET: offset, io.SEEK_CUR: self._written + offset}.get(whence)
        if target != self._written:
            raise io.UnsupportedOperation(f"{PROTOCOL}:// objects are written in order")
        return target

    def write(self, data: bytes | bytearray | memoryview) -> int:
        if self.closed:
            raise ValueError("I/O operation on closed file")
        with self._lock:
            self._buffer += data
            self._written += len(data)
            while len(self._buffer) >= self.fs.part_size:
                chunk = bytes(self._buffer[: self.fs.part_size])
                del self._buffer[: self.fs.part_size]
                self._send(chunk)
        return len(data)

    def _send(self, chunk: bytes) -> None:
        access, run = self.fs.access, self.fs.bridge.run
        if self._upload is None:
            self._upload = run(access.create_upload(self.bucket, self.key, self._type))
        number = len(self._parts) + 1
        self._parts.append(run(access.upload_part(self.bucket, self._upload, number, chunk)))

    def flush(self) -> None:
        """Nothing is committed before `close` (or the transaction's end): an object is whole
        or absent."""

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        if self.autocommit:
            self.commit()
            return
        with self._lock:
            if self._upload is not None and self._buffer:
                try:
                    self._send(bytes(self._buffer))
                except BaseException:
                    self.discard()
                    raise
                self._buffer = bytearray()

    def retarget(self, bucket: str, key: str) -> bool:
        """Take another key before the commit if nothing was sent under this one yet."""
        if self._upload is not None or self._done:
            return False
        self.fs._run(self.fs.access.check("s3:PutObject", bucket, key))
        self.bucket, self.key, self.path = bucket, key, f"{bucket}/{key}"
        self._type = content_type(key)
        return True

    def commit(self) -> None:
        """Make the object visible: complete the upload, or put what a part did not fill."""
        if self._done:
            return
        self.closed = True
        access, run = self.fs.access, self.fs.bridge.run
        with self._lock:
            data, self._buffer = bytes(self._buffer), bytearray()
            try:
                if self._upload is None:
                    run(access.put(self.bucket, self.key, data, self._type))
                else:
                    if data:
                        self._send(data)
                    run(access.complete(self.bucket, self._upload, self._parts))
            except BaseException:
                self.discard()
                raise
            self._done = True
        self.fs.forget(self.path)

    def discard(self) -> None:
        """Drop what was sent (an upload never completed); nothing becomes visible."""
        self.closed = self._done = True
        self._buffer = bytearray()
        upload, self._upload = self._upload, None
        if upload is not None:
            # Failing that, the housekeeping of abandoned uploads removes it.
            with contextlib.suppress(Exception):
                self.fs.bridge.run(self.fs.access.abort(upload))

    def __enter__(self) -> EgideWriteFile:
        return self

    def __exit__(self, kind: object, *exc: object) -> None:
        if kind is None:
            self.close()
        else:
            self.discard()
