"""Placement solver benchmark: time to place one object version on a 64-site inventory.

    python benchmarks/bench_solver.py [--runs 21] [--sites 64]

Prints the median and worst of --runs solves (each with a different seed, as each version has its
own) for a feasible policy with seven constraints, for a harder 16-shard one, for an infeasible
one caught by a counting argument, and for an infeasible one only the exhaustive search proves.
The inventory is synthetic but shaped like a real one: twelve providers, their regions, laws
derived from country and provider, certifications at random, list prices.
"""

from __future__ import annotations

import argparse
import random
import statistics
import time

from egide.placement import Infeasible, Policy, SiteProfile, solve

OFFERS = {
    "OVHcloud": ["Roubaix", "Gravelines", "Strasbourg", "Frankfurt", "Warsaw", "London"],
    "Scaleway": ["Paris", "Amsterdam", "Warsaw"],
    "Outscale": ["Paris", "Frankfurt", "Ashburn"],
    "Orange": ["Paris", "Lyon", "Rennes"],
    "AWS": ["Paris", "Frankfurt", "Dublin", "Milan", "Ashburn", "Stockholm"],
    "Google": ["Paris", "Frankfurt", "Zurich", "Madrid"],
    "Azure": ["Paris", "Amsterdam", "Dublin"],
    "Hetzner": ["Falkenstein", "Nuremberg"],
    "IONOS": ["Berlin", "Madrid", "London"],
    "Infomaniak": ["Geneva", "Zurich"],
    "Occitanie DC": ["Toulouse", "Montpellier"],
    "Alibaba": ["Frankfurt", "Shanghai"],
}
ODDS = {"ISO27001": 0.9, "HDS": 0.4, "SecNumCloud": 0.2, "C5": 0.3, "ENS": 0.2}


def inventory(size: int, seed: int = 1) -> list[SiteProfile]:
    rng = random.Random(seed)
    providers = list(OFFERS)
    sites = []
    for i in range(size):
        provider = providers[i % len(providers)]
        sites.append(
            SiteProfile(
                name=f"{provider.split()[0].lower()}-{i}",
                provider=provider,
                city=rng.choice(OFFERS[provider]),
                certifications=tuple(c for c, odds in ODDS.items() if rng.random() < odds),
                storage_gb_month=round(rng.uniform(0.004, 0.03), 4),
            )
        )
    return sites


CASES = {
    "feasible, 8+4, 7 constraints, cheapest": Policy(
        k=8,
        m=4,
        certifications=("ISO27001",),
        exclude_laws=("cn",),
        max_per_provider=2,
        max_per_country=4,
        max_per_law={"us-cloud-act": 3},
        min_in_country={"FR": 4},
        objective="cheapest",
    ),
    "feasible, 10+6, 5 constraints, cheapest": Policy(
        k=10,
        m=6,
        max_per_provider=2,
        max_per_country=3,
        max_per_law={"us-cloud-act": 2, "*": 12},
        min_in_country={"FR": 3, "DE": 3},
        objective="cheapest",
    ),
    "infeasible, counting argument": Policy(
        k=12, m=4, certifications=("ISO27001",), exclude_laws=("cn",), max_per_provider=1
    ),
    "infeasible, proved by search": Policy(
        k=4,
        m=2,
        exclude_providers=("Scaleway",),
        exclude_laws=("cn",),
        max_per_provider=1,
        max_per_law={"us-cloud-act": 1},
        min_in_country={"FR": 6},
    ),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=21)
    parser.add_argument("--sites", type=int, default=64)
    args = parser.parse_args()
    sites = inventory(args.sites)
    print(
        f"{len(sites)} sites, {len(OFFERS)} providers, {len({s.country for s in sites})} countries"
    )
    for label, policy in CASES.items():
        times, outcome = [], ""
        for run in range(args.runs):
            started = time.perf_counter()
            try:
                placement = solve(policy, sites, seed=run.to_bytes(4, "big"))
                outcome = f"{len(placement.sites)} sites, total {placement.value:.4f}"
            except Infeasible as exc:
                outcome = f"Infeasible: {str(exc)[:70]}…"
            times.append(time.perf_counter() - started)
        print(
            f"{label:42} median {statistics.median(times) * 1000:7.2f} ms  "
            f"max {max(times) * 1000:7.2f} ms  ({outcome})"
        )


if __name__ == "__main__":
    main()
