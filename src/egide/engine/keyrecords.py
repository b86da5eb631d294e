"""Bucket key records: each bucket's keys, sealed under the master key, on every site.

The catalog holds each bucket's key wrapped under the master key; so does a small record file
`keys-<bucket id>` on every site, which is what lets `egide catalog rebuild` open the shards with
the master key alone, and what master key rotation rewrites and crypto-shredding deletes. A
record lists the bucket key generations, current first (a rotated bucket key stays listed, as
shard footers written under it still need it to be read back by a rebuild).
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass

from egide.crypto.aead import DecryptionError
from egide.crypto.keyring import Keyring
from egide.domain import KEY_RECORD_PREFIX
from egide.sites.base import ShardMissing, Site, SiteError, write_file

log = logging.getLogger("egide.keys")

PREFIX = KEY_RECORD_PREFIX
KIND = "bucket-keys"


class KeyRecordError(Exception):
    """No site took a key record, or no site holds a readable one."""


@dataclass(frozen=True)
class KeyRecord:
    bucket_id: bytes
    name: str
    created: float
    #: Master-wrapped bucket keys (Keyring.wrap_bucket_key), the current one first.
    wrapped_keys: tuple[bytes, ...]

    def encode(self, keyring: Keyring) -> bytes:
        document = {
            "bucket": self.name,
            "created": self.created,
            "keys": [key.hex() for key in self.wrapped_keys],
        }
        return keyring.seal_record(KIND, self.bucket_id, json.dumps(document).encode())

    @classmethod
    def decode(cls, keyring: Keyring, bucket_id: bytes, sealed: bytes) -> KeyRecord:
        document = json.loads(keyring.open_record(KIND, bucket_id, sealed))
        return cls(
            bucket_id,
            document["bucket"],
            float(document["created"]),
            tuple(bytes.fromhex(key) for key in document["keys"]),
        )


def record_name(bucket_id: bytes) -> str:
    return PREFIX + bucket_id.hex()


async def write_key_record(
    sites: Mapping[str, Site], keyring: Keyring, record: KeyRecord
) -> list[str]:
    """Write the record on every site; the names of the sites that failed. KeyRecordError if
    every site failed (a bucket must not exist that no site can name the key of)."""
    data = record.encode(keyring)
    name = record_name(record.bucket_id)
    results = await asyncio.gather(
        *(write_file(site, name, data) for site in sites.values()), return_exceptions=True
    )
    failed = [s for s, r in zip(sites, results, strict=True) if isinstance(r, BaseException)]
    for site, result in zip(sites, results, strict=True):
        if isinstance(result, BaseException):
            log.warning("key record of bucket %s not written on %s: %s", record.name, site, result)
    if failed and len(failed) == len(sites):
        raise KeyRecordError(f"no site took the key record of bucket {record.name}")
    return failed


async def delete_key_record(sites: Mapping[str, Site], bucket_id: bytes) -> list[str]:
    """Delete the record on every site; the names of the sites where that failed."""
    name = record_name(bucket_id)
    results = await asyncio.gather(
        *(site.delete(name) for site in sites.values()), return_exceptions=True
    )
    return [
        s
        for s, r in zip(sites, results, strict=True)
        if isinstance(r, BaseException) and not isinstance(r, ShardMissing)
    ]


async def read_key_records(sites: Mapping[str, Site], keyring: Keyring) -> dict[bytes, KeyRecord]:
    """Every bucket's record found on any site (the one listing the most generations wins
    where copies differ, as a rotation adds and never removes). Records that fail to open
    under this master key are skipped with a warning."""
    found: dict[bytes, KeyRecord] = {}
    for site_name, site in sites.items():
        try:
            names = [name async for name in site.list(PREFIX)]
        except SiteError as exc:
            log.warning("cannot list key records on %s: %s", site_name, exc)
            continue
        for name in names:
            try:
                bucket_id = bytes.fromhex(name[len(PREFIX) :])
                record = KeyRecord.decode(keyring, bucket_id, await site.read(name, 0, -1))
            except (ValueError, KeyError, DecryptionError, SiteError) as exc:
                log.warning("key record %s on %s unreadable: %s", name, site_name, exc)
                continue
            known = found.get(bucket_id)
            if known is None or len(record.wrapped_keys) > len(known.wrapped_keys):
                found[bucket_id] = record
    return found
