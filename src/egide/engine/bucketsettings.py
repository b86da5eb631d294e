"""A bucket's settings as front doors read and change them: versioning, Object Lock
configuration, lifecycle rules, the placement policy, and any named setting (CORS, tags).

Each change is the catalog setting and its event (BUCKET_CHANGED, naming the setting); the
settings record on the sites follows within a housekeeping round (egide.engine.settingsrecords).
The store has one (`store.bucket_settings`); a command without the keys (`egide policy set`)
makes its own over the catalog it opened.
"""

from __future__ import annotations

from collections.abc import Callable

from egide.catalog.base import Catalog
from egide.domain import Bucket
from egide.engine import lifecyclerules, placing, versioning
from egide.engine.events import EventBus, EventKind
from egide.engine.lifecyclerules import LifecycleRule
from egide.engine.versioning import LockConfiguration, Status
from egide.placement import Policy


class BucketSettings:
    def __init__(
        self,
        catalog: Catalog,
        events: EventBus | None = None,
        *,
        policy_changed: Callable[[bytes], None] | None = None,
    ) -> None:
        self._catalog = catalog
        #: A command's own service gets a bus of its own (nobody listens in a command).
        self.events = events if events is not None else EventBus()
        #: Told the id of a bucket whose placement policy changed (the placer's cache).
        self._policy_changed = policy_changed

    async def get(self, bucket: Bucket, name: str) -> str | None:
        """One of a bucket's settings (a document such as its CORS rules), or None if unset."""
        return await self._catalog.get_bucket_setting(bucket.id, name)

    async def put(self, bucket: Bucket, name: str, value: str | None) -> None:
        """Set one of a bucket's settings, or remove it with None."""
        await self._catalog.put_bucket_setting(bucket.id, name, value)
        self.events.announce(EventKind.BUCKET_CHANGED, bucket.name, detail=name)

    async def versioning(self, bucket: Bucket) -> Status | None:
        """Enabled, Suspended, or None for a bucket whose versioning was never set."""
        return await versioning.versioning_status(self._catalog, bucket.id)

    async def lock_configuration(self, bucket: Bucket) -> LockConfiguration | None:
        """The bucket's Object Lock configuration; None if Object Lock is not enabled."""
        return await versioning.lock_configuration(self._catalog, bucket.id)

    async def lifecycle_rules(self, bucket: Bucket) -> tuple[LifecycleRule, ...]:
        return await lifecyclerules.bucket_rules(self._catalog, bucket.id)

    async def policy_text(self, bucket: Bucket) -> str | None:
        """The placement policy stored for the bucket, as stored (None: none is)."""
        return await self._catalog.get_bucket_setting(bucket.id, placing.SETTING)

    async def set_policy(self, bucket: Bucket, policy: Policy | None) -> None:
        """Store (or with None, remove) the bucket's placement policy; every gateway process
        applies it within its `bucket_cache_seconds`, this one at once. Whether the policy
        can be met is the caller's to prove first (egide.admin.policies.set_policy)."""
        await placing.store_policy(self._catalog, bucket.id, policy)
        if self._policy_changed is not None:
            self._policy_changed(bucket.id)
        self.events.announce(EventKind.BUCKET_CHANGED, bucket.name, detail=placing.SETTING)
