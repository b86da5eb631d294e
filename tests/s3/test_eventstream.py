"""The event-stream framing read back by botocore's own parser (which checks both CRCs)."""

from __future__ import annotations

from botocore.eventstream import EventStreamBuffer

from egide.s3 import eventstream


def test_botocore_reads_every_message_kind() -> None:
    buffer = EventStreamBuffer()
    buffer.add_data(
        eventstream.records(b"a,b\n") + eventstream.cont() + eventstream.progress(10, 10, 4)
        + eventstream.stats(10, 10, 4) + eventstream.end()
        + eventstream.error("InvalidQuery", "no such column: x")
    )  # fmt: skip
    messages = list(buffer)
    kinds = [m.headers.get(":event-type") or m.headers[":error-code"] for m in messages]
    assert kinds == ["Records", "Cont", "Progress", "Stats", "End", "InvalidQuery"]
    assert messages[0].payload == b"a,b\n"
    assert b"<BytesReturned>4</BytesReturned>" in messages[3].payload
    assert messages[5].headers[":message-type"] == "error"
    assert messages[5].headers[":error-message"] == "no such column: x"


def test_a_flipped_byte_is_caught_by_the_crc() -> None:
    data = bytearray(eventstream.records(b"payload"))
    data[-6] ^= 1
    buffer = EventStreamBuffer()
    buffer.add_data(bytes(data))
    try:
        list(buffer)
    except Exception as exc:
        assert "Checksum" in type(exc).__name__ or "checksum" in str(exc).lower()
    else:
        raise AssertionError("a corrupt message was accepted")
