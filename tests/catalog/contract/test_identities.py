"""Catalog contract: the account, users, groups and access keys."""

from __future__ import annotations

import pytest

from egide.catalog.base import Catalog
from egide.domain import (
    ADMIN_USER,
    KEY_ACTIVE,
    KEY_INACTIVE,
    AccessKey,
    Group,
    IdentityExists,
    IdentityNotFound,
    User,
    UserHasKeys,
)


def key(access: str, user: str, created: float = 1.0, expires: float | None = None) -> AccessKey:
    return AccessKey(access, user, KEY_ACTIVE, created, expires)


async def test_a_new_catalog_has_an_account_and_the_admin_user(catalog: Catalog) -> None:
    account = await catalog.account_id()
    assert len(account) == 12 and account.isdigit()
    assert await catalog.account_id() == account  # kept
    assert [u.name for u in await catalog.users()] == [ADMIN_USER]
    assert await catalog.groups() == []


async def test_add_credential_gives_the_admin_an_active_key(catalog: Catalog) -> None:
    await catalog.add_credential("EGOLD", b"sealed")
    holder = await catalog.key_holder("EGOLD")
    assert holder is not None
    assert (holder.key.user, holder.key.status, holder.key.expires) == (ADMIN_USER, "Active", None)
    assert holder.sealed_secret == b"sealed" and holder.groups == ()


async def test_users_are_created_listed_and_unique(catalog: Catalog) -> None:
    await catalog.create_user(User("zoe", "AIDAZ", 5.0))
    await catalog.create_user(User("alice", "AIDAA", 6.0))
    with pytest.raises(IdentityExists):
        await catalog.create_user(User("alice", "AIDAB", 7.0))
    assert [(u.name, u.id, u.created) for u in await catalog.users()] == [
        ("admin", (await catalog.users())[0].id, (await catalog.users())[0].created),
        ("alice", "AIDAA", 6.0),
        ("zoe", "AIDAZ", 5.0),
    ]


async def test_keys_belong_to_a_known_user_and_are_listed_by_user(catalog: Catalog) -> None:
    await catalog.create_user(User("alice", "AIDAA", 1.0))
    with pytest.raises(IdentityNotFound):
        await catalog.add_access_key(key("EGNOBODY", "nobody"), b"s")
    await catalog.add_access_key(key("EGA2", "alice", created=3.0, expires=99.5), b"s2")
    await catalog.add_access_key(key("EGA1", "alice", created=2.0), b"s1")
    with pytest.raises(IdentityExists):
        await catalog.add_access_key(key("EGA1", "alice"), b"again")
    await catalog.add_credential("EGADMIN", b"s0")
    assert [k.access_key for k in await catalog.access_keys("alice")] == ["EGA1", "EGA2"]
    assert (await catalog.access_keys("alice"))[1].expires == 99.5
    assert [k.access_key for k in await catalog.access_keys()] == ["EGADMIN", "EGA1", "EGA2"]
    assert await catalog.access_keys("nobody") == []
    assert await catalog.count_credentials() == 3
    assert await catalog.get_credential("EGA2") == b"s2"


async def test_a_key_is_disabled_enabled_and_deleted(catalog: Catalog) -> None:
    await catalog.add_credential("EGK", b"s")
    await catalog.set_access_key_status("EGK", KEY_INACTIVE)
    holder = await catalog.key_holder("EGK")
    assert holder is not None and holder.key.status == KEY_INACTIVE
    await catalog.set_access_key_status("EGK", KEY_ACTIVE)
    holder = await catalog.key_holder("EGK")
    assert holder is not None and holder.key.status == KEY_ACTIVE
    await catalog.delete_access_key("EGK")
    assert await catalog.key_holder("EGK") is None
    assert await catalog.get_credential("EGK") is None
    with pytest.raises(IdentityNotFound):
        await catalog.delete_access_key("EGK")
    with pytest.raises(IdentityNotFound):
        await catalog.set_access_key_status("EGK", KEY_INACTIVE)


