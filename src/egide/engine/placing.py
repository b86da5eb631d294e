"""Where a new version's shards go: its bucket's policy, solved over the sites that are up.

A bucket's policy is, first found: the catalog's bucket setting "placement-policy" (JSON, set by
the CLI or the admin API), the configuration's policy for that bucket, the configuration's
default policy, else the global code over every site (what Égide did before policies). The
solver is seeded by the version id, so versions spread over the allowed sites. Sites the health
tracker reports down are never candidates; a site that just failed a write is avoided for
SUSPECT_SECONDS when the policy can do without it. Without a placement that meets the policy,
the write fails with NoPlacement (503): never below the policy.
See docs/decisions/0009-placement-wiring.md.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Collection, Mapping, Sequence

from pydantic import ValidationError

from egide.catalog.base import Catalog
from egide.clock import SYSTEM_CLOCK, Clock
from egide.domain import Bucket, SitesUnavailable
from egide.placement import Infeasible, Placement, Policy, SiteProfile, solve
from egide.placement.settings import BucketPolicies, SiteProfileFields
from egide.sites.health import SiteHealth

log = logging.getLogger("egide.placement")

#: The bucket setting holding a policy set at run time; it wins over the configuration.
SETTING = "placement-policy"
#: How long a bucket's policy is reused before the catalog is asked again (another process,
#: or the CLI, may have changed it).
POLICY_CACHE_SECONDS = 1.0
#: After a write to a site fails, new versions leave it out this long, unless the policy cannot
#: be met without it (the health tracker's breaker decides when it is really down).
SUSPECT_SECONDS = 30.0
#: How long the sites retired by evacuations are remembered before asking the catalog again.
RETIRED_CACHE_SECONDS = 2.0
#: Only a cancelled evacuation gives its site back (a failed one is waiting to be resumed).
_EVACUATING = ("queued", "running", "paused", "failed", "done")


async def retired_sites(catalog: Catalog) -> frozenset[str]:
    """Sites being evacuated or evacuated (`egide site evacuate`): new shards never go there,
    until the site is removed from the configuration."""
    jobs = await catalog.list_jobs(_EVACUATING, limit=1_000_000, kind="evacuate")
    return frozenset(str(job.params.get("site")) for job in jobs)


class NoPlacement(SitesUnavailable):
    """No k+m sites meet the bucket's policy among those available: nothing was written."""


def dump_policy(policy: Policy) -> str:
    """A policy as the catalog setting stores it (JSON, only what differs from the defaults)."""
    return policy.model_dump_json(exclude_defaults=True)


def load_policy(text: str) -> Policy:
    """A stored policy, validated like the configuration's (ValidationError names the rule)."""
    return Policy.model_validate_json(text)


async def store_policy(catalog: Catalog, bucket_id: bytes, policy: Policy | None) -> None:
    """Set (or with None, remove) the policy of a bucket at run time: for the CLI and admin
    API. Every gateway process applies it from its next request on (its rights watch)."""
    await catalog.put_bucket_setting(bucket_id, SETTING, dump_policy(policy) if policy else None)


def unprofiled(name: str) -> SiteProfile:
    """The profile of a site nobody described (egide.placement.settings: nothing known)."""
    return SiteProfileFields(name=name).profile()


