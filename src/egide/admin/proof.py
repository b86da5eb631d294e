"""`egide policy check`: proofs over everything stored, not over what the solver meant to do.

For every version with data (noncurrent ones too), counted from the catalog:
  * compliance: its sites and code satisfy its bucket's *current* policy
    (egide.placement.compliance.check, an independent count);
  * files: each shard file is on its site (one listing per site), or with `deep`, each shard
    reads back whole: header, every block's checksum, footer (egide.inspection.verify);
  * survival: for each provider, country and law, whether losing all of its sites at once
    leaves every version readable, and which versions it would not;
  * exposure: which providers under which laws hold shards, and whether any single foreign
    jurisdiction (a law not in `home_laws`; `unknown` is foreign) can compel k shards of
    any version: the proof that none can rebuild an object, whatever it compels.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from egide.admin.policies import EffectivePolicy, effective_policy
from egide.admin.probe import probe_all
from egide.catalog.base import Catalog
from egide.domain import Bucket, ObjectVersion
from egide.engine.bucketsettings import BucketSettings
from egide.inspection.scan import (
    ShardFile,
    VersionRef,
    completion_records,
    shard_files,
    stored_versions,
)
from egide.inspection.verify import ShardCheck, check_shard
from egide.placement import Placement, Policy, SiteProfile, check, survival
from egide.placement.settings import BucketPolicies
from egide.sites.base import Site, SiteError

#: Versions named per survival or exposure line; the rest are counted.
MAX_LISTED = 1000
#: Shard files read at the same time by a deep check.
VERIFY_CONCURRENCY = 8
#: Versions whose shards are verified together (bounds memory on large stores).
VERIFY_BATCH = 256

#: (configured sites of a version, sorted; k): versions with the same key share every
#: survival and exposure figure, so they are counted once.
_Group = tuple[tuple[str, ...], int]


@dataclass(frozen=True)
class Violation:
    ref: VersionRef
    problems: tuple[str, ...]

    def as_dict(self) -> dict[str, object]:
        return {**self.ref.as_dict(), "problems": list(self.problems)}


@dataclass(frozen=True)
class ShardProblem:
    ref: VersionRef
    shard: int
    part: int
    site: str
    file: str
    problem: str

    def as_dict(self) -> dict[str, object]:
        return {
            **self.ref.as_dict(),
            "shard": self.shard,
            "part": self.part,
            "site": self.site,
            "file": self.file,
            "problem": self.problem,
        }

    def order(self) -> tuple[str, str, str, int, int]:
        return (self.ref.bucket, self.ref.key, self.ref.version, self.part, self.shard)


@dataclass
class _Tally:
    """What the walk over the catalog gathers."""

    versions: int = 0
    shard_files: int = 0
    groups: dict[_Group, list[VersionRef]] = field(default_factory=dict)
    shards_by_site: Counter[str] = field(default_factory=Counter)
    bytes_by_site: Counter[str] = field(default_factory=Counter)
    digest: hashlib._Hash = field(default_factory=hashlib.sha256)


@dataclass
class _Provider:
    """One provider in the exposure view: the laws and countries of its sites, what they hold."""

    laws: set[str] = field(default_factory=set)
    countries: set[str] = field(default_factory=set)
    sites: list[str] = field(default_factory=list)
    shard_files: int = 0
    bytes: int = 0

    def as_dict(self, name: str) -> dict[str, object]:
        return {
            "provider": name,
            "laws": sorted(self.laws),
            "countries": sorted(self.countries),
            "sites": self.sites,
            "shard_files": self.shard_files,
            "bytes": self.bytes,
        }


@dataclass
class CheckResult:
    """Everything one check found; `content()` is the report without time (what is compared)."""

    scope: dict[str, object]
    home_laws: tuple[str, ...]
    buckets: list[dict[str, Any]]
    violations: list[Violation]
    shard_problems: list[ShardProblem]
    site_problems: list[dict[str, Any]]
    survival: list[dict[str, Any]]
    exposure: dict[str, Any]
    summary: dict[str, Any]
    versions_sha256: str

    @property
    def ok(self) -> bool:
        """No version breaks its policy and every shard checked is where and what it should be."""
        return not (self.violations or self.shard_problems or self.site_problems) and all(
            b.get("policy_error") is None for b in self.buckets
        )

    @property
    def exposure_proven(self) -> bool:
        return bool(self.exposure["proof"]["holds"])

    def content(self) -> dict[str, object]:
        return {
            "format": "egide-policy-check/1",
            "scope": self.scope,
            "home_laws": list(self.home_laws),
            "summary": self.summary,
            "buckets": self.buckets,
            "violations": [v.as_dict() for v in self.violations],
            "shard_problems": [p.as_dict() for p in self.shard_problems],
            "site_problems": self.site_problems,
            "survival": self.survival,
            "exposure": self.exposure,
            "versions_sha256": self.versions_sha256,
        }


class PolicyCheck:
    """One run of the proofs over a store (see the module docstring)."""

    def __init__(
        self,
        catalog: Catalog,
        profiles: Sequence[SiteProfile],
        policies: BucketPolicies,
        fallback: Policy,
        sites: Mapping[str, Site],
        home_laws: Sequence[str] = ("eu",),
    ) -> None:
        self.catalog = catalog
        self.profiles = list(profiles)
        self.by_name = {profile.name: profile for profile in profiles}
        self.policies = policies
        self.fallback = fallback
        self.sites = sites
        self.home_laws = tuple(sorted({law.strip().lower() for law in home_laws}))
        self.violations: list[Violation] = []
        self.shard_problems: list[ShardProblem] = []
        self.site_problems: list[dict[str, Any]] = []
        #: Per site, the files it holds (None: it could not be listed, or with `deep`, it
        #: did not answer a probe).
        self._listed: dict[str, set[str] | None] = {}
        self._pending: list[tuple[ObjectVersion, VersionRef]] = []

    async def run(
        self, buckets: Sequence[Bucket], *, files: bool = True, deep: bool = False
    ) -> CheckResult:
        """Check every version of `buckets`. Without `files` only the catalog is read."""
        if deep:
            await self._probe_sites()
        elif files:
            await self._list_sites()
        tally = _Tally()
        bucket_rows = []
        for bucket in buckets:
            effective = await effective_policy(
                BucketSettings(self.catalog), self.policies, self.fallback, bucket.name, bucket
            )
            versions = violations = 0
            async for version, latest in stored_versions(self.catalog, bucket):
                ref = VersionRef(bucket.name, version.key, version.s3_version_id, latest)
                versions += 1
                violations += self._comply(version, ref, effective)
                self._count(version, ref, tally)
                if deep:
                    self._pending.append((version, ref))
                    if len(self._pending) >= VERIFY_BATCH:
                        await self._verify_pending()
                elif files:
                    self._find_files(version, ref)
            row: dict[str, object] = {"name": bucket.name, **effective.as_dict()}
            row.pop("description")
            row["policy_error"] = row.pop("error")
            bucket_rows.append({**row, "versions": versions, "violations": violations})
        await self._verify_pending()
        self.shard_problems.sort(key=ShardProblem.order)
        survival_rows = self._survival(tally)
        exposure = self._exposure(tally)
        summary: dict[str, object] = {
            "buckets": len(bucket_rows),
            "versions": tally.versions,
            "shard_files": tally.shard_files,
            "violations": len(self.violations),
            "shard_problems": len(self.shard_problems),
            "site_problems": len(self.site_problems),
            "losses_survived": sum(1 for row in survival_rows if row["readable"]),
            "losses_checked": len(survival_rows),
        }
        scope: dict[str, object] = {
            "buckets": [bucket.name for bucket in buckets],
            "files": "read" if deep else "listed" if files else "not checked",
        }
        result = CheckResult(
            scope=scope,
            home_laws=self.home_laws,
            buckets=bucket_rows,
            violations=self.violations,
            shard_problems=self.shard_problems,
            site_problems=sorted(self.site_problems, key=lambda p: str(p["site"])),
            survival=survival_rows,
            exposure=exposure,
            summary=summary,
            versions_sha256=tally.digest.hexdigest(),
        )
        summary["compliant"] = result.ok
        summary["exposure_proven"] = result.exposure_proven
        return result

    # -- compliance ---------------------------------------------------------------------------

    def _comply(self, version: ObjectVersion, ref: VersionRef, effective: EffectivePolicy) -> int:
        if effective.policy is None:
            return 0  # the bucket's stored policy is unusable: reported once, on the bucket
        placement = Placement(version.sites, version.k, version.m)
        problems = check(effective.policy, self.profiles, placement)
        if problems:
            self.violations.append(Violation(ref, tuple(problems)))
        return 1 if problems else 0

    def _count(self, version: ObjectVersion, ref: VersionRef, tally: _Tally) -> None:
        tally.versions += 1
        known = tuple(sorted(site for site in version.sites if site in self.by_name))
        tally.groups.setdefault((known, version.k), []).append(ref)
        for shard in shard_files(version):
            tally.shard_files += 1
            tally.shards_by_site[shard.site] += 1
            tally.bytes_by_site[shard.site] += shard.estimated_size
        line = f"{ref.bucket}\t{ref.key}\t{ref.version}\t{version.k}+{version.m}\t"
        tally.digest.update((line + ",".join(version.sites) + "\n").encode())

    # -- files --------------------------------------------------------------------------------

    async def _list_sites(self) -> None:
        async def listing(name: str, site: Site) -> None:
            try:
                self._listed[name] = {file async for file in site.list()}
            except SiteError as exc:
                self._listed[name] = None
                self.site_problems.append({"site": name, "problem": f"cannot be listed: {exc}"})

        await asyncio.gather(*(listing(name, site) for name, site in self.sites.items()))

    async def _probe_sites(self) -> None:
        """Before reading every shard: a site that does not answer is one problem, not one
        per shard it holds."""
        for name, found in (await probe_all(dict(self.sites))).items():
            if not found.reachable:
                self._listed[name] = None
                self.site_problems.append({"site": name, "problem": f"unreachable: {found.error}"})

    def _problem(self, ref: VersionRef, shard: ShardFile, problem: str) -> None:
        self.shard_problems.append(
            ShardProblem(ref, shard.index, shard.part, shard.site, shard.file, problem)
        )

    def _find_files(self, version: ObjectVersion, ref: VersionRef) -> None:
        for shard in shard_files(version):
            if shard.site not in self.sites:
                self._problem(ref, shard, f"site {shard.site} is not configured")
                continue
            names = self._listed.get(shard.site)
            if names is not None and shard.file not in names:
                self._problem(ref, shard, f"missing: no file {shard.file} on site {shard.site}")
        records = [r for r in completion_records(version) if r.site in self.sites]
        listed = [(r, self._listed.get(r.site)) for r in records]
        absent = [r for r, names in listed if names is not None and r.file not in names]
        if len(absent) < len(records):  # none at all: completed before records existed
            for record in absent:
                self._problem(ref, record, f"missing: no file {record.file} on site {record.site}")

    async def _verify_pending(self) -> None:
        pending, self._pending = self._pending, []
        limit = asyncio.Semaphore(VERIFY_CONCURRENCY)

        async def check(version: ObjectVersion, shard: ShardFile) -> ShardCheck | None:
            site = self.sites.get(shard.site)
            if site is None:
                return ShardCheck([f"site {shard.site} is not configured"], lost=True)
            if shard.site in self._listed:  # unreachable: reported once, on the site
                return None
            async with limit:
                return await check_shard(site, shard, version)

        async def one(version: ObjectVersion, ref: VersionRef, shard: ShardFile) -> None:
            found = await check(version, shard)
            if found is not None and found.problem is not None:
                self._problem(ref, shard, found.problem)

        async def records(version: ObjectVersion, ref: VersionRef) -> None:
            """The copies of a completion record: none on any site is a version completed
            before records existed, with nothing to check."""
            copies = completion_records(version)
            found = await asyncio.gather(*(check(version, shard) for shard in copies))
            if all(copy is None or copy.missing for copy in found):
                return
            for shard, copy in zip(copies, found, strict=True):
                if copy is not None and copy.problem is not None:
                    self._problem(ref, shard, copy.problem)

        shards = [(v, ref, shard) for v, ref in pending for shard in shard_files(v)]
        await asyncio.gather(
            *(one(*item) for item in shards), *(records(v, ref) for v, ref in pending)
        )

    # -- survival and exposure ----------------------------------------------------------------

    def _survival(self, tally: _Tally) -> list[dict[str, Any]]:
        placements = {
            group: Placement(group[0], group[1], max(0, len(group[0]) - group[1]))
            for group in tally.groups
        }
        rows = []
        for exposure in survival(placements, self.profiles):
            lost_sites = set(exposure.sites)
            gone = set(exposure.unreadable)
            lost = [ref for group in exposure.unreadable for ref in tally.groups[group]]
            degraded = sum(
                len(refs)
                for group, refs in tally.groups.items()
                if group not in gone and lost_sites.intersection(group[0])
            )
            rows.append(
                {
                    "dimension": exposure.dimension,
                    "value": exposure.value,
                    "sites": list(exposure.sites),
                    "readable": not lost,
                    "unreadable": len(lost),
                    "degraded": degraded,
                    "lost_versions": [ref.as_dict() for ref in _sorted(lost)[:MAX_LISTED]],
                }
            )
        return rows

    def _exposure(self, tally: _Tally) -> dict[str, Any]:
        providers: dict[str, _Provider] = {}
        laws: dict[str, list[SiteProfile]] = {}
        for profile in sorted(self.profiles, key=lambda p: p.name):
            for law in profile.laws:
                laws.setdefault(law, []).append(profile)
            row = providers.setdefault(profile.provider, _Provider())
            row.laws.update(profile.laws)
            row.countries.add(profile.country)
            row.sites.append(profile.name)
            row.shard_files += tally.shards_by_site[profile.name]
            row.bytes += tally.bytes_by_site[profile.name]
        law_rows = []
        failing = []
        for law, members in sorted(laws.items()):
            names = {p.name for p in members}
            most = 0
            reached: list[VersionRef] = []
            for (sites, k), refs in tally.groups.items():
                held = sum(1 for site in sites if site in names)
                most = max(most, held)
                if held >= k:
                    reached += refs
            foreign = law not in self.home_laws
            if foreign and reached:
                failing.append(law)
            law_rows.append(
                {
                    "law": law,
                    "foreign": foreign,
                    "sites": sorted(names),
                    "providers": sorted({p.provider for p in members}),
                    "shard_files": sum(tally.shards_by_site[name] for name in names),
                    "most_shards_of_a_version": most,
                    "versions_with_k_shards": len(reached),
                    "versions": [ref.as_dict() for ref in _sorted(reached)[:MAX_LISTED]],
                }
            )
        home = ", ".join(self.home_laws)
        statement = (
            f"no single foreign jurisdiction (any law but {home}) holds k shards of any version"
        )
        return {
            "providers": [providers[name].as_dict(name) for name in sorted(providers)],
            "laws": law_rows,
            "proof": {"statement": statement, "holds": not failing, "failing_laws": failing},
        }


def _sorted(refs: list[VersionRef]) -> list[VersionRef]:
    return sorted(refs, key=lambda ref: (ref.bucket, ref.key, ref.version))
