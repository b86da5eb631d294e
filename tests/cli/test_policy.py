"""`egide policy explain|set`: which policy a bucket follows and why, and storing a new one."""

from __future__ import annotations

import json
import shutil

from tests.cli.conftest import Store

from egide.engine.placing import SETTING


def _stored_policy(store: Store, bucket: str) -> dict[str, object] | None:
    rows = store.sql(
        "SELECT s.value FROM bucket_settings s JOIN buckets b ON b.id = s.bucket_id "
        "WHERE b.name = ? AND s.name = ?",
        bucket,
        SETTING,
    )
    return json.loads(rows[0][0]) if rows else None


def test_explain_says_where_the_policy_comes_from_and_why_sites_are_refused(store: Store) -> None:
    result = store.json("policy", "explain", "health")
    assert result["exists"] is True
    assert result["source"] == "configuration"
    assert result["policy"] == {
        "k": 2, "m": 2, "exclude_laws": ["us-cloud-act"], "certifications": ["HDS"],
        "max_per_provider": 2,
    }  # fmt: skip
    verdicts = {site["name"]: site for site in result["sites"]}
    assert verdicts["aws-par"]["refusals"] == [
        "law us-cloud-act in exclude_laws",
        "lacks certification HDS",
    ]
    assert verdicts["aws-iad"]["allowed"] is False
    placement = result["placement"]["sites"]
    assert sorted(placement) == ["lyon-1", "lyon-2", "ovh-gra", "ovh-sbg"]
    assert [verdicts[name]["role"] for name in placement] == ["data", "data", "parity", "parity"]
    text = store.egide("policy", "explain", "health").stdout
    assert "configuration's [[policies]] entry naming the bucket" in text
    assert "refused: law us-cloud-act in exclude_laws" in text


def test_explain_a_bucket_not_created_yet_and_the_default(store: Store) -> None:
    result = store.json("policy", "explain", "future")
    assert (result["exists"], result["source"]) == (False, "configuration default")
    assert result["policy"] == {"k": 4, "m": 2, "max_per_provider": 2}
    assert len(result["placement"]["sites"]) == 6


def test_explain_counts_sites_that_do_not_answer_as_down(store: Store) -> None:
    shutil.rmtree(store.root / "data" / "sites" / "ovh-gra")
    archive = store.json("policy", "explain", "archive")
    assert archive["placement"] is None  # 4+2 at most 2 per provider needs all six
    assert "down: ovh-gra" in archive["infeasible"]
    assert {s["name"]: s["down"] for s in archive["sites"]}["ovh-gra"] is True
    health = store.json("policy", "explain", "health")
    assert health["placement"] is None
    assert "ovh-gra" in health["infeasible"]
    # Without probing, every site counts as up.
    assert store.json("policy", "explain", "archive", "--no-probe")["placement"] is not None


def test_set_refuses_an_invalid_policy_naming_the_rule(store: Store) -> None:
    bad = store.root / "bad.toml"
    bad.write_text("k = 3\nm = 1\nmax_per_provider = 0\n")
    result = store.egide("policy", "set", "archive", str(bad))
    assert result.exit_code == 2
    assert "refused: max_per_provider: 0 is below 1" in result.output
    bad.write_text('{"k": 2, "m": 1, "min_in_country": {"FR": 4}}')
    result = store.egide("policy", "set", "archive", str(bad))
    assert result.exit_code == 2
    assert "min_in_country: 4 shards in FR exceeds k+m = 3" in result.output
    bad.write_text('k = 2\nm = 1\nbuckets = ["archive"]\n')
    assert store.egide("policy", "set", "archive", str(bad)).exit_code == 2
    assert _stored_policy(store, "archive") is None


def test_set_refuses_a_policy_no_placement_can_meet(store: Store) -> None:
    infeasible = store.root / "snc.toml"
    infeasible.write_text('k = 2\nm = 1\ncertifications = ["SecNumCloud"]\n')
    result = store.egide("policy", "set", "archive", str(infeasible))
    assert result.exit_code == 2
    assert "no placement even with every site up: certifications SecNumCloud" in result.output
    assert _stored_policy(store, "archive") is None


def test_set_stores_the_policy_and_clear_removes_it(store: Store) -> None:
    policy = store.root / "sovereign.toml"
    policy.write_text(
        '# only EU law\nk = 2\nm = 2\nexclude_laws = ["us-cloud-act"]\nobjective = "cheapest"\n'
    )
    result = store.json("policy", "set", "archive", str(policy))
    assert result["source"] == "catalog"
    stored = {"k": 2, "m": 2, "exclude_laws": ["us-cloud-act"], "objective": "cheapest"}
    assert _stored_policy(store, "archive") == stored
    explained = store.json("policy", "explain", "archive")
    assert (explained["source"], explained["policy"]) == ("catalog", stored)
    # cheapest first: OVHcloud (0.007, 0.008), then Lyon (0.010 each)
    assert explained["placement"]["sites"][:2] == ["ovh-gra", "ovh-sbg"]
    assert "aws-par" not in explained["placement"]["sites"]
    result = store.egide("policy", "set", "archive", "--clear")
    assert result.exit_code == 0, result.output
    assert "now follows the configuration's default policy" in result.stdout
    assert _stored_policy(store, "archive") is None
    assert store.json("policy", "explain", "archive")["source"] == "configuration default"


def test_set_needs_an_existing_bucket_and_one_of_file_or_clear(store: Store) -> None:
    policy = store.root / "p.toml"
    policy.write_text("k = 1\nm = 1\n")
    result = store.egide("policy", "set", "nobody", str(policy))
    assert result.exit_code == 2 and "no bucket nobody" in result.output
    assert store.egide("policy", "set", "archive").exit_code == 2
    assert store.egide("policy", "set", "archive", str(policy), "--clear").exit_code == 2
