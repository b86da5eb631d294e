"""Placement: which sites hold the k+m shards of each object version, under an organisation's
policy on jurisdiction, certification, cost and distance. Pure functions, no I/O."""

from egide.placement.compliance import (
    Explanation,
    Exposure,
    SiteVerdict,
    check,
    explain,
    survival,
    unreadable,
)
from egide.placement.geography import Coordinates, distance_km, find_city
from egide.placement.inventory import SiteProfile, default_laws
from egide.placement.policy import Policy, Refusal
from egide.placement.solver import Infeasible, Placement, objective_values, solve

__all__ = [
    "Coordinates",
    "Explanation",
    "Exposure",
    "Infeasible",
    "Placement",
    "Policy",
    "Refusal",
    "SiteProfile",
    "SiteVerdict",
    "check",
    "default_laws",
    "distance_km",
    "explain",
    "find_city",
    "objective_values",
    "solve",
    "survival",
    "unreadable",
]
