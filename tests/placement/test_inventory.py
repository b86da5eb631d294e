"""Site profiles: country and city tables, derived laws, validation messages, distances."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from egide.placement import SiteProfile, default_laws, distance_km, find_city
from egide.placement.geography import CITIES, COUNTRY_CODES, EU_EEA


def test_city_fills_country_and_coordinates() -> None:
    site = SiteProfile(name="gra", provider="OVHcloud", city="gravelines")
    assert site.country == "FR"
    assert site.location == find_city("Gravelines").at
    assert site.laws == ("eu",)


@pytest.mark.parametrize(
    ("written", "name"),
    [
        ("SAO-PAULO", "São Paulo"),
        ("Zürich", "Zurich"),
        ("Oregon", "Boardman"),
        ("orléans", "Orléans"),
    ],
)
def test_city_names_ignore_case_accents_and_hyphens(written: str, name: str) -> None:
    assert find_city(written).name == name


def test_unknown_city_lists_close_names() -> None:
    with pytest.raises(ValidationError, match=r"unknown city 'Pari' \(close names: Paris"):
        SiteProfile(name="x", provider="p", city="Pari")


def test_city_must_be_in_the_given_country() -> None:
    with pytest.raises(ValidationError, match="city Lyon is in FR, not DE"):
        SiteProfile(name="x", provider="p", city="Lyon", country="DE")


def test_explicit_coordinates_win_over_the_city() -> None:
    site = SiteProfile(name="x", provider="p", city="Lyon", latitude=45.0, longitude=5.0)
    assert (site.latitude, site.longitude) == (45.0, 5.0)


def test_country_is_upper_cased_and_validated() -> None:
    assert SiteProfile(name="x", provider="p", country="fr").country == "FR"
    with pytest.raises(ValidationError, match="'XX' is not an ISO 3166-1 alpha-2 country code"):
        SiteProfile(name="x", provider="p", country="XX")


def test_missing_country_is_the_only_error() -> None:
    with pytest.raises(ValidationError) as caught:
        SiteProfile(name="x", provider="p")
    assert [e["loc"] for e in caught.value.errors()] == [("country",)]


@pytest.mark.parametrize(
    ("country", "provider", "laws"),
    [
        ("FR", "OVHcloud", ("eu",)),
        ("NO", "Green Mountain", ("eu",)),
        ("FR", "AWS", ("eu", "us-cloud-act")),
        ("DE", "Google Cloud", ("eu", "us-cloud-act")),
        ("US", "OVHcloud", ("us-cloud-act",)),
        ("US", "Microsoft Azure", ("us-cloud-act",)),
        ("DE", "Alibaba Cloud", ("eu", "cn")),
        ("GB", "IONOS", ("gb",)),
        ("CH", "Infomaniak", ("ch",)),
    ],
)
def test_default_laws(country: str, provider: str, laws: tuple[str, ...]) -> None:
    assert default_laws(country, provider) == laws
    assert SiteProfile(name="x", provider=provider, country=country).laws == laws


def test_explicit_laws_replace_the_derivation_and_are_lower_cased() -> None:
    site = SiteProfile(name="x", provider="AWS", country="FR", laws=["EU", "eu", "Custom"])
    assert site.laws == ("eu", "custom")
    assert SiteProfile(name="y", provider="AWS", country="FR", laws=[]).laws == ()


def test_certifications_compare_case_insensitively() -> None:
    site = SiteProfile(name="x", provider="p", country="FR", certifications=["SecNumCloud", "HDS"])
    assert site.holds("secnumcloud") and site.holds("hds")
    assert not site.holds("C5")


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({"storage_gb_month": -1.0}, "greater than or equal to 0"),
        ({"egress_gb": float("inf")}, "finite number"),
        ({"latitude": 48.0}, "latitude and longitude: give both, or neither"),
        ({"latitude": 91.0, "longitude": 0.0}, "less than or equal to 90"),
        ({"capacity_bytes": -5}, "greater than or equal to 0"),
        ({"region": "eu-west-3"}, "Extra inputs are not permitted"),
        ({"name": "bad name"}, "should match pattern"),
    ],
)
def test_invalid_profiles_are_refused(extra: dict[str, object], message: str) -> None:
    fields: dict[str, object] = {"name": "x", "provider": "p", "country": "FR", **extra}
    with pytest.raises(ValidationError, match=message):
        SiteProfile.model_validate(fields)


def test_profiles_are_frozen() -> None:
    site = SiteProfile(name="x", provider="p", country="FR")
    with pytest.raises(ValidationError):
        site.provider = "q"


def test_distances() -> None:
    paris, lyon, london = (find_city(c).at for c in ("Paris", "Lyon", "London"))
    assert distance_km(paris, lyon) == pytest.approx(392, abs=3)
    assert distance_km(paris, london) == pytest.approx(344, abs=3)
    assert distance_km(paris, lyon) == distance_km(lyon, paris)
    assert distance_km(paris, paris) == 0
    sydney = find_city("Sydney").at
    assert distance_km(paris, sydney) == pytest.approx(16_960, rel=0.01)


def test_reference_tables() -> None:
    assert len(COUNTRY_CODES) == 249
    assert len(EU_EEA) == 30 and EU_EEA <= COUNTRY_CODES
    assert len(CITIES) >= 60
    assert all(city.country in COUNTRY_CODES for city in CITIES)
    for name in ("Roubaix", "Frankfurt", "Ashburn", "Beijing", "Montreal", "Mumbai"):
        assert find_city(name).name == name
