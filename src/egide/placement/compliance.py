"""Proofs and reports over placements: does one obey its policy, what does a loss cost, and why was
it chosen. These back `egide policy check` and `egide policy explain`."""

from __future__ import annotations

from collections import Counter
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Generic, Literal, TypeVar

from egide.placement.inventory import SiteProfile
from egide.placement.policy import Policy
from egide.placement.solver import Infeasible, Placement, objective_values, solve

K = TypeVar("K")
Dimension = Literal["provider", "country", "law"]


def check(policy: Policy, sites: Sequence[SiteProfile], placement: Placement) -> list[str]:
    """Every way `placement` breaks `policy` (empty when it complies); availability is not judged.

    Counted from scratch, independently of the solver, so that it can prove the solver's work.
    """
    by_name = {site.name: site for site in sites}
    problems: list[str] = []
    if (placement.k, placement.m) != (policy.k, policy.m):
        problems.append(
            f"code {placement.k}+{placement.m} differs from the policy's {policy.k}+{policy.m}"
        )
    if len(placement.sites) != policy.n:
        problems.append(
            f"{len(placement.sites)} sites for k+m = {policy.k}+{policy.m} = {policy.n} shards"
        )
    problems += [
        f"site {name} holds {count} shards"
        for name, count in Counter(placement.sites).items()
        if count > 1
    ]
    chosen: list[SiteProfile] = []
    for name in placement.sites:
        site = by_name.get(name)
        if site is None:
            problems.append(f"site {name} is not in the inventory")
            continue
        chosen.append(site)
        problems += [f"site {name} excluded: {r.reason}" for r in policy.refusals(site)]
    for cap, counts, what in (
        (policy.max_per_provider, Counter(s.provider for s in chosen), "provider"),
        (policy.max_per_country, Counter(s.country for s in chosen), "country"),
    ):
        if cap is not None:
            problems += [
                f"{what} {value} holds {count} shards, max_per_{what} = {cap}"
                for value, count in sorted(counts.items())
                if count > cap
            ]
    for law, count in sorted(Counter(law for s in chosen for law in s.laws).items()):
        law_cap = policy.law_cap(law)
        if law_cap is not None and count > law_cap:
            problems.append(f"law {law} reaches {count} shards, max_per_law = {law_cap}")
    in_country = Counter(s.country for s in chosen)
    problems += [
        f"country {country} holds {in_country[country]} shards, min_in_country {country} = {low}"
        for country, low in sorted(policy.min_in_country.items())
        if in_country[country] < low
    ]
    return problems


def unreadable(placements: Mapping[K, Placement], lost: Collection[str]) -> list[K]:
    """The objects that fewer than k shards would remain of, were the `lost` sites gone."""
    return [
        key
        for key, placement in placements.items()
        if sum(1 for name in placement.sites if name not in lost) < placement.k
    ]


@dataclass(frozen=True)
class Exposure(Generic[K]):
    """What losing every site of one provider, country or law would do to the placements."""

    dimension: Dimension
    value: str
    sites: tuple[str, ...]
    #: Objects with fewer than k shards left: lost until the sites come back.
    unreadable: tuple[K, ...]
    #: Objects still readable but short of some shards (repair would rebuild them).
    degraded: int


def survival(placements: Mapping[K, Placement], sites: Sequence[SiteProfile]) -> list[Exposure[K]]:
    """For each provider, country and law of the inventory, the objects that losing all of its
    sites at once would make unreadable."""
    by_name = {site.name: site for site in sites}
    for placement in placements.values():
        unknown = sorted(set(placement.sites) - by_name.keys())
        if unknown:
            raise ValueError(f"placement names sites not in the inventory: {', '.join(unknown)}")
    groups: dict[tuple[Dimension, str], list[str]] = {}
    for site in sorted(sites, key=lambda s: s.name):
        groups.setdefault(("provider", site.provider), []).append(site.name)
        groups.setdefault(("country", site.country), []).append(site.name)
        for law in site.laws:
            groups.setdefault(("law", law), []).append(site.name)
    order = {"provider": 0, "country": 1, "law": 2}
    exposures = []
    for (dimension, value), names in sorted(
        groups.items(), key=lambda g: (order[g[0][0]], g[0][1])
    ):
        lost = set(names)
        gone = unreadable(placements, lost)
        touched = sum(1 for p in placements.values() if lost.intersection(p.sites))
        exposures.append(Exposure(dimension, value, tuple(names), tuple(gone), touched - len(gone)))
    return exposures


