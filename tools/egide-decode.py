#!/usr/bin/env python3
"""Read an Égide store without Égide: list and restore a bucket's objects from the sites.

Reversibility must not depend on Égide existing. This file needs only the Python standard
library, `cryptography` and `zfec`; given the site directories (or S3 buckets) and the master key
file, it lists and restores every object of a bucket with its metadata, from any k of the k+m
pieces of each block, without the catalog. The format it reads is docs/format.md, as every
Égide version wrote it: padded or exact sizes, names and clear headers with or without bucket
ids, side by side.

    python egide-decode.py --key master.key --site /srv/a --site /srv/b … buckets
    python egide-decode.py --key master.key --site … list BUCKET [--all-versions] [--json]
    python egide-decode.py --key master.key --site … restore BUCKET OUT [--all-versions]
    python egide-decode.py --key master.key --s3 https://host/bucket/prefix/ … (S3 sites)

`restore` writes OUT/objects/<version id> (the bytes), OUT/manifest.jsonl (one JSON line per
version: key, version id, latest, size, ETag, times, content type, user metadata, tags, all
stored headers, object lock, SHA-256, file) and OUT/bucket.json (the bucket and its settings).
Exit status: 0 everything restored, 1 some objects could not be, 2 nothing done (bad key, …).
An object written with a customer-provided key (SSE-C) cannot be restored without that key,
which Égide never keeps: `list` marks it, `restore` names it on standard error and exits 1.
"""

from __future__ import annotations

import argparse
import datetime
import getpass
import hashlib
import hmac
import json
import os
import re
import struct
import sys
import unicodedata
import urllib.error
import urllib.parse
import urllib.request
import xml.etree.ElementTree as ElementTree
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

import zfec
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.argon2 import Argon2id

# -- format constants (docs/format.md) ---------------------------------------------------------

HEADER = struct.Struct(">4sBBBBII16s16s")  # magic, format, k, m, index, part, block size, ids
HEADER_SIZE = HEADER.size + 4  # + CRC32C of the header
FOOTER_FIXED = struct.Struct(">QQHI")  # block count, size, wrapped key length, manifest length
FOOTER_TAIL = struct.Struct(">II4s")  # footer body length, its CRC32C, magic
PACK_LENGTH = struct.Struct(">Q")
NONCE = struct.Struct(">IQ")  # part, block index
TAG_SIZE = 16
NONCE_SIZE = 12
CHECKSUM_SIZE = 4
TAGGING_HEADER = "x-amz-tagging"
META_PREFIX = "x-amz-meta-"
#: In the manifest headers of a version stored under a customer-provided key (SSE-C).
CUSTOMER_KEY_HEADER = "x-amz-server-side-encryption-customer-key-hmac"


class DecodeError(Exception):
    """Something this tool cannot get past; the message says what."""


def warn(message: str) -> None:
    print(f"egide-decode: {message}", file=sys.stderr)


# -- CRC32C (Castagnoli), which the standard library lacks -------------------------------------


def _crc_tables() -> list[list[int]]:
    """Slicing-by-8 tables: eight bytes per step in pure Python."""
    first = []
    for n in range(256):
        crc = n
        for _ in range(8):
            crc = (crc >> 1) ^ 0x82F63B78 if crc & 1 else crc >> 1
        first.append(crc)
    tables = [first]
    for _ in range(7):
        tables.append([(tables[-1][n] >> 8) ^ first[tables[-1][n] & 0xFF] for n in range(256)])
    return tables


_T = _crc_tables()


