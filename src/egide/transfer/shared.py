"""What `egide export` and `egide import` share: where data goes or comes from, the job
parameters (never a secret: they live in the catalog), the cursor, and finding the unfinished
job a rerun of the same command resumes.

Both jobs go key by key in the order S3 lists keys. The cursor holds the phase (count, copy,
verify, done), the last key completed and the length of the ledger (the manifest, or a file in
the data directory for S3 destinations and imports) that vouches for it; a resumed job cuts the
ledger back to that length and goes on after that key. The end is a verification: the
destination is listed again and each object's size and checksum compared with what was read.
"""

from __future__ import annotations

import hashlib
import os
import time
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote

from egide.domain import TAGGING_HEADER, Job
from egide.engine.jobs import JobQueue
from egide.transfer.dirlayout import ManifestEntry
from egide.transfer.s3endpoint import (
    HEADER_PARAMS,
    S3Credentials,
    S3Location,
    TransferError,
)

META_PREFIX = "x-amz-meta-"
#: Problems kept by name in the cursor (all are counted).
KEEP_PROBLEMS = 50
UNFINISHED = ("queued", "running", "paused", "failed")

Location = Path | S3Location


def location_params(location: Location) -> dict[str, object]:
    if isinstance(location, Path):
        return {"kind": "dir", "path": str(location)}
    return {"kind": "s3", **asdict(location)}


def location_from_params(value: object) -> Location:
    if not isinstance(value, dict):
        raise TransferError(f"job parameters name no location: {value!r}")
    if value.get("kind") == "dir":
        return Path(str(value["path"]))
    return S3Location(
        str(value["bucket"]), str(value.get("prefix") or ""),
        _optional(value.get("endpoint")), _optional(value.get("region")),
    )  # fmt: skip


def _optional(value: object) -> str | None:
    return None if value is None else str(value)


def describe(location: Location) -> str:
    return str(location) if isinstance(location, Path) else location.url()


@dataclass
class TransferRuntime:
    """What a run needs that the catalog must not keep: the S3 credentials (each run takes
    them again from its options or environment) and where ledgers go (the data directory)."""

    credentials: S3Credentials = field(default_factory=S3Credentials)
    ledger_dir: Path | None = None


def runtime_of(options: dict[str, object]) -> TransferRuntime:
    found = options.get("transfer")
    return found if isinstance(found, TransferRuntime) else TransferRuntime()


@dataclass
class Cursor:
    """Where an export or import stands; saved after every object."""

    phase: str = "start"
    after: str | None = None
    #: With --all-versions: the (source) version id of `after` done last; None when every
    #: version of `after` is done.
    after_version: str | None = None
    ledger_bytes: int = 0
    total: int = 0
    total_bytes: int = 0
    #: Objects not copied and why ([key, reason]); counted in `skipped_count`.
    skipped: list[list[str]] = field(default_factory=list)
    skipped_count: int = 0
    verified: int = 0
    mismatches: list[list[str]] = field(default_factory=list)
    mismatch_count: int = 0

    @classmethod
    def load(cls, saved: dict[str, object] | None) -> Cursor:
        if saved is None:
            return cls()
        known = {name: saved[name] for name in cls.__dataclass_fields__ if name in saved}
        return cls(**known)  # type: ignore[arg-type]

    def dump(self) -> dict[str, object]:
        return asdict(self)

    def skip(self, key: str, reason: str, after_version: str | None = None) -> Cursor:
        kept = (
            self.skipped if len(self.skipped) >= KEEP_PROBLEMS else [*self.skipped, [key, reason]]
        )
        return replace(self, after=key, after_version=after_version, skipped=kept,
                       skipped_count=self.skipped_count + 1)  # fmt: skip


