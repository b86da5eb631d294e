"""S3 Select's ScanRange: the records of a CSV or JSON-lines object that start within a byte
range, presented to DuckDB as a file of their own.

A record starts at 0 and after each record delimiter; the ones starting at a byte in
[start, end] (end inclusive) are read whole, even past `end`, as AWS reads them. The view is
the object's bytes from the first record starting at or after `start` to the end of the last
one starting at or before `end`, preceded by the object's header line when the query takes one
(FileHeaderInfo USE or IGNORE) and the range begins after it. Only the bytes around the two
boundaries are read to find them; the view's reads are positional like any other file's, so
DuckDB reads it as it reads an object.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from egide.analytics.filesystem import EgideFileSystem
from egide.domain import ObjectVersion

#: Bytes read at a time while looking for a record delimiter; and the longest header line.
STEP = 64 * 1024
MAX_HEADER = 1024 * 1024


@dataclasses.dataclass(frozen=True)
class View:
    version: ObjectVersion  # the object as the view shows it (its size is the view's)
    base: ObjectVersion
    header: bytes
    begin: int
    end: int  # excluded


class ScanRangeFileSystem(EgideFileSystem):
    """`egide://` where one path shows only the records starting within a byte range."""

    def __init__(
        self, *args: Any, path: str, start: int, end: int, header: bool, **kwargs: Any
    ) -> None:
        super().__init__(*args, **kwargs)
        self._target = self.split(path)
        self._start, self._end, self._header = start, end, header
        self._view: View | None = None

    def version(self, path: str) -> ObjectVersion:
        base = super().version(path)
        if self.split(path) != self._target:
            return base
        with self._lock:
            view = self._view
        if view is None or view.base is not base:
            view = self._make_view(base)
            with self._lock:
                self._view = view
        return view.version

    def _after_delimiter(self, base: ObjectVersion, position: int) -> int:
        """The index just past the first newline at or after `position` (the size if none)."""
        while position < base.size:
            chunk = super().read_range(base, position, min(base.size, position + STEP))
            found = chunk.find(b"\n")
            if found >= 0:
                return position + found + 1
            position += len(chunk)
        return base.size

    def _make_view(self, base: ObjectVersion) -> View:
        start, end = max(0, self._start), min(self._end, base.size - 1)
        begin = 0 if start == 0 else self._after_delimiter(base, start - 1)
        stop = self._after_delimiter(base, end) if end >= start else begin
        stop = max(begin, stop)
        header = b""
        if self._header and begin > 0:
            length = self._after_delimiter(base, 0)
            if length > MAX_HEADER:
                raise ValueError(f"the header line is longer than {MAX_HEADER} bytes")
            header = super().read_range(base, 0, length)
            if not header.endswith(b"\n"):
                header += b"\n"
        size = len(header) + stop - begin
        return View(dataclasses.replace(base, size=size), base, header, begin, stop)

    def read_range(self, version: ObjectVersion, start: int, end: int) -> bytes:
        view = self._view
        if view is None or version is not view.version:
            return super().read_range(version, start, end)
        header = view.header
        out = header[start:end] if start < len(header) else b""
        lo = view.begin + max(start - len(header), 0)
        hi = view.begin + max(end - len(header), 0)
        if hi > lo:
            out += super().read_range(view.base, lo, min(hi, view.end))
        return out
