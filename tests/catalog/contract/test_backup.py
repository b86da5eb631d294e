"""The backup interface (egide.catalog.backup): a live catalog's copy, a catalog file filled by a
rebuild, and the restore's fix-ups, all read back through the catalog interface."""

from __future__ import annotations

from pathlib import Path

import pytest
from tests.catalog.contract.builders import SITES, new_bucket, packed, trashed, version

from egide.catalog import open_catalog_file
from egide.catalog.backup import CatalogRepair
from egide.catalog.base import Catalog, Identities
from egide.domain import AccessKey, Bucket, Group, Role, User, shard_name


def _alone(path: Path) -> list[str]:
    """What is in the file's folder: a catalog file must need nothing beside it."""
    return sorted(p.name for p in path.parent.iterdir())


async def test_a_copy_is_the_catalog_at_one_time_in_one_file(
    catalog: Catalog, bucket: Bucket, tmp_path: Path
) -> None:
    first = version(bucket, "a", null=False)
    await catalog.commit_version(first)
    await catalog.put_bucket_setting(bucket.id, "cors", "[]")
    target = tmp_path / "copy" / "catalog"
    target.parent.mkdir()
    await catalog.copy_to(target)
    later = version(bucket, "a", null=False)
    await catalog.commit_version(later)  # after the copy: not in it
    assert _alone(target) == ["catalog"]
    copy = open_catalog_file(target)
    try:
        current = await copy.get_object(bucket.id, "a")
        assert current is not None and current.version_id == first.version_id
        assert await copy.get_bucket("photos") == bucket
        assert await copy.get_bucket_setting(bucket.id, "cors") == "[]"
    finally:
        await copy.close_as_file()
    assert _alone(target) == ["catalog"]
    live = await catalog.get_object(bucket.id, "a")
    assert live is not None and live.version_id == later.version_id


async def test_a_copy_keeps_iceberg_namespaces_and_tables(
    catalog: Catalog, bucket: Bucket, tmp_path: Path
) -> None:
    await catalog.create_namespace("photos", ("sales",), {"owner": "ana"})
    await catalog.create_table("photos", ("sales",), "orders", "s3://photos/m1.json")
    target = tmp_path / "copy" / "catalog"
    target.parent.mkdir()
    await catalog.copy_to(target)
    copy = open_catalog_file(target)
    try:
        assert await copy.namespace_properties("photos", ("sales",)) == {"owner": "ana"}
        assert await copy.tables("photos", ("sales",)) == ["orders"]
        assert await copy.table("photos", ("sales",), "orders") == "s3://photos/m1.json"
    finally:
        await copy.close_as_file()


async def test_fill_makes_each_keys_newest_current_and_counts_packs(
    catalog: Catalog, tmp_path: Path
) -> None:
    bucket = new_bucket("rebuilt")
    old, new = version(bucket, "a", null=False), version(bucket, "a", null=False)
    small = packed(bucket, "s", "pack-1", 0)
    target = tmp_path / "filled" / "catalog"
    target.parent.mkdir()
    filled = open_catalog_file(target)
    try:
        await filled.fill(
            [bucket], {(bucket.id, "a"): [old, new], (bucket.id, "s"): [small]},
            {bucket.id: {"versioning": "Enabled"}}, {bucket.id: [b"retired-key"]},
            Identities(None, (), (), ((AccessKey("AKIAFILLED", "admin", "Active", 0.0), b"s"),)),
        )  # fmt: skip
        current = await filled.get_object(bucket.id, "a")
        assert current is not None and current.version_id == new.version_id
        listed = await filled.list_versions(bucket.id, "a", None, 10)
        assert [(v.version_id, latest) for v, latest in listed] == [
            (new.version_id, True),
            (old.version_id, False),
        ]
        assert await filled.get_bucket_setting(bucket.id, "versioning") == "Enabled"
        assert await filled.get_credential("AKIAFILLED") == b"s"
        retired = await filled.retired_bucket_keys(bucket.id)
        assert [wrapped for _, _, wrapped in retired] == [b"retired-key"]
        assert (await filled.site_references(SITES[0]))["packs"] == 1
    finally:
        await filled.close_as_file()
    assert _alone(target) == ["catalog"]


