"""Byte and object quotas of a bucket and of the account, enforced before a write sends a byte
(decision 0033).

A write announces what it adds (a PUT, POST or copy its size and one object; a part its size;
a completion one object, its parts being counted already); if a quota is set and usage plus that
would pass it, the write is refused with QuotaExceeded and nothing is stored. Usage is read from
the catalog (versions holding data, noncurrent ones included, and the parts of open uploads), and
only when a quota is set: without quotas, a write costs one cached lookup. Writers running at
once each see the usage before the others commit, so together they may pass a quota by at most
one object (or part) each.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass

from egide.catalog.base import Catalog
from egide.clock import SYSTEM_CLOCK, Clock
from egide.domain import Bucket, QuotaExceeded

SETTING = "quota"
_ACCOUNT = b""  # the cache's key for the account's quota
_CACHE_LIMIT = 10_000


@dataclass(frozen=True)
class Quota:
    max_bytes: int | None = None
    max_objects: int | None = None

    def __bool__(self) -> bool:
        return self.max_bytes is not None or self.max_objects is not None

    def to_json(self) -> str:
        return json.dumps({"max_bytes": self.max_bytes, "max_objects": self.max_objects})

    @classmethod
    def from_json(cls, text: str | None) -> Quota:
        if not text:
            return cls()
        fields = json.loads(text)
        return cls(fields.get("max_bytes"), fields.get("max_objects"))


@dataclass(frozen=True)
class Usage:
    bytes: int
    objects: int


class Quotas:
    """Quotas read and changed, with a cache of `cache_seconds` (another process's change
    shows within it; this process's at once)."""

    def __init__(
        self, catalog: Catalog, *, cache_seconds: float, clock: Clock = SYSTEM_CLOCK
    ) -> None:
        self._catalog = catalog
        self._cache_seconds = cache_seconds
        self._clock = clock
        self._cache: dict[bytes, tuple[Quota, float]] = {}

    def forget_all(self) -> None:
        """A bucket or account setting changed somewhere (the rights watch): read again."""
        self._cache.clear()

    async def _cached(self, key: bytes) -> Quota:
        now = self._clock.monotonic()
        hit = self._cache.get(key)
        if hit is not None and now - hit[1] < self._cache_seconds:
            return hit[0]
        if key == _ACCOUNT:
            text = await self._catalog.get_account_setting(SETTING)
        else:
            text = await self._catalog.get_bucket_setting(key, SETTING)
        quota = Quota.from_json(text)
        if len(self._cache) >= _CACHE_LIMIT:
            self._cache.clear()
        self._cache[key] = (quota, now)
        return quota

    async def bucket_quota(self, bucket: Bucket) -> Quota:
        return await self._cached(bucket.id)

    async def account_quota(self) -> Quota:
        return await self._cached(_ACCOUNT)

    async def set_bucket_quota(self, bucket: Bucket, quota: Quota) -> None:
        await self._catalog.put_bucket_setting(
            bucket.id, SETTING, quota.to_json() if quota else None
        )
        self._cache.pop(bucket.id, None)

    async def set_account_quota(self, quota: Quota) -> None:
        await self._catalog.put_account_setting(SETTING, quota.to_json() if quota else None)
        self._cache.pop(_ACCOUNT, None)

    async def usage(self, bucket: Bucket | None) -> Usage:
        """What a bucket (None: the whole account) holds, as quotas count it."""
        size, count = await self._catalog.usage(bucket.id if bucket is not None else None)
        return Usage(size, count)

    async def check(self, bucket: Bucket, *, adding_bytes: int, adding_objects: int) -> None:
        """QuotaExceeded if adding this to the bucket would pass its quota or the account's."""
        quota = await self.bucket_quota(bucket)
        if quota:
            _check(f"bucket {bucket.name}", quota, await self.usage(bucket), adding_bytes,
                   adding_objects)  # fmt: skip
        quota = await self.account_quota()
        if quota:
            _check("the account", quota, await self.usage(None), adding_bytes, adding_objects)

    async def metered(
        self, bucket: Bucket, body: AsyncIterator[bytes], *, adding_objects: int
    ) -> AsyncIterator[bytes]:
        """`body` of a write whose size no header announced (an HTTP chunked upload): checked
        now for the objects it adds, then cut with QuotaExceeded as soon as its bytes would pass
        a byte quota (the write fails and stores nothing, as if its size had been known)."""
        await self.check(bucket, adding_bytes=0, adding_objects=adding_objects)
        limits = []
        for scope, quota, of in (
            (f"bucket {bucket.name}", await self.bucket_quota(bucket), bucket),
            ("the account", await self.account_quota(), None),
        ):
            if quota.max_bytes is not None:
                usage = await self.usage(of)
                limits.append((quota.max_bytes - usage.bytes, scope, quota, usage))
        if not limits:
            return body
        return _cut(body, *min(limits, key=lambda limit: limit[0]))


async def _cut(
    body: AsyncIterator[bytes], room: int, scope: str, quota: Quota, usage: Usage
) -> AsyncIterator[bytes]:
    received = 0
    async for chunk in body:
        received += len(chunk)
        if received > room:
            raise QuotaExceeded(
                f"The byte quota of {scope} is {quota.max_bytes} bytes; it holds {usage.bytes} "
                f"bytes, and this write passed the {room} bytes left. Nothing was stored."
            )
        yield chunk


def _check(scope: str, quota: Quota, usage: Usage, adding_bytes: int, adding_objects: int) -> None:
    if quota.max_bytes is not None and usage.bytes + adding_bytes > quota.max_bytes:
        raise QuotaExceeded(
            f"The byte quota of {scope} is {quota.max_bytes} bytes; it holds {usage.bytes} "
            f"bytes, and this write would add {adding_bytes}. Nothing was stored."
        )
    if quota.max_objects is not None and usage.objects + adding_objects > quota.max_objects:
        raise QuotaExceeded(
            f"The object quota of {scope} is {quota.max_objects} objects; it holds "
            f"{usage.objects}, and this write would add {adding_objects}. Nothing was stored."
        )


def quota_dict(quota: Quota, usage: Usage) -> dict[str, object]:
    """A quota and its usage as the admin API and `--json` show them."""
    return {
        "quota": {"max_bytes": quota.max_bytes, "max_objects": quota.max_objects},
        "usage": {"bytes": usage.bytes, "objects": usage.objects},
    }
