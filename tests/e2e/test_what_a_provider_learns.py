"""What a provider holding one site can learn from names and clear bytes (decision 0018): not
how active each bucket is, not how many parts a multipart object has."""

from __future__ import annotations

import re
import sqlite3
import time
from collections import Counter
from pathlib import Path

from tests.conftest import Server, ServerFactory
from tests.e2e.test_catalog_recovery import SCHEDULE, settings_recorded

RECORD_PREFIXES = ("mark-", "amend-", "bset-")
_HEX_ID = re.compile(r"[0-9a-f]{32}")


def bucket_ids(server: Server) -> dict[str, bytes]:
    path = server.data_dir / "catalog.sqlite3"
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as db:
        found = {name: bytes(bid) for bid, name in db.execute("SELECT id, name FROM buckets")}
    db.close()
    return found


def site_files(server: Server) -> list[Path]:
    return [p for site in server.site_dirs() for p in site.rglob("*") if p.is_file()]


def test_records_say_nothing_countable_per_bucket(make_server: ServerFactory) -> None:
    server = make_server(SCHEDULE)
    s3 = server.client()
    activity = {"busy": 12, "quiet": 2}
    for bucket, count in activity.items():
        s3.create_bucket(Bucket=bucket)
        s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
        for i in range(count):
            s3.put_object(Bucket=bucket, Key=f"k{i}", Body=b"x" * 100)
            tags = {"TagSet": [{"Key": "n", "Value": str(i)}]}
            s3.put_object_tagging(Bucket=bucket, Key=f"k{i}", Tagging=tags)
            s3.delete_object(Bucket=bucket, Key=f"k{i}")  # a delete marker
    for origin in ("a.example", "b.example", "c.example"):  # busy settings too
        rule = {"AllowedMethods": ["GET"], "AllowedOrigins": [f"https://{origin}"]}
        s3.put_bucket_cors(Bucket="busy", CORSConfiguration={"CORSRules": [rule]})
        deadline = time.monotonic() + 30
        while not settings_recorded(server):  # the servers' housekeeping, every second here
            assert time.monotonic() < deadline, "bucket settings not recorded"
            time.sleep(0.3)
    ids = bucket_ids(server)
    records = [p for p in site_files(server) if p.name.startswith(RECORD_PREFIXES)]
    kinds = Counter(p.name.split("-")[0] for p in records)
    sites = len(server.site_dirs())
    # Every marker and amendment, of both buckets, is there; one settings record a bucket.
    assert kinds == {"mark": 14 * sites, "amend": 14 * sites, "bset": 2 * sites}
    for path in records:
        data = path.read_bytes()
        for bucket_id in ids.values():
            # Neither the name nor the clear bytes name the bucket ...
            assert bucket_id.hex() not in path.name, path.name
            assert bucket_id not in data and bucket_id.hex().encode() not in data
    # ... nor group records: each name has one random id of its own (a marker's or an
    # object version's, or drawn for a settings record), shared with no other record.
    names = {p.name for p in records}
    tokens = Counter(token for name in names for token in _HEX_ID.findall(name))
    assert all(len(_HEX_ID.findall(name)) == 1 for name in names)
    assert set(tokens.values()) == {1}
    # And what was recorded still gives everything back (the records open).
    for bucket in activity:
        versions = s3.list_object_versions(Bucket=bucket)
        assert len(versions["DeleteMarkers"]) == activity[bucket]
