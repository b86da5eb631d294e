"""Engine events: what happened to buckets, objects, credentials and jobs, announced to whoever
listens.

An audit trail, bucket notifications and live feeds listen here rather than wrapping every
call site. Announcing never waits and never raises: each observer has its own bounded queue,
drained by its own task, so a slow observer delays only itself, a failing one is logged, and
when an observer's queue is full the event is dropped for that observer alone, counted and
logged (once a minute at most).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import contextvars
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from enum import StrEnum

log = logging.getLogger("egide.events")

#: Who asked for what the engine is doing, when a front door knows it (an access key id, or
#: the name of a background task such as "lifecycle"). Front doors set it per request.
asking: contextvars.ContextVar[str | None] = contextvars.ContextVar("egide_asking", default=None)
#: Events an observer may have waiting before new ones are dropped for it.
DEFAULT_CAPACITY = 10_000
_DROP_LOG_INTERVAL = 60.0


class EventKind(StrEnum):
    OBJECT_CREATED = "object-created"  # a version committed: PUT, POST, copy, multipart, import
    OBJECT_REMOVED = "object-removed"  # a version removed for good
    DELETE_MARKER_CREATED = "delete-marker-created"
    OBJECT_TAGS_CHANGED = "object-tags-changed"
    OBJECT_LOCK_CHANGED = "object-lock-changed"  # retention or legal hold
    BUCKET_CREATED = "bucket-created"
    BUCKET_REMOVED = "bucket-removed"
    BUCKET_CHANGED = "bucket-changed"  # `detail` names the setting
    #: An access key added, disabled, enabled or deleted (`detail` "added", "disabled",
    #: "enabled", "deleted"), a user or group created or deleted, or a membership changed
    #: ("user-created:<name>", "group-deleted:<name>", "member-added:<group>" …), or every
    #: secret resealed under a new master key ("resealed"); `access_key` names the key when
    #: one changed. Never the secret.
    CREDENTIALS_CHANGED = "credentials-changed"
    #: A job queued, claimed, handed back, paused, resumed, cancelled, done or failed:
    #: `job_id`, `job_kind`, and its new state in `detail`.
    JOB_CHANGED = "job-changed"


@dataclass(frozen=True)
class Event:
    kind: EventKind
    #: The bucket concerned; empty for what is not a bucket's (credentials, jobs).
    bucket: str
    key: str | None = None
    version_id: bytes | None = None
    size: int | None = None
    etag: str | None = None
    #: What changed, where the kind alone does not say (a bucket setting's name …).
    detail: str | None = None
    access_key: str | None = None
    job_id: int | None = None
    job_kind: str | None = None
    #: Who asked (`asking`), when known.
    principal: str | None = None
    time: float = field(default_factory=time.time)


Observer = Callable[[Event], Awaitable[None]]


class Subscription:
    """One observer, its queue, and the task that feeds it events in order."""

    def __init__(self, observer: Observer, name: str, capacity: int) -> None:
        self.observer = observer
        self.name = name
        self.capacity = capacity
        #: Events dropped because the queue was full, and observer calls that raised.
        self.dropped = 0
        self.failed = 0
        self._queue: collections.deque[Event] = collections.deque()
        self._wake: asyncio.Event | None = None
        self._task: asyncio.Task[None] | None = None
        self._logged_drop = -_DROP_LOG_INTERVAL

    def offer(self, event: Event) -> None:
        if len(self._queue) >= self.capacity:
            self.dropped += 1
            now = time.monotonic()
            if now - self._logged_drop >= _DROP_LOG_INTERVAL:
                self._logged_drop = now
                log.warning("observer %s is behind: %d event(s) dropped so far",
                            self.name, self.dropped)  # fmt: skip
            return
        self._queue.append(event)
        self._ensure_running()
        assert self._wake is not None
        self._wake.set()

    @property
    def waiting(self) -> int:
        return len(self._queue)

    def _ensure_running(self) -> None:
        """Start the feeding task on the running loop (again, if an earlier loop ended)."""
        if self._task is None or self._task.done() or self._task.get_loop().is_closed():
            self._wake = asyncio.Event()
            self._task = asyncio.get_running_loop().create_task(self._feed())

    async def _feed(self) -> None:
        assert self._wake is not None
        while True:
            while self._queue:
                event = self._queue.popleft()
                try:
                    await self.observer(event)
                except asyncio.CancelledError:
                    raise
                except Exception:
                    self.failed += 1
                    log.exception("observer %s failed on %s", self.name, event.kind)
            self._wake.clear()
            await self._wake.wait()

    async def stop(self) -> None:
        if self._task is not None and not self._task.done():
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task


class EventBus:
    """Where the engine announces events and observers subscribe to them."""

    def __init__(self, capacity: int = DEFAULT_CAPACITY) -> None:
        self.capacity = capacity
        self.subscriptions: list[Subscription] = []

    def subscribe(
        self, observer: Observer, *, name: str | None = None, capacity: int | None = None
    ) -> Subscription:
        name = name or str(getattr(observer, "__qualname__", repr(observer)))
        sub = Subscription(observer, name, capacity or self.capacity)
        self.subscriptions.append(sub)
        return sub

    async def unsubscribe(self, sub: Subscription) -> None:
        self.subscriptions.remove(sub)
        await sub.stop()

    def announce(
        self, kind: EventKind, bucket: str, *, by: str | None = None, **fields: object
    ) -> None:
        """Queue an event for every observer; returns at once, whatever the observers do.
        `by` is who asked when `asking` does not say (a background task's name)."""
        if not self.subscriptions:
            return
        principal = asking.get() or by
        event = Event(kind, bucket, principal=principal, **fields)  # type: ignore[arg-type]
        for sub in self.subscriptions:
            sub.offer(event)

    async def close(self) -> None:
        for sub in self.subscriptions:
            await sub.stop()