@dataclass
class Verification:
    """The end of a transfer: each object read compared with what the destination holds."""

    verified: int = 0
    mismatches: list[list[str]] = field(default_factory=list)
    mismatch_count: int = 0

    def check(self, key: str, problem: str | None) -> None:
        if problem is None:
            self.verified += 1
            return
        self.mismatch_count += 1
        if len(self.mismatches) < KEEP_PROBLEMS:
            self.mismatches.append([key, problem])

    def into(self, cursor: Cursor) -> Cursor:
        return replace(
            cursor, phase="done", verified=self.verified, mismatches=self.mismatches,
            mismatch_count=self.mismatch_count,
        )  # fmt: skip


# -- object metadata --------------------------------------------------------------------------


def split_headers(stored: dict[str, str]) -> tuple[dict[str, str], dict[str, str], dict[str, str]]:
    """An Égide version's headers as (standard headers, user metadata, tags)."""
    headers = {name: value for name, value in stored.items() if name in HEADER_PARAMS}
    metadata = {
        name[len(META_PREFIX) :]: value
        for name, value in stored.items()
        if name.startswith(META_PREFIX)
    }
    tags = {}
    for pair in filter(None, stored.get(TAGGING_HEADER, "").split("&")):
        key, _, value = pair.partition("=")
        tags[unquote(key)] = unquote(value)
    return headers, metadata, tags


def join_headers(
    headers: dict[str, str], metadata: dict[str, str], tags: dict[str, str]
) -> dict[str, str]:
    """The headers Égide keeps for an object (the inverse of `split_headers`)."""
    stored = {name: value for name, value in headers.items() if name in HEADER_PARAMS}
    stored.setdefault("content-type", "binary/octet-stream")
    stored.update({META_PREFIX + name.lower(): value for name, value in metadata.items()})
    if tags:
        # The stored form of egide.s3.tagging: query-encoded, in key order.
        stored[TAGGING_HEADER] = "&".join(
            f"{quote(k, safe='')}={quote(tags[k], safe='')}" for k in sorted(tags)
        )
    return stored


def iso8601(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class Digests:
    """MD5 and SHA-256 of a stream, fed as it passes (an engine `Hasher`). Without `md5`, the
    MD5 is left to the engine, which computes it as the ETag anyway."""

    def __init__(self, *, md5: bool = True) -> None:
        self.md5 = hashlib.md5() if md5 else None
        self.sha256 = hashlib.sha256()
        self.size = 0

    def update(self, data: bytes, /) -> None:
        if self.md5 is not None:
            self.md5.update(data)
        self.sha256.update(data)
        self.size += len(data)

    def md5_hex(self) -> str:
        return self.md5.hexdigest() if self.md5 is not None else ""


def entry(
    key: str,
    digests: Digests,
    etag: str,
    last_modified: float,
    stored: dict[str, str],
    *,
    md5: str | None = None,
    **extra: Any,
) -> ManifestEntry:
    headers, metadata, tags = split_headers(stored)
    return ManifestEntry(
        key=key, size=digests.size, etag=etag, md5=md5 or digests.md5_hex(),
        sha256=digests.sha256.hexdigest(), last_modified=iso8601(last_modified),
        headers=headers, metadata=metadata, tags=tags, **extra,
    )  # fmt: skip


# -- jobs ------------------------------------------------------------------------------------


def same_transfer(job: Job, kind: str, params: dict[str, object]) -> bool:
    """Whether `job` is the transfer these params describe (ledger names aside)."""
    ignore = ("ledger",)
    mine = {k: v for k, v in params.items() if k not in ignore}
    theirs = {k: v for k, v in job.params.items() if k not in ignore}
    return job.kind == kind and mine == theirs


async def find_unfinished(jobs: JobQueue, kind: str, params: dict[str, object]) -> Job | None:
    """The unfinished job doing the same transfer, which a rerun resumes instead of starting
    over (the oldest, if there were several)."""
    found = [
        job
        for job in await jobs.listed(UNFINISHED, limit=10_000)
        if same_transfer(job, kind, params)
    ]
    return min(found, key=lambda job: job.id) if found else None


def ledger_path(directory: Path, kind: str) -> Path:
    """A new ledger file, in the data directory, for an export to S3 or an import."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    return directory / "transfers" / f"{kind}-{stamp}-{os.urandom(4).hex()}.jsonl"
