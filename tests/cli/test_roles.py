"""`egide role` on a store written by a real server: roles with their trust policies, validated
before they are kept, and the identity policies attached to them."""

from __future__ import annotations

import re
from pathlib import Path

from tests.cli.conftest import Store

TRUST = '{"Statement": {"Effect": "Allow", "Principal": {"AWS": "%s"}, "Action": "sts:AssumeRole"}}'
READ = '{"Statement": {"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"}}'


def test_a_role_is_created_shown_given_policies_and_deleted(store: Store, tmp_path: Path) -> None:
    account = store.json("user", "list")[0]["arn"].split(":")[4]
    trust = tmp_path / "trust.json"
    trust.write_text(TRUST % f"arn:aws:iam::{account}:user/alice")
    created = store.json("role", "create", "reader", str(trust), "--max-session-duration", "7200")
    assert re.fullmatch(rf"arn:aws:iam::{account}:role/reader", created["arn"])
    assert created["id"].startswith("AROA") and created["max_session_duration"] == 7200
    read = tmp_path / "read.json"
    read.write_text(READ)
    assert store.egide("role", "attach-policy", "reader", "read", str(read)).exit_code == 0
    shown = store.json("role", "show", "reader")
    assert shown["policies"] == {"read": {"Statement": {"Effect": "Allow",
                                 "Action": "s3:GetObject", "Resource": "*"}}}  # fmt: skip
    assert shown["trust_policy"]["Statement"]["Principal"]["AWS"].endswith(":user/alice")
    assert [r["name"] for r in store.json("role", "list")] == ["reader"]
    assert store.egide("role", "detach-policy", "reader", "read").exit_code == 0
    assert store.json("role", "show", "reader")["policies"] == {}
    assert store.egide("role", "delete", "reader").exit_code == 0
    assert store.json("role", "list") == []
    assert store.egide("role", "show", "reader").exit_code == 1


def test_a_malformed_trust_policy_or_duration_is_refused(store: Store, tmp_path: Path) -> None:
    no_principal = tmp_path / "bad.json"
    no_principal.write_text(READ.replace('"Resource": "*"', '"Resource": "*"'))
    result = store.egide("role", "create", "bad", str(no_principal))
    assert result.exit_code == 1 and "Missing required field Principal" in result.output
    trust = tmp_path / "trust.json"
    trust.write_text(TRUST % "*")
    result = store.egide("role", "create", "long", str(trust), "--max-session-duration", "50000")
    assert result.exit_code == 1 and "900 to 43200" in result.output
    # an identity policy naming a principal is not one
    result = store.egide("role", "create", "ok", str(trust))
    assert result.exit_code == 0
    assert store.egide("role", "attach-policy", "ok", "p", str(trust)).exit_code == 1
    assert store.json("role", "list")[0]["name"] == "ok"
