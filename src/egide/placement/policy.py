"""The placement policy language: which sites may hold a bucket's shards, and how they are spread.

A policy is written in TOML under a bucket and validated here, so that nonsense is refused when the
configuration is loaded, with a message that names the constraint, never when a PUT arrives.

The key to reading `max_per_provider`: any k shards rebuild an object, so it survives the loss of
every site of one provider exactly when that provider holds at most m shards. Hence
`max_per_provider <= m` ⇔ "losing any one provider loses nothing" (the same holds for countries and
laws). `min_in_country = {FR = k}` is the other direction: France alone can serve every object.
"""

from __future__ import annotations

from typing import Literal, NamedTuple

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from pydantic_core import PydanticCustomError

from egide.placement.geography import Coordinates, check_country, distance_km, find_city
from egide.placement.inventory import SiteProfile

Objective = Literal["spread", "cheapest", "nearest", "fastest"]

#: The key of `max_per_law` that applies to every law not named.
ANY_LAW = "*"

_OBJECTIVES: dict[str, str] = {
    "spread": "spread load over the allowed sites (seeded by the object version)",
    "cheapest": "lowest total storage price",
    "nearest": "shortest total distance to the origin",
    "fastest": "lowest total measured latency",
}


class Refusal(NamedTuple):
    """A filter refusing a site: `rule` names the filter ("certifications HDS", "exclude_laws"),
    `reason` says it of this site ("lacks certification HDS")."""

    rule: str
    reason: str