@dataclass(frozen=True)
class SiteVerdict:
    """One site in an explanation: may it hold shards, does it, and what if it went down."""

    name: str
    refusals: tuple[str, ...]
    down: bool
    shard: int | None
    value: float
    if_down: str

    @property
    def allowed(self) -> bool:
        return not self.refusals

    @property
    def chosen(self) -> bool:
        return self.shard is not None


@dataclass(frozen=True)
class Explanation:
    """Why a placement is what it is; `str()` gives the report `egide policy explain` prints."""

    policy: Policy
    placement: Placement | None
    infeasible: str | None
    sites: tuple[SiteVerdict, ...]

    def __str__(self) -> str:
        lines = ["Policy:", *(f"  {line}" for line in self.policy.describe().splitlines())]
        if self.placement is None:
            lines.append(f"No placement: {self.infeasible}")
        else:
            lines.append(f"Placement ({self.policy.objective}, total {self.placement.value:g}):")
            lines += [
                f"  shard {i} → {name}" + (" (parity)" if i >= self.placement.k else " (data)")
                for i, name in enumerate(self.placement.sites)
            ]
        lines.append("Sites:")
        width = max((len(v.name) for v in self.sites), default=0)
        for verdict in self.sites:
            lines.append(f"  {verdict.name:<{width}}  {_status(verdict, self.policy)}")
        return "\n".join(lines)


def _status(verdict: SiteVerdict, policy: Policy) -> str:
    if verdict.refusals:
        return "refused: " + "; ".join(verdict.refusals)
    if verdict.down:
        return "allowed, down"
    value = "" if policy.objective == "spread" else f" ({policy.objective}: {verdict.value:g})"
    if verdict.shard is None:
        return f"allowed, not chosen{value}; if down: {verdict.if_down}"
    return f"chosen, shard {verdict.shard}{value}; if down: {verdict.if_down}"


def explain(
    policy: Policy,
    sites: Sequence[SiteProfile],
    *,
    unavailable: Collection[str] = frozenset(),
    latency_ms: Mapping[str, float] | None = None,
    seed: bytes = b"",
) -> Explanation:
    """Solve, then say of every site whether it is allowed, chosen, and what its loss would change.

    Only a chosen site going down changes anything: the optimum is unique, so removing a site it
    does not use leaves it optimal.
    """

    def attempt(down: Collection[str]) -> Placement | str:
        try:
            return solve(policy, sites, unavailable=down, latency_ms=latency_ms, seed=seed)
        except Infeasible as exc:
            return str(exc)

    outcome = attempt(unavailable)
    placement = outcome if isinstance(outcome, Placement) else None
    values = objective_values(policy, sites, latency_ms)
    verdicts = []
    for site in sorted(sites, key=lambda s: s.name):
        shard = (
            placement.sites.index(site.name) if placement and site.name in placement.sites else None
        )
        if_down = "no change"
        if placement is not None and shard is not None:
            if_down = _change(policy, placement, attempt({*unavailable, site.name}))
        verdicts.append(
            SiteVerdict(
                name=site.name,
                refusals=tuple(r.reason for r in policy.refusals(site)),
                down=site.name in unavailable,
                shard=shard,
                value=values[site.name],
                if_down=if_down,
            )
        )
    return Explanation(
        policy=policy,
        placement=placement,
        infeasible=outcome if isinstance(outcome, str) else None,
        sites=tuple(verdicts),
    )


def _change(policy: Policy, before: Placement, after: Placement | str) -> str:
    if isinstance(after, str):
        return f"no placement ({after})"
    added = ", ".join(name for name in after.sites if name not in before.sites)
    if policy.objective == "spread":
        return f"replaced by {added}"
    return f"replaced by {added} (total {before.value:g} → {after.value:g})"
