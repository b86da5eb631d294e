"""RequestHead.from_asgi: names decode as UTF-8 or are marked unreadable, never mapped."""

from __future__ import annotations

import pytest

from egide.web.request import RequestHead


def head(raw_path: bytes, query: bytes = b"") -> RequestHead:
    scope = {"method": "GET", "path": "", "raw_path": raw_path, "query_string": query}
    return RequestHead.from_asgi({**scope, "headers": []})


@pytest.mark.parametrize("raw", [b"/b/caf%C3%A9", b"/b/caf\xc3\xa9"])
def test_percent_escapes_and_raw_bytes_decode_alike(raw: bytes) -> None:
    assert head(raw).path == "/b/café" and head(raw).unreadable is None


@pytest.mark.parametrize("raw", [b"/b/coll%FE", b"/b/coll%FF", b"/b/coll\xff", b"/b/%C3"])
def test_a_path_that_is_not_utf8_is_unreadable(raw: bytes) -> None:
    assert head(raw).unreadable == "the path"


def test_a_query_parameter_that_is_not_utf8_is_named() -> None:
    parsed = head(b"/b", b"list-type=2&prefix=a%FF&delimiter=%2F")
    assert parsed.unreadable == "the query parameter prefix"
    assert parsed.query_value("delimiter") == "/"


def test_query_pairs_are_parsed_as_before() -> None:
    parsed = head(b"/b", b"versioning&a+b=c+d&empty=&&x=%26")
    assert parsed.query == (("versioning", ""), ("a b", "c d"), ("empty", ""), ("x", "&"))
    assert parsed.unreadable is None
