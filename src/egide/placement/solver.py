"""Choose the k+m sites of one object version: exact, deterministic, and explained when impossible.

The search is a depth-first branch and bound over classes of interchangeable sites, with memoised
bounds; docs/decisions/0007-placement-solver.md says why it is exact and fast enough.
"""

from __future__ import annotations

import hashlib
import heapq
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from itertools import chain

from egide.placement.diagnosis import Limit, diagnose, limits, only, unmet
from egide.placement.geography import distance_km
from egide.placement.inventory import SiteProfile
from egide.placement.policy import Policy

#: What the "fastest" objective assumes of a site with no latency measurement: slower than any
#: real one, so measured sites are preferred while unmeasured ones stay usable.
UNMEASURED_LATENCY_MS = 60_000.0


class Infeasible(Exception):
    """No k+m sites satisfy the policy; the message names the constraint and the sites involved."""


@dataclass(frozen=True)
class Placement:
    """Shard i of the version goes to `sites[i]`; `value` is the objective's total for them."""

    sites: tuple[str, ...]
    k: int
    m: int
    value: float = 0.0


def objective_values(
    policy: Policy, sites: Iterable[SiteProfile], latency_ms: Mapping[str, float] | None = None
) -> dict[str, float]:
    """What each site adds to the objective the policy minimises (0 for "spread")."""
    origin = policy.origin_point
    values: dict[str, float] = {}
    for site in sites:
        if policy.objective == "cheapest":
            values[site.name] = site.storage_gb_month
        elif policy.objective == "nearest" and origin is not None and site.location is not None:
            values[site.name] = distance_km(origin, site.location)
        elif policy.objective == "fastest":
            values[site.name] = (latency_ms or {}).get(site.name, UNMEASURED_LATENCY_MS)
        else:
            values[site.name] = 0.0
    return values


def solve(
    policy: Policy,
    sites: Sequence[SiteProfile],
    *,
    unavailable: Collection[str] = frozenset(),
    latency_ms: Mapping[str, float] | None = None,
    seed: bytes = b"",
) -> Placement:
    """The best k+m sites for the policy's objective among those up, or Infeasible.

    Ties in the objective (all prices equal, say) go to the sites that rank first in a hash of
    `seed` and the site's name (rendezvous hashing), so a seed such as the version id spreads
    load, and the same inputs always give the same placement, whatever the order of `sites`.
    """
    by_name = {site.name: site for site in sites}
    if len(by_name) != len(sites):
        raise ValueError("two sites have the same name")
    ordered = sorted(sites, key=lambda site: site.name)
    refused = {site.name: policy.refusals(site) for site in ordered}
    down = {site.name for site in ordered if site.name in unavailable}
    allowed = [site for site in ordered if not refused[site.name] and site.name not in down]
    reason = diagnose(policy, ordered, refused, down)
    if reason is not None:
        raise Infeasible(reason)
    values = objective_values(policy, allowed, latency_ms)
    costs = _costs(values, _ranks(ordered, seed), policy.n)
    chosen = _Search(policy, allowed, costs).run()
    if chosen is None:
        raise Infeasible(unmet(policy, allowed, down, _conflict(policy, allowed, costs)))
    chosen.sort(key=lambda site: costs[site.name])
    return Placement(
        sites=tuple(site.name for site in chosen),
        k=policy.k,
        m=policy.m,
        value=sum(values[site.name] for site in chosen),
    )


def _conflict(
    policy: Policy, allowed: Sequence[SiteProfile], costs: Mapping[str, int]
) -> list[Limit]:
    """A minimal set of limits that no placement meets together (a deletion filter: drop each
    limit in turn, and leave it out if the rest are still impossible)."""
    kept = limits(policy)
    for limit in list(kept):
        trial = [other for other in kept if other != limit]
        if _Search(only(policy, trial), allowed, costs).run() is None:
            kept = trial
    return kept


def _ranks(sites: Sequence[SiteProfile], seed: bytes) -> dict[str, int]:
    """Rendezvous order: rank 0 is the site whose hash with the seed comes first."""

    def score(site: SiteProfile) -> bytes:
        return hashlib.sha256(seed + b"\0" + site.name.encode()).digest()

    return {site.name: rank for rank, site in enumerate(sorted(sites, key=score))}