class Point(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    latitude: float = Field(ge=-90, le=90)
    longitude: float = Field(ge=-180, le=180)


def _shards(count: int) -> str:
    return f"{count} shard" if count == 1 else f"{count} shards"


def _refuse(message: str) -> PydanticCustomError:
    # A custom error keeps the message exactly as written (no "Value error, " prefix).
    return PydanticCustomError("placement_policy", "{message}", {"message": message})


class Policy(BaseModel):
    """Where a bucket's k+m shards may go. Every filter must pass for a site to be allowed; the
    limits then bound how many of the k+m shards may share a provider, a country or a law."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    k: int
    m: int
    providers: tuple[str, ...] = ()
    exclude_providers: tuple[str, ...] = ()
    countries: tuple[str, ...] = ()
    exclude_countries: tuple[str, ...] = ()
    #: Allowed laws: every law a site is subject to must be listed here.
    laws: tuple[str, ...] = ()
    #: A site subject to any of these laws is refused.
    exclude_laws: tuple[str, ...] = ()
    #: Every chosen site must hold all of these (case-insensitive).
    certifications: tuple[str, ...] = ()
    max_per_provider: int | None = None
    max_per_country: int | None = None
    #: law → most shards under it; "*" applies to every law not named. A site counts toward each
    #: of its laws.
    max_per_law: dict[str, int] = Field(default_factory=dict)
    #: country → fewest shards there.
    min_in_country: dict[str, int] = Field(default_factory=dict)
    max_distance_km: float | None = Field(default=None, allow_inf_nan=False)
    #: A built-in city name or a latitude/longitude table.
    origin: str | Point | None = None
    objective: Objective = "spread"
    #: Pad new objects and manifests to size classes, so that a site's files give a class of
    #: sizes, never a size (docs/decisions/0017-size-padding.md). Not placement, but a
    #: bucket's policy is where its rules for the sites are set.
    padding: bool = True

    @field_validator("countries", "exclude_countries")
    @classmethod
    def _countries(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(dict.fromkeys(check_country(c) for c in value))

    @field_validator("laws", "exclude_laws")
    @classmethod
    def _laws(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(dict.fromkeys(v.strip().lower() for v in value))

    @field_validator("max_per_law")
    @classmethod
    def _law_keys(cls, value: dict[str, int]) -> dict[str, int]:
        return {law.strip().lower(): cap for law, cap in value.items()}

    @field_validator("min_in_country")
    @classmethod
    def _country_keys(cls, value: dict[str, int]) -> dict[str, int]:
        return {check_country(country): count for country, count in value.items()}

    @field_validator("origin")
    @classmethod
    def _origin(cls, value: str | Point | None) -> str | Point | None:
        if isinstance(value, str):
            find_city(value)
        return value

    @model_validator(mode="after")
    def _check(self) -> Policy:
        problems = self._problems()
        if problems:
            raise _refuse("; ".join(problems))
        return self

    def _problems(self) -> list[str]:
        n = self.k + self.m
        problems = [
            f"{name}: {value} is below {low}" if value < low else f"{name}: {value} is above {high}"
            for name, value, low, high in (("k", self.k, 1, 32), ("m", self.m, 0, 16))
            if not low <= value <= high
        ]
        for name, cap in (
            ("max_per_provider", self.max_per_provider),
            ("max_per_country", self.max_per_country),
        ):
            if cap is not None and cap < 1:
                problems.append(f"{name}: {cap} is below 1")
        problems += [
            f"max_per_law {law}: {cap} is below 1 (exclude_laws keeps a law out entirely)"
            for law, cap in self.max_per_law.items()
            if cap < 1
        ]
        for allow, deny in (
            ("providers", "exclude_providers"),
            ("countries", "exclude_countries"),
            ("laws", "exclude_laws"),
        ):
            both = {v.casefold() for v in getattr(self, allow)} & {
                v.casefold() for v in getattr(self, deny)
            }
            if both:
                problems.append(f"{allow} and {deny} both name {', '.join(sorted(both))}")
        for country, count in self.min_in_country.items():
            if count < 1:
                problems.append(f"min_in_country {country}: {count} is below 1")
            elif count > n:
                problems.append(f"min_in_country: {count} shards in {country} exceeds k+m = {n}")
            elif self.max_per_country is not None and count > self.max_per_country:
                problems.append(
                    f"min_in_country: {count} shards in {country} exceeds "
                    f"max_per_country = {self.max_per_country}"
                )
            if country in self.exclude_countries:
                problems.append(f"min_in_country {country}: {country} is in exclude_countries")
            if self.countries and country not in self.countries:
                problems.append(f"min_in_country {country}: {country} is not in countries")
        total = sum(self.min_in_country.values())
        if len(self.min_in_country) > 1 and total > n:
            problems.append(f"min_in_country: {total} shards in all exceeds k+m = {n}")
        if self.max_distance_km is not None:
            if self.max_distance_km <= 0:
                problems.append(f"max_distance_km: {self.max_distance_km:g} is not above 0")
            if self.origin is None:
                problems.append("max_distance_km needs an origin (a city or latitude/longitude)")
        if self.objective == "nearest" and self.origin is None:
            problems.append("objective nearest needs an origin (a city or latitude/longitude)")
        return problems

    @property
    def n(self) -> int:
        """Shards per object, hence sites per placement."""
        return self.k + self.m

    @property
    def origin_point(self) -> Coordinates | None:
        if isinstance(self.origin, str):
            return find_city(self.origin).at
        if isinstance(self.origin, Point):
            return Coordinates(self.origin.latitude, self.origin.longitude)
        return None

    def law_cap(self, law: str) -> int | None:
        return self.max_per_law.get(law, self.max_per_law.get(ANY_LAW))

    def refusals(self, site: SiteProfile) -> list[Refusal]:
        """Every filter `site` fails; empty when the site is allowed."""
        out: list[Refusal] = []
        provider = site.provider.casefold()
        if self.providers and provider not in {p.casefold() for p in self.providers}:
            out.append(Refusal("providers", f"provider {site.provider} not in providers"))
        if provider in {p.casefold() for p in self.exclude_providers}:
            out.append(
                Refusal("exclude_providers", f"provider {site.provider} in exclude_providers")
            )
        if self.countries and site.country not in self.countries:
            out.append(Refusal("countries", f"country {site.country} not in countries"))
        if site.country in self.exclude_countries:
            out.append(Refusal("exclude_countries", f"country {site.country} in exclude_countries"))
        if self.laws:
            out += [
                Refusal("laws", f"law {law} not in laws")
                for law in site.laws
                if law not in self.laws
            ]
        out += [
            Refusal("exclude_laws", f"law {law} in exclude_laws")
            for law in site.laws
            if law in self.exclude_laws
        ]
        out += [
            Refusal(f"certifications {cert}", f"lacks certification {cert}")
            for cert in self.certifications
            if not site.holds(cert)
        ]
        origin, location = self.origin_point, site.location
        if origin is None:
            return out
        if location is None:
            uses = [("max_distance_km", self.max_distance_km is not None)]
            uses.append(("objective nearest", self.objective == "nearest"))
            return out + [
                Refusal(rule, f"no location (city or latitude/longitude), needed by {rule}")
                for rule, used in uses
                if used
            ]
        far = distance_km(origin, location)
        if self.max_distance_km is not None and far > self.max_distance_km:
            beyond = f"beyond max_distance_km = {self.max_distance_km:g}"
            out.append(Refusal("max_distance_km", f"{far:,.0f} km from the origin, {beyond}"))
        return out

    def describe(self) -> str:
        """One line per rule, in plain words, for `egide policy show` and explanations."""
        lines = [f"{self.k}+{self.m}: any {self.k} of {self.n} shards rebuild an object"]
        for label, values in (
            ("only providers", self.providers),
            ("never providers", self.exclude_providers),
            ("only in", self.countries),
            ("never in", self.exclude_countries),
            ("only under laws", self.laws),
            ("never under laws", self.exclude_laws),
            ("every site certified", self.certifications),
        ):
            if values:
                lines.append(f"{label} {', '.join(values)}")
        if self.max_distance_km is not None:
            lines.append(f"within {self.max_distance_km:g} km of {self._origin_name()}")
        for what, cap in (("provider", self.max_per_provider), ("country", self.max_per_country)):
            if cap is not None:
                effect = (
                    f"losing any one {what} loses nothing"
                    if cap <= self.m
                    else f"losing a {what} holding {cap} shards loses data"
                )
                lines.append(f"at most {_shards(cap)} per {what} ({effect})")
        for law, cap in self.max_per_law.items():
            scope = "any other law" if law == ANY_LAW else f"law {law}"
            effect = (
                "cannot compel enough shards to rebuild an object"
                if cap < self.k
                else "can compel enough shards to rebuild an object"
            )
            lines.append(f"at most {_shards(cap)} under {scope} (that jurisdiction {effect})")
        for country, count in self.min_in_country.items():
            effect = "readable from there alone" if count >= self.k else "not enough to read alone"
            lines.append(f"at least {_shards(count)} in {country} ({effect})")
        lines.append(f"objective {self.objective}: {_OBJECTIVES[self.objective]}")
        lines.append(
            "padding on: sites see each object's size class only"
            if self.padding
            else "padding off: sites see each object's exact size"
        )
        return "\n".join(lines)

    def _origin_name(self) -> str:
        if isinstance(self.origin, str):
            return find_city(self.origin).name
        point = self.origin_point
        return f"{point.latitude:g}, {point.longitude:g}" if point else "nowhere"