async def _copied(catalog: Catalog, tmp_path: Path) -> Path:
    target = tmp_path / "restored"
    await catalog.copy_to(target)
    return target


async def test_repair_drops_versions_and_points_keys_at_their_newest(
    catalog: Catalog, bucket: Bucket, tmp_path: Path
) -> None:
    old, new = version(bucket, "a", null=False), version(bucket, "a", null=False)
    alone = version(bucket, "b", null=False)
    for v in (old, new, alone):
        await catalog.commit_version(v)
    restored = open_catalog_file(await _copied(catalog, tmp_path))
    try:

        def fix(repair: CatalogRepair) -> tuple[int, int, int, int]:
            repair.drop_versions([new.version_id, alone.version_id])
            repair.point_at_newest(bucket.id, "a")
            repair.point_at_newest(bucket.id, "b")
            return repair.totals()

        assert await restored.repair(fix) == (1, 1, old.size, 1)
        current = await restored.get_object(bucket.id, "a")
        assert current is not None and current.version_id == old.version_id
        assert await restored.get_object(bucket.id, "b") is None
        assert await restored.get_version_by_id(new.version_id) is None
    finally:
        await restored.close_as_file()


async def test_repair_is_all_or_nothing(catalog: Catalog, bucket: Bucket, tmp_path: Path) -> None:
    kept = version(bucket, "a")
    await catalog.commit_version(kept)
    restored = open_catalog_file(await _copied(catalog, tmp_path))
    try:

        def fail(repair: CatalogRepair) -> None:
            repair.drop_versions([kept.version_id])
            raise RuntimeError("half-way")

        with pytest.raises(RuntimeError, match="half-way"):
            await restored.repair(fail)
        assert await restored.get_version_by_id(kept.version_id) == await catalog.get_version_by_id(
            kept.version_id
        )
    finally:
        await restored.close_as_file()


async def test_repair_appends_after_a_keys_versions_and_keeps_them_out_of_the_trash(
    catalog: Catalog, bucket: Bucket, tmp_path: Path
) -> None:
    replaced = version(bucket, "a")
    await catalog.commit_version(replaced)
    await catalog.commit_version(version(bucket, "a"))  # replaces the null version: trash
    files = {(site, shard_name(replaced.version_id, 0, i)) for i, site in enumerate(SITES)}
    assert files <= set(await trashed(catalog))
    restored = open_catalog_file(await _copied(catalog, tmp_path))
    try:

        def fix(repair: CatalogRepair) -> None:
            # Found again on the sites (say): back after the key's others, and referenced.
            repair.append_versions(
                bucket.id, "a", [version(bucket, "a", null=False, version_id=replaced.version_id)]
            )
            repair.point_at_newest(bucket.id, "a")
            repair.keep_referenced_out_of_trash()

        await restored.repair(fix)
        current = await restored.get_object(bucket.id, "a")
        assert current is not None and current.version_id == replaced.version_id
        assert not files & set(await trashed(restored))
    finally:
        await restored.close_as_file()


