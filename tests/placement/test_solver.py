"""The solver: every constraint and its message, objectives, determinism, and property tests
against brute force (valid, complete, optimal)."""

from __future__ import annotations

import itertools
import random
import time
from collections import Counter
from fractions import Fraction

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from egide.placement import (
    Infeasible,
    Placement,
    Policy,
    SiteProfile,
    check,
    objective_values,
    solve,
)


def _site(name: str, provider: str, country: str = "FR", **fields: object) -> SiteProfile:
    return SiteProfile.model_validate(
        {"name": name, "provider": provider, "country": country, **fields}
    )


def test_finds_what_a_greedy_pick_misses() -> None:
    # Cheapest-first takes a-de and b-de, after which France can only get sites from providers
    # A and B, already used: a greedy pick fails although a placement exists.
    sites = [
        _site("a-de", "A", "DE", storage_gb_month=0.001),
        _site("b-de", "B", "DE", storage_gb_month=0.002),
        _site("a-fr", "A", "FR", storage_gb_month=0.010),
        _site("b-fr", "B", "FR", storage_gb_month=0.011),
        _site("c-de", "C", "DE", storage_gb_month=0.020),
        _site("d-de", "D", "DE", storage_gb_month=0.021),
    ]
    policy = Policy(k=2, m=2, max_per_provider=1, min_in_country={"FR": 2}, objective="cheapest")
    placement = solve(policy, sites)
    assert set(placement.sites) == {"a-fr", "b-fr", "c-de", "d-de"}
    assert placement.value == pytest.approx(0.062)
    assert check(policy, sites, placement) == []


def test_cheapest_puts_data_shards_on_the_cheapest_sites() -> None:
    prices = {"s1": 0.03, "s2": 0.01, "s3": 0.02, "s4": 0.005, "s5": 0.04}
    sites = [_site(n, n.upper(), storage_gb_month=p) for n, p in prices.items()]
    placement = solve(Policy(k=2, m=1, objective="cheapest"), sites)
    assert placement.sites == ("s4", "s2", "s3")
    assert (placement.k, placement.m) == (2, 1)
    assert placement.value == pytest.approx(0.035)


def test_nearest_minimises_distance_to_the_origin() -> None:
    sites = [_site(c.lower(), c, city=c) for c in ("Lyon", "Grenoble", "Paris", "Lille", "Nice")]
    placement = solve(Policy(k=2, m=1, origin="Lyon", objective="nearest"), sites)
    assert placement.sites == ("lyon", "grenoble", "nice")


def test_max_distance_km_keeps_far_sites_out() -> None:
    sites = [_site(c.lower(), c, city=c) for c in ("Lyon", "Grenoble", "Marseille", "Lille")]
    policy = Policy(k=2, m=1, origin="Lyon", max_distance_km=300)
    assert set(solve(policy, sites).sites) == {"lyon", "grenoble", "marseille"}


def test_fastest_prefers_measured_latency_and_unmeasured_sites_last() -> None:
    sites = [_site(f"s{i}", f"P{i}") for i in range(5)]
    latency = {"s0": 40.0, "s1": 3.5, "s2": 12.0}
    placement = solve(Policy(k=3, m=1, objective="fastest"), sites, latency_ms=latency)
    assert placement.sites[:3] == ("s1", "s2", "s0")
    assert placement.sites[3] in {"s3", "s4"}


def test_spread_varies_with_the_seed_and_balances_load() -> None:
    sites = [_site(f"s{i}", f"P{i}") for i in range(8)]
    policy = Policy(k=2, m=1)
    load: Counter[str] = Counter()
    for i in range(400):
        load.update(solve(policy, sites, seed=i.to_bytes(4, "big")).sites)
    expected = 400 * 3 / 8
    assert all(0.7 * expected < load[s.name] < 1.3 * expected for s in sites), load
    assert solve(policy, sites, seed=b"a") == solve(policy, sites, seed=b"a")


def test_spread_moves_little_when_a_site_is_added() -> None:
    sites = [_site(f"s{i}", f"P{i}") for i in range(8)]
    policy = Policy(k=3, m=2)
    for seed in range(50):
        before = solve(policy, sites, seed=bytes([seed])).sites
        after = solve(policy, [*sites, _site("new", "N")], seed=bytes([seed])).sites
        assert set(after) <= {*before, "new"}


def test_a_down_site_is_replaced() -> None:
    sites = [_site(f"s{i}", f"P{i}", storage_gb_month=i / 100) for i in range(4)]
    policy = Policy(k=2, m=1, objective="cheapest")
    assert solve(policy, sites).sites == ("s0", "s1", "s2")
    assert solve(policy, sites, unavailable={"s1"}).sites == ("s0", "s2", "s3")


