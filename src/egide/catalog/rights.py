"""The rights-change counter (docs/decisions/0035-rights-counter.md).

Every worker of every gateway keeps what decides a request (secrets and who each key is,
identity and role policies, buckets with their policy, ACL, owner, Object Ownership and Public
Access Block) in memory. So that a change made anywhere holds everywhere before it is
acknowledged, every backend keeps one counter, bumped in the same transaction as each change
that can alter a decision; a worker asks `changes_mark` before each request and, only when it
moved, reads `rights_version`, and empties its caches when that moved.
"""

from __future__ import annotations

from typing import Protocol


class RightsCatalog(Protocol):
    async def rights_version(self) -> int:
        """The counter. It moves (never the other way on a live catalog) in the same
        transaction as: a bucket created or deleted (shredded too), any bucket setting or
        account setting set or removed, a user, group, membership, identity policy, role or
        access key created, changed or deleted, a credential added or resealed. Nothing else
        moves it, and a change that fails does not."""

    def changes_mark(self) -> int:
        """A cheap hint (no table read), for a check on every request: a number that differs
        from the one it gave before whenever anything may have been committed since (by this
        process or any other). Equal, `rights_version` has certainly not moved. A backend that
        cannot tell returns a new number on each call (the counter is then read every time)."""
