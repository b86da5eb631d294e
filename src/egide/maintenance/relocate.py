"""Where moved or rebuilt shards go: new sites for some pieces of a version, the others kept.

A repair or an evacuation should move as little as possible: the pieces on healthy sites stay
where they are and only the ones that must go get new sites, chosen so the whole placement still
satisfies the bucket's policy (egide.placement.compliance.check, which depends on the set of
sites only, not on which piece is where). Small cases — one or two pieces, tens of sites — are
searched exhaustively in the policy objective's order; when no such choice exists, the solver
places the version afresh and the pieces whose site changes move too.
"""

from __future__ import annotations

import hashlib
import itertools
from collections.abc import Collection, Sequence

from egide.placement import Policy, SiteProfile
from egide.placement.compliance import check
from egide.placement.solver import Infeasible, Placement, objective_values, solve

#: Combinations of candidate sites tried before falling back to the solver.
MAX_COMBINATIONS = 5000


class NoRelocation(Exception):
    """No placement of the pieces to move satisfies the policy with the sites available."""


def relocate(
    policy: Policy,
    profiles: Sequence[SiteProfile],
    sites: tuple[str, ...],
    moving: Collection[int],
    unavailable: Collection[str],
    seed: bytes,
    code: tuple[int, int],
) -> dict[int, str]:
    """New sites for the pieces in `moving` (index → site), possibly more pieces when the
    policy needs it; never a site in `unavailable`. NoRelocation when none fits.

    `code` is the version's own k+m: a version keeps its code (changing it means encoding it
    again), so a policy that changed its code since is applied with the version's."""
    if not moving:
        return {}
    if (policy.k, policy.m) != code:
        policy = policy.model_copy(update={"k": code[0], "m": code[1]})
    kept = [site for i, site in enumerate(sites) if i not in moving]
    down = set(unavailable)
    candidates = [
        p for p in profiles if p.name not in sites and p.name not in down and not policy.refusals(p)
    ]
    values = objective_values(policy, candidates)
    candidates.sort(key=lambda p: (values[p.name], hashlib.sha256(seed + p.name.encode()).digest()))
    order = sorted(moving)
    if len(sites) == policy.n:
        for tried, chosen in enumerate(itertools.combinations(candidates, len(order))):
            if tried >= MAX_COMBINATIONS:
                break
            placement = Placement((*kept, *(p.name for p in chosen)), policy.k, policy.m)
            if not check(policy, profiles, placement):
                return {i: p.name for i, p in zip(order, chosen, strict=True)}
    try:
        fresh = solve(policy, profiles, unavailable=down, seed=seed)
    except Infeasible as exc:
        raise NoRelocation(str(exc)) from None
    return align(sites, fresh.sites)


def align(current: tuple[str, ...], target: tuple[str, ...]) -> dict[int, str]:
    """The moves that turn `current` into the set `target`: pieces on a site of `target` stay,
    the others take the sites of `target` left over, in order."""
    wanted = set(target)
    staying = {site for site in current if site in wanted}
    free = [site for site in target if site not in staying]
    return {index: free.pop(0) for index, site in enumerate(current) if site not in wanted}