def test_same_names_twice_are_refused() -> None:
    with pytest.raises(ValueError, match="two sites have the same name"):
        solve(Policy(k=1, m=0), [_site("a", "A"), _site("a", "B")])


def _infeasible(policy: Policy, sites: list[SiteProfile], **kwargs: object) -> str:
    with pytest.raises(Infeasible) as caught:
        solve(policy, sites, **kwargs)
    return str(caught.value)


def test_message_certifications() -> None:
    sites = [_site(f"s{i}", f"P{i}", certifications=["HDS"] if i < 2 else []) for i in range(8)]
    message = _infeasible(Policy(k=4, m=2, certifications=["hds"]), sites)
    assert message == "certifications hds: only 2 sites hold hds: s0, s1; 6 are needed (k+m = 4+2)"


def test_message_distinct_providers() -> None:
    sites = [_site(f"s{i}", "ABCD"[i % 4]) for i in range(9)]
    message = _infeasible(Policy(k=4, m=2, max_per_provider=1), sites)
    assert message.startswith(
        "needs 6 sites from distinct providers (max_per_provider = 1), but the 9 allowed sites "
        "belong to only 4 providers, which can hold at most 4: A (3), B (2), C (2), D (2)"
    )


def test_message_max_per_country() -> None:
    sites = [_site(f"s{i}", f"P{i}", "FR" if i < 5 else "DE") for i in range(7)]
    message = _infeasible(Policy(k=4, m=2, max_per_country=3), sites)
    assert "with at most 3 per country (max_per_country = 3)" in message
    assert "can hold at most 5: DE (2), FR (5)" in message


def test_message_max_per_law() -> None:
    sites = [_site(f"aws{i}", "AWS") for i in range(5)] + [_site("ovh", "OVHcloud")]
    message = _infeasible(Policy(k=3, m=1, max_per_law={"us-cloud-act": 2}), sites)
    assert message == (
        "needs 4 sites, but max_per_law lets at most 3 of the 6 allowed sites through: "
        "us-cloud-act ≤ 2 (5 sites)"
    )


def test_message_min_in_country() -> None:
    sites = [_site(f"fr{i}", f"P{i}") for i in range(3)] + [
        _site(f"de{i}", f"Q{i}", "DE") for i in range(5)
    ]
    message = _infeasible(Policy(k=4, m=2, min_in_country={"FR": 4}), sites)
    assert message == "min_in_country FR = 4, but only 3 allowed sites are in FR: fr0, fr1, fr2"


def test_message_min_in_country_with_distinct_providers() -> None:
    sites = [_site(f"fr{i}", "AB"[i % 2]) for i in range(4)] + [
        _site(f"de{i}", f"Q{i}", "DE") for i in range(4)
    ]
    policy = Policy(k=3, m=1, max_per_provider=1, min_in_country={"FR": 3})
    assert _infeasible(policy, sites) == (
        "min_in_country FR = 3, but with max_per_provider = 1 the 4 allowed sites in FR can "
        "hold at most 2: they belong to A, B"
    )


def test_message_names_every_refused_site() -> None:
    sites = [_site("a", "A"), _site("b", "B"), _site("x", "X", "US"), _site("y", "Y", "CN")]
    message = _infeasible(Policy(k=2, m=1, exclude_countries=["US"], exclude_laws=["cn"]), sites)
    assert message == (
        "only 2 sites pass every filter: a, b; 3 are needed (k+m = 2+1); refused: "
        "x: country US in exclude_countries; y: law cn in exclude_laws"
    )


def test_message_names_the_down_sites() -> None:
    sites = [_site(f"s{i}", f"P{i}") for i in range(4)]
    message = _infeasible(Policy(k=2, m=1), sites, unavailable={"s1", "s3"})
    assert message == "only 2 allowed sites are up: s0, s2; 3 are needed (k+m = 2+1); down: s1, s3"
    spread = Policy(k=2, m=1, max_per_provider=1)
    shared = [*sites[:2], _site("s9", "P0")]
    assert _infeasible(spread, [*shared, sites[2]], unavailable={"s2"}).endswith("; down: s2")


