"""Catalog contract: the rights-change counter (docs/decisions/0035-rights-counter.md) moves in
the transaction of every change that can alter a decision, and of nothing else; its mark moves
whenever anything is committed."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import pytest
from tests.catalog.contract.builders import new_bucket, version

from egide.catalog.base import Catalog
from egide.catalog.postgres import PostgresCatalog
from egide.domain import (
    KEY_ACTIVE,
    KEY_INACTIVE,
    AccessKey,
    Bucket,
    BucketExists,
    BucketNotEmpty,
    BucketNotFound,
    DomainError,
    Group,
    IdentityExists,
    IdentityNotFound,
    Role,
    User,
    UserHasKeys,
)

Change = Callable[[Catalog, Bucket], Awaitable[object]]


def _assert_mark_kept(catalog: Catalog, mark: int) -> None:
    """Nothing committed: the mark is the same, on a backend that can tell (SQLite's
    data_version); one that cannot (PostgreSQL, decision 0035) gives a new mark on every
    call, as the protocol allows, so that the counter is read on every request."""
    if isinstance(catalog, PostgresCatalog):
        assert catalog.changes_mark() != mark
    else:
        assert catalog.changes_mark() == mark


async def _user_with_key(catalog: Catalog) -> None:
    await catalog.create_user(User("alice", "AIDAA", 1.0))
    await catalog.add_access_key(AccessKey("EGA", "alice", KEY_ACTIVE, 1.0), b"sealed")


async def _group_with_alice(catalog: Catalog) -> None:
    await catalog.create_user(User("alice", "AIDAA", 1.0))
    await catalog.create_group(Group("team", "AGPAT", 1.0))
    await catalog.set_group_member("team", "alice", True)


#: (what is there first, the change) by name: each must move the counter.
CHANGES: dict[str, tuple[Change | None, Change]] = {
    "create a bucket": (None, lambda c, b: c.create_bucket(new_bucket("other"))),
    "delete a bucket": (None, lambda c, b: c.delete_bucket(b.name)),
    "shred a bucket": (None, lambda c, b: c.shred_bucket(b.id, [])),
    "set a bucket setting": (None, lambda c, b: c.put_bucket_setting(b.id, "policy", "{}")),
    "remove a bucket setting": (
        lambda c, b: c.put_bucket_setting(b.id, "acl", "x"),
        lambda c, b: c.put_bucket_setting(b.id, "acl", None),
    ),
    "swap a bucket setting": (None, lambda c, b: c.swap_bucket_setting(b.id, "acl", None, "x")),
    "set an account setting": (None, lambda c, b: c.put_account_setting("quota", "{}")),
    "remove an account setting": (
        lambda c, b: c.put_account_setting("quota", "{}"),
        lambda c, b: c.put_account_setting("quota", None),
    ),
    "create a user": (None, lambda c, b: c.create_user(User("bob", "AIDAB", 1.0))),
    "delete a user": (
        lambda c, b: _user_with_key(c),
        lambda c, b: c.delete_user("alice", force=True),
    ),
    "create a group": (None, lambda c, b: c.create_group(Group("team", "AGPAT", 1.0))),
    "delete a group": (lambda c, b: _group_with_alice(c), lambda c, b: c.delete_group("team")),
    "add a member": (
        lambda c, b: _group_with_alice(c),
        lambda c, b: c.set_group_member("team", "alice", False),
    ),
    "attach a policy": (
        lambda c, b: c.create_user(User("alice", "AIDAA", 1.0)),
        lambda c, b: c.put_identity_policy("user", "alice", "p", "{}"),
    ),
    "detach a policy": (
        lambda c, b: c.put_identity_policy("user", "admin", "p", "{}"),
        lambda c, b: c.delete_identity_policy("user", "admin", "p"),
    ),
    "add an access key": (
        None,
        lambda c, b: c.add_access_key(AccessKey("EGB", "admin", KEY_ACTIVE, 1.0), b"s"),
    ),
    "disable an access key": (
        lambda c, b: _user_with_key(c),
        lambda c, b: c.set_access_key_status("EGA", KEY_INACTIVE),
    ),
    "delete an access key": (
        lambda c, b: _user_with_key(c),
        lambda c, b: c.delete_access_key("EGA"),
    ),
    "add a credential": (None, lambda c, b: c.add_credential("EGOLD", b"sealed")),
    "reseal credentials": (
        lambda c, b: c.add_credential("EGOLD", b"sealed"),
        lambda c, b: c.reseal_credentials([("EGOLD", b"sealed", b"resealed")]),
    ),
    "create a role": (None, lambda c, b: c.create_role(Role("r", "AROAR", 1.0, "{}", 3600))),
    "update a role": (
        lambda c, b: c.create_role(Role("r", "AROAR", 1.0, "{}", 3600)),
        lambda c, b: c.update_role("r", max_session=7200),
    ),
    "delete a role": (
        lambda c, b: c.create_role(Role("r", "AROAR", 1.0, "{}", 3600)),
        lambda c, b: c.delete_role("r"),
    ),
}


@pytest.mark.parametrize("name", sorted(CHANGES))
async def test_a_change_of_rights_moves_the_counter_and_the_mark(
    catalog: Catalog, bucket: Bucket, name: str
) -> None:
    before, change = CHANGES[name]
    if before is not None:
        await before(catalog, bucket)
    counter, mark = await catalog.rights_version(), catalog.changes_mark()
    await change(catalog, bucket)
    assert await catalog.rights_version() != counter
    assert catalog.changes_mark() != mark


async def test_reading_moves_neither_the_counter_nor_the_mark(
    catalog: Catalog, bucket: Bucket
) -> None:
    await _group_with_alice(catalog)
    await catalog.put_bucket_setting(bucket.id, "policy", "{}")
    counter, mark = await catalog.rights_version(), catalog.changes_mark()
    _assert_mark_kept(catalog, mark)  # asked twice, nothing committed
    await catalog.get_bucket(bucket.name)
    await catalog.get_bucket_by_id(bucket.id)
    await catalog.list_buckets()
    await catalog.get_bucket_setting(bucket.id, "policy")
    await catalog.all_bucket_settings()
    await catalog.account_id()
    await catalog.get_account_setting("quota")
    await catalog.users()
    await catalog.groups()
    await catalog.identities()
    await catalog.key_holder("EGA")
    await catalog.identity_policies("user", "alice")
    await catalog.role("r")
    await catalog.rights_version()
    assert await catalog.rights_version() == counter
    _assert_mark_kept(catalog, mark)


async def test_objects_move_the_mark_but_not_the_counter(catalog: Catalog, bucket: Bucket) -> None:
    counter, mark = await catalog.rights_version(), catalog.changes_mark()
    await catalog.commit_version(version(bucket, "a"))
    assert catalog.changes_mark() != mark  # something was committed: the counter is read
    assert await catalog.rights_version() == counter  # and found where it was


#: Changes refused whole: the counter stays where it was (the bump is in their transaction).
REFUSED: dict[str, tuple[Change, type[DomainError]]] = {
    "a bucket that exists": (lambda c, b: c.create_bucket(new_bucket(b.name)), BucketExists),
    "deleting a bucket not empty": (lambda c, b: c.delete_bucket(b.name), BucketNotEmpty),
    "deleting no bucket": (lambda c, b: c.delete_bucket("nothing"), BucketNotFound),
    "a user that exists": (lambda c, b: c.create_user(User("admin", "AIDAX", 1.0)), IdentityExists),
    "deleting a user with keys": (lambda c, b: c.delete_user("alice"), UserHasKeys),
    "a key of nobody": (
        lambda c, b: c.add_access_key(AccessKey("EGN", "nobody", KEY_ACTIVE, 1.0), b"s"),
        IdentityNotFound,
    ),
    "a key that exists": (
        lambda c, b: c.add_access_key(AccessKey("EGA", "alice", KEY_ACTIVE, 1.0), b"s"),
        IdentityExists,
    ),
    "disabling no key": (
        lambda c, b: c.set_access_key_status("EGNONE", KEY_INACTIVE),
        IdentityNotFound,
    ),
    "deleting no key": (lambda c, b: c.delete_access_key("EGNONE"), IdentityNotFound),
    "a policy of nobody": (
        lambda c, b: c.put_identity_policy("user", "nobody", "p", "{}"),
        IdentityNotFound,
    ),
    "detaching no policy": (
        lambda c, b: c.delete_identity_policy("user", "alice", "none"),
        IdentityNotFound,
    ),
    "deleting no group": (lambda c, b: c.delete_group("none"), IdentityNotFound),
    "a member of no group": (
        lambda c, b: c.set_group_member("none", "alice", True),
        IdentityNotFound,
    ),
    "a role that exists": (
        lambda c, b: c.create_role(Role("r", "AROAX", 1.0, "{}", 3600)),
        IdentityExists,
    ),
    "updating no role": (lambda c, b: c.update_role("none", max_session=1), IdentityNotFound),
    "deleting no role": (lambda c, b: c.delete_role("none"), IdentityNotFound),
}


@pytest.mark.parametrize("name", sorted(REFUSED))
async def test_a_refused_change_leaves_the_counter(
    catalog: Catalog, bucket: Bucket, name: str
) -> None:
    await _user_with_key(catalog)
    await catalog.create_role(Role("r", "AROAR", 1.0, "{}", 3600))
    await catalog.commit_version(version(bucket, "a"))
    counter = await catalog.rights_version()
    change, error = REFUSED[name]
    with pytest.raises(error):
        await change(catalog, bucket)
    assert await catalog.rights_version() == counter


async def test_a_swap_that_does_not_happen_leaves_the_counter(
    catalog: Catalog, bucket: Bucket
) -> None:
    counter = await catalog.rights_version()
    assert not await catalog.swap_bucket_setting(bucket.id, "acl", "expected", "x")
    assert await catalog.rights_version() == counter


async def test_a_membership_unchanged_leaves_the_counter(catalog: Catalog) -> None:
    await _group_with_alice(catalog)
    counter = await catalog.rights_version()
    assert not await catalog.set_group_member("team", "alice", True)  # already in
    assert await catalog.rights_version() == counter
