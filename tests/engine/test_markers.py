"""Delete marker records: written on every site before the marker is committed, sealed, and
removed again when the catalog refuses the marker."""

from __future__ import annotations

from pathlib import Path

import pytest
from tests.engine.helpers import make_env, payload

from egide.domain import ObjectLocked, SitesUnavailable, marker_record_name
from egide.engine.markers import open_record
from egide.engine.versioning import VERSIONING


def test_a_delete_marker_is_recorded_sealed_on_every_site(tmp_path: Path) -> None:
    env = make_env(tmp_path)

    async def scenario() -> None:
        bucket = await env.store.create_bucket("b")
        await env.catalog.put_bucket_setting(bucket.id, VERSIONING, "Enabled")
        await env.put("b", "secret-report.pdf", payload(100))
        marker = await env.store.delete_object("b", "secret-report.pdf")
        assert marker is not None and marker.delete_marker
        name = marker_record_name(marker.version_id)
        copies = {await site.read(name, 0, -1) for site in env.sites}
        assert len(copies) == 1  # the same sealed bytes everywhere
        sealed = copies.pop()
        assert b"secret-report" not in sealed
        key = env.store.bucket_key(bucket)
        assert open_record([key], bucket.id, marker.version_id, sealed) == marker
        # Bound to its bucket and version: under another id it does not open.
        assert open_record([key], bucket.id, bytes(16), sealed) is None

    env.run(scenario)


def test_a_refused_marker_leaves_no_record(tmp_path: Path) -> None:
    env = make_env(tmp_path)

    async def scenario() -> None:
        bucket = await env.store.create_bucket("b")
        await env.put("b", "held", payload(100))  # the null version, never versioned yet
        await env.catalog.set_lock(bucket.id, "held", None, legal_hold=True)
        await env.catalog.put_bucket_setting(bucket.id, VERSIONING, "Suspended")
        with pytest.raises(ObjectLocked):  # a null marker would replace the held null version
            await env.store.delete_object("b", "held")
        for site in env.sites:
            assert [name async for name in site.list("mark-")] == []

    env.run(scenario)


def test_no_marker_without_a_site_to_record_it(tmp_path: Path) -> None:
    env = make_env(tmp_path)

    async def scenario() -> None:
        bucket = await env.store.create_bucket("b")
        await env.catalog.put_bucket_setting(bucket.id, VERSIONING, "Enabled")
        version = await env.put("b", "k", payload(100))
        for site in env.sites:
            (site.root / "tmp").rename(site.root / "tmp.off")  # no site takes a new file
        with pytest.raises(SitesUnavailable):
            await env.store.delete_object("b", "k")
        current = await env.store.head_object("b", "k")
        assert current.version_id == version.version_id  # not deleted

    env.run(scenario)
