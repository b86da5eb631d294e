"""Crypto-shredding: delete a bucket by destroying every copy of its key.

Shards live on sites the organisation does not fully control (provider backups, a site offline
today), so deleting them proves nothing. What is destroyed instead is the bucket key: its record
on every site, then, in one catalog transaction, the bucket row that holds it, its retired
generations, and every version and upload (their shards go to the trash, deleted later by the
server). Without the bucket key no manifest, data key or block of the bucket opens, wherever a
copy survives. What can still hold the key is listed in docs/keys.md; a master key rotation
makes all of it unreadable.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass

from egide.catalog.base import Catalog, ShredSummary
from egide.crypto.keyring import Keyring
from egide.domain import Bucket, BucketNotFound, ObjectLocked
from egide.engine.keyrecords import delete_key_record, write_key_record
from egide.engine.rekey import bucket_records
from egide.sites.base import Site


@dataclass(frozen=True)
class ShredReport:
    bucket: str
    bucket_id: bytes
    summary: ShredSummary
    #: Sites whose copy of the key record could not be deleted now (`finish_shreds` retries).
    pending_sites: tuple[str, ...]


async def shreddable(catalog: Catalog, name: str) -> Bucket:
    """The bucket, if it may be shredded; BucketNotFound, or ObjectLocked naming a version
    that Object Lock protects (retention or legal hold: destroying it would break the lock)."""
    bucket = await catalog.get_bucket(name)
    if bucket is None:
        raise BucketNotFound(name)
    locked = await catalog.first_locked_version(bucket.id, time.time())
    if locked is not None:
        raise ObjectLocked(
            f"bucket {name}: version {locked.s3_version_id} of {locked.key!r} is protected: "
            f"{locked.locked(time.time())}"
        )
    return bucket


async def shred_bucket(
    catalog: Catalog, keyring: Keyring, sites: Mapping[str, Site], name: str
) -> ShredReport:
    """Crypto-shred bucket `name` (see the module docstring). The key records go first: if
    the catalog step fails, running again finds the bucket; the other way round, a record
    could survive a crash with no bucket left to name it."""
    bucket = await shreddable(catalog, name)
    pending = await delete_key_record(sites, bucket.id)
    try:
        summary = await catalog.shred_bucket(bucket.id, pending)
    except BaseException:
        # A lock set since the check, a busy catalog …: if the bucket stays, so must its key
        # records (a SIGKILL here leaves it without them: running the shred again ends it).
        if await catalog.get_bucket(name) is not None:
            await write_key_record(sites, keyring, await bucket_records(catalog, bucket))
        raise
    return ShredReport(name, bucket.id, summary, tuple(pending))


async def finish_shreds(catalog: Catalog, sites: Mapping[str, Site]) -> dict[str, tuple[str, ...]]:
    """Delete the key records that sites missed when their bucket was shredded; for each
    bucket that had some, the sites where they are still pending."""
    still: dict[str, tuple[str, ...]] = {}
    for shredded in await catalog.shredded_buckets():
        if not shredded.pending_sites:
            continue
        reachable = {n: s for n, s in sites.items() if n in shredded.pending_sites}
        failed = set(await delete_key_record(reachable, shredded.bucket_id))
        failed |= set(shredded.pending_sites) - set(sites)  # sites no longer configured
        await catalog.forget_pending_sites(
            shredded.bucket_id, [n for n in shredded.pending_sites if n not in failed]
        )
        still[shredded.name] = tuple(sorted(failed))
    return still
