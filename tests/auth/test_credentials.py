"""The secret cache: a key disabled, deleted or past its expiry is refused within a second
(what was loaded is kept at most one second of the clock), and a key names its user, the
user's ARN and groups."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from pathlib import Path
from typing import Any

from tests.clocks import ManualClock

from egide.auth.credentials import LIFETIME, SecretCache
from egide.catalog.base import Catalog
from egide.catalog.sqlite import SQLiteCatalog
from egide.crypto.keyring import Keyring
from egide.engine.events import EventBus
from egide.engine.identities import IdentityService


def test_a_change_is_seen_after_a_second_and_not_before(tmp_path: Path) -> None:
    clock = ManualClock(now=1_800_000_000.0)
    catalog = SQLiteCatalog(tmp_path / "catalog.sqlite3", clock=clock)
    catalog.open()
    keyring = Keyring(bytes(range(32)))
    ids = IdentityService(catalog, keyring, clock=clock)
    cache = SecretCache(catalog, keyring, clock=clock)

    async def scenario() -> None:
        await ids.create_user("alice")
        await ids.create_group("readers")
        await ids.set_member("readers", "alice", True)
        key, secret = await ids.create_key("alice", expires=clock.time() + 10)
        other, other_secret = await ids.create_key("alice")
        assert await cache.secret(key.access_key) == secret
        principal = cache.principal(key.access_key)
        account = await catalog.account_id()
        assert (principal.user, principal.arn, principal.groups) == (
            "alice", f"arn:aws:iam::{account}:user/alice", frozenset({"readers"}),
        )  # fmt: skip

        await ids.set_key_active(key.access_key, False)
        clock.advance(LIFETIME / 2)
        assert await cache.secret(key.access_key) == secret  # not yet: cached
        clock.advance(LIFETIME / 2)
        assert await cache.secret(key.access_key) is None  # a second later: refused
        assert cache.get(key.access_key) is None
        assert await cache.secret(other.access_key) == other_secret  # the other still works

        await ids.set_key_active(key.access_key, True)
        clock.advance(LIFETIME)
        assert await cache.secret(key.access_key) == secret
        clock.advance(10)  # past its expiry
        assert await cache.secret(key.access_key) is None
        await ids.delete_key(other.access_key)
        assert cache.get(other.access_key) == other_secret  # loaded less than a second ago
        clock.advance(LIFETIME)
        assert await cache.secret(other.access_key) is None
        assert await cache.secret("EGUNKNOWN") is None and await cache.secret("") is None

        await ids.set_member("readers", "alice", False)
        fresh, fresh_secret = await ids.create_key("alice")
        assert await cache.secret(fresh.access_key) == fresh_secret
        assert cache.principal(fresh.access_key).groups == frozenset()

    async def main() -> None:
        try:
            await scenario()
        finally:
            await catalog.close()

    asyncio.run(main())


def test_unknown_and_refused_keys_are_not_kept(tmp_path: Path) -> None:
    """A client naming random access keys must not grow a worker's memory: only usable keys
    stay in the cache (a refused one is asked of the catalog again, an indexed read)."""
    clock = ManualClock(now=1_800_000_000.0)
    catalog = SQLiteCatalog(tmp_path / "catalog.sqlite3", clock=clock)
    catalog.open()
    keyring = Keyring(bytes(range(32)))
    ids = IdentityService(catalog, keyring, clock=clock)
    cache = SecretCache(catalog, keyring, clock=clock)

    async def scenario() -> None:
        await ids.create_user("alice")
        key, secret = await ids.create_key("alice")
        for n in range(1000):
            assert await cache.secret(f"EGRANDOM{n:012d}") is None
        assert await cache.secret(key.access_key) == secret
        assert len(cache) == 1
        await ids.set_key_active(key.access_key, False)
        clock.advance(LIFETIME)
        assert await cache.secret(key.access_key) is None
        assert cache.get(key.access_key) is None
        assert len(cache) == 0
        await catalog.close()

    asyncio.run(scenario())


def run_closing(
    scenario: Coroutine[Any, Any, None], ids: IdentityService, catalog: Catalog
) -> None:
    """Run `scenario`, then close the events of `ids` and the catalog, whatever happened."""

    async def main() -> None:
        try:
            await scenario
        finally:
            await ids.events.close()
            await catalog.close()

    asyncio.run(main())


async def settled(bus: EventBus) -> None:
    """Once every observer of `bus` has seen every event announced."""
    while any(sub.waiting for sub in bus.subscriptions):
        await asyncio.sleep(0)
    await asyncio.sleep(0)


def test_a_change_made_through_this_worker_is_seen_at_once(tmp_path: Path) -> None:
    """Subscribed to the engine's events, the cache forgets a key disabled, or who a key is
    after a membership changed, with no second to wait."""
    clock = ManualClock(now=1_800_000_000.0)
    catalog = SQLiteCatalog(tmp_path / "catalog.sqlite3", clock=clock)
    catalog.open()
    keyring = Keyring(bytes(range(32)))
    ids = IdentityService(catalog, keyring, EventBus(), clock=clock)
    cache = SecretCache(catalog, keyring, clock=clock)
    ids.events.subscribe(cache.forget)

    async def scenario() -> None:
        await ids.create_user("bob")
        await ids.create_group("readers")
        key, secret = await ids.create_key("bob")
        other, other_secret = await ids.create_key("bob")
        await settled(ids.events)
        assert await cache.secret(key.access_key) == secret
        assert await cache.secret(other.access_key) == other_secret
        await ids.set_key_active(key.access_key, False)
        await settled(ids.events)
        assert await cache.secret(key.access_key) is None  # the clock has not moved
        assert cache.get(other.access_key) == other_secret  # only that key was forgotten
        await ids.set_member("readers", "bob", True)
        await settled(ids.events)
        assert await cache.secret(other.access_key) == other_secret
        assert cache.principal(other.access_key).groups == frozenset({"readers"})

    run_closing(scenario(), ids, catalog)
