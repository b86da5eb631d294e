"""XML in and out. Responses are built as text (fast, and the element order S3 uses is kept);
requests are parsed with ElementTree, namespace-agnostic as S3 is."""

from __future__ import annotations

import time
import xml.etree.ElementTree as ET
from xml.sax.saxutils import escape

from egide.s3.errors import MalformedXML

NS = "http://s3.amazonaws.com/doc/2006-03-01/"
DECLARATION = '<?xml version="1.0" encoding="UTF-8"?>\n'


def element(name: str, value: object) -> str:
    if isinstance(value, bool):
        value = "true" if value else "false"
    return f"<{name}>{escape(str(value))}</{name}>"


def document(root: str, inner: str) -> bytes:
    return f'{DECLARATION}<{root} xmlns="{NS}">{inner}</{root}>'.encode()


def iso8601(timestamp: float) -> str:
    """2026-11-23T10:00:00.000Z: the timestamp form of S3 listings."""
    millis = int(timestamp * 1000) % 1000
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(timestamp)) + f".{millis:03d}Z"


def parse(body: bytes) -> ET.Element:
    """Parse a request document; anything not well-formed is MalformedXML."""
    try:
        root = ET.fromstring(body)
    except ET.ParseError as exc:
        raise MalformedXML() from exc
    for node in root.iter():
        if node.tag.startswith("{"):
            node.tag = node.tag.split("}", 1)[1]
    return root
