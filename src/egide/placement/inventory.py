"""What placement knows about a site: who runs it, where it is, which laws reach it, what it costs.

Laws are lowercase tags naming a jurisdiction whose authorities can compel access to what the site
holds. When a site does not list them, they are derived from two facts:
  * where it is: "eu" for an EU/EEA country (the GDPR applies), "us-cloud-act" for the United
    States, otherwise the lowercase country code ("gb", "ch", "cn", "jp" …);
  * who runs it: a provider headquartered in the United States (AWS, Google, Microsoft …) adds
    "us-cloud-act" wherever the site is, since the CLOUD Act follows the company, not the disk;
    one headquartered in China (Alibaba, Tencent, Huawei) adds "cn".
So AWS in Paris is ["eu", "us-cloud-act"] and OVHcloud in Gravelines is ["eu"]. An explicit
`laws` list replaces the derivation entirely.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from egide.placement.geography import (
    EU_EEA,
    Coordinates,
    check_country,
    distance_km,
    find_city,
)

__all__ = ["Coordinates", "SiteProfile", "default_laws", "distance_km"]

#: First words of provider names (case-insensitive) headquartered in the United States, then China.
_US_PROVIDERS = """aws amazon google gcp microsoft azure oracle ibm cloudflare backblaze wasabi
    digitalocean akamai linode vultr"""
_CN_PROVIDERS = "alibaba aliyun tencent huawei"
_PROVIDER_LAWS = dict.fromkeys(_US_PROVIDERS.split(), "us-cloud-act") | dict.fromkeys(
    _CN_PROVIDERS.split(), "cn"
)


def default_laws(country: str, provider: str) -> tuple[str, ...]:
    """The laws a site is subject to when its profile does not say (see the module docstring)."""
    country = country.upper()
    laws = ["eu" if country in EU_EEA else "us-cloud-act" if country == "US" else country.lower()]
    words = provider.casefold().split()
    extra = _PROVIDER_LAWS.get(words[0]) if words else None
    if extra is not None and extra not in laws:
        laws.append(extra)
    return tuple(laws)


class SiteProfile(BaseModel):
    """One site as the placement policy sees it; `name` is the site's name in the configuration."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$")
    #: The company running the site ("OVHcloud", "Scaleway", "AWS", or your own organisation).
    provider: str = Field(min_length=1, max_length=100)
    #: ISO 3166-1 alpha-2; may be left out when `city` is given.
    country: str
    #: Derived from country and provider when left out (see the module docstring).
    laws: tuple[str, ...] = ()
    certifications: tuple[str, ...] = ()
    storage_gb_month: float = Field(default=0.0, ge=0, allow_inf_nan=False)
    egress_gb: float = Field(default=0.0, ge=0, allow_inf_nan=False)
    per_1000_requests: float = Field(default=0.0, ge=0, allow_inf_nan=False)
    #: A built-in city; fills in country and coordinates unless they are given.
    city: str | None = None
    latitude: float | None = Field(default=None, ge=-90, le=90)
    longitude: float | None = Field(default=None, ge=-180, le=180)
    #: Informational for now: the solver does not know object sizes; mark a full site unavailable.
    capacity_bytes: int | None = Field(default=None, ge=0)

    @model_validator(mode="before")
    @classmethod
    def _derive(cls, data: Any) -> Any:
        """Fill country and coordinates from `city`, and laws from country and provider."""
        if not isinstance(data, dict):
            return data
        data = dict(data)
        if data.get("city") is not None:
            city = find_city(str(data["city"]))
            country = data.setdefault("country", city.country)
            if isinstance(country, str) and country.strip().upper() != city.country:
                raise ValueError(f"city {city.name} is in {city.country}, not {country}")
            if data.get("latitude") is None and data.get("longitude") is None:
                data["latitude"], data["longitude"] = city.at
        if data.get("laws") is None and isinstance(data.get("country"), str):
            data["laws"] = default_laws(data["country"], str(data.get("provider", "")))
        return data

    @field_validator("country")
    @classmethod
    def _country(cls, value: str) -> str:
        return check_country(value)

    @field_validator("laws")
    @classmethod
    def _laws(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        laws = tuple(dict.fromkeys(law.strip().lower() for law in value))
        if any(not law for law in laws):
            raise ValueError("a law tag is empty")
        return laws

    @field_validator("certifications")
    @classmethod
    def _certifications(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(cert.strip() for cert in value if cert.strip())

    @model_validator(mode="after")
    def _check_location(self) -> SiteProfile:
        if (self.latitude is None) != (self.longitude is None):
            raise ValueError("latitude and longitude: give both, or neither")
        return self

    @property
    def location(self) -> Coordinates | None:
        if self.latitude is None or self.longitude is None:
            return None
        return Coordinates(self.latitude, self.longitude)

    def holds(self, certification: str) -> bool:
        """Certification names compare case-insensitively: "secnumcloud" is SecNumCloud."""
        wanted = certification.casefold()
        return any(cert.casefold() == wanted for cert in self.certifications)
