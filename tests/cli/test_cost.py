"""`egide cost`: the monthly bill from the sites' prices, and a proposed policy's."""

from __future__ import annotations

from pytest import approx
from tests.cli.conftest import SITES, Store

GIB = 1 << 30
PRICES = {name: price for name, _, _, _, price in SITES}


def test_cost_per_site_and_bucket_follows_the_stored_bytes(store: Store) -> None:
    result = store.json("cost")
    held = {row["name"]: row["held"] for row in store.json("site", "list", "--no-probe")["sites"]}
    sites = {row["site"]: row for row in result["sites"]}
    assert set(sites) == set(PRICES)
    for name, row in sites.items():
        assert row["bytes"] == held[name]["bytes"]
        assert row["storage_gb_month"] == PRICES[name]
        assert row["monthly"] == approx(row["bytes"] / GIB * PRICES[name])
        assert row["egress_gb"] == 0.01  # shown as a rate
    buckets = {row["bucket"]: row for row in result["buckets"]}
    assert set(buckets) == {"archive", "health", "scratch"}
    for name, row in buckets.items():
        by_site = {site: h["bytes_by_bucket"].get(name, 0) for site, h in held.items()}
        assert row["bytes"] == sum(by_site.values())
        assert row["monthly"] == approx(sum(b / GIB * PRICES[s] for s, b in by_site.items()))
    assert result["total"]["monthly"] == approx(sum(row["monthly"] for row in buckets.values()))
    # scratch lives on AWS only
    assert {s for s, h in held.items() if h["bytes_by_bucket"].get("scratch")} == {
        "aws-par",
        "aws-iad",
    }
    text = store.egide("cost").stdout
    assert "Monthly storage cost per bucket" in text and "aws-iad" in text


def test_a_proposed_policy_is_priced_before_it_is_set(store: Store) -> None:
    proposal = store.root / "cheap.toml"
    proposal.write_text('k = 2\nm = 1\nexclude_providers = ["AWS"]\nobjective = "cheapest"\n')
    result = store.json("cost", "--bucket", "archive", "--policy", str(proposal))
    plan = result["proposal"]
    assert plan["bucket"] == "archive" and plan["versions"] == 6
    then = {row["site"]: row["bytes"] for row in plan["proposed"]["sites"]}
    # cheapest 3 sites without AWS: OVHcloud's two (0.007, 0.008) and one in Lyon (0.010)
    assert set(then) <= {"ovh-gra", "ovh-sbg", "lyon-1", "lyon-2"}
    assert {"ovh-gra", "ovh-sbg"} <= set(then)
    assert plan["proposed"]["monthly"] < plan["current"]["monthly"]
    assert plan["monthly_difference"] == approx(
        plan["proposed"]["monthly"] - plan["current"]["monthly"]
    )
    # 2+1 stores 1.5 times the data, 4+2 stored 1.5 times too: about the same bytes.
    assert plan["proposed"]["bytes"] == approx(plan["current"]["bytes"], rel=0.05)
    # Nothing was set.
    assert store.json("policy", "explain", "archive", "--no-probe")["source"] == (
        "configuration default"
    )


def test_cost_refuses_a_policy_it_cannot_place(store: Store) -> None:
    proposal = store.root / "snc.toml"
    proposal.write_text('k = 2\nm = 1\ncertifications = ["SecNumCloud"]\n')
    result = store.egide("cost", "--bucket", "archive", "--policy", str(proposal))
    assert result.exit_code == 2
    assert "no placement even with every site up: certifications SecNumCloud" in result.output
    assert store.egide("cost", "--policy", str(proposal)).exit_code == 2  # which bucket?
