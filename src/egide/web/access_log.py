"""The optional access log: one JSON line per request, with nothing in it that signs anything.

Off by default (`[http] access_log`). A line holds the time, the client's address, method, path
as sent, the query with its signatures and tokens redacted, status, bytes in and out, duration,
the access key id the request named, the operation, the S3 error code and the request id. The
Authorization header is never read here; of a presigned URL's query, X-Amz-Signature,
X-Amz-Security-Token and SigV2's Signature are written as REDACTED (X-Amz-Credential is the
access key id and a scope, no secret).
"""

from __future__ import annotations

import json
import logging
import re
import sys
from dataclasses import dataclass
from datetime import UTC, datetime

from egide.web.request import RequestHead

#: Query parameters whose values are secret or prove possession of one (lower-case).
SECRET_PARAMETERS = frozenset({"x-amz-signature", "x-amz-security-token", "signature"})
REDACTED = "REDACTED"
_CREDENTIAL = re.compile(r"Credential=([^/,\s]+)/")


def redacted_query(raw_query: str) -> str:
    """The query as sent, with the value of every secret parameter replaced."""
    parts = []
    for part in raw_query.split("&"):
        name, eq, _ = part.partition("=")
        parts.append(f"{name}={REDACTED}" if eq and name.lower() in SECRET_PARAMETERS else part)
    return "&".join(parts)


def access_key_of(head: RequestHead) -> str | None:
    """The access key id a request names (signature checked or not)."""
    match = _CREDENTIAL.search(head.header("authorization") or "")
    credential = match.group(1) if match else head.query_value("X-Amz-Credential")
    return credential.split("/", 1)[0] if credential else None


@dataclass
class Exchange:
    """What one request and its response amounted to, filled in as it is served."""

    started: float
    operation: str | None = None
    error: str | None = None
    status: int = 0
    bytes_out: int = 0


def entry(
    head: RequestHead,
    exchange: Exchange,
    *,
    remote: str,
    request_id: str,
    bytes_in: int,
    duration: float,
) -> str:
    record: dict[str, object] = {
        "time": datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "remote": remote,
        "method": head.method,
        "path": head.raw_path,
        "query": redacted_query(head.raw_query),
        "status": exchange.status,
        "bytes_in": bytes_in,
        "bytes_out": exchange.bytes_out,
        "duration_ms": round(duration * 1000, 3),
        "access_key": access_key_of(head),
        "operation": exchange.operation,
        "error": exchange.error,
        "request_id": request_id,
        "user_agent": head.header("user-agent"),
    }
    return json.dumps(record, ensure_ascii=False)


def open_access_log(target: str | None) -> logging.Logger | None:
    """The logger lines go to ("-": standard error, else a file appended to), or None."""
    if target is None:
        return None
    logger = logging.getLogger("egide.access")
    logger.propagate = False
    logger.setLevel(logging.INFO)
    handler: logging.Handler = (
        logging.StreamHandler(sys.stderr)
        if target == "-"
        else logging.FileHandler(target, encoding="utf-8")
    )
    handler.setFormatter(logging.Formatter("%(message)s"))
    logger.handlers[:] = [handler]
    return logger