def test_message_names_the_limits_that_conflict() -> None:
    # France has four providers and enough sites free of the CLOUD Act, but two of its providers
    # are American: four French sites from distinct providers with at most one American is
    # impossible, though each limit alone (and every counting argument) is satisfiable.
    sites = [
        _site("ovh-a", "OVHcloud"),
        _site("ovh-b", "OVHcloud"),
        _site("scw", "Scaleway"),
        _site("aws", "AWS"),
        _site("gcp", "Google"),
        *(_site(f"de{i}", f"D{i}", "DE") for i in range(3)),
    ]
    policy = Policy(
        k=3,
        m=1,
        max_per_provider=1,
        max_per_country=4,
        max_per_law={"us-cloud-act": 1},
        min_in_country={"FR": 4},
    )
    assert _infeasible(policy, sites) == (
        "no 4 of the 8 allowed sites meet max_per_provider = 1, max_per_law us-cloud-act = 1 and "
        "min_in_country FR = 4; the allowed sites in FR are: aws (AWS, FR; eu, us-cloud-act), "
        "gcp (Google, FR; eu, us-cloud-act), ovh-a (OVHcloud, FR; eu), ovh-b (OVHcloud, FR; eu), "
        "scw (Scaleway, FR; eu)"
    )


def _inventory(size: int, seed: int) -> list[SiteProfile]:
    rng = random.Random(seed)
    offers = {
        "OVHcloud": ["Roubaix", "Gravelines", "Strasbourg", "Frankfurt", "Warsaw", "London"],
        "Scaleway": ["Paris", "Amsterdam", "Warsaw"],
        "Outscale": ["Paris", "Frankfurt", "Ashburn"],
        "AWS": ["Paris", "Frankfurt", "Dublin", "Milan", "Ashburn", "Stockholm"],
        "Google": ["Paris", "Frankfurt", "Zurich", "Madrid"],
        "Hetzner": ["Falkenstein", "Nuremberg"],
        "IONOS": ["Berlin", "Madrid", "London"],
        "Région": ["Toulouse", "Bordeaux", "Nantes"],
        "Alibaba": ["Frankfurt", "Shanghai"],
    }
    providers = sorted(offers)
    return [
        SiteProfile(
            name=f"site-{i}",
            provider=providers[i % len(providers)],
            city=rng.choice(offers[providers[i % len(providers)]]),
            certifications=[c for c in ("ISO27001", "HDS", "SecNumCloud") if rng.random() < 0.6],
            storage_gb_month=round(rng.uniform(0.004, 0.03), 4),
        )
        for i in range(size)
    ]


def test_64_sites_and_many_constraints() -> None:
    sites = _inventory(64, seed=7)
    policy = Policy(
        k=8,
        m=4,
        certifications=["ISO27001"],
        exclude_laws=["cn"],
        max_per_provider=2,
        max_per_country=4,
        max_per_law={"us-cloud-act": 3},
        min_in_country={"FR": 4},
        objective="cheapest",
    )
    started = time.monotonic()
    placement = solve(policy, sites, seed=b"v1")
    assert check(policy, sites, placement) == []
    assert solve(policy, list(reversed(sites)), seed=b"v1") == placement
    down = set(placement.sites[:2])
    again = solve(policy, sites, unavailable=down, seed=b"v1")
    assert not down & set(again.sites) and check(policy, sites, again) == []
    assert time.monotonic() - started < 20  # a hang guard, not a speed claim: see benchmarks/


# Property tests: small random inventories and policies, checked against brute force.

PROVIDERS = ["A", "B", "C", "D"]
COUNTRIES = ["FR", "DE", "US", "IT"]
LAWS = ["eu", "us-cloud-act", "cn"]
CITIES = {"FR": ["Paris", "Lyon", "Nice"], "DE": ["Berlin"], "US": ["Ashburn"], "IT": ["Milan"]}
PRICES = [0.0, 0.005, 0.01, 0.02, 0.0231, 0.1]


@st.composite
def inventories(draw: st.DrawFn) -> list[SiteProfile]:
    sites = []
    for i in range(draw(st.integers(2, 9))):
        country = draw(st.sampled_from(COUNTRIES))
        located = draw(st.integers(0, 3)) < 3
        sites.append(
            SiteProfile(
                name=f"s{i}",
                provider=draw(st.sampled_from(PROVIDERS)),
                country=country,
                city=draw(st.sampled_from(CITIES[country])) if located else None,
                laws=draw(st.lists(st.sampled_from(LAWS), max_size=2, unique=True)),
                certifications=["HDS"] if draw(st.integers(0, 3)) < 3 else [],
                storage_gb_month=draw(st.sampled_from(PRICES)),
            )
        )
    return sites


def rarely(values: st.SearchStrategy[str]) -> st.SearchStrategy[list[str]]:
    """A one-item filter in about a quarter of the cases: most policies should be satisfiable."""
    return st.tuples(st.integers(0, 3), values).map(lambda t: [t[1]] if t[0] == 3 else [])


