"""The identity service: users, groups and access keys changed in one call each (catalog,
credentials record on the sites, event naming the key, never a secret)."""

from __future__ import annotations

from pathlib import Path

import pytest
from tests.engine.helpers import make_env

from egide.auth.policy import MalformedPolicy, check_identity_policy
from egide.domain import (
    IdentityNotFound,
    IdentityRefused,
    InvalidIdentityName,
    UserHasKeys,
)
from egide.engine.credentialrecords import read_credentials
from egide.engine.events import Event, EventKind
from egide.engine.identities import MAX_POLICY_BYTES


def test_keys_of_a_user_are_created_disabled_rotated_and_deleted(tmp_path: Path) -> None:
    env = make_env(tmp_path)
    sites = {site.name: site for site in env.sites}
    seen: list[Event] = []

    async def observe(event: Event) -> None:
        seen.append(event)

    async def scenario() -> None:
        env.store.events.subscribe(observe, name="test")
        ids = env.store.identities
        user = await ids.create_user("alice")
        assert user.id.startswith("AIDA") and len(user.id) == 21
        key, secret = await ids.create_key("alice", expires=4e9)
        holder = await env.catalog.key_holder(key.access_key)
        assert holder is not None and holder.key == key and key.status == "Active"
        assert env.keyring.open_secret(key.access_key, holder.sealed_secret) == secret.encode()
        await ids.set_key_active(key.access_key, False)
        assert (await ids.key(key.access_key)).status == "Inactive"
        await ids.set_key_active(key.access_key, True)
        new, new_secret = await ids.rotate_key(key.access_key)
        assert new.user == "alice" and new.access_key != key.access_key and new_secret != secret
        assert [k.status for k in await ids.keys("alice")] == ["Active", "Active"]  # old kept
        await ids.delete_key(key.access_key)
        assert [k.access_key for k in await ids.keys("alice")] == [new.access_key]
        with pytest.raises(IdentityNotFound):
            await ids.delete_key(key.access_key)
        with pytest.raises(IdentityNotFound):
            await ids.create_key("nobody")
        found, _, _ = await read_credentials(sites, env.keyring)  # recorded at once
        assert found is not None and [k.access_key for k, _ in found.keys] == [new.access_key]
        await env.store.events.close()

    env.run(scenario)
    changes = [(e.detail, e.access_key) for e in seen if e.kind is EventKind.CREDENTIALS_CHANGED]
    assert [d for d, _ in changes] == [
        "user-created:alice", "added", "disabled", "enabled", "added", "deleted",
    ]  # fmt: skip
    assert all(secret_free(e) for e in seen)


def secret_free(event: Event) -> bool:
    return "secret" not in repr(event).lower()


def test_users_with_keys_and_groups_are_deleted_as_asked(tmp_path: Path) -> None:
    env = make_env(tmp_path)

    async def scenario() -> None:
        ids = env.store.identities
        await ids.create_user("bob")
        await ids.create_group("auditors")
        assert await ids.set_member("auditors", "bob", True)
        assert not await ids.set_member("auditors", "bob", True)
        key, _ = await ids.create_key("bob")
        with pytest.raises(UserHasKeys):
            await ids.delete_user("bob")
        assert await ids.delete_user("bob", force=True) == [key.access_key]
        assert await env.catalog.key_holder(key.access_key) is None
        assert [(g.name, g.members) for g in await ids.groups()] == [("auditors", ())]
        await ids.delete_group("auditors")
        assert await ids.groups() == []
        with pytest.raises(IdentityRefused):
            await ids.delete_user("admin", force=True)
        for bad in ("", "a b", "x" * 65, "é"):
            with pytest.raises(InvalidIdentityName):
                await ids.create_user(bad)

    env.run(scenario)


def test_identity_policies_are_json_objects_of_bounded_size(tmp_path: Path) -> None:
    env = make_env(tmp_path)

    async def scenario() -> None:
        ids = env.store.identities
        await ids.create_user("frank")
        document = '{"Statement": {"Effect": "Deny", "Action": "*", "Resource": "*"}}'
        await ids.put_policy("user", "frank", "nothing", document, validate=check_identity_policy)
        assert await ids.policies("user", "frank") == {"nothing": document}
        for bad in ("[]", "not json", '{"a": "' + "x" * MAX_POLICY_BYTES + '"}'):
            with pytest.raises(InvalidIdentityName):
                await ids.put_policy("user", "frank", "bad", bad, validate=check_identity_policy)
        with pytest.raises(InvalidIdentityName):
            await ids.put_policy("account", "frank", "p", "{}", validate=check_identity_policy)
        with pytest.raises(IdentityNotFound):
            await ids.put_policy("group", "nogroup", "p", document, validate=check_identity_policy)
        with pytest.raises(MalformedPolicy):  # what `validate` refuses is not stored
            await ids.put_policy("user", "frank", "p", "{}", validate=check_identity_policy)
        assert await ids.policies("user", "frank") == {"nothing": document}
        await ids.delete_policy("user", "frank", "nothing")
        assert await ids.policies("user", "frank") == {}

    env.run(scenario)
