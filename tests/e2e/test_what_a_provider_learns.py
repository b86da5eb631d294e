"""What a provider holding one site can learn from names and clear bytes (decision 0018): not
how active each bucket is, not how many parts a multipart object has."""

from __future__ import annotations

import re
import sqlite3
import time
from collections import Counter
from pathlib import Path

from tests.conftest import Server, ServerFactory
from tests.e2e.test_catalog_recovery import SCHEDULE, egide, lose_catalog, settings_recorded

from egide.coding.shardfile import HEADER_SIZE, ShardHeader
from egide.domain import SITE_RECORD_PREFIXES

RECORD_PREFIXES = ("mark-", "amend-", "bset-")
_HEX_ID = re.compile(r"[0-9a-f]{32}")
_PIECE = re.compile(r"^([0-9a-f]{32})-(\d+)-(\d+)$")
PART = 5 * 1024 * 1024


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
    # No other file names a bucket either, in its name or its clear bytes (shard headers
    # hold none), but its key record: `keys-<bucket id>`, one per bucket, which a rebuild
    # with the master key alone needs to find.
    for path in site_files(server):
        data = path.read_bytes()
        for bucket_id in ids.values():
            assert bucket_id not in data, path
            assert bucket_id.hex() not in path.name or path.name == f"keys-{bucket_id.hex()}"
    # Nor do names group records: each has one random id of its own (a marker's or an
    # object version's, or drawn for a settings record), shared with no other record.
    names = {p.name for p in records}
    tokens = Counter(token for name in names for token in _HEX_ID.findall(name))
    assert all(len(_HEX_ID.findall(name)) == 1 for name in names)
    assert set(tokens.values()) == {1}
    # And what was recorded still gives everything back (the records open).
    for bucket in activity:
        versions = s3.list_object_versions(Bucket=bucket)
        assert len(versions["DeleteMarkers"]) == activity[bucket]


def test_part_counts_cannot_be_told(make_server: ServerFactory) -> None:
    server = make_server()
    s3 = server.client()
    s3.create_bucket(Bucket="media")
    bodies: dict[str, bytes] = {}
    for count in (1, 3, 7):
        key = f"parts-{count}"
        upload = s3.create_multipart_upload(Bucket="media", Key=key)["UploadId"]
        parts = []
        for n in range(1, count + 1):
            body = bytes([n]) * (PART if n < count else 1000 + n)
            bodies[key] = bodies.get(key, b"") + body
            etag = s3.upload_part(
                Bucket="media", Key=key, UploadId=upload, PartNumber=n, Body=body
            )["ETag"]
            parts.append({"PartNumber": n, "ETag": etag})
        s3.complete_multipart_upload(
            Bucket="media", Key=key, UploadId=upload, MultipartUpload={"Parts": parts}
        )
    (bucket_id,) = bucket_ids(server).values()
    for site in server.site_dirs():
        pieces = [
            p for p in site.rglob("*")
            if p.is_file() and "shards" in p.parts and not p.name.startswith(SITE_RECORD_PREFIXES)
        ]  # fmt: skip
        # One file per part (1 + 3 + 7) and per completion record (3) on each site ...
        assert len(pieces) == 11 + 3
        ids: Counter[bytes] = Counter()
        for path in pieces:
            match = _PIECE.match(path.name)
            assert match is not None, path.name
            # ... each named by an id of its own, no part number in the name ...
            assert match[2] == "0", f"{path.name} names a part attempt"
            with path.open("rb") as f:
                header = ShardHeader.decode(f.read(HEADER_SIZE))
            # ... and a clear header that holds that id, no bucket, no part: nothing groups
            # the files of one object, so its part count cannot be read off the site.
            assert (header.version_id.hex(), header.part) == (match[1], 0)
            assert header.bucket_id == bytes(16) and bucket_id not in path.read_bytes()[:64]
            ids[header.version_id] += 1
        assert set(ids.values()) == {1}
    for key, body in bodies.items():
        assert s3.get_object(Bucket="media", Key=key)["Body"].read() == body
    # The catalog rebuilt from the sites finds every part again (the completion records,
    # sealed, list the parts' ids).
    lose_catalog(server)
    rebuilt = egide(server, "rebuild", "--force")
    assert rebuilt.returncode == 0, rebuilt.stderr
    server.start()
    s3 = server.client()
    for key, body in bodies.items():
        got = s3.get_object(Bucket="media", Key=key)
        assert got["Body"].read() == body and got["ETag"].endswith(f'-{key.split("-")[1]}"')
