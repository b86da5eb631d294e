"""A query's Arrow batches written to a binary stream as CSV, JSON lines, Parquet or an Arrow
IPC stream, batch by batch (never the whole result in memory)."""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any, BinaryIO

import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq

FORMATS = ("csv", "json", "parquet", "arrow")
_SUFFIXES = {".csv": "csv", ".json": "json", ".jsonl": "json", ".ndjson": "json",
             ".parquet": "parquet", ".arrow": "arrow", ".arrows": "arrow"}  # fmt: skip


def format_of(key: str) -> str | None:
    """The format a key's suffix names, if any."""
    dot = key.rfind(".")
    return _SUFFIXES.get(key[dot:].lower()) if dot >= 0 else None


def write_batches(
    schema: pa.Schema, batches: Iterable[pa.RecordBatch], fmt: str, sink: BinaryIO
) -> int:
    """Write every batch to `sink` in `fmt`; the number of rows written."""
    rows = 0
    if fmt == "json":
        for batch in batches:
            lines = (json.dumps(row, ensure_ascii=False, default=str) for row in batch.to_pylist())
            sink.write("".join(line + "\n" for line in lines).encode())
            rows += batch.num_rows
        return rows
    writer: Any
    if fmt == "csv":
        writer = pa_csv.CSVWriter(sink, schema)
    elif fmt == "parquet":
        writer = pq.ParquetWriter(sink, schema)
    elif fmt == "arrow":
        writer = pa.ipc.new_stream(sink, schema)
    else:
        raise ValueError(f"unknown format {fmt!r}: one of {', '.join(FORMATS)}")
    try:
        for batch in batches:
            writer.write_batch(batch)
            rows += batch.num_rows
    finally:
        writer.close()
    return rows
