"""Compliance: `check` finds every violation, `survival` says what a loss costs, `explain` says
why."""

from __future__ import annotations

from egide.placement import (
    Placement,
    Policy,
    SiteProfile,
    check,
    explain,
    solve,
    survival,
    unreadable,
)


def _site(name: str, provider: str, **fields: object) -> SiteProfile:
    return SiteProfile.model_validate({"name": name, "provider": provider, **fields})


SITES = [
    _site("dc-tls", "Région", city="Toulouse", certifications=["HDS"]),
    _site("ovh-gra", "OVHcloud", city="Gravelines", certifications=["HDS"], storage_gb_month=0.007),
    _site("ovh-sbg", "OVHcloud", city="Strasbourg", certifications=["HDS"], storage_gb_month=0.008),
    _site("osc-par", "Outscale", city="Paris", certifications=["HDS"], storage_gb_month=0.02),
    _site("aws-par", "AWS", city="Paris", certifications=["HDS"], storage_gb_month=0.024),
    _site("aws-iad", "AWS", city="Ashburn", storage_gb_month=0.023),
]


def test_check_accepts_a_compliant_placement() -> None:
    policy = Policy(k=2, m=1, max_per_provider=1, min_in_country={"FR": 2})
    assert check(policy, SITES, Placement(("dc-tls", "ovh-gra", "aws-par"), 2, 1)) == []


def test_check_lists_every_violation() -> None:
    policy = Policy(
        k=3,
        m=1,
        exclude_countries=["US"],
        certifications=["HDS"],
        max_per_provider=1,
        max_per_country=3,
        max_per_law={"us-cloud-act": 1},
        min_in_country={"DE": 1},
    )
    placement = Placement(("ovh-gra", "ovh-sbg", "aws-par", "aws-iad", "gone", "dc-tls"), 4, 2)
    assert check(policy, SITES, placement) == [
        "code 4+2 differs from the policy's 3+1",
        "6 sites for k+m = 3+1 = 4 shards",
        "site aws-iad excluded: country US in exclude_countries",
        "site aws-iad excluded: lacks certification HDS",
        "site gone is not in the inventory",
        "provider AWS holds 2 shards, max_per_provider = 1",
        "provider OVHcloud holds 2 shards, max_per_provider = 1",
        "country FR holds 4 shards, max_per_country = 3",
        "law us-cloud-act reaches 2 shards, max_per_law = 1",
        "country DE holds 0 shards, min_in_country DE = 1",
    ]


def test_check_finds_a_site_used_twice() -> None:
    policy = Policy(k=2, m=1)
    assert check(policy, SITES, Placement(("dc-tls", "dc-tls", "ovh-gra"), 2, 1)) == [
        "site dc-tls holds 2 shards"
    ]


def test_unreadable_when_fewer_than_k_shards_remain() -> None:
    placements = {
        "a": Placement(("dc-tls", "ovh-gra", "ovh-sbg"), 2, 1),
        "b": Placement(("dc-tls", "osc-par", "aws-par"), 2, 1),
    }
    assert unreadable(placements, {"ovh-gra"}) == []
    assert unreadable(placements, {"ovh-gra", "ovh-sbg"}) == ["a"]
    assert unreadable(placements, {"dc-tls", "aws-par"}) == ["b"]


def test_survival_per_provider_country_and_law() -> None:
    placements = {
        "spread": Placement(("dc-tls", "ovh-gra", "osc-par"), 2, 1),
        "two-at-ovh": Placement(("dc-tls", "ovh-gra", "ovh-sbg"), 2, 1),
        "american": Placement(("aws-iad", "aws-par", "ovh-gra"), 2, 1),
    }
    report = {(e.dimension, e.value): e for e in survival(placements, SITES)}
    assert list(report) == [
        ("provider", "AWS"),
        ("provider", "OVHcloud"),
        ("provider", "Outscale"),
        ("provider", "Région"),
        ("country", "FR"),
        ("country", "US"),
        ("law", "eu"),
        ("law", "us-cloud-act"),
    ]
    ovh = report["provider", "OVHcloud"]
    assert ovh.sites == ("ovh-gra", "ovh-sbg")
    assert ovh.unreadable == ("two-at-ovh",)
    assert ovh.degraded == 2
    assert report["provider", "AWS"].unreadable == ("american",)
    assert report["provider", "Région"].unreadable == ()
    assert report["country", "FR"].unreadable == ("spread", "two-at-ovh", "american")
    assert report["country", "US"].degraded == 1
    assert report["law", "us-cloud-act"].unreadable == ("american",)


def test_a_policy_with_max_per_provider_at_most_m_survives_any_provider() -> None:
    policy = Policy(k=2, m=1, max_per_provider=1, certifications=["HDS"])
    placements = {seed: solve(policy, SITES, seed=bytes([seed])) for seed in range(20)}
    providers = [e for e in survival(placements, SITES) if e.dimension == "provider"]
    assert all(e.unreadable == () for e in providers)


def test_survival_refuses_unknown_sites() -> None:
    try:
        survival({"x": Placement(("nowhere", "dc-tls"), 1, 1)}, SITES)
    except ValueError as exc:
        assert "not in the inventory: nowhere" in str(exc)
    else:
        raise AssertionError("an unknown site was accepted")


def test_explain_each_site() -> None:
    policy = Policy(k=2, m=1, max_per_provider=1, certifications=["HDS"], objective="cheapest")
    explanation = explain(policy, SITES)
    assert explanation.placement == solve(policy, SITES)
    assert explanation.placement.sites == ("dc-tls", "ovh-gra", "osc-par")
    verdicts = {v.name: v for v in explanation.sites}
    assert verdicts["aws-iad"].refusals == ("lacks certification HDS",)
    assert not verdicts["aws-iad"].allowed
    assert verdicts["ovh-gra"].chosen and verdicts["ovh-gra"].shard == 1
    assert verdicts["ovh-gra"].if_down == "replaced by ovh-sbg (total 0.027 → 0.028)"
    assert verdicts["ovh-sbg"].allowed and not verdicts["ovh-sbg"].chosen
    assert verdicts["ovh-sbg"].if_down == "no change"
    text = str(explanation)
    assert "Placement (cheapest, total 0.027):" in text
    assert "shard 2 → osc-par (parity)" in text
    assert "aws-iad  refused: lacks certification HDS" in text
    assert "ovh-gra  chosen, shard 1 (cheapest: 0.007); if down: replaced by ovh-sbg" in text


def test_explain_when_a_loss_leaves_no_placement() -> None:
    policy = Policy(k=3, m=1, max_per_provider=1, certifications=["HDS"])
    explanation = explain(policy, SITES, unavailable={"aws-par"})
    assert explanation.placement is None
    assert explanation.infeasible is not None
    assert explanation.infeasible.startswith("needs 4 sites from distinct providers")
    assert explanation.infeasible.endswith("; down: aws-par")
    assert "No placement: needs 4 sites" in str(explanation)
    assert next(v for v in explanation.sites if v.name == "aws-par").down

    fragile = {v.name: v for v in explain(policy, SITES).sites}
    assert fragile["ovh-gra"].chosen and fragile["ovh-gra"].if_down == "replaced by ovh-sbg"
    for alone in ("dc-tls", "osc-par", "aws-par"):
        assert fragile[alone].chosen
        assert fragile[alone].if_down.startswith("no placement (needs 4 sites from distinct")