async def test_repair_recounts_packs_and_replaces_settings_and_credentials(
    catalog: Catalog, bucket: Bucket, tmp_path: Path
) -> None:
    one, two = packed(bucket, "one", "pack-1", 0), packed(bucket, "two", "pack-2", 0)
    await catalog.commit_pack("pack-1", list(SITES), [one])
    await catalog.commit_pack("pack-2", list(SITES), [two])
    await catalog.add_credential("AKIAOLD", b"old")
    await catalog.add_credential("AKIAKEPT", b"kept")
    await catalog.put_bucket_setting(bucket.id, "cors", "[]")
    assert (await catalog.site_references(SITES[0]))["packs"] == 2
    restored = open_catalog_file(await _copied(catalog, tmp_path))
    try:

        def fix(repair: CatalogRepair) -> int:
            repair.drop_versions([one.version_id])
            repair.point_at_newest(bucket.id, "one")
            repair.recount_packs()
            repair.replace_credentials(
                Identities(None, (), (), (
                    (AccessKey("AKIAKEPT", "admin", "Active", 0.0), b"resealed"),
                    (AccessKey("AKIANEW", "admin", "Active", 0.0), b"new"),
                )),
                1.0,
            )  # fmt: skip
            gone = new_bucket("gone").id
            return repair.replace_bucket_settings({bucket.id: {"tags": "x"}, gone: {"a": "b"}})

        assert await restored.repair(fix) == 1
        assert (await restored.site_references(SITES[0]))["packs"] == 1
        assert sorted(await restored.sealed_credentials()) == [
            ("AKIAKEPT", b"resealed"),
            ("AKIANEW", b"new"),
        ]
        assert await restored.all_bucket_settings() == {bucket.id: {"tags": "x"}}
    finally:
        await restored.close_as_file()


async def test_fill_and_repair_keep_users_groups_keys_and_the_account(
    catalog: Catalog, tmp_path: Path
) -> None:
    """What the credentials record holds comes back whole: a rebuilt or restored catalog
    keeps the account id, the users' ids, the groups, each key's status and expiry, and the
    roles with their policies."""
    alice = User("alice", "AIDAALICE", 5.0)
    admin = User("admin", "AIDAADMIN", 1.0)
    readers = Group("readers", "AGPAREADERS", 6.0, ("admin", "alice"))
    keys = (
        (AccessKey("EGADMIN", "admin", "Active", 2.0), b"s0"),
        (AccessKey("EGALICE", "alice", "Inactive", 7.0, 99.0), b"s1"),
    )
    policies = (
        ("role", "reader", "read", '{"Statement": []}'),
        ("user", "alice", "read", '{"Statement": []}'),
    )
    roles = (Role("reader", "AROAREADER", 8.0, '{"Statement": []}', 7200),)
    recorded = Identities("123456789012", (admin, alice), (readers,), keys, policies, roles)
    target = tmp_path / "filled" / "catalog"
    target.parent.mkdir()
    filled = open_catalog_file(target)
    try:
        await filled.fill([], {}, {}, {}, recorded)
        assert await filled.identities() == recorded
    finally:
        await filled.close_as_file()
    await catalog.add_credential("EGBEFORE", b"old")
    restored = open_catalog_file(await _copied(catalog, tmp_path))
    try:
        await restored.repair(lambda repair: repair.replace_credentials(recorded, 3.0))
        assert await restored.identities() == recorded
        holder = await restored.key_holder("EGALICE")
        assert holder is not None and holder.groups == ("readers",)
    finally:
        await restored.close_as_file()


async def test_a_record_from_before_users_replaces_the_keys_alone(
    catalog: Catalog, tmp_path: Path
) -> None:
    await catalog.create_user(User("alice", "AIDAALICE", 5.0))
    await catalog.create_group(Group("readers", "AGPAREADERS", 6.0))
    await catalog.set_group_member("readers", "alice", True)
    await catalog.put_identity_policy("user", "alice", "read", "{}")
    await catalog.add_credential("EGKEPT", b"old")
    await catalog.add_access_key(AccessKey("EGALICE", "alice", "Active", 7.0), b"a")
    before = await catalog.identities()
    restored = open_catalog_file(await _copied(catalog, tmp_path))
    try:
        old = Identities(None, (), (), ((AccessKey("EGKEPT", "admin", "Active", 0.0), b"new"),))
        await restored.repair(lambda repair: repair.replace_credentials(old, 3.0))
        after = await restored.identities()
        assert (after.account, after.users, after.groups, after.policies) == (
            before.account, before.users, before.groups, before.policies,
        )  # fmt: skip
        ((key, sealed),) = after.keys
        assert (key.access_key, key.user, sealed) == ("EGKEPT", "admin", b"new")
        assert key.created == dict((k.access_key, k.created) for k, _ in before.keys)["EGKEPT"]
    finally:
        await restored.close_as_file()
