"""What a provider learns of sizes: only a Padmé class (docs/decisions/0017-size-padding.md).

The classes are computed here from the Padmé definition (Nikitin et al., PETS 2019) and the
shard file layout, independently of egide.coding.padding: every piece file and every pack
segment on the sites must have one of the lengths a padded object can have, while GET, range
GETs, listings and a catalog rebuild still give the true sizes and bytes.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from tests.conftest import Server, ServerFactory
from tests.e2e.test_catalog_recovery import egide, listing, lose_catalog
from tests.e2e.test_self_healing import NO_SCHEDULE
from tests.e2e.test_self_healing import egide as command

from egide.coding.shardfile import ShardFooter, ShardHeader
from egide.domain import SITE_RECORD_PREFIXES

MiB = 1024 * 1024
PART = 5 * MiB
#: Object sizes: 1 byte to 10 MB, across the pack threshold (256 KiB) and block boundaries.
SIZES = [1, 10, 100, 1000, 4095, 4096, 4097, 10_000, 65_537, 200_000, 262_144, 300_000,
         1_000_000, MiB, 2_500_000, 3_333_333, 10_000_000]  # fmt: skip
#: Multipart objects: their parts' sizes.
MULTIPART = [[PART, 1_234_567], [PART, PART + 12_345, 99]]

# The shard file layout (docs/decisions/0002-shard-footer.md): a 52-byte header; per block
# ceil((plaintext + 16-byte GCM tag) / k) piece bytes and a 4-byte CRC; a footer of 22 fixed
# bytes, the sealed manifest (12-byte nonce + JSON + 16-byte tag), a 12-byte tail.
HEADER, TAG, CRC, FOOTER_FIXED, NONCE, TAIL = 52, 16, 4, 22, 12, 12
DATA_FLOOR, MANIFEST_FLOOR = 4096, 1024


def padme_classes(low: int, high: int) -> list[int]:
    """Every length L in [low, high] that Padmé leaves unchanged: with E = floor(log2 L) and
    S = floor(log2 E) + 1, the lengths whose E - S lowest bits are zero."""
    found = []
    for exponent in range(2, high.bit_length()):
        step = 1 << (exponent - exponent.bit_length())
        found += range(1 << exponent, 1 << (exponent + 1), step)
    return [n for n in found if low <= n <= high]


def piece_bytes(plain: int, k: int, block: int) -> int:
    """Piece and CRC bytes of one shard for `plain` plaintext bytes cut in blocks."""
    full, rest = divmod(plain, block)
    one = -(-(block + TAG) // k) + CRC
    return full * one + (-(-(rest + TAG) // k) + CRC if rest else 0)


def allowed_lengths(k: int, block: int) -> set[int]:
    """Every length a shard (standalone file or pack segment) of padded data can have; a
    completion record holds no block (data 0)."""
    data = [0, *(piece_bytes(p, k, block) for p in padme_classes(DATA_FLOOR, 16 * MiB))]
    manifests = padme_classes(MANIFEST_FLOOR, 64 * 1024)
    return {HEADER + d + FOOTER_FIXED + NONCE + q + TAG + TAIL for d in data for q in manifests}


def shard_lengths(server: Server) -> list[tuple[Path, int, int, int]]:
    """(file, length, k, block size) of every shard on the sites: each standalone piece file,
    each segment of each pack (parsed from its clear length prefixes)."""
    found = []
    for site in server.site_dirs():
        for path in (site / "shards").rglob("*"):
            if not path.is_file() or path.name.startswith((*SITE_RECORD_PREFIXES, "snap-")):
                continue
            data = path.read_bytes()
            if not path.name.startswith("pack-"):
                found.append((path, len(data), data[5], int.from_bytes(data[12:16], "big")))
                continue
            position = 0
            while position < len(data):
                length = int.from_bytes(data[position : position + 8], "big")
                segment = data[position + 8 : position + 8 + length]
                found.append((path, length, segment[5], int.from_bytes(segment[12:16], "big")))
                position += 8 + length
            assert position == len(data), f"{path}: not a sequence of segments"
    return found


def put_spread(s3: Any, bucket: str) -> dict[str, bytes]:
    """The SIZES and MULTIPART objects under keys and metadata of varied lengths."""
    bodies: dict[str, bytes] = {}
    for n, size in enumerate(SIZES):
        key, body = f"{'k' * (1 + 37 * n % 300)}/{size}", os.urandom(size)
        s3.put_object(Bucket=bucket, Key=key, Body=body, Metadata={"m": "v" * (n * 41 % 700)})
        bodies[key] = body
    for n, sizes in enumerate(MULTIPART):
        key = f"multi/{n}"
        parts = [os.urandom(size) for size in sizes]
        upload = s3.create_multipart_upload(Bucket=bucket, Key=key)["UploadId"]
        done = [
            {"PartNumber": i, "ETag": s3.upload_part(Bucket=bucket, Key=key, UploadId=upload,
                                                     PartNumber=i, Body=part)["ETag"]}
            for i, part in enumerate(parts, 1)
        ]  # fmt: skip
        s3.complete_multipart_upload(
            Bucket=bucket, Key=key, UploadId=upload, MultipartUpload={"Parts": done}
        )
        bodies[key] = b"".join(parts)
    return bodies


def check_reads(s3: Any, bucket: str, bodies: dict[str, bytes]) -> None:
    """GET, range GETs, HEAD and the listing give the true bytes and sizes."""
    listed = {o["Key"]: o["Size"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"]}
    assert listed == {key: len(body) for key, body in bodies.items()}
    for key, body in bodies.items():
        got = s3.get_object(Bucket=bucket, Key=key)
        assert got["ContentLength"] == len(body)
        assert got["Body"].read() == body, key
        if not key.startswith("multi"):
            assert got["ETag"] == f'"{hashlib.md5(body).hexdigest()}"'
        size = len(body)
        if not size:
            continue
        ranges = {(0, 0), (size - 1, size - 1), (size // 3, size - 1), (size // 2, size * 3 // 4)}
        for first, last in ranges:
            part = s3.get_object(Bucket=bucket, Key=key, Range=f"bytes={first}-{last}")
            assert part["Body"].read() == body[first : last + 1], (key, first, last)
        beyond = s3.get_object(Bucket=bucket, Key=key, Range=f"bytes={max(size - 5, 0)}-")
        assert beyond["Body"].read() == body[max(size - 5, 0) :]  # never the padding


def test_piece_and_pack_sizes_fall_only_on_padding_classes(make_server: ServerFactory) -> None:
    server = make_server()
    s3 = server.client()
    s3.create_bucket(Bucket="spread")
    bodies = put_spread(s3, "spread")
    shards = shard_lengths(server)
    assert len(shards) >= 6 * (len(SIZES) + 2)
    allowed: dict[tuple[int, int], set[int]] = {}
    for path, length, k, block in shards:
        classes = allowed.setdefault((k, block), allowed_lengths(k, block))
        assert length in classes, f"{path}: {length} bytes is no padding class"
    check_reads(s3, "spread", bodies)


def test_a_bucket_with_padding_off_writes_exact_sizes(
    make_server: ServerFactory, tmp_path: Path
) -> None:
    server = make_server("bucket_cache_seconds = 0\n" + NO_SCHEDULE)  # a policy applies at once
    s3 = server.client()
    s3.create_bucket(Bucket="exact")
    s3.put_object(Bucket="exact", Key="before", Body=b"p" * 1_000_000)  # padded: on by default
    policy = tmp_path / "policy.toml"
    policy.write_text("k = 4\nm = 2\npadding = false\n")
    subprocess.run(
        [sys.executable, "-m", "egide", "policy", "set", "exact", str(policy),
         "--config", str(server.config)],
        check=True, capture_output=True, timeout=60,
    )  # fmt: skip
    s3.put_object(Bucket="exact", Key="after", Body=b"x" * 1_000_000)
    s3.put_object(Bucket="exact", Key="small", Body=b"exactly 23 bytes stored")
    classes = allowed_lengths(4, MiB)
    exact = piece_bytes(1_000_000, 4, MiB)
    files = [(path, length) for path, length, _, _ in shard_lengths(server)]
    padded = [length for _, length in files if length in classes]
    unpadded = [length for _, length in files if length not in classes]
    assert len(padded) == 6 and len(unpadded) == 12
    # The exact size shows again: a manifest sealed unpadded, data of 1,000,000 bytes, and a
    # pack segment of a few hundred bytes for 23 bytes.
    large = [length for length in unpadded if length > 4096]
    assert len(large) == 6
    assert all(HEADER + exact < length < HEADER + exact + 1024 for length in large)
    assert all(length < 1000 for length in unpadded if length <= 4096)
    assert s3.get_object(Bucket="exact", Key="after")["Body"].read() == b"x" * 1_000_000
    # The padded version written before still reads, whole and in ranges.
    got = s3.get_object(Bucket="exact", Key="before", Range="bytes=999990-")["Body"].read()
    assert got == b"p" * 10
    head = s3.head_object(Bucket="exact", Key="before")
    assert head["ContentLength"] == 1_000_000
    # Padded and exact versions side by side: a lost site is repaired, scrub finds them sound,
    # a rebuilt catalog reads both.
    bodies = {"before": b"p" * 1_000_000, "after": b"x" * 1_000_000,
              "small": b"exactly 23 bytes stored"}  # fmt: skip
    lost = [
        path for path, _, _, _ in shard_lengths(server) if server.site_dirs()[2] in path.parents
    ]
    for path in set(lost):
        path.unlink()
    repaired = command(server, "repair")
    assert repaired.returncode == 0, repaired.stdout + repaired.stderr
    scrubbed = command(server, "scrub", "--json")
    assert scrubbed.returncode == 0, scrubbed.stderr
    assert json.loads(scrubbed.stdout)["progress"].get("bad_pieces", 0) == 0
    before = listing(s3)
    lose_catalog(server)
    rebuilt = egide(server, "rebuild", "--force", "--json")
    assert rebuilt.returncode == 0, rebuilt.stderr
    assert json.loads(rebuilt.stdout)["degraded"] == 0
    server.start()
    assert listing(server.client()) == before
    check_reads(server.client(), "exact", bodies)


def test_a_rebuilt_catalog_gives_exact_sizes(make_server: ServerFactory) -> None:
    server = make_server()
    s3 = server.client()
    s3.create_bucket(Bucket="rebuilt")
    sizes = [0, 1, 5000, 300_000, 1_000_001]
    bodies = {f"o/{size}": os.urandom(size) for size in sizes}
    for key, body in bodies.items():
        s3.put_object(Bucket="rebuilt", Key=key, Body=body)
    upload = s3.create_multipart_upload(Bucket="rebuilt", Key="multi")["UploadId"]
    parts = [os.urandom(PART), os.urandom(777)]
    done = [
        {"PartNumber": i, "ETag": s3.upload_part(Bucket="rebuilt", Key="multi", UploadId=upload,
                                                 PartNumber=i, Body=part)["ETag"]}
        for i, part in enumerate(parts, 1)
    ]  # fmt: skip
    s3.complete_multipart_upload(
        Bucket="rebuilt", Key="multi", UploadId=upload, MultipartUpload={"Parts": done}
    )
    bodies["multi"] = b"".join(parts)
    before = listing(s3)
    lose_catalog(server)
    rebuilt = egide(server, "rebuild", "--force", "--json")
    assert rebuilt.returncode == 0, rebuilt.stderr
    server.start()
    s3 = server.client()
    assert listing(s3) == before  # sizes, ETags, content hashes
    check_reads(s3, "rebuilt", bodies)


def test_what_a_piece_file_shows_without_the_keys(make_server: ServerFactory) -> None:
    """The clear fields a provider can read: code, block size, piece index, the version id
    (random; no bucket id), and the padded size, never the true one."""
    server = make_server()
    s3 = server.client()
    s3.create_bucket(Bucket="one")
    s3.create_bucket(Bucket="two")
    s3.put_object(Bucket="one", Key="big", Body=os.urandom(1_000_000))
    s3.put_object(Bucket="one", Key="small", Body=b"tiny")
    s3.put_object(Bucket="two", Key="other", Body=os.urandom(300_000))
    headers: dict[int, list[ShardHeader]] = {}
    for site in server.site_dirs():
        for path in (site / "shards").rglob("*"):
            if not path.is_file() or path.name.startswith((*SITE_RECORD_PREFIXES, "snap-")):
                continue
            data = path.read_bytes()
            segment = data[8:] if path.name.startswith("pack-") else data
            header, footer = ShardHeader.decode(segment), ShardFooter.decode(segment)
            assert (header.k, header.m, header.block_size) == (4, 2, MiB)
            # The footer's size is the class; the manifest's length a class too.
            assert footer.size in padme_classes(DATA_FLOOR, 16 * MiB)
            assert len(footer.sealed_manifest) - NONCE - TAG in padme_classes(MANIFEST_FLOOR, 8192)
            headers.setdefault(footer.size, []).append(header)
    # 1,000,000 → 1,015,808; 300,000 → 303,104 (64 KiB-wide classes at 2^18); "tiny" → 4 KiB.
    assert sorted(headers) == [4096, 303_104, 1_015_808]
    for found in headers.values():  # k+m pieces of one version, indexes 0..5
        assert len({h.version_id for h in found}) == 1
        assert sorted(h.index for h in found) == list(range(6))
    # No header names a bucket (decision 0018): pieces group by version, never by bucket.
    assert {h.bucket_id for found in headers.values() for h in found} == {bytes(16)}
