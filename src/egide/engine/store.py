"""The object service: buckets and objects over the catalog, the keyring and the sites.

Commit protocol (DESIGN.md): shards are written and made durable first, then one catalog
transaction makes the version current. A crash before that leaves only unreferenced shards.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import replace

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from egide.catalog.base import Catalog
from egide.clock import SYSTEM_CLOCK, Clock
from egide.coding.erasure import ErasureCode
from egide.coding.padding import padded_size
from egide.coding.shardfile import ShardFooter, ShardHeader
from egide.crypto.keyring import Keyring
from egide.domain import (
    NO_BUCKET_ID,
    Bucket,
    CurrentIsDeleteMarker,
    DeleteMarkerHit,
    KeyNotFound,
    NoSuchVersion,
    ObjectVersion,
    Part,
    SitesUnavailable,
    WriteCondition,
    new_id,
    parse_version_id,
)
from egide.engine import customer_keys
from egide.engine.buckets import Buckets
from egide.engine.bucketsettings import BucketSettings
from egide.engine.credentialrecords import record_credentials
from egide.engine.credentials import CredentialService
from egide.engine.events import EventBus, EventKind
from egide.engine.identities import IdentityService
from egide.engine.jobs import JobQueue
from egide.engine.keyrecords import (
    KeyRecord,
    KeyRecordError,
    delete_key_record,
    write_key_record,
)
from egide.engine.listing import Listing, list_objects
from egide.engine.manifest import seal_footer, version_manifest
from egide.engine.markers import commit_marker, marker_version
from egide.engine.multipart import Multipart
from egide.engine.packer import Packer
from egide.engine.placing import NoPlacement, Placer
from egide.engine.quotas import Quotas
from egide.engine.reader import MultipartReader, ObjectReader
from egide.engine.vault import Vault
from egide.engine.versioning import (
    FROM_NEWEST,
    VersionListing,
    list_versions,
    new_version_fields,
    versioning_status,
)
from egide.engine.workers import on_cpu
from egide.engine.writer import Hasher, PartWriter, encode_object
from egide.pipeline import PartCipher
from egide.placement import Placement, Policy, SiteProfile
from egide.placement.settings import BucketPolicies
from egide.sites.base import Site, SiteError
from egide.sites.health import SiteHealth

log = logging.getLogger("egide.store")
#: How long a process trusts what it read of a bucket (that it exists, its placement policy,
#: its CORS rules) by default: the `bucket_cache_seconds` setting.
BUCKET_CACHE_SECONDS = 1.0


class ObjectStore:
    def __init__(
        self,
        catalog: Catalog,
        keyring: Keyring,
        sites: Sequence[Site],
        *,
        k: int,
        m: int,
        block_size: int,
        trash_grace: float = 60.0,
        upload_expiry: float = 0.0,
        pack_threshold: int = 256 * 1024,
        health: SiteHealth | None = None,
        profiles: Sequence[SiteProfile] = (),
        policies: BucketPolicies | None = None,
        lifecycle_interval: float = 3600.0,
        lifecycle_day: float = 86_400.0,
        clock: Clock = SYSTEM_CLOCK,
        bucket_cache_seconds: float = BUCKET_CACHE_SECONDS,
    ) -> None:
        if len(sites) < k + m:
            raise ValueError(f"code {k}+{m} needs {k + m} sites, {len(sites)} configured")
        self.catalog = catalog
        self.sites = {site.name: site for site in sites}
        #: What the caches and expiries below read the time from (tests move it by hand).
        self.clock = clock
        #: Longest what was read of a bucket (that it exists, its policy, its CORS rules) is
        #: trusted: a fallback, since a server's rights watch forgets it as soon as any
        #: process changes a bucket (docs/decisions/0035-rights-counter.md).
        self.bucket_cache_seconds = bucket_cache_seconds
        #: What reads learnt about each site: latency, errors, circuit breakers.
        self.health = health or SiteHealth(self.sites, clock=clock)
        self.k, self.m, self.block_size = k, m, block_size
        self.trash_grace = trash_grace
        self.upload_expiry = upload_expiry
        #: Seconds between lifecycle passes, and the length of a lifecycle day (tests only).
        self.lifecycle_interval, self.lifecycle_day = lifecycle_interval, lifecycle_day
        self.pack_threshold = pack_threshold
        self.packer = Packer(self.sites, catalog)
        #: Chooses each new version's sites by its bucket's policy; without any, k+m over all.
        self.placer = Placer(
            catalog, list(self.sites), profiles, policies or BucketPolicies(),
            Policy(k=k, m=m), self.health, clock=clock, cache_seconds=bucket_cache_seconds,
        )  # fmt: skip
        #: Byte and object quotas of buckets and the account, checked before each write.
        self.quotas = Quotas(catalog, cache_seconds=bucket_cache_seconds, clock=clock)
        #: Buckets by name and by id, and their keys.
        self.buckets = Buckets(catalog, keyring, clock=clock, cache_seconds=bucket_cache_seconds)
        #: What the records beside the shards need of this store (egide.engine.vault).
        self.vault = Vault(catalog, self.sites, self.buckets, self.placer)
        self._codes: dict[tuple[int, int], ErasureCode] = {}
        #: Catalog writes started without waiting (repair queue), kept until they end.
        self._pending: set[asyncio.Future[None]] = set()
        #: What happened, for the observers beside the engine (audit, notifications, feeds).
        self.events = EventBus()
        #: Background jobs (egide.maintenance runs them), their changes announced on `events`.
        self.jobs = JobQueue(catalog, self.events)
        #: Versioning, Object Lock, lifecycle, policy … read and changed (with their events).
        self.bucket_settings = BucketSettings(
            catalog, self.events, policy_changed=self.placer.forget
        )
        #: Access keys, added with their record on the sites and their event.
        self.credentials = CredentialService(
            catalog, keyring, self.events, record=lambda: record_credentials(self.vault)
        )
        #: Users, groups and their access keys, each change recorded and announced.
        self.identities = IdentityService(
            catalog, keyring, self.events,
            record=lambda: record_credentials(self.vault), clock=clock,
        )  # fmt: skip
        self.multipart = Multipart(
            self.vault, block_size=block_size, code=self.code,
            announce=self.announce_version, clock=clock,
        )  # fmt: skip

    @property
    def keyring(self) -> Keyring:
        return self.buckets.keyring

    @keyring.setter
    def keyring(self, keyring: Keyring) -> None:
        self.buckets.keyring = keyring

    async def place(
        self, bucket: Bucket, version_id: bytes, exclude: frozenset[str] = frozenset()
    ) -> Placement:
        """The sites and code of a new version of `bucket`, by its policy (NoPlacement)."""
        return await self.placer.place(bucket, version_id, exclude)

    async def _place_around(
        self, bucket: Bucket, version: ObjectVersion, exc: SitesUnavailable, failed: set[str]
    ) -> ObjectVersion:
        """`version` placed again without the sites that failed to take its shards, before
        any of its bytes were stored; re-raises `exc` when placement cannot help."""
        self.placer.failed(exc)
        if not exc.sites or failed.issuperset(exc.sites):
            raise exc
        failed.update(exc.sites)
        placement = await self.place(bucket, version.version_id, frozenset(failed))
        if (placement.k, placement.m) != (version.k, version.m):  # the policy changed meanwhile
            raise NoPlacement(f"bucket {bucket.name}: its policy changed during the write") from exc
        log.info("sites %s failed; writing %s to %s", ", ".join(exc.sites), version.key,
                 ", ".join(placement.sites))  # fmt: skip
        return replace(version, sites=placement.sites)

    def code(self, k: int, m: int) -> ErasureCode:
        if (k, m) not in self._codes:
            self._codes[k, m] = ErasureCode(k, m)
        return self._codes[k, m]

    def bucket_key(self, bucket: Bucket) -> bytes:
        return self.buckets.key(bucket)

    async def data_key(self, bucket_id: bytes, owner_id: bytes, wrapped: bytes) -> bytes:
        """The data key of a version or upload (egide.engine.buckets.Buckets.data_key)."""
        return await self.buckets.data_key(bucket_id, owner_id, wrapped)

    # -- buckets ----------------------------------------------------------------------------

    async def create_bucket(self, name: str) -> Bucket:
        """A new bucket, its key recorded on the sites first (egide.engine.keyrecords)
        so that the catalog can always be rebuilt from the sites with the master key."""
        bucket_id = new_id()
        _, wrapped = self.keyring.new_bucket_key(bucket_id)
        bucket = Bucket(bucket_id, name, time.time(), wrapped)
        record = KeyRecord(bucket_id, name, bucket.created, (wrapped,))
        retired = await self.placer.retired()  # sites being emptied get no new record
        sites = {n: site for n, site in self.sites.items() if n not in retired}
        try:
            await write_key_record(sites, self.keyring, record)
        except KeyRecordError as exc:
            raise SitesUnavailable(str(exc), tuple(self.sites)) from exc
        try:
            await self.catalog.create_bucket(bucket)
        except BaseException:
            await delete_key_record(self.sites, bucket_id)
            raise
        self.events.announce(EventKind.BUCKET_CREATED, name)
        return bucket

    async def bucket(self, name: str, *, cached: bool = False) -> Bucket:
        """The bucket named `name`; with `cached`, a lookup up to `bucket_cache_seconds` old
        may serve (egide.engine.buckets.Buckets.named)."""
        return await self.buckets.named(name, cached=cached)

    async def list_buckets(self) -> list[Bucket]:
        return await self.catalog.list_buckets()

    async def delete_bucket(self, name: str) -> None:
        """DeleteBucket (empty buckets only), then its key records: a catalog rebuilt from
        the sites must not bring the bucket back."""
        self.buckets.forget(name)
        bucket = await self.catalog.get_bucket(name)
        await self.catalog.delete_bucket(name)
        self.events.announce(EventKind.BUCKET_REMOVED, name)
        if bucket is not None:
            failed = await delete_key_record(self.sites, bucket.id)
            if failed:
                log.warning("key record of deleted bucket %s left on %s (unreachable)", name,
                            ", ".join(failed))  # fmt: skip

    # -- objects ----------------------------------------------------------------------------

    async def put_object(
        self,
        bucket_name: str,
        key: str,
        body: AsyncIterator[bytes],
        *,
        size: int | None,
        headers: dict[str, str],
        hashers: Sequence[Hasher] = (),
        before_commit: Callable[[str], Awaitable[None]] | None = None,
        condition: WriteCondition | None = None,
        customer_key: bytes | None = None,
    ) -> ObjectVersion:
        """Store a new current version of `key`, `size` bytes streamed from `body` (None: a
        size known only at its end, an HTTP chunked upload, held to the quotas as it arrives).

        `hashers` see every byte of the body; `before_commit` receives the MD5 ETag once the
        body is complete and may raise to refuse the object (bad digest, checksum mismatch).
        `condition` is checked by the committing transaction (conditional writes).
        Objects up to `pack_threshold` bytes are written in packs with others. With a
        `customer_key` (SSE-C) the data key is wrapped under it too, and the object is never
        packed (egide.engine.customer_keys).
        """
        bucket = await self.bucket(bucket_name, cached=True)
        if condition is not None:
            # Checked again by the commit; checked here so a refused write sends no shard.
            condition.check(key, await self.catalog.get_object(bucket.id, key))
        if size is None:
            body = await self.quotas.metered(bucket, body, adding_objects=1)
            size, body = await _measure_small(body, self.pack_threshold)
        else:
            await self.quotas.check(bucket, adding_bytes=size, adding_objects=1)
        # `headers` stays the caller's dict: `before_commit` may add the checksum it verified.
        fields = await new_version_fields(self.catalog, bucket.id, headers)
        bucket_key = self.bucket_key(bucket)
        version_id = new_id()
        data_key, wrapped_data_key = self.keyring.new_data_key(bucket_key, version_id)
        if customer_key is not None:
            inner = customer_keys.seal_data_key(customer_key, version_id, data_key)
            wrapped_data_key = self.keyring.wrap_data_key(bucket_key, version_id, inner)
            headers.update(customer_keys.stored_headers(customer_key))
        placement = await self.place(bucket, version_id)
        code = self.code(placement.k, placement.m)
        ctx = PartCipher(AESGCM(data_key), bucket.id, version_id, 0, code)
        names = placement.sites
        version = ObjectVersion(
            bucket_id=bucket.id, key=key, version_id=version_id, size=size, etag="",
            last_modified=0.0, wrapped_data_key=wrapped_data_key, k=code.k, m=code.m,
            block_size=self.block_size, sites=names, headers=headers, **fields,
        )  # fmt: skip
        md5 = hashlib.md5()
        packed = 0 <= size <= self.pack_threshold and customer_key is None
        put = self._put_packed if packed else self._put_streamed
        pad = await self.pads(bucket)
        version = await put(
            version, ctx, bucket, bucket_key, body, md5, hashers, before_commit, condition, pad
        )
        self.announce_version(EventKind.OBJECT_CREATED, bucket.name, version)
        return version

    def announce_version(self, kind: EventKind, bucket_name: str, version: ObjectVersion) -> None:
        self.events.announce(
            kind, bucket_name, key=version.key, version_id=version.version_id,
            size=version.size, etag=version.etag,
        )  # fmt: skip

    async def pads(self, bucket: Bucket) -> bool:
        """Whether new data of `bucket` is padded to size classes (its policy's `padding`)."""
        return await self.vault.pads(bucket)

    def _footer(
        self, version: ObjectVersion, bucket: Bucket, bucket_key: bytes, blocks: int, pad: bool
    ) -> ShardFooter:
        manifest = version_manifest(bucket.name, version)
        return seal_footer(bucket_key, version.version_id, manifest, blocks,
                           version.stored_size, pad=pad)  # fmt: skip

    async def _put_streamed(
        self, version: ObjectVersion, ctx: PartCipher, bucket: Bucket, bucket_key: bytes,
        body: AsyncIterator[bytes], md5: hashlib._Hash, hashers: Sequence[Hasher],
        before_commit: Callable[[str], Awaitable[None]] | None,
        condition: WriteCondition | None, pad: bool,
    ) -> ObjectVersion:  # fmt: skip
        failed: set[str] = set()
        while True:
            sites = [self.sites[n] for n in version.sites]
            writer = PartWriter(ctx, sites, self.block_size, pad=pad)
            try:
                await writer.open()  # nothing of the body is consumed yet: trying again is free
                break
            except SitesUnavailable as exc:
                version = await self._place_around(bucket, version, exc, failed)
        try:
            await writer.write_stream(body, [md5, *hashers])
            etag = md5.hexdigest()
            if before_commit is not None:
                await before_commit(etag)
            version = replace(
                version, etag=etag, size=writer.size, padded_size=writer.padded_size,
                last_modified=time.time(),
            )  # fmt: skip
            footer = self._footer(version, bucket, bucket_key, writer.block_count, pad)
            await writer.finish(footer)
            await writer.commit()
        except BaseException as exc:
            await writer.abort()
            if isinstance(exc, SitesUnavailable):  # the body is gone: fail, avoid it next time
                self.placer.failed(exc)
            raise
        await self.catalog.commit_version(version, condition)
        return version

    async def _put_packed(
        self, version: ObjectVersion, ctx: PartCipher, bucket: Bucket, bucket_key: bytes,
        body: AsyncIterator[bytes], md5: hashlib._Hash, hashers: Sequence[Hasher],
        before_commit: Callable[[str], Awaitable[None]] | None,
        condition: WriteCondition | None, pad: bool,
    ) -> ObjectVersion:  # fmt: skip
        data = bytearray()
        async for chunk in body:
            data += chunk
            if len(data) > self.pack_threshold:
                raise ValueError("body longer than announced")
        blocks = await on_cpu(
            encode_object, ctx, bytes(data), self.block_size, [md5, *hashers], pad
        )
        etag = md5.hexdigest()
        if before_commit is not None:
            await before_commit(etag)
        stored = padded_size(len(data)) if pad else len(data)
        version = replace(
            version, etag=etag, size=len(data), last_modified=time.time(),
            padded_size=stored if stored != len(data) else None,
        )  # fmt: skip
        return await self._pack(version, ctx, bucket, bucket_key, blocks, condition, pad)

    async def _pack(
        self, version: ObjectVersion, ctx: PartCipher, bucket: Bucket, bucket_key: bytes,
        blocks: list[list[bytes]], condition: WriteCondition | None, pad: bool,
    ) -> ObjectVersion:  # fmt: skip
        """Write a small version's segments in a pack. The object is still in memory, so a
        site failing the pack is replaced by a new placement without it (nothing committed)."""
        headers = [
            ShardHeader(ctx.code.k, ctx.code.m, i, 0, self.block_size, NO_BUCKET_ID,
                        ctx.version_id).encode()
            for i in range(len(version.sites))
        ]  # fmt: skip
        failed: set[str] = set()
        while True:
            footer = self._footer(version, bucket, bucket_key, len(blocks), pad).encode()
            segments = {
                site: b"".join([headers[i], *(pieces[i] for pieces in blocks), footer])
                for i, site in enumerate(version.sites)
            }
            try:
                return await self.packer.add(segments, version, condition)
            except SitesUnavailable as exc:
                version = await self._place_around(bucket, version, exc, failed)

    async def head_object(
        self, bucket_name: str, key: str, version_id: str | None = None
    ) -> ObjectVersion:
        """The current version of `key`, or the one S3 calls `version_id` ("null" included).
        KeyNotFound (CurrentIsDeleteMarker when a delete marker hides the key), NoSuchVersion,
        DeleteMarkerHit when `version_id` names a delete marker, InvalidVersionId."""
        bucket = await self.bucket(bucket_name, cached=True)
        if version_id is None:
            version = await self.catalog.get_object(bucket.id, key)
            if version is None:
                raise KeyNotFound(key)
            if version.delete_marker:
                raise CurrentIsDeleteMarker(version)
            return version
        version = await self.catalog.get_version(bucket.id, key, parse_version_id(version_id))
        if version is None:
            raise NoSuchVersion(f"{key} {version_id}")
        if version.delete_marker:
            raise DeleteMarkerHit(version)
        return version

    async def reader(
        self, version: ObjectVersion, first: int, last: int, customer_key: bytes | None = None
    ) -> ObjectReader | MultipartReader:
        """A reader of plaintext bytes first..last of `version` (from `head_object`), its first
        block already fetched so that an unreadable object fails before a byte is sent. A
        version stored under a customer key needs it (else CustomerKeyRequired)."""
        inner = await self.data_key(version.bucket_id, version.version_id, version.wrapped_data_key)
        cipher = AESGCM(
            customer_keys.open_data_key(customer_key, version.version_id, inner, version.headers)
        )
        code = self.code(version.k, version.m)
        sites = [self.sites.get(n) for n in version.sites]

        def open_part(part: Part | None, lo: int, hi: int) -> ObjectReader:
            seq = part.seq if part is not None else 0
            ctx = PartCipher(cipher, version.bucket_id, version.version_id, seq, code)
            return ObjectReader(
                version, ctx, sites, lo, hi, part=part, health=self.health,
                on_damage=lambda reason: self._damaged(version, reason),
            )  # fmt: skip

        reader: ObjectReader | MultipartReader = (
            MultipartReader(version.parts, first, last, open_part)
            if version.parts
            else open_part(None, first, last)
        )
        await reader.start()
        return reader

    def _damaged(self, version: ObjectVersion, reason: str) -> None:
        """A read found a piece missing or rotten: queue the version for repair (the server's
        maintenance repairs the queue), without holding up the read."""
        log.warning("%s (version %s): %s; queued for repair", version.key,
                    version.version_id.hex(), reason)  # fmt: skip
        task = asyncio.ensure_future(self.catalog.mark_damaged(version.version_id, reason))
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    async def delete_object(
        self,
        bucket_name: str,
        key: str,
        version_id: str | None = None,
        *,
        bypass_governance: bool = False,
    ) -> ObjectVersion | None:
        """DeleteObject. With `version_id`, remove that version for good (the one removed, or
        None if there was none). Without: in a bucket never versioned, remove the object;
        else add a delete marker (returned), which replaces the null version when versioning
        is suspended. Raises ObjectLocked."""
        bucket = await self.bucket(bucket_name, cached=True)
        if version_id is not None:
            removed = await self.catalog.delete_version(
                bucket.id, key, parse_version_id(version_id), bypass_governance=bypass_governance
            )
        elif (status := await versioning_status(self.catalog, bucket.id)) is None:
            removed = await self.catalog.delete_version(bucket.id, key, None)
        else:
            marker = marker_version(
                bucket.id, new_id(), key, time.time(), is_null=status == "Suspended"
            )
            await commit_marker(self.vault, bucket, marker)
            self.announce_version(EventKind.DELETE_MARKER_CREATED, bucket.name, marker)
            return marker
        if removed is not None:
            self.announce_version(EventKind.OBJECT_REMOVED, bucket.name, removed)
        return removed

    async def versioning(self, bucket_name: str) -> str | None:
        """ "Enabled", "Suspended", or None for a bucket whose versioning was never enabled."""
        bucket = await self.bucket(bucket_name)
        return await versioning_status(self.catalog, bucket.id)

    async def list_versions(
        self,
        bucket_name: str,
        *,
        prefix: str = "",
        delimiter: str = "",
        key_marker: str | None = None,
        version_marker: str | None = None,
        max_keys: int = 1000,
    ) -> VersionListing:
        """ListObjectVersions; `version_marker` (an S3 version id of `key_marker`) resumes
        after that version."""
        bucket = await self.bucket(bucket_name, cached=True)
        after_seq = 0
        if key_marker is not None and version_marker:
            marked = await self.catalog.get_version(
                bucket.id, key_marker, parse_version_id(version_marker)
            )
            # The marker version may have been deleted since the previous page (a client
            # emptying a bucket page by page does that): resume from the key's newest version
            # left, so nothing is skipped.
            after_seq = marked.seq if marked is not None else FROM_NEWEST
        return await list_versions(
            self.catalog, bucket.id, prefix=prefix, delimiter=delimiter, key_marker=key_marker,
            after_seq=after_seq, max_keys=max_keys,
        )  # fmt: skip

    async def list_objects(
        self,
        bucket_name: str,
        *,
        prefix: str = "",
        delimiter: str = "",
        after: str | None = None,
        after_is_prefix: bool = False,
        max_keys: int = 1000,
    ) -> Listing:
        bucket = await self.bucket(bucket_name, cached=True)
        return await list_objects(
            self.catalog, bucket.id, prefix=prefix, delimiter=delimiter, after=after,
            after_is_prefix=after_is_prefix, max_keys=max_keys,
        )  # fmt: skip

    # -- housekeeping -----------------------------------------------------------------------

    async def empty_trash(self) -> int:
        """Delete the shards of replaced or deleted versions once their grace period is over."""
        removed = 0
        # Wall time as the catalog reads it: the catalog dates what enters the trash.
        while batch := await self.catalog.trash_due(time.time() - self.trash_grace, 500):
            done = []
            for item in batch:
                site = self.sites.get(item.site)
                try:
                    if site is not None:
                        await site.delete(item.shard)
                    done.append(item.id)
                except SiteError as exc:
                    log.warning("cannot delete shard %s on %s yet: %s", item.shard, item.site, exc)
            await self.catalog.forget_trash(done)
            removed += len(done)
            if len(done) < len(batch):
                break
        return removed


async def _measure_small(
    body: AsyncIterator[bytes], threshold: int
) -> tuple[int, AsyncIterator[bytes]]:
    """The size of a body that ends within `threshold` bytes (else -1: larger, unknown yet),
    and the body again, whole: a small object of unannounced size still goes into a pack."""
    first: list[bytes] = []
    held = 0
    async for chunk in body:
        first.append(chunk)
        held += len(chunk)
        if held > threshold:
            break
    else:
        return held, _replay(first, None)
    return -1, _replay(first, body)


async def _replay(first: list[bytes], rest: AsyncIterator[bytes] | None) -> AsyncIterator[bytes]:
    for chunk in first:
        yield chunk
    if rest is not None:
        async for chunk in rest:
            yield chunk
