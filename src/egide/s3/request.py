"""The parts of an HTTP request that routing and authentication read, decoded once."""

from __future__ import annotations

from dataclasses import dataclass, field
from urllib.parse import parse_qsl, unquote


@dataclass(frozen=True)
class RequestHead:
    """Method, path, query and headers of one request; the body is streamed separately.

    `headers` maps lower-case names to values (repeated headers joined with ","), `query` keeps
    the decoded pairs in the order sent, `raw_path` is the path exactly as sent (percent-encoded).
    """

    method: str
    raw_path: str
    query: tuple[tuple[str, str], ...] = ()
    headers: dict[str, str] = field(default_factory=dict)
    raw_query: str = ""

    @property
    def path(self) -> str:
        """The decoded path."""
        return unquote(self.raw_path)

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
        query = tuple(parse_qsl(query_string.decode("latin-1"), keep_blank_values=True))
        return cls(
            method=str(scope["method"]),
            raw_path=raw_path.decode("latin-1").split("?", 1)[0],
            query=query,
            headers=headers,
            raw_query=query_string.decode("latin-1"),
        )