@st.composite
def policies(draw: st.DrawFn) -> Policy:
    small = st.integers(1, 3)
    maybe = st.none() | small
    fields: dict[str, object] = {
        "k": draw(st.integers(1, 4)),
        "m": draw(st.integers(0, 2)),
        "max_per_provider": draw(maybe),
        "max_per_country": draw(maybe),
        "max_per_law": draw(st.dictionaries(st.sampled_from([*LAWS, "*"]), small, max_size=2)),
        "min_in_country": draw(st.dictionaries(st.sampled_from(COUNTRIES), small, max_size=2)),
        "exclude_countries": draw(rarely(st.sampled_from(COUNTRIES))),
        "exclude_laws": draw(rarely(st.sampled_from(LAWS))),
        "certifications": draw(rarely(st.just("HDS"))),
        "objective": draw(st.sampled_from(["spread", "cheapest", "nearest", "fastest"])),
    }  # fmt: skip
    if fields["objective"] == "nearest" or draw(st.booleans()):
        fields["origin"] = "Paris"
        if draw(st.booleans()):
            fields["max_distance_km"] = draw(st.sampled_from([100.0, 500.0, 7000.0]))
    try:
        return Policy.model_validate(fields)
    except ValidationError:
        assume(False)
        raise


@st.composite
def scenarios(
    draw: st.DrawFn,
) -> tuple[Policy, list[SiteProfile], frozenset[str], dict[str, float], bytes]:
    sites = draw(inventories())
    names = [s.name for s in sites]
    down = frozenset(draw(st.lists(st.sampled_from(names), max_size=2)))
    latency = draw(st.dictionaries(st.sampled_from(names), st.sampled_from([1.0, 5.5, 20.0])))
    return draw(policies()), sites, down, latency, draw(st.binary(max_size=4))


def _valid(policy: Policy, sites: list[SiteProfile], down: frozenset[str]) -> list[tuple[str, ...]]:
    up = [s.name for s in sites if s.name not in down]
    return [
        combo
        for combo in itertools.combinations(up, policy.n)
        if not check(policy, sites, Placement(combo, policy.k, policy.m))
    ]


PROPERTY = settings(
    max_examples=80, deadline=None, suppress_health_check=[HealthCheck.filter_too_much]
)


@PROPERTY
@given(scenarios())
def test_every_placement_satisfies_its_policy(
    scenario: tuple[Policy, list[SiteProfile], frozenset[str], dict[str, float], bytes],
) -> None:
    policy, sites, down, latency, seed = scenario
    try:
        placement = solve(policy, sites, unavailable=down, latency_ms=latency, seed=seed)
    except Infeasible:
        return
    assert check(policy, sites, placement) == []
    assert not down & set(placement.sites)


@PROPERTY
@given(scenarios())
def test_infeasible_only_when_brute_force_finds_nothing(
    scenario: tuple[Policy, list[SiteProfile], frozenset[str], dict[str, float], bytes],
) -> None:
    policy, sites, down, latency, seed = scenario
    try:
        solve(policy, sites, unavailable=down, latency_ms=latency, seed=seed)
    except Infeasible:
        assert _valid(policy, sites, down) == []


@PROPERTY
@given(scenarios())
def test_no_valid_placement_has_a_better_objective(
    scenario: tuple[Policy, list[SiteProfile], frozenset[str], dict[str, float], bytes],
) -> None:
    policy, sites, down, latency, seed = scenario
    try:
        placement = solve(policy, sites, unavailable=down, latency_ms=latency, seed=seed)
    except Infeasible:
        return
    values = objective_values(policy, sites, latency)

    def total(combo: tuple[str, ...]) -> Fraction:
        return sum((Fraction(values[name]) for name in combo), Fraction(0))

    best = min(total(combo) for combo in _valid(policy, sites, down))
    assert total(placement.sites) == best


@PROPERTY
@given(scenarios(), st.randoms(use_true_random=False))
def test_same_inputs_same_placement(
    scenario: tuple[Policy, list[SiteProfile], frozenset[str], dict[str, float], bytes],
    rng: random.Random,
) -> None:
    policy, sites, down, latency, seed = scenario
    shuffled = rng.sample(sites, len(sites))

    def outcome(order: list[SiteProfile]) -> Placement | str:
        try:
            return solve(policy, order, unavailable=down, latency_ms=latency, seed=seed)
        except Infeasible as exc:
            return str(exc)

    assert outcome(sites) == outcome(shuffled) == outcome(sites)
