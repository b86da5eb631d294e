"""The credentials record: access keys and sealed secrets, sealed as a whole under the master
key, recorded again when they change."""

from __future__ import annotations

import json
from pathlib import Path

from tests.engine.helpers import make_env

from egide.auth.policy import check_identity_policy
from egide.catalog.identities import Identities
from egide.crypto.keyring import Keyring
from egide.domain import Role
from egide.engine.credentialrecords import (
    KIND,
    document_of,
    identities_of,
    open_credentials,
    read_credentials,
    record_credentials,
)


def test_credentials_are_recorded_when_they_change(tmp_path: Path) -> None:
    env = make_env(tmp_path)
    sites = {site.name: site for site in env.sites}

    async def scenario() -> None:
        sealed = env.keyring.seal_secret("EGFIRSTACCESSKEY0001", b"first secret")
        await env.catalog.add_credential("EGFIRSTACCESSKEY0001", sealed)
        assert await record_credentials(env.store.vault)
        assert not await record_credentials(env.store.vault)  # unchanged
        await env.catalog.add_credential("EGSECONDACCESSKEY002", b"sealed second")
        assert await record_credentials(env.store.vault)
        names = [n async for n in env.sites[0].list("creds-")]
        assert len(names) == 2
        for site in env.sites:  # nothing readable: not even the access keys
            for name in names:
                assert b"EGFIRST" not in await site.read(name, 0, -1)
        found, _, problems = await read_credentials(sites, env.keyring)
        assert problems == []
        assert found == await env.catalog.identities()
        assert found is not None and len(found.keys) == 2
        other = Keyring(bytes(32))
        missing, _, problems = await read_credentials(sites, other)
        assert missing is None and len(problems) == 2  # under another master key: nothing

    env.run(scenario)


def test_the_record_keeps_users_groups_and_key_status_and_expiry(tmp_path: Path) -> None:
    env = make_env(tmp_path)
    sites = {site.name: site for site in env.sites}

    async def scenario() -> None:
        await env.store.identities.create_user("alice")
        await env.store.identities.create_group("readers")
        await env.store.identities.set_member("readers", "alice", True)
        key, _ = await env.store.identities.create_key("alice", expires=2e9)
        await env.store.identities.set_key_active(key.access_key, False)
        deny = '{"Statement": {"Effect": "Deny", "Action": "*", "Resource": "*"}}'
        await env.store.identities.put_policy(
            "group", "readers", "read", deny, validate=check_identity_policy
        )
        assert not await record_credentials(env.store.vault)  # each change recorded it
        found, _, problems = await read_credentials(sites, env.keyring)
        assert problems == [] and found is not None
        assert found.account == await env.catalog.account_id()
        assert [u.name for u in found.users] == ["admin", "alice"]
        assert [(g.name, g.members) for g in found.groups] == [("readers", ("alice",))]
        assert found.policies == (("group", "readers", "read", deny),)
        ((recorded, sealed),) = found.keys
        assert (recorded.access_key, recorded.user, recorded.status, recorded.expires) == (
            key.access_key, "alice", "Inactive", 2e9,
        )  # fmt: skip
        assert sealed == (await env.catalog.get_credential(key.access_key))

    env.run(scenario)


def test_a_record_from_before_users_still_opens_as_keys_of_admin() -> None:
    keyring = Keyring(bytes(range(32)))
    document = json.dumps([["EGOLDKEY", b"sealed".hex()]]).encode()
    sealed = keyring.seal_record(KIND, b"7", document)
    opened = open_credentials(keyring, 7, sealed)
    assert opened is not None
    assert opened.account is None and opened.users == () and opened.groups == ()
    ((key, secret),) = opened.keys
    assert (key.access_key, key.user, key.status, key.expires, secret) == (
        "EGOLDKEY", "admin", "Active", None, b"sealed",
    )  # fmt: skip


def test_the_record_keeps_roles_and_a_record_without_them_opens() -> None:
    role = Role("reader", "AROAREADER", 8.0, '{"Statement": []}', 7200)
    recorded = Identities("123456789012", (), (), (), (("role", "reader", "p", "{}"),), (role,))
    assert identities_of(json.loads(json.dumps(document_of(recorded)))) == recorded
    before = document_of(recorded)
    del before["roles"]  # written by an Égide from before roles
    assert identities_of(before).roles == ()