def _costs(values: Mapping[str, float], ranks: Mapping[str, int], n: int) -> dict[str, int]:
    """Exact integer costs: the objective first, then the rendezvous order as a tie-breaker.

    Floats are scaled exactly (every float is an integer over a power of two), so sums never round.
    The tie-breaker weight 2^N - 2^(N-1-rank) makes the set that keeps the best-ranked site win
    over any set without it; its sum over n sites stays below `scale`, so it never outweighs a
    difference in the objective. Distinct sets thus have distinct costs: the optimum is unique.
    """
    ratios = {name: value.as_integer_ratio() for name, value in values.items()}
    denominator = max((den for _, den in ratios.values()), default=1)
    total = len(ranks)
    scale = 1 << (total + n.bit_length())
    return {
        name: num * (denominator // den) * scale + (1 << total) - (1 << (total - 1 - ranks[name]))
        for name, (num, den) in ratios.items()
    }


FREE = -1


@dataclass(frozen=True)
class _Class:
    """Sites that count toward exactly the same limits: only how many are taken matters, and
    taking the cheapest ones first is always at least as good."""

    sites: tuple[SiteProfile, ...]
    dims: tuple[int, ...]
    prefix: tuple[int, ...]


class _Search:
    """Branch and bound over how many sites to take from each class, cheapest classes first."""

    def __init__(self, policy: Policy, allowed: Sequence[SiteProfile], costs: Mapping[str, int]):
        self.n = policy.n
        index: dict[tuple[str, str], int] = {}
        self.caps: list[int] = []
        self.mins: list[int] = []
        self.kinds: list[str] = []

        def dim(key: tuple[str, str], cap: int | None, low: int = 0) -> int:
            if key not in index:
                index[key] = len(self.caps)
                self.caps.append(self.n if cap is None else cap)
                self.mins.append(low)
                self.kinds.append(key[0])
            return index[key]

        members: dict[tuple[int, ...], list[SiteProfile]] = {}
        for site in allowed:
            dims: list[int] = []
            if policy.max_per_provider is not None:
                dims.append(dim(("provider", site.provider.casefold()), policy.max_per_provider))
            low = policy.min_in_country.get(site.country, 0)
            if policy.max_per_country is not None or low:
                dims.append(dim(("country", site.country), policy.max_per_country, low))
            for law in site.laws:
                cap = policy.law_cap(law)
                if cap is not None:
                    dims.append(dim(("law", law), cap))
            members.setdefault(tuple(sorted(dims)), []).append(site)
        classes = []
        for key, group in members.items():
            group.sort(key=lambda site: costs[site.name])
            prefix = [0]
            for site in group:
                prefix.append(prefix[-1] + costs[site.name])
            classes.append(_Class(tuple(group), key, tuple(prefix)))
        classes.sort(key=lambda c: c.prefix[1])
        self.classes = classes
        self.country_caps = policy.max_per_country is not None
        self._precompute(costs)
        self.count = [0] * len(self.caps)
        self.taken: list[int] = []
        self.best = sum(sorted(costs.values())[-self.n :]) + 1 if costs else 0
        self.best_taken: list[int] | None = None
        self.memo: dict[tuple[int, ...], int] = {}

    def _precompute(self, costs: Mapping[str, int]) -> None:
        """Per suffix of classes: sites left per limit, and the cheapest costs left (bounds)."""
        dims = len(self.caps)
        self.avail = [[0] * dims]
        self.cheapest: list[list[int]] = [[0]]
        left: list[int] = []
        for c in reversed(self.classes):
            row = list(self.avail[0])
            for d in c.dims:
                row[d] += len(c.sites)
            self.avail.insert(0, row)
            left = sorted(left + [costs[site.name] for site in c.sites])
            sums = [0]
            for cost in left[: self.n]:
                sums.append(sums[-1] + cost)
            self.cheapest.insert(0, sums)
        self.open = [tuple(d for d in range(dims) if row[d]) for row in self.avail]
        self.min_dims = [d for d in range(dims) if self.mins[d]]
        # Relaxations that partition the sites: each class goes to one bucket (its provider, its
        # country, or its tightest limited law; FREE if none), and no more can be taken from a
        # bucket than its limit's spare room. Per suffix: the sorted costs left in each bucket.
        self.buckets: list[list[dict[int, list[int]]]] = []
        for kind in ("provider", "country", "law"):
            of_class = [self._bucket(c, kind) for c in self.classes]
            if all(b == FREE for b in of_class) or (kind == "country" and not self.country_caps):
                continue
            rows: list[dict[int, list[int]]] = [{}]
            for c, b in zip(reversed(self.classes), reversed(of_class), strict=True):
                by_bucket = dict(rows[0])
                by_bucket[b] = sorted(by_bucket.get(b, []) + [costs[s.name] for s in c.sites])
                rows.insert(0, by_bucket)
            self.buckets.append(rows)

    def _bucket(self, c: _Class, kind: str) -> int:
        limits = [d for d in c.dims if self.kinds[d] == kind]
        return min(limits, key=lambda d: (self.caps[d], d)) if limits else FREE

    def run(self) -> list[SiteProfile] | None:
        self._visit(0, self.n, 0)
        if self.best_taken is None:
            return None
        return [
            site for c, x in zip(self.classes, self.best_taken, strict=True) for site in c.sites[:x]
        ]

    def _visit(self, i: int, r: int, cost: int) -> None:
        count, caps, mins = self.count, self.caps, self.mins
        if r == 0:
            if cost < self.best and all(count[d] >= mins[d] for d in self.min_dims):
                self.best = cost
                self.best_taken = self.taken + [0] * (len(self.classes) - i)
            return
        cheapest = self.cheapest[i]
        if r >= len(cheapest) or cost + cheapest[r] >= self.best:
            return
        avail = self.avail[i]
        needed = 0
        for d in self.min_dims:
            need = mins[d] - count[d]
            if need > 0:
                if need > min(avail[d], caps[d] - count[d]):
                    return
                needed += need
        if needed > r:
            return
        key = (i, r, *(min(caps[d] - count[d], avail[d]) for d in self.open[i]))
        key += tuple(max(0, mins[d] - count[d]) for d in self.min_dims if avail[d])
        known = self.memo.get(key)
        if known is not None and cost + known >= self.best:
            return
        for rows in self.buckets:
            fits = chain.from_iterable(
                left[: r if b == FREE else caps[b] - count[b]] for b, left in rows[i].items()
            )
            cheapest_fit = heapq.nsmallest(r, fits)
            if len(cheapest_fit) < r or cost + sum(cheapest_fit) >= self.best:
                return
        before = self.best
        c = self.classes[i]
        most = min(len(c.sites), r, *(caps[d] - count[d] for d in c.dims))
        for x in range(most, -1, -1):
            for d in c.dims:
                count[d] += x
            self.taken.append(x)
            self._visit(i + 1, r - x, cost + c.prefix[x])
            self.taken.pop()
            for d in c.dims:
                count[d] -= x
        # Either this subtree improved the best (then its best completion is known exactly) or
        # nothing in it beats `before`: both are lower bounds on any completion from this state.
        to_go = self.best - cost if self.best < before else before - cost
        if known is None or to_go > known:
            self.memo[key] = to_go
