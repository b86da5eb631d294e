"""Why no placement exists, in words: counting arguments that each name one constraint.

Each check is a necessary condition, so a message from here is always true. When every check
passes but the exact search still finds nothing, the constraints conflict only in combination, and
`unmet` names them all.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Collection, Mapping, Sequence
from typing import NamedTuple

from egide.placement.inventory import SiteProfile
from egide.placement.policy import ANY_LAW, Policy, Refusal


def _names(sites: Sequence[SiteProfile]) -> str:
    return ", ".join(site.name for site in sites) or "none"


def _needed(policy: Policy) -> str:
    return f"{policy.n} are needed (k+m = {policy.k}+{policy.m})"


def _passing_phrase(policy: Policy, rule: str) -> str:
    """How to say that a site passes `rule`: "hold HDS", "are outside US" …"""
    if rule.startswith("certifications "):
        return f"hold {rule.removeprefix('certifications ')}"
    if rule == "max_distance_km":
        return f"are within {policy.max_distance_km or 0:g} km of the origin"
    phrases = {
        "providers": f"belong to {', '.join(policy.providers)}",
        "exclude_providers": f"belong to none of {', '.join(policy.exclude_providers)}",
        "countries": f"are in {', '.join(policy.countries)}",
        "exclude_countries": f"are outside {', '.join(policy.exclude_countries)}",
        "laws": f"are subject to no law but {', '.join(policy.laws)}",
        "exclude_laws": f"are subject to none of {', '.join(policy.exclude_laws)}",
        "objective nearest": "have a location",
    }
    return phrases[rule]


def _down_note(names: Collection[str]) -> str:
    return f"; down: {', '.join(sorted(names))}" if names else ""


def diagnose(
    policy: Policy,
    sites: Sequence[SiteProfile],
    refused: Mapping[str, list[Refusal]],
    down: Collection[str],
) -> str | None:
    """The first counting argument showing that no placement exists, or None if none does."""
    n = policy.n
    passing = [site for site in sites if not refused[site.name]]
    allowed = [site for site in passing if site.name not in down]
    down_allowed = [site.name for site in passing if site.name in down]
    if len(passing) < n:
        rules = dict.fromkeys(r.rule for site in sites for r in refused[site.name])
        for rule in rules:
            ok = [s for s in sites if all(r.rule != rule for r in refused[s.name])]
            if len(ok) < n:
                phrase = _passing_phrase(policy, rule)
                return f"{rule}: only {len(ok)} sites {phrase}: {_names(ok)}; {_needed(policy)}"
        why = "; ".join(
            f"{site.name}: {', '.join(r.reason for r in refused[site.name])}"
            for site in sites
            if refused[site.name]
        )
        return (
            f"only {len(passing)} sites pass every filter: {_names(passing)}; {_needed(policy)}; "
            f"refused: {why}"
        )
    if len(allowed) < n:
        return (
            f"only {len(allowed)} allowed sites are up: {_names(allowed)}; {_needed(policy)}"
            f"{_down_note(down_allowed)}"
        )
    for check in (_spread, _minimums):
        reason = check(policy, allowed)
        if reason is not None:
            return reason + _down_note(down_allowed)
    return None


def _room(groups: Mapping[str, list[SiteProfile]], cap: int) -> int:
    return sum(min(cap, len(members)) for members in groups.values())


def _grouped(
    sites: Sequence[SiteProfile], key: Callable[[SiteProfile], str]
) -> dict[str, list[SiteProfile]]:
    groups: dict[str, list[SiteProfile]] = defaultdict(list)
    for site in sites:
        groups[key(site)].append(site)
    return groups


def _law_room(policy: Policy, sites: Sequence[SiteProfile]) -> tuple[int, list[str]]:
    """At most how many of `sites` the law limits let through: a site under no limited law is
    free, any other counts against at least one limit. With the limits, for the message."""
    free = sum(1 for site in sites if all(policy.law_cap(law) is None for law in site.laws))
    room, limits = free, []
    for law, members in sorted(_grouped_laws(sites).items()):
        cap = policy.law_cap(law)
        if cap is not None:
            room += min(cap, len(members))
            limits.append(f"{law} ≤ {cap} ({len(members)} sites)")
    return room, limits


def _grouped_laws(sites: Sequence[SiteProfile]) -> dict[str, list[SiteProfile]]:
    groups: dict[str, list[SiteProfile]] = defaultdict(list)
    for site in sites:
        for law in site.laws:
            groups[law].append(site)
    return groups


def _spread(policy: Policy, allowed: Sequence[SiteProfile]) -> str | None:
    n = policy.n
    for what, cap, key in (
        ("provider", policy.max_per_provider, lambda s: s.provider),
        ("country", policy.max_per_country, lambda s: s.country),
    ):
        if cap is None:
            continue
        groups = _grouped(allowed, key)
        room = _room(groups, cap)
        if room < n:
            spread = f"from distinct {what}s" if cap == 1 else f"with at most {cap} per {what}"
            listed = ", ".join(f"{name} ({len(g)})" for name, g in sorted(groups.items()))
            return (
                f"needs {n} sites {spread} (max_per_{what} = {cap}), but the {len(allowed)} "
                f"allowed sites belong to only {len(groups)} {what}s, which can hold at most "
                f"{room}: {listed}"
            )
    room, limits = _law_room(policy, allowed)
    if room < n:
        return (
            f"needs {n} sites, but max_per_law lets at most {room} of the {len(allowed)} allowed "
            f"sites through: {', '.join(limits)}"
        )
    return None


def _minimums(policy: Policy, allowed: Sequence[SiteProfile]) -> str | None:
    for country, low in sorted(policy.min_in_country.items()):
        there = [site for site in allowed if site.country == country]
        head = f"min_in_country {country} = {low}, but"
        if len(there) < low:
            return f"{head} only {len(there)} allowed sites are in {country}: {_names(there)}"
        cap = policy.max_per_provider
        if cap is not None:
            groups = _grouped(there, lambda s: s.provider)
            if _room(groups, cap) < low:
                return (
                    f"{head} with max_per_provider = {cap} the {len(there)} allowed sites in "
                    f"{country} can hold at most {_room(groups, cap)}: they belong to "
                    f"{', '.join(sorted(groups))}"
                )
        room, limits = _law_room(policy, there)
        if room < low:
            return f"{head} max_per_law lets at most {room} through there: {', '.join(limits)}"
    return None


class Limit(NamedTuple):
    """One limit of a policy: `field` is max_per_provider, max_per_country, max_per_law or
    min_in_country; `key` the law or country for the last two."""

    field: str
    key: str | None
    value: int

    def __str__(self) -> str:
        key = "(any other law)" if self.key == ANY_LAW else self.key
        return f"{self.field} {key} = {self.value}" if key else f"{self.field} = {self.value}"


def limits(policy: Policy) -> list[Limit]:
    out = [
        Limit(name, None, value)
        for name, value in (
            ("max_per_provider", policy.max_per_provider),
            ("max_per_country", policy.max_per_country),
        )
        if value is not None
    ]
    out += [Limit("max_per_law", law, cap) for law, cap in policy.max_per_law.items()]
    out += [Limit("min_in_country", c, low) for c, low in policy.min_in_country.items()]
    return out


def only(policy: Policy, kept: Sequence[Limit]) -> Policy:
    """The policy with its filters but no limits other than `kept`."""
    scalars = {limit.field: limit.value for limit in kept if limit.key is None}
    return policy.model_copy(
        update={
            "max_per_provider": scalars.get("max_per_provider"),
            "max_per_country": scalars.get("max_per_country"),
            "max_per_law": {x.key: x.value for x in kept if x.field == "max_per_law"},
            "min_in_country": {x.key: x.value for x in kept if x.field == "min_in_country"},
        }
    )


def _detail(site: SiteProfile) -> str:
    return f"{site.name} ({site.provider}, {site.country}; {', '.join(site.laws) or 'no law'})"


def unmet(
    policy: Policy, allowed: Sequence[SiteProfile], down: Collection[str], conflict: list[Limit]
) -> str:
    """The message when only a combination of limits is impossible: name that combination, and
    the sites it is about (those in the countries it names, else all allowed ones)."""
    names = [str(limit) for limit in conflict]
    together = names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]
    countries = {x.key for x in conflict if x.field == "min_in_country"}
    shown = [site for site in allowed if site.country in countries] if countries else allowed
    where = f"in {', '.join(sorted(c for c in countries if c))}" if countries else ""
    return (
        f"no {policy.n} of the {len(allowed)} allowed sites meet {together}; the allowed sites "
        f"{where + ' ' if where else ''}are: {', '.join(_detail(s) for s in shown)}"
        f"{_down_note(down)}"
    )
