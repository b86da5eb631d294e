"""A query's answer as bytes, one batch at a time, ending with its row count and timing (or the
error that stopped it): the body `POST /_egide/sql` streams.

HTTP trailers are dropped by most clients, so the end travels inside the format:
- JSON lines: a last line `{"_egide": {"rows": n, "seconds": s}}` (or `{"_egide": {"error":
  {"code": …, "message": …}}}`): the one line whose only key is `_egide`;
- CSV: a last line `# egide: rows=n seconds=s` (or `# egide: error=Code message`);
- Arrow IPC stream: a last, empty record batch whose custom metadata holds `egide.rows` and
  `egide.seconds` (or `egide.error.code`, `egide.error.message`), read with
  `RecordBatchStreamReader.read_next_batch_with_custom_metadata`; `read_all` is unaffected.
"""

from __future__ import annotations

import io
import json
from typing import Protocol

import pyarrow as pa
import pyarrow.csv as pa_csv

#: The answer formats, by the media type an Accept header names.
MEDIA_TYPES = {
    "application/vnd.apache.arrow.stream": "arrow",
    "application/x-ndjson": "ndjson",
    "text/csv": "csv",
}
#: The key of the last JSON line.
END_KEY = "_egide"


class Encoder(Protocol):
    media_type: str

    def start(self, schema: pa.Schema) -> bytes: ...
    def batch(self, batch: pa.RecordBatch) -> bytes: ...
    def end(self, rows: int, seconds: float) -> bytes: ...
    def error(self, code: str, message: str) -> bytes: ...


class _Sink(io.RawIOBase):
    """What a pyarrow writer wrote since the last `take` (a writer wants a file)."""

    def __init__(self) -> None:
        self._data = bytearray()

    def writable(self) -> bool:
        return True

    def write(self, data: bytes | bytearray | memoryview) -> int:  # type: ignore[override]
        self._data += data
        return len(data)

    def take(self) -> bytes:
        data, self._data = bytes(self._data), bytearray()
        return data


class NdjsonEncoder:
    media_type = "application/x-ndjson"

    def start(self, schema: pa.Schema) -> bytes:
        return b""

    def batch(self, batch: pa.RecordBatch) -> bytes:
        rows = batch.to_pylist()
        return "".join(json.dumps(r, ensure_ascii=False, default=str) + "\n" for r in rows).encode()

    def end(self, rows: int, seconds: float) -> bytes:
        return _line({END_KEY: {"rows": rows, "seconds": round(seconds, 6)}})

    def error(self, code: str, message: str) -> bytes:
        return _line({END_KEY: {"error": {"code": code, "message": message}}})


def _line(document: object) -> bytes:
    return json.dumps(document, ensure_ascii=False).encode() + b"\n"


class CsvEncoder:
    media_type = "text/csv"

    def __init__(self) -> None:
        self._sink = _Sink()
        self._writer: pa_csv.CSVWriter | None = None

    def start(self, schema: pa.Schema) -> bytes:
        self._writer = pa_csv.CSVWriter(self._sink, schema)
        return self._sink.take()

    def batch(self, batch: pa.RecordBatch) -> bytes:
        assert self._writer is not None
        self._writer.write_batch(batch)
        return self._sink.take()

    def end(self, rows: int, seconds: float) -> bytes:
        return self._close() + f"# egide: rows={rows} seconds={seconds:.6f}\n".encode()

    def error(self, code: str, message: str) -> bytes:
        text = " ".join(message.split())  # one line
        return self._close() + f"# egide: error={code} {text}\n".encode()

    def _close(self) -> bytes:
        if self._writer is not None:
            self._writer.close()
            self._writer = None
        return self._sink.take()


class ArrowEncoder:
    media_type = "application/vnd.apache.arrow.stream"

    def __init__(self) -> None:
        self._sink = _Sink()
        self._writer: pa.ipc.RecordBatchStreamWriter | None = None
        self._schema: pa.Schema | None = None

    def start(self, schema: pa.Schema) -> bytes:
        self._schema = schema
        self._writer = pa.ipc.new_stream(self._sink, schema)
        return self._sink.take()

    def batch(self, batch: pa.RecordBatch) -> bytes:
        assert self._writer is not None
        self._writer.write_batch(batch)
        return self._sink.take()

    def end(self, rows: int, seconds: float) -> bytes:
        return self._last({"egide.rows": str(rows), "egide.seconds": f"{seconds:.6f}"})

    def error(self, code: str, message: str) -> bytes:
        return self._last({"egide.error.code": code, "egide.error.message": message})

    def _last(self, metadata: dict[str, str]) -> bytes:
        if self._writer is None:  # failed before the schema: an empty schema carries it
            self.start(pa.schema([]))
        assert self._writer is not None and self._schema is not None
        empty = pa.RecordBatch.from_pylist([], schema=self._schema)
        self._writer.write_batch(empty, custom_metadata=metadata)
        self._writer.close()
        self._writer = None
        return self._sink.take()


def encoder(fmt: str) -> Encoder:
    if fmt == "arrow":
        return ArrowEncoder()
    if fmt == "csv":
        return CsvEncoder()
    return NdjsonEncoder()


def choose(accept: str | None) -> str | None:
    """The format an Accept header asks for (JSON lines when it names none or `*/*`); None
    when it names only types not served."""
    if not accept:
        return "ndjson"
    ranked: list[tuple[float, int, str]] = []
    for index, item in enumerate(accept.split(",")):
        media, *params = (part.strip() for part in item.split(";"))
        quality = 1.0
        for param in params:
            name, _, value = param.partition("=")
            if name.strip() == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        media = media.lower()
        fmt = MEDIA_TYPES.get(media) or ("ndjson" if media in ("*/*", "application/*") else None)
        if fmt is not None and quality > 0:
            ranked.append((-quality, index, fmt))
    return min(ranked)[2] if ranked else None