def crc32c(data: bytes) -> int:
    t0, t1, t2, t3, t4, t5, t6, t7 = _T
    crc = 0xFFFFFFFF
    whole = len(data) - len(data) % 8
    for (word,) in struct.iter_unpack("<Q", memoryview(data)[:whole]):
        x = crc ^ word
        crc = (
            t7[x & 0xFF]
            ^ t6[(x >> 8) & 0xFF]
            ^ t5[(x >> 16) & 0xFF]
            ^ t4[(x >> 24) & 0xFF]
            ^ t3[(x >> 32) & 0xFF]
            ^ t2[(x >> 40) & 0xFF]
            ^ t1[(x >> 48) & 0xFF]
            ^ t0[x >> 56]
        )
    for byte in data[whole:]:
        crc = t0[(crc ^ byte) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


# -- file names: the one place they are parsed ------------------------------------------------


@dataclass(frozen=True)
class Name:
    """What a file name on a site says: its kind, the bucket id it names (b"" if none: names
    written since decision 0018 name no bucket), and its other ids and numbers in order."""

    name: str
    kind: str  # shard, pack, keys, mark, amend, bset, creds, snap, other
    bucket: bytes = b""
    ids: tuple[bytes, ...] = ()
    numbers: tuple[int, ...] = ()


_ID, _NUMBER, _BUCKET = r"([0-9a-f]{32})", r"(\d{1,20})", r"(?P<bucket>[0-9a-f]{32})"
_NAMES = [  # kind, pattern; the groups: 32 hex digits an id, else a number
    ("shard", f"{_ID}-{_NUMBER}-{_NUMBER}"),  # version (or part file) id, part, piece index
    ("pack", f"pack-{_ID}"),  # random id
    ("keys", f"keys-{_BUCKET}"),
    ("mark", f"mark-{_ID}"),  # delete marker's version id
    ("mark", f"mark-{_BUCKET}-{_ID}"),  # before decision 0018: the bucket id first
    ("amend", f"amend-{_ID}-{_NUMBER}"),  # version id, number
    ("amend", f"amend-{_BUCKET}-{_ID}-{_NUMBER}"),  # before 0018
    ("bset", f"bset-{_ID}"),  # random id (bucket id and number sealed inside)
    ("bset", f"bset-{_BUCKET}-{_NUMBER}"),  # before 0018: bucket id, number
    ("creds", f"creds-{_NUMBER}"),  # number
    ("snap", r"snap-.*"),  # catalog snapshots (not needed here)
]
_PATTERNS = [(kind, re.compile(f"^{pattern}$")) for kind, pattern in _NAMES]


def parse_name(name: str) -> Name:
    """The one place file names are read (docs/format.md, "Sites and file names")."""
    for kind, pattern in _PATTERNS:
        found = pattern.match(name)
        if found:
            bucket = found.groupdict().get("bucket")
            groups = found.groups()[1:] if bucket else found.groups()  # the bucket's is first
            return Name(
                name,
                kind,
                bytes.fromhex(bucket) if bucket else b"",
                tuple(bytes.fromhex(g) for g in groups if len(g) == 32),
                tuple(int(g) for g in groups if len(g) != 32),
            )
    return Name(name, "other")


# -- sites -------------------------------------------------------------------------------------


class Site:
    """A place holding files by name: a local site directory or an S3 bucket and prefix."""

    label: str
    #: Every file of the site and its size, once listed.
    sizes: dict[str, int]

    def files(self) -> dict[str, int]:
        """Every file of the site and its size; empty (with a warning) if unreadable."""
        raise NotImplementedError

    def read(self, name: str, offset: int, length: int) -> bytes:
        raise NotImplementedError


class LocalSite(Site):
    """Files under ROOT/shards/<first two characters of the name>/<name>."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.label = str(root)

    def files(self) -> dict[str, int]:
        shards = self.root / "shards"
        if not shards.is_dir():
            warn(f"site {self.root}: no shards directory, taken as lost")
            return {}
        return {
            p.name: p.stat().st_size for d in shards.iterdir() if d.is_dir() for p in d.iterdir()
        }

    def read(self, name: str, offset: int, length: int) -> bytes:
        with open(self.root / "shards" / name[:2] / name, "rb") as f:
            f.seek(offset)
            return f.read(length)


class S3Site(Site):
    """Files as objects PREFIX<name> of one bucket, read with AWS Signature Version 4."""

    def __init__(self, url: str, access: str, secret: str, region: str, virtual: bool) -> None:
        parsed = urllib.parse.urlsplit(url)
        path = parsed.path.lstrip("/")
        bucket, _, self.prefix = path.partition("/")
        if parsed.scheme not in ("http", "https") or not bucket:
            raise DecodeError(f"{url}: an S3 site is http(s)://host[:port]/bucket[/prefix]")
        self.access = urllib.parse.unquote(parsed.username or access)
        self.secret = urllib.parse.unquote(parsed.password or secret)
        if not self.access or not self.secret:
            raise DecodeError(f"{url}: no credentials (--access-key/--secret-key or AWS_*)")
        host = parsed.hostname or ""
        netloc = host + (f":{parsed.port}" if parsed.port else "")
        self.region = region
        if virtual:
            self.base, self.path = f"{parsed.scheme}://{bucket}.{netloc}", "/"
            self.host = f"{bucket}.{netloc}"
        else:
            self.base, self.path, self.host = f"{parsed.scheme}://{netloc}", f"/{bucket}/", netloc
        self.label = url.replace(f"{parsed.username}:{parsed.password}@", "")

    def _request(self, key: str, query: dict[str, str], headers: dict[str, str]) -> bytes:
        path = self.path + urllib.parse.quote(key, safe="/~")
        now = datetime.datetime.now(datetime.UTC)
        stamp, day = now.strftime("%Y%m%dT%H%M%SZ"), now.strftime("%Y%m%d")
        empty = hashlib.sha256(b"").hexdigest()
        signed = {"host": self.host, "x-amz-content-sha256": empty, "x-amz-date": stamp}
        canonical_query = "&".join(
            f"{urllib.parse.quote(k, safe='~')}={urllib.parse.quote(v, safe='~')}"
            for k, v in sorted(query.items())
        )
        canonical = "\n".join(
            [
                "GET",
                path,
                canonical_query,
                "".join(f"{k}:{v}\n" for k, v in sorted(signed.items())),
                ";".join(sorted(signed)),
                empty,
            ]
        )
        scope = f"{day}/{self.region}/s3/aws4_request"
        to_sign = "\n".join(
            ["AWS4-HMAC-SHA256", stamp, scope, hashlib.sha256(canonical.encode()).hexdigest()]
        )
        key_bytes = ("AWS4" + self.secret).encode()
        for part in (day, self.region, "s3", "aws4_request"):
            key_bytes = hmac.new(key_bytes, part.encode(), hashlib.sha256).digest()
        signature = hmac.new(key_bytes, to_sign.encode(), hashlib.sha256).hexdigest()
        authorization = (
            f"AWS4-HMAC-SHA256 Credential={self.access}/{scope}, "
            f"SignedHeaders={';'.join(sorted(signed))}, Signature={signature}"
        )
        url = self.base + path + (f"?{canonical_query}" if canonical_query else "")
        request = urllib.request.Request(
            url, headers={**signed, **headers, "Authorization": authorization}
        )
        with urllib.request.urlopen(request, timeout=60) as response:
            data: bytes = response.read()
            return data

    def files(self) -> dict[str, int]:
        found: dict[str, int] = {}
        query = {"list-type": "2", "prefix": self.prefix}
        try:
            while True:
                root = ElementTree.fromstring(self._request("", query, {}))
                for item in root.iter():
                    item.tag = item.tag.rsplit("}", 1)[-1]
                for content in root.findall("Contents"):
                    name = (content.findtext("Key") or "")[len(self.prefix) :]
                    if name and "/" not in name:
                        found[name] = int(content.findtext("Size") or 0)
                token = root.findtext("NextContinuationToken")
                if root.findtext("IsTruncated") != "true" or not token:
                    return found
                query["continuation-token"] = token
        except (OSError, ElementTree.ParseError) as exc:
            warn(f"site {self.label}: cannot list ({exc}), taken as lost")
            return {}

    def read(self, name: str, offset: int, length: int) -> bytes:
        if length == 0:
            return b""
        ranged = {"Range": f"bytes={offset}-{offset + length - 1}"}
        return self._request(self.prefix + name, {}, ranged)


# -- keys --------------------------------------------------------------------------------------


def unwrap(kek: bytes, wrapped: bytes, context: bytes) -> bytes | None:
    """A key or record sealed by `wrap`: 12-byte nonce + AES-256-GCM(secret), AAD `context`."""
    if len(wrapped) < NONCE_SIZE + TAG_SIZE:
        return None
    try:
        return AESGCM(kek).decrypt(wrapped[:NONCE_SIZE], wrapped[NONCE_SIZE:], context)
    except InvalidTag:
        return None


def master_key(path: Path, passphrase: str | None) -> bytes:
    """The key of a master key file, plain (v1) or sealed under a passphrase (v2)."""
    lines = path.read_text().strip().split("\n")
    if lines[0] == "egide-master-key-v1" and len(lines) == 2:
        key = bytes.fromhex(lines[1].strip())
    elif lines[0] == "egide-master-key-v2-argon2id" and len(lines) == 3:
        fields = dict(f.split("=", 1) for f in lines[1].split()[1:])
        if passphrase is None:
            if not sys.stdin.isatty():
                raise DecodeError(
                    f"{path} is protected: give --passphrase-file or EGIDE_PASSPHRASE"
                )
            passphrase = getpass.getpass(f"Passphrase of {path}: ")
        derived = Argon2id(
            salt=bytes.fromhex(fields["salt"]),
            length=32,
            iterations=int(fields["t"]),
            lanes=int(fields["p"]),
            memory_cost=int(fields["m"]),
        ).derive(unicodedata.normalize("NFC", passphrase).encode())
        sealed = bytes.fromhex(lines[2].strip())
        try:
            key = AESGCM(derived).decrypt(
                sealed[:NONCE_SIZE], sealed[NONCE_SIZE:], "\n".join(lines[:2]).encode()
            )
        except InvalidTag:
            raise DecodeError(f"wrong passphrase for {path}") from None
    else:
        raise DecodeError(f"{path} is not an Égide master key file")
    if len(key) != 32:
        raise DecodeError(f"{path} holds a key of the wrong size")
    return key


# -- records beside the shards -----------------------------------------------------------------


#: The records beside the shards this tool reads.
RECORDS = ("keys", "mark", "amend", "bset")


class Listing:
    """Every file found on the sites and where; the records by kind and what they are about."""

    def __init__(self, sites: Sequence[Site]) -> None:
        self.where: dict[str, list[Site]] = {}
        for site in sites:
            site.sizes = site.files()
            for name in site.sizes:
                self.where.setdefault(name, []).append(site)
        self._records: dict[tuple[str, bytes], list[Name]] = {}
        for name in self.where:
            parsed = parse_name(name)
            if parsed.kind in RECORDS:  # about: the first id after the bucket's (if any)
                about = parsed.ids[0] if parsed.ids else b""
                self._records.setdefault((parsed.kind, about), []).append(parsed)

    def records(self, kind: str, bucket_id: bytes = b"", about: bytes = b"") -> list[Name]:
        """The records of `kind`, the newest first by the number in their name. With
        `bucket_id`, only those that may be that bucket's: naming it, or naming no bucket (since
        decision 0018 only the bucket's key tells). With `about`, only those about that id."""
        if about:
            found = self._records.get((kind, about), [])
        else:
            found = [n for (k, _), names in self._records.items() if k == kind for n in names]
        if bucket_id:
            found = [name for name in found if name.bucket in (b"", bucket_id)]
        return sorted(found, key=lambda name: (name.numbers, name.name), reverse=True)

    def read_record(self, name: str, keys: Sequence[bytes], context: bytes) -> Iterator[Any]:
        """The JSON document of each copy of record `name` that opens under one of `keys` with
        associated data `context` (the one place records are read)."""
        for site in self.where.get(name, []):
            try:
                sealed = site.read(name, 0, site.sizes[name])
            except OSError:
                continue
            for key in keys:
                opened = unwrap(key, sealed, context)
                if opened is not None:
                    yield json.loads(opened)
                    break


@dataclass
class Bucket:
    id: bytes
    name: str
    created: float
    #: The bucket key generations, the current first.
    keys: list[bytes]
    settings: dict[str, str] = field(default_factory=dict)


def read_buckets(listing: Listing, master: bytes) -> dict[str, Bucket]:
    """Every bucket with a key record, by name (the newest of a name created twice). Of the
    copies of a record, the one listing the most key generations (a rotation adds one)."""
    buckets: dict[str, Bucket] = {}
    for record in listing.records("keys"):
        bucket_id = record.bucket
        context = b"egide/record/bucket-keys/" + bucket_id
        copies = list(listing.read_record(record.name, [master], context))
        if not copies:
            warn(f"key record {record.name}: no copy opens under this master key")
            continue
        document = max(copies, key=lambda copy: len(copy["keys"]))
        keys = [
            key
            for wrapped in document["keys"]
            if (key := unwrap(master, bytes.fromhex(wrapped), b"egide/bucket-key/" + bucket_id))
        ]
        bucket = Bucket(bucket_id, document["bucket"], float(document["created"]), keys)
        known = buckets.get(bucket.name)
        if keys and (known is None or bucket.created > known.created):
            buckets[bucket.name] = bucket
    return buckets


# -- shards ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Copy:
    """One stored copy of one piece of one part: in a standalone shard file or a pack segment."""

    site: Site
    file: str
    start: int  # where the shard (segment) starts in the file
    k: int
    m: int
    index: int
    part: int
    block_size: int
    bucket_id: bytes
    version_id: bytes
    block_count: int
    size: int  # plaintext bytes in this part's blocks (the footer's size)
    sealed_manifest: bytes


def parse_shard(site: Site, file: str, start: int, data: bytes) -> Copy | None:
    """A whole shard (header … footer) read from `file` at `start`; None if it is no valid one."""
    if len(data) < HEADER_SIZE + FOOTER_TAIL.size:
        return None
    body = data[: HEADER.size]
    if crc32c(body) != int.from_bytes(data[HEADER.size : HEADER_SIZE], "big"):
        return None
    magic, fmt, k, m, index, part, block_size, bucket_id, version_id = HEADER.unpack(body)
    length, crc, tail_magic = FOOTER_TAIL.unpack(data[-FOOTER_TAIL.size :])
    footer = data[-FOOTER_TAIL.size - length : -FOOTER_TAIL.size]
    if (magic, fmt, tail_magic) != (b"EGSH", 1, b"EGFT") or len(footer) != length:
        return None
    if crc32c(footer) != crc:
        return None
    count, size, key_len, manifest_len = FOOTER_FIXED.unpack_from(footer)
    start_manifest = FOOTER_FIXED.size + key_len
    return Copy(
        site=site, file=file, start=start, k=k, m=m, index=index, part=part,
        block_size=block_size, bucket_id=bucket_id, version_id=version_id, block_count=count,
        size=size, sealed_manifest=footer[start_manifest : start_manifest + manifest_len],
    )  # fmt: skip


def scan_file(site: Site, name: str, size: int) -> Iterator[Copy]:
    """The shards of one file: one for a shard file, one per segment of a pack. Only the
    header and footer matter here, so a shard file is read at its two ends."""
    kind = parse_name(name).kind
    if kind == "shard":
        head = site.read(name, 0, min(size, HEADER_SIZE))
        tail_len = FOOTER_TAIL.size
        tail = site.read(name, size - tail_len, tail_len) if size >= tail_len else b""
        if len(tail) == tail_len:
            footer_len = FOOTER_TAIL.unpack(tail)[0] + tail_len
            if HEADER_SIZE + footer_len <= size:
                tail = site.read(name, size - footer_len, footer_len)
        copy = parse_shard(site, name, 0, head + tail)
        if copy is not None and name == f"{copy.version_id.hex()}-{copy.part}-{copy.index}":
            yield copy
        else:
            warn(f"{site.label}/{name}: not a valid shard, skipped")
    elif kind == "pack":
        data = site.read(name, 0, size)  # packs hold small objects: at most a few MiB
        position = 0
        while position + PACK_LENGTH.size <= len(data):
            (length,) = PACK_LENGTH.unpack_from(data, position)
            start = position + PACK_LENGTH.size
            segment = data[start : start + length]
            copy = parse_shard(site, name, start, segment)
            if copy is None:
                warn(f"{site.label}/{name}: segment at {start} is no valid shard, skipped")
            else:
                yield copy
            position = start + length


# -- objects -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class PartPlan:
    """One part of an object as its blocks were sealed: what to read, and what to keep."""

    seq: int  # the part attempt: in its blocks' nonces and associated data (0: simple object)
    size: int  # the true size: what follows in the blocks is padding
    etag: str
    copies: list[Copy]  # the pieces found of its shard files (or pack segments)


@dataclass
class Version:
    bucket: Bucket
    version_id: bytes
    manifest: dict[str, Any]
    #: Its parts in order (one for a simple object); empty for a delete marker.
    parts: list[PartPlan] = field(default_factory=list)
    delete_marker: bool = False

    @property
    def key(self) -> str:
        return str(self.manifest["key"])

    @property
    def created(self) -> float:
        return float(self.manifest.get("created") or 0.0)

    @property
    def size(self) -> int:
        return int(self.manifest.get("size", 0))


NO_BUCKET = bytes(16)  # the clear header's bucket id since decision 0018


def find_versions(bucket: Bucket, copies: list[Copy]) -> list[Version]:
    """The object versions of `bucket` that the shards describe: each version id with a
    part-0 manifest that opens under the bucket's keys (the key is what tells a bucket's
    shards since decision 0018: their clear headers name no bucket) and is no part's."""
    by_id: dict[bytes, dict[int, list[Copy]]] = {}
    for copy in copies:
        if copy.bucket_id in (bucket.id, NO_BUCKET):
            by_id.setdefault(copy.version_id, {}).setdefault(copy.part, []).append(copy)
    versions = []
    for version_id, parts in by_id.items():
        manifest = None
        for copy in parts.get(0, [])[:6]:
            for key in bucket.keys:
                opened = unwrap(key, copy.sealed_manifest, b"egide/manifest/" + version_id)
                if opened is not None:
                    manifest = json.loads(opened)  # padded with trailing spaces: still JSON
                    break
            if manifest is not None:
                break
        if manifest is None:
            if any(copy.bucket_id == bucket.id for copy in parts.get(0, [])):
                warn(f"version {version_id.hex()}: no manifest opens, skipped")
            # Else another bucket's, a part file (its manifest is sealed for its upload's id,
            # not its own) or a part of an upload in progress: no object of this bucket.
            continue
        if "part" not in manifest:
            plan = part_plan(version_id, manifest, by_id)
            versions.append(Version(bucket, version_id, manifest, plan))
    return versions


def part_plan(
    version_id: bytes, manifest: dict[str, Any], by_id: dict[bytes, dict[int, list[Copy]]]
) -> list[PartPlan]:
    """Each part of the object in order, with its pieces: a simple object is one part (seq 0,
    its own shard files) with the object's ETag; a completion record lists the parts, as
    [number, seq, size, etag, last_modified, checksums, pid hex, padded size] (the last two
    optional): a part with a pid is in files `<pid>-0-<index>`, one without in
    `<version id>-<seq>-<index>`."""
    files = by_id.get(version_id, {})
    if not manifest.get("parts"):
        return [PartPlan(0, int(manifest["size"]), str(manifest["etag"]), files.get(0, []))]
    plan = []
    for _number, seq, size, etag, _modified, _checksums, *rest in manifest["parts"]:
        pid = bytes.fromhex(rest[0]) if rest and rest[0] else b""
        copies = by_id.get(pid, {}).get(0, []) if pid else files.get(int(seq), [])
        plan.append(PartPlan(int(seq), int(size), str(etag), copies))
    return plan


def read_markers(listing: Listing, bucket: Bucket) -> list[Version]:
    """The bucket's delete markers: versions without data, from their records. A record
    named `mark-<version>` (decision 0018) is the bucket's if its key opens it."""
    markers = []
    for record in listing.records("mark", bucket.id):
        marker_id = record.ids[0]
        context = b"egide/delete-marker/" + bucket.id + marker_id
        document = next(listing.read_record(record.name, bucket.keys, context), None)
        if document is None:
            if record.bucket:  # else another bucket's
                warn(f"delete marker record {record.name}: no copy opens")
            continue
        manifest = {
            "key": document["key"],
            "created": document["created"],
            "is_null": document["is_null"],
            "size": 0,
            "headers": {},
        }
        markers.append(Version(bucket, marker_id, manifest, delete_marker=True))
    return markers


def amend(listing: Listing, version: Version) -> None:
    """Apply the version's newest amendment record (tags and locks changed after the write)."""
    for record in listing.records("amend", version.bucket.id, about=version.version_id):
        number = str(record.numbers[0]).encode()
        context = b"egide/amendment/" + version.bucket.id + version.version_id + number
        document = next(listing.read_record(record.name, version.bucket.keys, context), None)
        if document is None:
            continue
        headers = {k: v for k, v in version.manifest["headers"].items() if k != TAGGING_HEADER}
        if document.get("tags"):
            headers[TAGGING_HEADER] = document["tags"]
        version.manifest.update(
            headers=headers,
            retention_mode=document.get("retention_mode"),
            retain_until=document.get("retain_until"),
            legal_hold=document.get("legal_hold"),
        )
        return


def bucket_settings(listing: Listing, bucket: Bucket) -> dict[str, str]:
    """The bucket's newest settings record that opens (versioning, lifecycle, CORS …). A
    record `bset-<id>` (decision 0018) seals its number with the settings, under associated
    data naming the bucket and the file; an older `bset-<bucket>-<number>`, the settings alone."""
    found: list[tuple[int, dict[str, Any]]] = []
    for record in listing.records("bset", bucket.id):
        if record.bucket:
            number = record.numbers[0]
            context = b"egide/bucket-settings/" + bucket.id + str(number).encode()
            document = next(listing.read_record(record.name, bucket.keys, context), None)
            if document is not None:
                found.append((number, document))
        else:
            context = b"egide/bucket-settings/" + bucket.id + b"/" + record.name.encode()
            document = next(listing.read_record(record.name, bucket.keys, context), None)
            if document is not None:
                found.append((int(document["number"]), document["settings"]))
    if not found:
        return {}
    settings = max(found, key=lambda item: item[0])[1]
    return {str(k): str(v) for k, v in settings.items()}


def order(versions: list[Version]) -> list[Version]:
    """One key's versions oldest first, keeping the newest null version only (a newer null
    version replaced the older ones; their files await garbage collection)."""
    versions.sort(key=lambda v: (v.created, v.version_id))
    kept: list[Version] = []
    seen_null = False
    for version in reversed(versions):
        legacy = "is_null" not in version.manifest
        is_null = len(versions) == 1 if legacy else bool(version.manifest["is_null"])
        if is_null and seen_null:
            continue
        seen_null = seen_null or is_null
        kept.append(version)
    return kept[::-1]


# -- reading an object's bytes -----------------------------------------------------------------


class Unrecoverable(Exception):
    """Fewer than k good pieces of some block are left."""


def read_part(
    copies: list[Copy],
    bucket_id: bytes,
    version_id: bytes,
    part: int,
    cipher: AESGCM,
    write: Callable[[bytes], object],
    true_size: int,
) -> None:
    """Write the first `true_size` plaintext bytes of one part, block by block, each from
    any k of its pieces. The blocks are laid out for the footer's size, which is the padded
    size (decision 0017) or, unpadded, the true size: what follows the true size is padding."""
    if not copies:
        raise Unrecoverable(f"part {part}: no piece found")
    # The layout most pieces agree on (all of them, unless one is foreign or damaged).
    layouts: dict[tuple[int, int, int, int], list[Copy]] = {}
    for copy in copies:
        if copy.block_size > 0 and copy.block_count == -(-copy.size // copy.block_size):
            layouts.setdefault((copy.k, copy.m, copy.block_size, copy.size), []).append(copy)
    if not layouts:
        raise Unrecoverable(f"part {part}: no piece with a consistent layout")
    (k, m, block_size, size), usable = max(
        layouts.items(), key=lambda item: len({c.index for c in item[1]})
    )
    by_index: dict[int, list[Copy]] = {}
    for copy in usable:
        by_index.setdefault(copy.index, []).append(copy)
    decoder = zfec.Decoder(k, k + m) if m else None
    full_piece = -(-(block_size + TAG_SIZE) // k) + CHECKSUM_SIZE
    written = 0
    for block in range(-(-size // block_size)):
        if written >= true_size:
            break
        plain_len = min(block_size, size - block * block_size)
        sealed_len = plain_len + TAG_SIZE
        piece_len = -(-sealed_len // k)
        offset = HEADER_SIZE + block * full_piece
        nonce = NONCE.pack(part, block)
        aad = b"egide/block/v1" + bucket_id + version_id + nonce
        plain = None
        # First the pieces as read, unchecked: AES-GCM authenticates the block they make, and
        # pure-Python CRC32C is slow. Only if it fails, every piece is checked and a bad one
        # replaced by a copy or another index whose checksum holds.
        for verify in (False, True):
            pieces: dict[int, bytes] = {}
            for index in sorted(by_index):  # data pieces first: then nothing needs decoding
                piece = read_piece(by_index[index], offset, piece_len, verify)
                if piece is not None:
                    pieces[index] = piece
                if len(pieces) == k:
                    break
            if len(pieces) < k:
                raise Unrecoverable(f"part {part} block {block}: {len(pieces)} of {k} pieces")
            ids = sorted(pieces)
            if ids == list(range(k)) or decoder is None:
                data = [pieces[i] for i in ids]
            else:
                data = decoder.decode([pieces[i] for i in ids], ids)
            try:
                plain = cipher.decrypt(nonce, b"".join(data)[:sealed_len], aad)
                break
            except InvalidTag:
                continue
        if plain is None:
            raise Unrecoverable(f"part {part} block {block}: fails authentication")
        keep = plain[: true_size - written]
        write(keep)
        written += len(keep)
    if written != true_size:
        raise Unrecoverable(f"part {part}: {written} bytes of {true_size} found")


def read_piece(copies: list[Copy], offset: int, length: int, verify: bool) -> bytes | None:
    """The piece at `offset` in the shard of the first copy that reads (and, if `verify`,
    whose CRC32C holds)."""
    for copy in copies:
        try:
            stored = copy.site.read(copy.file, copy.start + offset, length + CHECKSUM_SIZE)
        except OSError:
            continue
        piece, crc = stored[:length], stored[length:]
        if len(piece) == length and (not verify or crc == crc32c(piece).to_bytes(4, "big")):
            return piece
        warn(f"{copy.site.label}/{copy.file}: a piece fails its checksum, another one used")
    return None


def restore_bytes(version: Version, out: BinaryIO) -> str:
    """Write the object's plaintext to `out`; its SHA-256. Unrecoverable if it cannot be read,
    DecodeError if it reads but a part does not match its ETag (an MD5)."""
    if CUSTOMER_KEY_HEADER in (version.manifest.get("headers") or {}):
        # format.md, "Customer keys": the data key is also wrapped under a key Égide never kept.
        raise Unrecoverable(
            "stored under a customer-provided key (SSE-C): its data key is also wrapped under "
            "that key, which Égide never keeps; it needs the customer key, not restored"
        )
    wrapped = bytes.fromhex(version.manifest["data_key"])
    context = b"egide/data-key/" + version.version_id
    data_key = next(
        (key for kek in version.bucket.keys if (key := unwrap(kek, wrapped, context))), None
    )
    if data_key is None:
        raise Unrecoverable("no key of the bucket opens its data key")
    cipher = AESGCM(data_key)
    sha256 = hashlib.sha256()
    total = 0
    for plan in version.parts:
        md5 = hashlib.md5()

        def write(data: bytes, md5: Any = md5) -> None:
            out.write(data)
            sha256.update(data)
            md5.update(data)

        bucket_id, seq = version.bucket.id, plan.seq
        read_part(plan.copies, bucket_id, version.version_id, seq, cipher, write, plan.size)
        if re.fullmatch(r"[0-9a-f]{32}", plan.etag) and md5.hexdigest() != plan.etag:
            raise DecodeError(f"part {seq}: restored bytes do not match its ETag {plan.etag}")
        total += plan.size
    if total != version.size:
        raise DecodeError(f"its parts hold {total} bytes, its manifest says {version.size}")
    return sha256.hexdigest()


# -- the store as a whole ----------------------------------------------------------------------


class Store:
    """The sites as one store: listed once, their buckets opened with the master key."""

    def __init__(self, sites: Sequence[Site], master: bytes) -> None:
        self.sites = sites
        self.listing = Listing(sites)
        self.buckets = read_buckets(self.listing, master)
        if not self.buckets and self.listing.records("keys"):
            raise DecodeError("the master key opens no bucket key record: wrong key file?")

    def bucket(self, name: str) -> Bucket:
        if name not in self.buckets:
            raise DecodeError(
                f"no bucket {name!r} on these sites (found: {', '.join(self.buckets)})"
            )
        bucket = self.buckets[name]
        bucket.settings = bucket_settings(self.listing, bucket)
        return bucket

    def versions(self, bucket: Bucket, all_versions: bool) -> list[tuple[Version, bool]]:
        """(version, is latest) in key order, oldest version first. Without `all_versions`,
        each key's latest version only, and nothing for a key whose latest is a delete marker."""
        copies = [
            copy
            for site in self.sites
            for name, size in sorted(site.sizes.items())
            if parse_name(name).kind in ("shard", "pack")
            for copy in self._scan(site, name, size)
        ]
        found = find_versions(bucket, copies)
        for version in found:
            amend(self.listing, version)
        found += read_markers(self.listing, bucket)
        by_key: dict[str, list[Version]] = {}
        for version in found:
            by_key.setdefault(version.key, []).append(version)
        result = []
        for key in sorted(by_key):
            ordered = order(by_key[key])
            if all_versions:
                result += [(v, v is ordered[-1]) for v in ordered]
            elif not ordered[-1].delete_marker:
                result.append((ordered[-1], True))
        return result

    @staticmethod
    def _scan(site: Site, name: str, size: int) -> Iterator[Copy]:
        try:
            yield from scan_file(site, name, size)
        except OSError as exc:
            warn(f"{site.label}/{name}: unreadable ({exc}), skipped")


def describe(version: Version, latest: bool) -> dict[str, Any]:
    """One manifest.jsonl line (without the file and checksum)."""
    headers: dict[str, str] = dict(version.manifest.get("headers") or {})
    tags = dict(urllib.parse.parse_qsl(headers.get(TAGGING_HEADER, ""), keep_blank_values=True))
    created = version.created
    return {
        "key": version.key,
        "version_id": version.version_id.hex(),
        "latest": latest,
        "delete_marker": version.delete_marker,
        "is_null": bool(version.manifest.get("is_null", True)),
        "size": version.size,
        "etag": version.manifest.get("etag", ""),
        "last_modified": datetime.datetime.fromtimestamp(created, datetime.UTC).isoformat(),
        "content_type": headers.get("content-type"),
        "metadata": {
            k[len(META_PREFIX) :]: v for k, v in headers.items() if k.startswith(META_PREFIX)
        },
        "tags": tags,
        "headers": headers,
        "retention_mode": version.manifest.get("retention_mode"),
        "retain_until": version.manifest.get("retain_until"),
        "legal_hold": bool(version.manifest.get("legal_hold", False)),
    }


def restore(store: Store, bucket_name: str, out_dir: Path, all_versions: bool) -> int:
    bucket = store.bucket(bucket_name)
    objects = out_dir / "objects"
    objects.mkdir(parents=True, exist_ok=True)
    failed = 0
    entries = []
    for version, latest in store.versions(bucket, all_versions):
        entry = describe(version, latest)
        if not version.delete_marker:
            target = objects / version.version_id.hex()
            temporary = target.with_name(target.name + ".part")
            try:
                with temporary.open("wb") as f:
                    entry["sha256"] = restore_bytes(version, f)
            except (Unrecoverable, DecodeError) as exc:
                temporary.unlink(missing_ok=True)
                warn(f"{bucket.name}/{version.key} ({version.version_id.hex()}): {exc}")
                failed += 1
                continue
            os.replace(temporary, target)
            entry["file"] = f"objects/{target.name}"
        entries.append(entry)
    with (out_dir / "manifest.jsonl").open("w") as f:
        f.writelines(json.dumps(entry, ensure_ascii=False) + "\n" for entry in entries)
    info = {
        "bucket": bucket.name,
        "id": bucket.id.hex(),
        "created": bucket.created,
        "settings": bucket.settings,
        "versions": len(entries),
        "failed": failed,
    }
    (out_dir / "bucket.json").write_text(json.dumps(info, indent=2, ensure_ascii=False) + "\n")
    print(json.dumps(info))
    return 1 if failed else 0


# -- command line ------------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--key", type=Path, required=True, help="the master key file")
    parser.add_argument(
        "--passphrase-file", type=Path, help="its passphrase (else EGIDE_PASSPHRASE, else asked)"
    )
    parser.add_argument(
        "--site",
        type=Path,
        action="append",
        default=[],
        help="a local site directory (repeat; missing ones count as lost)",
    )
    parser.add_argument(
        "--s3",
        action="append",
        default=[],
        metavar="URL",
        help="an S3 site: http(s)://[access:secret@]host[:port]/bucket[/prefix]",
    )
    parser.add_argument("--access-key", default=os.environ.get("AWS_ACCESS_KEY_ID", ""))
    parser.add_argument("--secret-key", default=os.environ.get("AWS_SECRET_ACCESS_KEY", ""))
    parser.add_argument("--region", default=os.environ.get("AWS_REGION", "us-east-1"))
    parser.add_argument(
        "--virtual-hosted",
        action="store_true",
        help="address S3 buckets as bucket.host (default: host/bucket)",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("buckets", help="list the buckets")
    listing = commands.add_parser("list", help="list a bucket's objects")
    listing.add_argument("bucket")
    listing.add_argument("--all-versions", action="store_true")
    listing.add_argument("--json", action="store_true", help="one JSON object per line")
    restoring = commands.add_parser("restore", help="restore a bucket's objects into a directory")
    restoring.add_argument("bucket")
    restoring.add_argument("out", type=Path)
    restoring.add_argument("--all-versions", action="store_true")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        phrase = os.environ.get("EGIDE_PASSPHRASE")
        if args.passphrase_file is not None:
            phrase = args.passphrase_file.read_text().removesuffix("\n").removesuffix("\r")
        master = master_key(args.key, phrase)
        sites: list[Site] = [LocalSite(path) for path in args.site]
        sites += [
            S3Site(url, args.access_key, args.secret_key, args.region, args.virtual_hosted)
            for url in args.s3
        ]
        if not sites:
            raise DecodeError("name the sites: --site DIR or --s3 URL, as many as there are")
        store = Store(sites, master)
        if args.command == "buckets":
            for bucket in sorted(store.buckets.values(), key=lambda b: b.name):
                print(bucket.name)
            return 0
        if args.command == "list":
            bucket = store.bucket(args.bucket)
            for version, latest in store.versions(bucket, args.all_versions):
                entry = describe(version, latest)
                if args.json:
                    print(json.dumps(entry, ensure_ascii=False))
                else:
                    mark = "DELETE-MARKER" if version.delete_marker else f"{version.size:>12}"
                    keyed = CUSTOMER_KEY_HEADER in entry["headers"]
                    note = "  (SSE-C: needs the customer key)" if keyed else ""
                    print(f"{mark}  {entry['last_modified']}  {version.key}{note}")
            return 0
        return restore(store, args.bucket, args.out, args.all_versions)
    except (DecodeError, OSError, ValueError) as exc:
        warn(str(exc))
        return 2


if __name__ == "__main__":
    sys.exit(main())
