"""The check every request passes before anything decides it: whether rights changed anywhere
since this worker last looked (docs/decisions/0035-rights-counter.md).

A worker keeps what decides requests in memory (secrets and who each key is, identity and role
policies, buckets with their policy, ACL, owner and controls). The catalog bumps its rights
counter in the transaction of every change of those; `check` asks the catalog's mark first (on
SQLite `PRAGMA data_version` on the reader connection), reads the counter only when something
was committed since, and empties every cache it watches when the counter moved. So a change
acknowledged by any worker or process holds on this worker from its next request on.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from egide.catalog.rights import RightsCatalog


class RightsWatch:
    """One per worker: the caches of rights it empties when the catalog's counter moves."""

    def __init__(self, catalog: RightsCatalog, forget: Iterable[Callable[[], None]] = ()) -> None:
        self._catalog = catalog
        #: Each empties one cache (a `forget_all`).
        self._forget = tuple(forget)
        self._mark: int | None = None
        self._version: int | None = None

    async def check(self) -> None:
        """Empty the caches if rights changed since the last check (the front door's
        `before_each`)."""
        mark = self._catalog.changes_mark()
        if mark == self._mark:
            return
        version = await self._catalog.rights_version()
        if version != self._version:
            self._version = version
            for forget in self._forget:
                forget()
        # Only now: a request checking meanwhile (a backend that awaits) reads the counter too
        # rather than being decided by caches not yet emptied.
        self._mark = mark
