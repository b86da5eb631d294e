"""The parts of an HTTP request that routing and authentication read, decoded once."""

from __future__ import annotations

from dataclasses import dataclass, field
from urllib.parse import unquote_to_bytes


@dataclass(frozen=True)
class RequestHead:
    """Method, path, query and headers of one request; the body is streamed separately.

    `headers` maps lower-case names to values (repeated headers joined with ","), `query` keeps
    the decoded pairs in the order sent, `raw_path` is the path exactly as sent (percent-encoded).
    Percent-escapes decode as UTF-8; `unreadable` names the first part of the URI that is not
    UTF-8 (the app refuses the request: decoded with replacement characters, `a%FE`, `a%FF`
    and `a%EF%BF%BD` would be one key).
    """

    method: str
    raw_path: str
    query: tuple[tuple[str, str], ...] = ()
    headers: dict[str, str] = field(default_factory=dict)
    raw_query: str = ""
    unreadable: str | None = None

    @property
    def path(self) -> str:
        """The decoded path (replacement characters only where `unreadable` is set)."""
        return decode_component(self.raw_path.encode("latin-1"), "replace")

    def query_value(self, name: str) -> str | None:
        for key, value in self.query:
            if key == name:
                return value
        return None

    def has_query(self, name: str) -> bool:
        return any(key == name for key, _ in self.query)

    def header(self, name: str, default: str | None = None) -> str | None:
        return self.headers.get(name, default)

    @classmethod
    def from_asgi(cls, scope: dict[str, object]) -> RequestHead:
        headers: dict[str, str] = {}
        for raw_name, raw_value in scope["headers"]:  # type: ignore[attr-defined]
            name = raw_name.decode("latin-1").lower()
            value = raw_value.decode("latin-1")
            headers[name] = f"{headers[name]},{value}" if name in headers else value
        raw_path = scope.get("raw_path") or str(scope["path"]).encode()
        query_string = scope.get("query_string", b"")
        assert isinstance(raw_path, bytes) and isinstance(query_string, bytes)
        raw_path = raw_path.split(b"?", 1)[0]
        unreadable = None if readable(raw_path) else "the path"
        query = []
        for part in query_string.split(b"&"):
            if not part:
                continue
            raw_name, _, raw_value = part.replace(b"+", b" ").partition(b"=")
            name = decode_component(raw_name, "replace")
            if unreadable is None and not (readable(raw_name) and readable(raw_value)):
                unreadable = f"the query parameter {name}"
            query.append((name, decode_component(raw_value, "replace")))
        return cls(
            method=str(scope["method"]),
            raw_path=raw_path.decode("latin-1"),
            query=tuple(query),
            headers=headers,
            raw_query=query_string.decode("latin-1"),
            unreadable=unreadable,
        )


def decode_component(raw: bytes, errors: str = "strict") -> str:
    """A percent-encoded URI component as text: the bytes it encodes, read as UTF-8."""
    return unquote_to_bytes(raw).decode("utf-8", errors)


def readable(raw: bytes) -> bool:
    """Whether `raw` decodes as UTF-8: a name must have one spelling, never be mapped."""
    try:
        decode_component(raw)
    except UnicodeDecodeError:
        return False
    return True
