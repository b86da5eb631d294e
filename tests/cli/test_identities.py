"""`egide user`, `egide group` and `egide key` on a store written by a real server: users,
their groups and their keys, each secret shown once, changes recorded on the sites."""

from __future__ import annotations

import asyncio
import json
import re
import time
from datetime import datetime
from pathlib import Path

from tests.cli.conftest import Store
from tests.conftest import ACCESS_KEY

from egide.config import load_settings
from egide.engine.credentialrecords import read_credentials
from egide.masterkey import load_keyring
from egide.sites.factory import build_site


def recorded_keys(store: Store) -> dict[str, str]:
    """access key → status, as the newest credentials record on the sites holds them."""
    settings = load_settings(store.config)
    sites = {}
    for config in settings.resolved_sites():
        site = build_site(config)
        site.attach()
        sites[config.name] = site
    found, _, _ = asyncio.run(read_credentials(sites, load_keyring(settings)))
    assert found is not None
    return {key.access_key: key.status for key, _ in found.keys}


def test_users_are_created_listed_and_the_existing_key_is_the_admins(store: Store) -> None:
    created = store.json("user", "create", "alice")
    assert re.fullmatch(r"arn:aws:iam::\d{12}:user/alice", created["arn"])
    users = store.json("user", "list")
    assert [u["name"] for u in users] == ["admin", "alice"]
    assert users[0]["access_keys"] == 1 and users[1]["access_keys"] == 0
    assert users[0]["arn"].split(":")[4] == created["arn"].split(":")[4]  # one account
    assert [(k["access_key"], k["user"], k["status"]) for k in store.json("key", "list")] == [
        (ACCESS_KEY, "admin", "Active")
    ]
    again = store.egide("user", "create", "alice")
    assert again.exit_code == 1 and "refused" in again.output and "alice" in again.output
    bad = store.egide("user", "create", "not a name")
    assert bad.exit_code == 1 and "letters, digits" in bad.output


def test_a_keys_life_create_disable_enable_rotate_delete(store: Store) -> None:
    store.egide("user", "create", "bob")
    created = store.egide("key", "create", "bob", "--expires", "30d")
    assert created.exit_code == 0, created.output
    access = re.search(r"access key\s+(EG\w+)", created.output)
    secret = re.search(r"secret key\s+(\S+)", created.output)
    assert access and secret and "shown once" in created.output
    key = access.group(1)
    (listed,) = store.json("key", "list", "bob")
    assert listed["status"] == "Active" and listed["expires"] is not None
    expires = datetime.fromisoformat(listed["expires"]).timestamp()
    assert 29 * 86400 < expires - time.time() < 31 * 86400
    assert secret.group(1) not in store.egide("key", "list", "bob").output  # never again

    assert store.egide("key", "disable", key).exit_code == 0
    assert store.json("key", "list", "bob")[0]["status"] == "Inactive"
    assert recorded_keys(store)[key] == "Inactive"  # recorded on the sites at once
    assert store.egide("key", "enable", key).exit_code == 0
    assert store.json("key", "list", "bob")[0]["status"] == "Active"

    rotated = store.json("key", "rotate", key)
    assert rotated["user"] == "bob" and rotated["secret_key"] and rotated["access_key"] != key
    assert [k["status"] for k in store.json("key", "list", "bob")] == ["Active", "Active"]
    assert store.egide("key", "delete", key).exit_code == 0
    assert [k["access_key"] for k in store.json("key", "list", "bob")] == [rotated["access_key"]]
    assert key not in recorded_keys(store)
    gone = store.egide("key", "disable", key)
    assert gone.exit_code == 1 and key in gone.output

    refused = store.egide("user", "delete", "bob")
    assert refused.exit_code == 1 and "access key" in refused.output
    forced = store.egide("user", "delete", "bob", "--force")
    assert forced.exit_code == 0 and rotated["access_key"] in forced.output
    assert store.json("key", "list", "bob") == []
    assert store.egide("key", "create", "bob").exit_code == 1
    assert store.egide("key", "create", "bob", "--expires", "2001-01-01").exit_code == 2


def test_groups_hold_users(store: Store) -> None:
    store.egide("user", "create", "carol")
    assert store.egide("group", "create", "auditors").exit_code == 0
    assert "added to" in store.egide("group", "add", "auditors", "carol").output
    assert "already in" in store.egide("group", "add", "auditors", "carol").output
    store.egide("group", "add", "auditors", "admin")
    (group,) = store.json("group", "list")
    assert group["members"] == ["admin", "carol"]
    assert re.fullmatch(r"arn:aws:iam::\d{12}:group/auditors", group["arn"])
    assert store.egide("group", "add", "auditors", "nobody").exit_code == 1
    assert store.egide("group", "remove", "auditors", "carol").exit_code == 0
    assert store.json("group", "list")[0]["members"] == ["admin"]
    assert store.egide("group", "delete", "auditors").exit_code == 0
    assert store.json("group", "list") == []
    assert store.egide("group", "delete", "auditors").exit_code == 1


def test_credentials_create_still_makes_a_key_of_admin(store: Store) -> None:
    result = store.egide("credentials", "create")
    assert result.exit_code == 0, result.output
    access = re.search(r"access key\s+(EG\w+)", result.output)
    assert access
    keys = {k["access_key"]: k["user"] for k in store.json("key", "list", "admin")}
    assert keys[access.group(1)] == "admin"
    refused = store.egide("user", "delete", "admin", "--force")
    assert refused.exit_code == 1 and "cannot be deleted" in refused.output


def test_identity_policies_are_attached_to_users_and_groups(store: Store, tmp_path: Path) -> None:
    store.egide("user", "create", "dave")
    store.egide("group", "create", "readers")
    policy = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:Get*",
                                                      "Resource": "*"}]}  # fmt: skip
    file = tmp_path / "read.json"
    file.write_text(json.dumps(policy))
    assert store.egide("user", "policy-put", "dave", "read", str(file)).exit_code == 0
    assert store.egide("group", "policy-put", "readers", "read", str(file)).exit_code == 0
    assert store.json("user", "policies", "dave") == {"read": policy}
    assert store.json("group", "policies", "readers") == {"read": policy}
    file.write_text("[1, 2]")
    refused = store.egide("user", "policy-put", "dave", "bad", str(file))
    assert refused.exit_code == 1 and "JSON object" in refused.output
    assert store.egide("user", "policy-put", "nobody", "p", str(file)).exit_code == 1
    assert store.egide("user", "policy-delete", "dave", "read").exit_code == 0
    assert store.json("user", "policies", "dave") == {}
    assert store.egide("user", "policy-delete", "dave", "read").exit_code == 1


def test_a_malformed_identity_policy_is_refused_and_not_stored(
    store: Store, tmp_path: Path
) -> None:
    store.egide("user", "create", "ivan")
    store.egide("group", "create", "ivans")
    file = tmp_path / "bad.json"
    file.write_text(json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "s3:GetObject"}]}))  # fmt: skip
    for kind, name in (("user", "ivan"), ("group", "ivans")):
        refused = store.egide(kind, "policy-put", name, "p", str(file))
        assert refused.exit_code != 0 and "Resource" in refused.output
        assert store.json(kind, "policies", name) == {}
