"""How egide.toml writes placement: a profile beside each site's address, and bucket policies.

Kept apart from `egide.config` so that the configuration stays a thin list of fields: here the
profile fields of a `[[sites]]` entry become the `SiteProfile` the solver reads, and `[[policies]]`
entries become `Policy` values, with the library's own validation and messages.

A site that declares nothing is still a valid site (configurations written before placement keep
working): its provider is a default its kind chooses ("local" for a directory, the endpoint for an
S3 bucket), its country is unknown (`ZZ`, the ISO 3166 code for "unknown") and so is its law
(`unknown`). Unknown facts pass no allow-list (`providers` aside: "local" can be listed), count
together under `max_per_country`, never toward `min_in_country`, and have no location, so a
policy can never be met by a site it knows nothing about.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError, field_validator, model_validator
from pydantic_core import PydanticCustomError

from egide.placement.inventory import SiteProfile, default_laws
from egide.placement.policy import Policy
from egide.placement.solver import Infeasible, solve

__all__ = [
    "UNKNOWN_COUNTRY",
    "UNKNOWN_LAW",
    "BucketPolicies",
    "PolicyConfig",
    "SiteProfileFields",
    "bucket_policies",
    "placement_problems",
]

#: ISO 3166-1 reserves ZZ for "unknown or unspecified"; never a valid `country` to write.
UNKNOWN_COUNTRY = "ZZ"
UNKNOWN_LAW = "unknown"
#: The S3 bucket naming rules (a policy names buckets that may not exist yet).
_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")


def _messages(exc: ValidationError) -> str:
    """pydantic's errors as `field: message`, without its "Value error, " prefix."""
    return "; ".join(
        (".".join(map(str, err["loc"])) + ": " if err["loc"] else "")
        + err["msg"].removeprefix("Value error, ")
        for err in exc.errors()
    )


class SiteProfileFields(BaseModel):
    """The profile fields of a `[[sites]]` entry, all optional (see the module docstring).

    Each site kind mixes this in and names its default provider; validation is SiteProfile's."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    provider: str | None = None
    country: str | None = None
    laws: tuple[str, ...] | None = None
    certifications: tuple[str, ...] = ()
    storage_gb_month: float = 0.0
    egress_gb: float = 0.0
    per_1000_requests: float = 0.0
    city: str | None = None
    latitude: float | None = None
    longitude: float | None = None
    capacity_bytes: int | None = None

    def default_provider(self) -> str:
        """Who runs the site when `provider` is not given."""
        return "local"

    def profile(self) -> SiteProfile:
        """The site as placement sees it; ValidationError if the fields are inconsistent."""
        fields = set(SiteProfileFields.model_fields) - {"name"}
        data: dict[str, Any] = {
            name: getattr(self, name) for name in fields if getattr(self, name) is not None
        }
        data["name"] = self.name
        data.setdefault("provider", self.default_provider())
        if "country" in data or "city" in data:
            return SiteProfile.model_validate(data)
        # Country unknown: validate everything else against a stand-in country, then say so.
        laws = data.pop("laws", None)
        known = SiteProfile.model_validate({**data, "country": "FR", "laws": laws or ()})
        if laws is None:  # what the provider alone implies (the CLOUD Act follows the company)
            laws = (UNKNOWN_LAW, *default_laws(UNKNOWN_COUNTRY, known.provider)[1:])
        return known.model_copy(update={"country": UNKNOWN_COUNTRY, "laws": known.laws or laws})

    @model_validator(mode="after")
    def _check_profile(self) -> SiteProfileFields:
        try:
            self.profile()
        except ValidationError as exc:
            message = {"message": _messages(exc)}
            raise PydanticCustomError("site_profile", "{message}", message) from None
        return self


class PolicyConfig(Policy):
    """One `[[policies]]` entry: a policy, and the buckets it governs (none: every other)."""

    buckets: tuple[str, ...] = ()

    @field_validator("buckets")
    @classmethod
    def _bucket_names(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for name in value:
            if not _BUCKET.match(name):
                raise ValueError(f"{name!r} is not a valid bucket name")
        return value

    def policy(self) -> Policy:
        return Policy.model_validate(self.model_dump(exclude={"buckets"}))

    def label(self) -> str:
        """How messages name this policy."""
        return "buckets " + ", ".join(self.buckets) if self.buckets else "the default policy"


@dataclass(frozen=True)
class BucketPolicies:
    """The configuration's policies, ready to use: the default, and per bucket."""

    default: Policy | None = None
    buckets: Mapping[str, Policy] = field(default_factory=dict)

    def for_bucket(self, name: str) -> Policy | None:
        return self.buckets.get(name, self.default)


def bucket_policies(entries: Sequence[PolicyConfig]) -> BucketPolicies:
    default = next((entry.policy() for entry in entries if not entry.buckets), None)
    named = {bucket: entry.policy() for entry in entries for bucket in entry.buckets}
    return BucketPolicies(default=default, buckets=named)


def placement_problems(
    entries: Sequence[PolicyConfig], sites: Sequence[SiteProfileFields]
) -> list[str]:
    """What is wrong with the policies as a whole: two defaults, a bucket named twice, a policy
    no placement can meet even with every site up (the solver's message says why)."""
    problems: list[str] = []
    defaults = [i for i, entry in enumerate(entries) if not entry.buckets]
    if len(defaults) > 1:
        problems.append(
            f"policies: {len(defaults)} entries without `buckets` "
            f"({', '.join(f'policies.{i}' for i in defaults)}); at most one is the default"
        )
    seen: dict[str, int] = {}
    for i, entry in enumerate(entries):
        for bucket in entry.buckets:
            if bucket in seen:
                where = "twice" if seen[bucket] == i else f"also in policies.{seen[bucket]}"
                problems.append(f"policies.{i}: bucket {bucket} is named {where}")
            seen.setdefault(bucket, i)
    inventory = [site.profile() for site in sites]
    for i, entry in enumerate(entries):
        try:
            solve(entry.policy(), inventory)
        except Infeasible as exc:
            problems.append(
                f"policies.{i} ({entry.label()}): no placement even with every site up: {exc}"
            )
    return problems
