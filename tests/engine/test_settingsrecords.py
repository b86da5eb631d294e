"""Bucket settings records: written when a bucket's settings differ from those last recorded,
sealed under the bucket key, the newest opening as the bucket's settings."""

from __future__ import annotations

from pathlib import Path

from tests.engine.helpers import make_env

from egide.domain import is_settings_record_name
from egide.engine.settingsrecords import (
    RECORD_NAME,
    RECORDED,
    open_named_settings,
    record_settings,
)
from egide.engine.versioning import VERSIONING


def test_settings_are_recorded_once_per_change(tmp_path: Path) -> None:
    env = make_env(tmp_path)

    async def scenario() -> None:
        bucket = await env.store.create_bucket("b")
        await env.store.create_bucket("other")
        assert await record_settings(env.store.vault) == 2  # every bucket once, settings or not
        assert await record_settings(env.store.vault) == 0  # nothing changed
        await env.catalog.put_bucket_setting(bucket.id, VERSIONING, "Enabled")
        await env.catalog.put_bucket_setting(bucket.id, "cors", '[{"origin": "partner.example"}]')
        assert await record_settings(env.store.vault) == 1
        names = sorted([n async for n in env.sites[0].list("bset-")])
        assert len(names) == 2  # one per bucket: a new record removes the one it supersedes
        assert all(is_settings_record_name(n) for n in names)
        assert not any(b.hex() in n for n in names for b in (bucket.id,))  # no bucket id
        newest = await env.catalog.get_bucket_setting(bucket.id, RECORD_NAME)
        assert newest in names
        copies = {await site.read(newest, 0, -1) for site in env.sites}
        assert len(copies) == 1
        sealed = copies.pop()
        assert b"partner.example" not in sealed and bucket.id not in sealed
        key = env.store.bucket_key(bucket)
        opened = open_named_settings([key], bucket.id, newest, sealed)
        assert opened is not None and opened[0] == bucket.id
        assert opened[2] == {
            VERSIONING: "Enabled", "cors": '[{"origin": "partner.example"}]', RECORD_NAME: newest,
        }  # fmt: skip
        # Bound to its bucket and name: renamed, or under another bucket, it does not open.
        assert open_named_settings([key], bucket.id, "bset-" + "0" * 32, sealed) is None
        assert open_named_settings([key], bytes(16), newest, sealed) is None
        assert await env.catalog.get_bucket_setting(bucket.id, RECORDED) is not None

    env.run(scenario)


def test_settings_no_site_takes_are_recorded_when_a_site_comes_back(tmp_path: Path) -> None:
    env = make_env(tmp_path)

    async def scenario() -> None:
        bucket = await env.store.create_bucket("b")
        for site in env.sites:
            (site.root / "tmp").rename(site.root / "tmp.off")  # no site takes a new file
        assert await record_settings(env.store.vault) == 0  # logged, left for the next round
        assert await env.catalog.get_bucket_setting(bucket.id, RECORDED) is None
        for site in env.sites:
            (site.root / "tmp.off").rename(site.root / "tmp")
        assert await record_settings(env.store.vault) == 1

    env.run(scenario)
