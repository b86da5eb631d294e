"""The policy language: TOML in, nonsense refused with messages naming the constraint, filters."""

from __future__ import annotations

import re
import tomllib

import pytest
from pydantic import ValidationError

from egide.placement import Policy, SiteProfile

HDS_IN_FRANCE = """
k = 4
m = 2
countries = ["FR"]
certifications = ["HDS"]
max_per_provider = 2
min_in_country = { FR = 4 }
objective = "cheapest"
"""


def test_a_toml_policy_loads() -> None:
    policy = Policy.model_validate(tomllib.loads(HDS_IN_FRANCE))
    assert (policy.k, policy.m, policy.n) == (4, 2, 6)
    assert policy.countries == ("FR",)
    assert policy.min_in_country == {"FR": 4}
    assert policy.objective == "cheapest"


def test_defaults_spread_without_limits() -> None:
    policy = Policy(k=4, m=2)
    assert policy.objective == "spread"
    assert policy.max_per_provider is None and policy.min_in_country == {}


def test_values_are_normalised() -> None:
    policy = Policy(
        k=2,
        m=1,
        countries=["fr", "FR", "de"],
        exclude_laws=["US-Cloud-Act"],
        max_per_law={"EU": 2},
        min_in_country={"fr": 1},
    )
    assert policy.countries == ("FR", "DE")
    assert policy.exclude_laws == ("us-cloud-act",)
    assert policy.max_per_law == {"eu": 2}
    assert policy.min_in_country == {"FR": 1}


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"k": 0}, "k: 0 is below 1"),
        ({"k": 40}, "k: 40 is above 32"),
        ({"m": 17}, "m: 17 is above 16"),
        ({"max_per_provider": 0}, "max_per_provider: 0 is below 1"),
        ({"max_per_country": -1}, "max_per_country: -1 is below 1"),
        ({"max_per_law": {"cn": 0}}, "max_per_law cn: 0 is below 1 (exclude_laws keeps"),
        ({"min_in_country": {"FR": 5}}, "min_in_country: 5 shards in FR exceeds k+m = 4"),
        ({"min_in_country": {"FR": 0}}, "min_in_country FR: 0 is below 1"),
        (
            {"min_in_country": {"FR": 3, "DE": 2}},
            "min_in_country: 5 shards in all exceeds k+m = 4",
        ),
        (
            {"min_in_country": {"FR": 3}, "max_per_country": 2},
            "min_in_country: 3 shards in FR exceeds max_per_country = 2",
        ),
        (
            {"min_in_country": {"FR": 1}, "exclude_countries": ["FR"]},
            "min_in_country FR: FR is in exclude_countries",
        ),
        (
            {"min_in_country": {"FR": 1}, "countries": ["DE"]},
            "min_in_country FR: FR is not in countries",
        ),
        (
            {"providers": ["OVHcloud"], "exclude_providers": ["ovhcloud"]},
            "providers and exclude_providers both name ovhcloud",
        ),
        ({"laws": ["eu"], "exclude_laws": ["EU"]}, "laws and exclude_laws both name eu"),
        ({"max_distance_km": 100}, "max_distance_km needs an origin"),
        ({"max_distance_km": 0, "origin": "Paris"}, "max_distance_km: 0 is not above 0"),
        ({"objective": "nearest"}, "objective nearest needs an origin"),
        ({"objective": "greenest"}, "Input should be 'spread', 'cheapest'"),
        ({"origin": "Lyn"}, "unknown city 'Lyn' (close names: Lyon"),
        ({"countries": ["FRA"]}, "'FRA' is not an ISO 3166-1 alpha-2 country code"),
        ({"max_per_shard": 1}, "Extra inputs are not permitted"),
    ],
)
def test_nonsense_is_refused_naming_the_constraint(fields: dict[str, object], message: str) -> None:
    with pytest.raises(ValidationError, match=re.escape(message)):
        Policy.model_validate({"k": 2, "m": 2, **fields})


