"""AWS's event-stream framing, as SelectObjectContent answers with it (botocore's
`EventStreamBuffer` reads it).

A message is: total length (4 bytes, big-endian), headers length (4), the CRC32 of those 8
bytes (4), the headers, the payload, the CRC32 of everything before it (4). A header is its
name's length (1 byte), the name, a type (7: string), the value's length (2) and the value.
"""

from __future__ import annotations

import struct
import zlib

_STRING = 7


def _headers(headers: dict[str, str]) -> bytes:
    out = bytearray()
    for name, value in headers.items():
        raw_name, raw_value = name.encode(), value.encode()
        out += struct.pack("!B", len(raw_name)) + raw_name
        out += struct.pack("!BH", _STRING, len(raw_value)) + raw_value
    return bytes(out)


def message(headers: dict[str, str], payload: bytes = b"") -> bytes:
    head = _headers(headers)
    total = 12 + len(head) + len(payload) + 4
    prelude = struct.pack("!II", total, len(head))
    body = prelude + struct.pack("!I", zlib.crc32(prelude)) + head + payload
    return body + struct.pack("!I", zlib.crc32(body))


def event(kind: str, payload: bytes = b"", content_type: str | None = None) -> bytes:
    headers = {":message-type": "event", ":event-type": kind}
    if content_type is not None:
        headers[":content-type"] = content_type
    return message(headers, payload)


def records(payload: bytes) -> bytes:
    return event("Records", payload, "application/octet-stream")


def cont() -> bytes:
    """A keep-alive: sent while a long scan returns nothing, so the client keeps waiting."""
    return event("Cont")


def _counts(root: str, scanned: int, processed: int, returned: int) -> bytes:
    inner = (
        f"<BytesScanned>{scanned}</BytesScanned><BytesProcessed>{processed}</BytesProcessed>"
        f"<BytesReturned>{returned}</BytesReturned>"
    )
    return f'<?xml version="1.0" encoding="UTF-8"?><{root}>{inner}</{root}>'.encode()


def progress(scanned: int, processed: int, returned: int) -> bytes:
    return event("Progress", _counts("Progress", scanned, processed, returned), "text/xml")


def stats(scanned: int, processed: int, returned: int) -> bytes:
    return event("Stats", _counts("Stats", scanned, processed, returned), "text/xml")


def end() -> bytes:
    return event("End")


def error(code: str, text: str) -> bytes:
    return message({":message-type": "error", ":error-code": code, ":error-message": text[:8000]})