async def test_groups_hold_members_and_a_key_knows_its_users_groups(catalog: Catalog) -> None:
    await catalog.create_user(User("alice", "AIDAA", 1.0))
    await catalog.create_group(Group("readers", "AGPAR", 2.0))
    await catalog.create_group(Group("auditors", "AGPAU", 3.0))
    with pytest.raises(IdentityExists):
        await catalog.create_group(Group("readers", "AGPAX", 4.0))
    assert await catalog.set_group_member("readers", "alice", True)
    assert not await catalog.set_group_member("readers", "alice", True)
    assert await catalog.set_group_member("auditors", "alice", True)
    assert await catalog.set_group_member("readers", "admin", True)
    with pytest.raises(IdentityNotFound):
        await catalog.set_group_member("nogroup", "alice", True)
    with pytest.raises(IdentityNotFound):
        await catalog.set_group_member("readers", "nobody", True)
    assert [(g.name, g.id, g.members) for g in await catalog.groups()] == [
        ("auditors", "AGPAU", ("alice",)),
        ("readers", "AGPAR", ("admin", "alice")),
    ]
    await catalog.add_access_key(key("EGA", "alice"), b"s")
    holder = await catalog.key_holder("EGA")
    assert holder is not None and holder.groups == ("auditors", "readers")
    assert await catalog.set_group_member("readers", "alice", False)
    assert not await catalog.set_group_member("readers", "alice", False)
    await catalog.delete_group("auditors")
    with pytest.raises(IdentityNotFound):
        await catalog.delete_group("auditors")
    holder = await catalog.key_holder("EGA")
    assert holder is not None and holder.groups == ()
    assert [(g.name, g.members) for g in await catalog.groups()] == [("readers", ("admin",))]


async def test_a_user_with_keys_is_deleted_only_with_force(catalog: Catalog) -> None:
    await catalog.create_user(User("alice", "AIDAA", 1.0))
    await catalog.create_group(Group("readers", "AGPAR", 2.0))
    await catalog.set_group_member("readers", "alice", True)
    await catalog.add_access_key(key("EGA1", "alice", created=1.0), b"s")
    await catalog.add_access_key(key("EGA2", "alice", created=2.0), b"s")
    with pytest.raises(UserHasKeys):
        await catalog.delete_user("alice")
    assert [k.access_key for k in await catalog.access_keys("alice")] == ["EGA1", "EGA2"]
    assert await catalog.delete_user("alice", force=True) == ["EGA1", "EGA2"]
    assert await catalog.key_holder("EGA1") is None
    assert [u.name for u in await catalog.users()] == ["admin"]
    assert (await catalog.groups())[0].members == ()
    with pytest.raises(IdentityNotFound):
        await catalog.delete_user("alice")
    await catalog.create_user(User("bob", "AIDAB", 1.0))
    assert await catalog.delete_user("bob") == []


async def test_identity_policies_attach_to_users_and_groups_and_go_with_them(
    catalog: Catalog,
) -> None:
    await catalog.create_user(User("alice", "AIDAA", 1.0))
    await catalog.create_group(Group("readers", "AGPAR", 2.0))
    with pytest.raises(IdentityNotFound):
        await catalog.put_identity_policy("user", "nobody", "p", "{}")
    await catalog.put_identity_policy("user", "alice", "write", '{"Statement": []}')
    await catalog.put_identity_policy("user", "alice", "read", '{"a": 1}')
    await catalog.put_identity_policy("user", "alice", "read", '{"a": 2}')  # replaced
    await catalog.put_identity_policy("group", "readers", "read", '{"g": 1}')
    assert await catalog.identity_policies("user", "alice") == {
        "read": '{"a": 2}', "write": '{"Statement": []}',
    }  # fmt: skip
    assert await catalog.identity_policies("group", "readers") == {"read": '{"g": 1}'}
    assert await catalog.identity_policies("group", "alice") == {}
    assert (await catalog.identities()).policies == (
        ("group", "readers", "read", '{"g": 1}'),
        ("user", "alice", "read", '{"a": 2}'),
        ("user", "alice", "write", '{"Statement": []}'),
    )
    await catalog.delete_identity_policy("user", "alice", "write")
    with pytest.raises(IdentityNotFound):
        await catalog.delete_identity_policy("user", "alice", "write")
    await catalog.delete_user("alice")
    await catalog.delete_group("readers")
    await catalog.create_user(User("alice", "AIDAA2", 3.0))
    assert await catalog.identity_policies("user", "alice") == {}  # not inherited by a new one
    assert (await catalog.identities()).policies == ()


async def test_an_account_setting_is_set_read_replaced_and_removed(catalog: Catalog) -> None:
    assert await catalog.get_account_setting("quota") is None
    await catalog.put_account_setting("quota", '{"max_bytes": 1}')
    assert await catalog.get_account_setting("quota") == '{"max_bytes": 1}'
    await catalog.put_account_setting("quota", "second")
    assert await catalog.get_account_setting("quota") == "second"
    await catalog.put_account_setting("quota", None)
    assert await catalog.get_account_setting("quota") is None
    await catalog.put_account_setting("quota", None)  # removing nothing is no error