def test_every_problem_is_reported_at_once() -> None:
    with pytest.raises(ValidationError) as caught:
        Policy(k=2, m=2, max_per_provider=0, max_per_country=0)
    text = str(caught.value)
    assert "max_per_provider: 0 is below 1" in text and "max_per_country: 0 is below 1" in text


def test_origin_accepts_a_city_or_coordinates() -> None:
    by_city = Policy(k=1, m=0, origin="Lyon", objective="nearest")
    by_point = Policy.model_validate(
        {"k": 1, "m": 0, "origin": {"latitude": 45.764, "longitude": 4.8357}}
    )
    assert by_city.origin_point == by_point.origin_point


def test_law_caps_with_a_default_for_other_laws() -> None:
    policy = Policy(k=4, m=2, max_per_law={"us-cloud-act": 3, "*": 5})
    assert policy.law_cap("us-cloud-act") == 3
    assert policy.law_cap("eu") == 5
    assert Policy(k=4, m=2).law_cap("eu") is None


def _site(**fields: object) -> SiteProfile:
    return SiteProfile.model_validate(
        {"name": "s", "provider": "OVHcloud", "country": "FR", **fields}
    )


@pytest.mark.parametrize(
    ("fields", "site", "rule", "reason"),
    [
        ({"providers": ["Scaleway"]}, {}, "providers", "provider OVHcloud not in providers"),
        ({"exclude_providers": ["ovhcloud"]}, {}, "exclude_providers",
         "provider OVHcloud in exclude_providers"),
        ({"countries": ["DE"]}, {}, "countries", "country FR not in countries"),
        ({"exclude_countries": ["US"]}, {"country": "US"}, "exclude_countries",
         "country US in exclude_countries"),
        ({"laws": ["eu"]}, {"provider": "AWS"}, "laws", "law us-cloud-act not in laws"),
        ({"exclude_laws": ["us-cloud-act"]}, {"provider": "AWS"}, "exclude_laws",
         "law us-cloud-act in exclude_laws"),
        ({"certifications": ["HDS"]}, {"certifications": ["ISO27001"]}, "certifications HDS",
         "lacks certification HDS"),
        (
            {"max_distance_km": 500, "origin": "Paris"},
            {"city": "Marseille"},
            "max_distance_km",
            "660 km from the origin, beyond max_distance_km = 500",
        ),
        (
            {"max_distance_km": 500, "origin": "Paris"},
            {},
            "max_distance_km",
            "no location (city or latitude/longitude), needed by max_distance_km",
        ),
        (
            {"objective": "nearest", "origin": "Paris"},
            {},
            "objective nearest",
            "no location (city or latitude/longitude), needed by objective nearest",
        ),
    ],
)  # fmt: skip
def test_each_filter_refuses_with_its_reason(
    fields: dict[str, object], site: dict[str, object], rule: str, reason: str
) -> None:
    policy = Policy.model_validate({"k": 2, "m": 1, **fields})
    assert [(r.rule, r.reason) for r in policy.refusals(_site(**site))] == [(rule, reason)]


def test_an_allowed_site_has_no_refusal() -> None:
    policy = Policy(
        k=2,
        m=1,
        providers=["ovhcloud"],
        countries=["FR"],
        laws=["eu"],
        certifications=["hds"],
        max_distance_km=300,
        origin="Lille",
    )
    assert policy.refusals(_site(city="Roubaix", certifications=["HDS"])) == []


def test_describe_says_what_a_provider_loss_does() -> None:
    safe = Policy(
        k=4, m=2, max_per_provider=2, max_per_law={"us-cloud-act": 3}, min_in_country={"FR": 4}
    )
    text = safe.describe()
    assert "at most 2 shards per provider (losing any one provider loses nothing)" in text
    assert "law us-cloud-act (that jurisdiction cannot compel enough shards" in text
    assert "at least 4 shards in FR (readable from there alone)" in text
    assert "objective spread" in text
    risky = Policy(k=4, m=2, max_per_provider=3).describe()
    assert "losing a provider holding 3 shards loses data" in risky
