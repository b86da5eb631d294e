"""A store written by a real `egide serve` for the command-line tests, and private copies of it.

A town keeps three buckets on six disks described as what they stand for: two in its own
datacenter in Lyon, two rented from OVHcloud (Gravelines, Strasbourg; HDS-certified), two from
AWS (Paris, under EU law and the CLOUD Act; Ashburn, under the CLOUD Act only):

  * archive   — the default policy, 4+2 at most 2 shards per provider; versioned, so it holds
                a noncurrent version and a delete marker, a multipart object and a streamed one;
  * health    — 2+2 on HDS sites never under the CLOUD Act;
  * scratch   — 1+1 on AWS only: cheap, and exactly what the proofs must flag.

The server is stopped once the store is written; each test that damages something works on its
own copy (`store`), so the shared one stays clean.
"""

from __future__ import annotations

import json
import shutil
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from tests.conftest import ACCESS_KEY, SECRET_KEY, Server, free_port
from typer.testing import CliRunner

from egide.cli.main import app

KiB, MiB = 1024, 1024 * 1024

SITES = [
    # name, provider, city, certifications, price per GB-month
    ("lyon-1", "Ville de Lyon", "Lyon", ["HDS"], 0.010),
    ("lyon-2", "Ville de Lyon", "Lyon", ["HDS"], 0.010),
    ("ovh-gra", "OVHcloud", "Gravelines", ["HDS"], 0.007),
    ("ovh-sbg", "OVHcloud", "Strasbourg", ["HDS"], 0.008),
    ("aws-par", "AWS", "Paris", [], 0.024),
    ("aws-iad", "AWS", "Ashburn", [], 0.023),
]


def config_text(port: int) -> str:
    lines = [
        'data_dir = "data"  # beside this file',
        f'listen = "127.0.0.1:{port}"',
        "workers = 1",
        "block_size = 65536",
        "trash_grace_seconds = 0",
        "",
    ]
    for name, provider, city, certifications, price in SITES:
        lines += [
            "[[sites]]",
            f'name = "{name}"',
            f'path = "data/sites/{name}"',
            f'provider = "{provider}"',
            f'city = "{city}"',
            f"certifications = {json.dumps(certifications)}",
            f"storage_gb_month = {price}",
            "egress_gb = 0.01",
            "",
        ]
    lines += [
        "[[policies]]  # the default",
        "k = 4",
        "m = 2",
        "max_per_provider = 2",
        "",
        "[[policies]]",
        'buckets = ["health"]',
        "k = 2",
        "m = 2",
        'certifications = ["HDS"]',
        'exclude_laws = ["us-cloud-act"]',
        "max_per_provider = 2",
        "",
        "[[policies]]",
        'buckets = ["scratch"]',
        "k = 1",
        "m = 1",
        'providers = ["AWS"]',
        "",
        "[[credentials]]",
        f'access_key = "{ACCESS_KEY}"',
        f'secret_key = "{SECRET_KEY}"',
        "",
    ]
    return "\n".join(lines)


def body(name: str, size: int) -> bytes:
    seed = name.encode() * 7
    return (seed * (size // len(seed) + 1))[:size]


def _write(s3: Any) -> None:
    for bucket in ("archive", "health", "scratch"):
        s3.create_bucket(Bucket=bucket)
    s3.put_bucket_versioning(Bucket="archive", VersioningConfiguration={"Status": "Enabled"})
    s3.put_object(Bucket="archive", Key="notes/minutes.txt", Body=body("v1", 3 * KiB))
    s3.put_object(Bucket="archive", Key="notes/minutes.txt", Body=body("v2", 5 * KiB))
    s3.put_object(Bucket="archive", Key="notes/draft.txt", Body=b"to be deleted")
    s3.delete_object(Bucket="archive", Key="notes/draft.txt")  # a delete marker
    s3.put_object(Bucket="archive", Key="scans/plan.tif", Body=body("plan", 700 * KiB))
    s3.put_object(Bucket="archive", Key="empty", Body=b"")
    upload = s3.create_multipart_upload(Bucket="archive", Key="video/council.mp4")
    parts = []
    for number, size in ((1, 5 * MiB), (2, 300 * KiB)):
        part = s3.upload_part(
            Bucket="archive", Key="video/council.mp4", UploadId=upload["UploadId"],
            PartNumber=number, Body=body(f"part{number}", size),
        )  # fmt: skip
        parts.append({"PartNumber": number, "ETag": part["ETag"]})
    s3.complete_multipart_upload(
        Bucket="archive", Key="video/council.mp4", UploadId=upload["UploadId"],
        MultipartUpload={"Parts": parts},
    )  # fmt: skip
    s3.put_object(Bucket="health", Key="records/1.json", Body=b'{"patient": 1}')
    s3.put_object(Bucket="health", Key="scans/1.pdf", Body=body("scan", 400 * KiB))
    s3.put_object(Bucket="scratch", Key="tmp.bin", Body=body("tmp", 2 * KiB))


@pytest.fixture(scope="session")
def seeded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The directory holding egide.toml and data/, written by a real server, then stopped."""
    root = tmp_path_factory.mktemp("seeded")
    port = free_port()
    (root / "egide.toml").write_text(config_text(port))
    server = Server(root / "data", root / "egide.toml", port).start()
    try:
        _write(server.client())
    finally:
        assert server.stop() == 0, server.output()
    yield root


@dataclass
class Store:
    """A private copy of the seeded store, and the command line pointed at it."""

    root: Path

    @property
    def config(self) -> Path:
        return self.root / "egide.toml"

    def egide(self, *args: str) -> Any:
        """Run `egide ARGS --config this` in this process; the CliRunner result."""
        # Wide enough that no table cell wraps in the text the tests read.
        result = CliRunner().invoke(
            app, [*args, "--config", str(self.config)], env={"COLUMNS": "250"}
        )
        if result.exception is not None and not isinstance(result.exception, SystemExit):
            raise result.exception
        return result

    def json(self, *args: str, code: int = 0) -> Any:
        result = self.egide(*args, "--json")
        assert result.exit_code == code, result.output
        return json.loads(result.stdout)

    def sql(self, query: str, *args: object) -> list[tuple[Any, ...]]:
        path = self.root / "data" / "catalog.sqlite3"
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as db:
            return db.execute(query, args).fetchall()

    def versions(self, bucket: str | None = None) -> list[dict[str, Any]]:
        """Every version with data, from the catalog itself."""
        rows = self.sql(
            "SELECT b.name, v.key, v.version_id, v.is_null, v.sites, v.pack, v.k, v.m, v.parts "
            "FROM versions v JOIN buckets b ON b.id = v.bucket_id WHERE v.delete_marker = 0"
        )
        out = []
        for name, key, version_id, is_null, sites, pack, k, m, parts in rows:
            if bucket is None or name == bucket:
                out.append(
                    {
                        "bucket": name, "key": key,
                        "version": "null" if is_null else version_id.hex(),
                        "version_id": version_id, "sites": json.loads(sites), "pack": pack,
                        "k": k, "m": m, "parts": json.loads(parts) if parts else [],
                    }
                )  # fmt: skip
        return out

    def shard_file(self, version: dict[str, Any], index: int) -> Path:
        """The file holding shard `index` of a (single-part) version on its site."""
        name = version["pack"] or f"{version['version_id'].hex()}-0-{index}"
        site = version["sites"][index]
        return self.root / "data" / "sites" / site / "shards" / name[:2] / name


@pytest.fixture
def store(seeded: Path, tmp_path: Path) -> Store:
    shutil.copytree(seeded, tmp_path / "store")
    return Store(tmp_path / "store")
