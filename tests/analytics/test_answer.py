"""The encoders of a streamed answer: each format's end record, and the Accept negotiation."""

from __future__ import annotations

import json

import pyarrow as pa
import pytest

from egide.analytics.answer import choose, encoder


@pytest.mark.parametrize(
    ("accept", "fmt"),
    [
        (None, "ndjson"),
        ("*/*", "ndjson"),
        ("text/csv", "csv"),
        ("application/vnd.apache.arrow.stream", "arrow"),
        ("text/csv;q=0.5, application/x-ndjson", "ndjson"),
        ("text/csv;q=0.9, application/vnd.apache.arrow.stream;q=1", "arrow"),
        ("text/csv;q=0", None),
        ("image/png", None),
    ],
)
def test_accept_chooses_the_format(accept: str | None, fmt: str | None) -> None:
    assert choose(accept) == fmt


BATCH = pa.RecordBatch.from_pylist([{"a": 1, "b": "x"}, {"a": 2, "b": "y"}])


def test_arrow_ends_with_an_empty_batch_carrying_the_count() -> None:
    enc = encoder("arrow")
    data = enc.start(BATCH.schema) + enc.batch(BATCH) + enc.end(2, 0.5)
    reader = pa.ipc.open_stream(data)
    assert reader.read_next_batch().num_rows == 2
    last, metadata = reader.read_next_batch_with_custom_metadata()
    assert last.num_rows == 0 and metadata[b"egide.rows"] == b"2"
    with pytest.raises(StopIteration):
        reader.read_next_batch()


def test_arrow_error_before_any_schema_is_still_a_stream() -> None:
    reader = pa.ipc.open_stream(encoder("arrow").error("InvalidQuery", "no"))
    _, metadata = reader.read_next_batch_with_custom_metadata()
    assert metadata[b"egide.error.code"] == b"InvalidQuery"


def test_csv_and_json_lines_end_with_a_line_of_their_own() -> None:
    csv_enc = encoder("csv")
    text = (
        csv_enc.start(BATCH.schema) + csv_enc.batch(BATCH) + csv_enc.error("X", "a\nb")
    ).decode()
    assert text.splitlines() == ['"a","b"', '1,"x"', '2,"y"', "# egide: error=X a b"]
    nd = encoder("ndjson")
    lines = (nd.start(BATCH.schema) + nd.batch(BATCH) + nd.end(2, 1.0)).decode().splitlines()
    assert [json.loads(line) for line in lines] == [
        {"a": 1, "b": "x"}, {"a": 2, "b": "y"}, {"_egide": {"rows": 2, "seconds": 1.0}},
    ]  # fmt: skip
