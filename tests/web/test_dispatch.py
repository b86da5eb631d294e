"""The front door over ASGI: which app answers which path, the reserved /_egide/ space, the
lifespan it owns and the access log it writes for every app."""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

import pytest

from egide.web.dispatch import Call, FrontDoor, Mount, json_response, send_response
from egide.web.http import Send


class Named:
    """An app that answers its own name (the apps mounted in production are tested e2e)."""

    def __init__(self, name: str) -> None:
        self.name = name

    async def serve(self, call: Call, send: Send) -> None:
        call.exchange.operation = self.name
        await send_response(json_response(200, {"app": self.name}), call, send)


def _request(
    door: FrontDoor, path: str, host: str = "127.0.0.1:9000"
) -> tuple[int, dict[str, str], Any]:
    raw_path, _, query = path.partition("?")
    scope = {
        "type": "http", "method": "GET", "path": raw_path, "raw_path": raw_path.encode(),
        "query_string": query.encode(), "headers": [(b"host", host.encode())],
        "client": ("192.0.2.1", 5000), "scheme": "http",
    }  # fmt: skip
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    asyncio.run(door(scope, receive, send))
    headers = {k.decode(): v.decode() for k, v in sent[0]["headers"]}
    body = b"".join(m.get("body", b"") for m in sent[1:])
    return sent[0]["status"], headers, json.loads(body)


def _door(**kwargs: Any) -> FrontDoor:
    return FrontDoor(
        Named("s3"), [Mount("/_egide/admin/", Named("admin"))], domains=["s3.example"], **kwargs
    )


def test_paths_go_to_their_app() -> None:
    door = _door()
    assert _request(door, "/bucket/key")[2] == {"app": "s3"}
    assert _request(door, "/_egide/admin/jobs")[2] == {"app": "admin"}
    assert _request(door, "/_egide/%61dmin/jobs")[2] == {"app": "admin"}  # decoded path
    # Virtual-hosted: the path is an object key of the bucket, whatever it looks like.
    assert _request(door, "/_egide/admin/jobs", host="photos.s3.example")[2] == {"app": "s3"}


def test_the_reserved_space_is_a_json_404_where_nothing_is_mounted() -> None:
    status, headers, document = _request(_door(), "/_egide/console/")
    assert (status, document) == (
        404,
        {"code": "NotFound", "message": "no such resource: /_egide/console/"},
    )
    assert headers["content-type"] == "application/json"
    assert headers["server"] == "Egide" and len(headers["x-amz-request-id"]) == 16


def test_the_access_log_covers_every_app(caplog: pytest.LogCaptureFixture) -> None:
    logger = logging.getLogger("test.access")
    door = _door(access_log=logger)
    with caplog.at_level(logging.INFO, logger="test.access"):
        _request(door, "/_egide/admin/sites")
        _request(door, "/b/k?X-Amz-Signature=secret")
    lines = [json.loads(record.message) for record in caplog.records]
    assert [(line["path"], line["operation"], line["status"]) for line in lines] == [
        ("/_egide/admin/sites", "admin", 200),
        ("/b/k", "s3", 200),
    ]
    assert lines[1]["query"] == "X-Amz-Signature=REDACTED"
    assert lines[0]["remote"] == "192.0.2.1:5000"


def test_the_lifespan_runs_the_loops_and_closes_at_the_end() -> None:
    events: list[str] = []

    async def loop() -> None:
        events.append("started")
        try:
            await asyncio.sleep(3600)
        finally:
            events.append("stopped")

    async def close() -> None:
        events.append("closed")

    door = _door(background=[loop], closers=[close])

    async def life() -> None:
        messages = asyncio.Queue[dict[str, Any]]()
        replies: list[str] = []

        async def send(message: dict[str, Any]) -> None:
            replies.append(message["type"])

        task = asyncio.create_task(door({"type": "lifespan"}, messages.get, send))
        await messages.put({"type": "lifespan.startup"})
        while not replies or events == []:
            await asyncio.sleep(0)
        await messages.put({"type": "lifespan.shutdown"})
        await task
        assert replies == ["lifespan.startup.complete", "lifespan.shutdown.complete"]

    asyncio.run(life())
    assert events == ["started", "stopped", "closed"]


def test_before_each_runs_before_every_app_answers() -> None:
    """The rights watch's hook: awaited once per request, before the app, whatever the app."""
    seen: list[str] = []

    class Recording(Named):
        async def serve(self, call: Call, send: Send) -> None:
            seen.append(self.name)
            await super().serve(call, send)

    async def before() -> None:
        seen.append("before")

    door = FrontDoor(
        Recording("s3"), [Mount("/_egide/admin/", Recording("admin"))], before_each=before
    )
    for path in ("/bucket/key", "/_egide/admin/jobs", "/_egide/console/"):
        _request(door, path)
    assert seen == ["before", "s3", "before", "admin", "before"]


def test_the_iceberg_catalog_path_is_reserved_too() -> None:
    door = FrontDoor(Named("s3"), [Mount("/_iceberg/", Named("iceberg"))], domains=["s3.example"])
    assert _request(door, "/_iceberg/v1/config")[2] == {"app": "iceberg"}
    assert _request(door, "/_iceberg/v1/config", host="photos.s3.example")[2] == {"app": "s3"}
    assert _request(_door(), "/_iceberg/v1/config")[0] == 404  # not mounted: never S3's
