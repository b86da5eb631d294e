"""Reports that prove something at a given time, and say whether anything changed since.

A report is canonical JSON (keys sorted, no spaces, UTF-8, no final newline), so that its
SHA-256 is that of the file as written: `sha256sum report.json` gives the digest recorded in the
catalog. Its `content_sha256` covers everything but the time it was made (`generated_at`), so
two checks of an unchanged store have the same content digest, and a later check can say
"unchanged since the report of <time>" without keeping the report itself.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from egide.catalog.base import Catalog, RecordedReport

POLICY_CHECK = "policy-check"


def canonical(document: object) -> bytes:
    return json.dumps(
        document, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    ).encode()


def content_sha256(content: dict[str, object]) -> str:
    return hashlib.sha256(canonical(content)).hexdigest()


def iso(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True)
class Comparison:
    """This result against the last report recorded for the same scope."""

    previous: RecordedReport | None
    content_sha256: str

    @property
    def changed(self) -> bool | None:
        if self.previous is None:
            return None
        return self.previous.content_sha256 != self.content_sha256

    def describe(self) -> str:
        if self.previous is None:
            return "no earlier report recorded for this scope"
        verdict = "changed" if self.changed else "unchanged"
        return (
            f"{verdict} since the report of {iso(self.previous.created)} "
            f"(sha256 {self.previous.sha256[:16]}…)"
        )

    def as_dict(self) -> dict[str, object]:
        previous = self.previous
        return {
            "content_sha256": self.content_sha256,
            "changed": self.changed,
            "previous": None
            if previous is None
            else {
                "created": iso(previous.created),
                "sha256": previous.sha256,
                "content_sha256": previous.content_sha256,
                "summary": previous.summary,
            },
        }


async def compare(
    catalog: Catalog, kind: str, scope: str, content: dict[str, object]
) -> Comparison:
    return Comparison(await catalog.last_report(kind, scope), content_sha256(content))


def render(content: dict[str, object], created: float) -> bytes:
    """The report file: the content, its digest and when it was made."""
    digest = content_sha256(content)
    return canonical({**content, "generated_at": iso(created), "content_sha256": digest})


async def write_report(
    catalog: Catalog,
    path: Path,
    kind: str,
    scope: str,
    content: dict[str, object],
    summary: str,
    *,
    created: float | None = None,
) -> RecordedReport:
    """Write the report to `path` (atomically: a reader never sees half of it), then record its
    digests and time in the catalog."""
    created = time.time() if created is None else created
    data = render(content, created)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)
    record = RecordedReport(
        kind=kind,
        scope=scope,
        created=created,
        sha256=hashlib.sha256(data).hexdigest(),
        content_sha256=content_sha256(content),
        summary=summary,
    )
    await catalog.record_report(record)
    return record