class Placer:
    """Chooses the sites of new versions for one store; see the module docstring."""

    def __init__(
        self,
        catalog: Catalog,
        sites: Collection[str],
        profiles: Sequence[SiteProfile],
        policies: BucketPolicies,
        fallback: Policy,
        health: SiteHealth,
        *,
        clock: Clock = SYSTEM_CLOCK,
        cache_seconds: float = POLICY_CACHE_SECONDS,
    ) -> None:
        known = {profile.name: profile for profile in profiles}
        strangers = sorted(set(known) - set(sites))
        if strangers:
            raise ValueError(f"profiles of sites that are not configured: {', '.join(strangers)}")
        self.catalog = catalog
        self.profiles = [known.get(name) or unprofiled(name) for name in sites]
        self.policies = policies
        self.fallback = fallback
        self.health = health
        self.clock = clock
        self.cache_seconds = cache_seconds
        self._cache: dict[bytes, tuple[Policy, float]] = {}
        self._suspects: dict[str, float] = {}
        self._retired: tuple[frozenset[str], float] = (frozenset(), -RETIRED_CACHE_SECONDS)
        #: Failures already recorded: one failed pack reaches every object in it.
        self._seen: deque[SitesUnavailable] = deque(maxlen=16)

    async def policy(self, bucket: Bucket) -> Policy:
        """The policy governing new versions of `bucket` (cached `cache_seconds`)."""
        now = self.clock.monotonic()
        hit = self._cache.get(bucket.id)
        if hit is not None and now - hit[1] < self.cache_seconds:
            return hit[0]
        text = await self.catalog.get_bucket_setting(bucket.id, SETTING)
        if text:
            try:
                policy = load_policy(text)
            except ValidationError as exc:
                raise NoPlacement(
                    f"bucket {bucket.name}: its placement policy in the catalog is invalid "
                    f"({exc.errors()[0]['msg']}); set it again"
                ) from None
        else:
            policy = self.policies.for_bucket(bucket.name) or self.fallback
        self._cache[bucket.id] = (policy, now)
        return policy

    def forget(self, bucket_id: bytes) -> None:
        """Drop the cached policy of a bucket (after `store_policy` in this process)."""
        self._cache.pop(bucket_id, None)

    def forget_all(self) -> None:
        """A bucket setting changed somewhere (the rights watch): read every policy again."""
        self._cache.clear()

    async def place(
        self, bucket: Bucket, version_id: bytes, exclude: Collection[str] = ()
    ) -> Placement:
        """The k+m sites of a new version of `bucket`, without the sites in `exclude` (those
        that just failed this write) nor those known down; NoPlacement if there are none."""
        policy = await self.policy(bucket)
        down = self.health.unavailable() | frozenset(exclude) | await self.retired()
        now = self.clock.monotonic()
        suspects = {s for s, when in self._suspects.items() if now - when < SUSPECT_SECONDS}
        latency = self._latencies() if policy.objective == "fastest" else None
        attempts = [down | suspects, down] if suspects - down else [down]
        reason = ""
        for unavailable in attempts:
            try:
                return solve(
                    policy, self.profiles, unavailable=unavailable, latency_ms=latency,
                    seed=version_id,
                )  # fmt: skip
            except Infeasible as exc:
                reason = str(exc)
        raise NoPlacement(
            f"bucket {bucket.name}: no placement meets its policy with the sites available: "
            f"{reason}"
        )

    async def retired(self) -> frozenset[str]:
        """`retired_sites`, asked of the catalog at most every RETIRED_CACHE_SECONDS."""
        sites, when = self._retired
        now = self.clock.monotonic()
        if now - when >= RETIRED_CACHE_SECONDS:
            sites = await retired_sites(self.catalog)
            self._retired = (sites, now)
        return sites

    def _latencies(self) -> dict[str, float]:
        measured = {p.name: self.health.latency(p.name) for p in self.profiles}
        return {name: s * 1000 for name, s in measured.items() if s is not None}

    def failed(self, exc: SitesUnavailable) -> None:
        """A write failed on `exc.sites`: tell the health tracker, and avoid them for a while."""
        if any(seen is exc for seen in self._seen):
            return
        self._seen.append(exc)
        now = self.clock.monotonic()
        for site in exc.sites:
            self.health.record_failure(site, str(exc))
            if site not in self._suspects or now - self._suspects[site] >= SUSPECT_SECONDS:
                log.warning("site %s failed a write; new versions avoid it: %s", site, exc)
            self._suspects[site] = now

    def suspects(self) -> Mapping[str, float]:
        """Sites avoided after a failed write, and when they failed (for `egide site list`)."""
        now = self.clock.monotonic()
        return {s: when for s, when in self._suspects.items() if now - when < SUSPECT_SECONDS}
