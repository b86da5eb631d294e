"""The rights watch: the caches it watches are emptied when a change of rights was committed by
anyone (another process's catalog connection here), and only then; a commit that changes no
right (an object version) leaves them; the secret cache, emptied, refuses a deleted key at once
(no second of lifetime to wait, the clock does not move)."""

from __future__ import annotations

import asyncio
from pathlib import Path

from tests.catalog.contract.builders import new_bucket, version
from tests.clocks import ManualClock

from egide.auth.credentials import SecretCache
from egide.auth.rights import RightsWatch
from egide.catalog.sqlite import SQLiteCatalog
from egide.crypto.keyring import Keyring
from egide.engine.identities import IdentityService


def test_caches_are_emptied_when_rights_changed_anywhere_and_only_then(tmp_path: Path) -> None:
    clock = ManualClock(now=1_800_000_000.0)
    path = tmp_path / "catalog.sqlite3"
    mine, theirs = SQLiteCatalog(path, clock=clock), SQLiteCatalog(path, clock=clock)
    mine.open()
    theirs.open()  # another process on the same catalog
    keyring = Keyring(bytes(range(32)))
    cache = SecretCache(mine, keyring, clock=clock)
    emptied: list[int] = []
    watch = RightsWatch(mine, (cache.forget_all, lambda: emptied.append(1)))

    async def scenario() -> None:
        bucket = new_bucket("photos")
        await theirs.create_bucket(bucket)
        ids = IdentityService(theirs, keyring, clock=clock)
        await ids.create_user("alice")
        key, secret = await ids.create_key("alice")

        await watch.check()
        assert len(emptied) == 1  # the first look
        assert await cache.secret(key.access_key) == secret
        await watch.check()
        assert len(emptied) == 1  # nothing committed since

        await theirs.commit_version(version(bucket, "a"))
        await watch.check()
        assert len(emptied) == 1  # committed, but no right changed
        assert cache.get(key.access_key) == secret

        await ids.delete_key(key.access_key)
        assert cache.get(key.access_key) == secret  # cached, until the next request's check
        await watch.check()
        assert len(emptied) == 2
        # A request that loaded the key before the change still knows who it is …
        assert cache.principal(key.access_key).user == "alice"
        # … the next one loads it again: refused at once, at the same instant.
        assert await cache.secret(key.access_key) is None
        assert cache.get(key.access_key) is None

        await theirs.put_bucket_setting(bucket.id, "policy", "{}")
        await watch.check()
        await watch.check()
        assert len(emptied) == 3

        await mine.put_bucket_setting(bucket.id, "acl", "x")  # this worker's own change too
        await watch.check()
        assert len(emptied) == 4

    try:
        asyncio.run(scenario())
    finally:
        asyncio.run(theirs.close())
        asyncio.run(mine.close())
