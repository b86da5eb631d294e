"""The catalog's buckets as one process knows them, and their keys.

Object operations look a bucket up on every request, by name (S3's) or by id (a version's or
an upload's); each bucket key is unwrapped once under the master key. Both are cached here,
for the store and for what writes records beside the shards (egide.engine.vault), so that
neither reaches into the other.
"""

from __future__ import annotations

from egide.catalog.base import Catalog
from egide.clock import SYSTEM_CLOCK, Clock
from egide.crypto import aead
from egide.crypto.keyring import Keyring
from egide.domain import Bucket, BucketNotFound


class Buckets:
    """Bucket lookups by name and by id, and the bucket and data keys that open their data."""

    def __init__(
        self,
        catalog: Catalog,
        keyring: Keyring,
        *,
        cache_seconds: float,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        self.catalog = catalog
        self.keyring = keyring
        self.clock = clock
        #: Longest what was read of a bucket (that it exists, its policy, its CORS rules) is
        #: trusted: a fallback, since a server's rights watch forgets it as soon as any
        #: process changes a bucket (docs/decisions/0035-rights-counter.md).
        self.cache_seconds = cache_seconds
        #: Bucket id → (the master-wrapped key it came from, the bucket key): a rotation
        #: changes the wrapped key, so a stale entry is never used for new writes.
        self._keys: dict[bytes, tuple[bytes, bytes]] = {}
        #: Bucket id → its retired keys (egide.engine.rekey), tried for data keys not yet
        #: rewrapped under the current one.
        self._retired_keys: dict[bytes, tuple[bytes, ...]] = {}
        self._by_id: dict[bytes, Bucket] = {}
        self._by_name: dict[str, tuple[Bucket, float]] = {}

    async def named(self, name: str, *, cached: bool = False) -> Bucket:
        """The bucket named `name`. With `cached`, a lookup up to `cache_seconds` old may
        serve: object operations use it, while bucket operations always ask the catalog
        (another process may have deleted the bucket; a write still fails then, because its
        commit checks the bucket in the same transaction)."""
        now = self.clock.monotonic()
        hit = self._by_name.get(name) if cached else None
        if hit is not None and now - hit[1] < self.cache_seconds:
            return hit[0]
        bucket = await self.catalog.get_bucket(name)
        if bucket is None:
            self._by_name.pop(name, None)
            raise BucketNotFound(name)
        self._by_id[bucket.id] = bucket  # ids are never reused
        self._by_name[name] = (bucket, now)
        return bucket

    def forget(self, name: str) -> None:
        """This process deletes the bucket `name`: it must not serve from the cache again."""
        self._by_name.pop(name, None)

    def forget_all(self) -> None:
        """A bucket was created or deleted somewhere (the rights watch, egide.auth.rights):
        look every name up again."""
        self._by_name.clear()

    async def by_id(self, bucket_id: bytes) -> Bucket:
        """The bucket whose id a version, an upload or a record names (BucketNotFound)."""
        bucket = self._by_id.get(bucket_id)
        if bucket is None:
            bucket = await self.catalog.get_bucket_by_id(bucket_id)
            if bucket is None:
                raise BucketNotFound(bucket_id.hex())
            self._by_id[bucket_id] = bucket
        return bucket

    def key(self, bucket: Bucket) -> bytes:
        """The bucket's current key, unwrapped under the master key."""
        cached = self._keys.get(bucket.id)
        if cached is None or cached[0] != bucket.wrapped_key:
            key = self.keyring.bucket_key(bucket.id, bucket.wrapped_key)
            cached = self._keys[bucket.id] = (bucket.wrapped_key, key)
        return cached[1]

    async def data_key(self, bucket_id: bytes, owner_id: bytes, wrapped: bytes) -> bytes:
        """The data key of a version or upload. It is under the bucket's current key, or under
        a retired one while (or if) a bucket key rotation has not rewrapped it; if no key this
        process knows opens it, the bucket is read again from the catalog (a rotation in
        another process changed it) before giving up with DecryptionError."""
        bucket = await self.by_id(bucket_id)
        for fresh in (False, True):
            if fresh:
                found = await self.catalog.get_bucket_by_id(bucket_id)
                if found is None:
                    raise BucketNotFound(bucket_id.hex())
                bucket = self._by_id[bucket_id] = found
                self._retired_keys.pop(bucket_id, None)
            try:
                return self.keyring.data_key(self.key(bucket), owner_id, wrapped)
            except aead.DecryptionError:
                pass
            if bucket_id not in self._retired_keys:
                retired = await self.catalog.retired_bucket_keys(bucket_id)
                self._retired_keys[bucket_id] = tuple(
                    self.keyring.bucket_key(bucket_id, key) for _, _, key in retired
                )
            for key in self._retired_keys[bucket_id]:
                try:
                    return self.keyring.data_key(key, owner_id, wrapped)
                except aead.DecryptionError:
                    continue
        raise aead.DecryptionError(
            f"no key of bucket {bucket.name} opens data key {owner_id.hex()}"
        )
