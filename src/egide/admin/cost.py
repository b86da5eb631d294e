"""What storage costs a month, per bucket and per site, from the prices in the site profiles;
and what a bucket would cost if its versions were placed again under another policy.

Prices are the profile's `storage_gb_month` (per GiB, 2^30 bytes, as providers bill), times the
bytes each site stores for the bucket: shard headers, pieces and checksums as the block layout
gives them (egide.inspection.scan.ShardFile.estimated_size), so parity is paid for too. Egress and
requests depend on traffic the catalog does not know: their prices are shown as rates.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

from egide.admin.policies import prove_feasible
from egide.catalog.base import Catalog
from egide.coding.blocks import Layout
from egide.coding.shardfile import HEADER_SIZE
from egide.domain import Bucket
from egide.inspection.scan import holdings, stored_versions
from egide.placement import Policy, SiteProfile, solve

GIB = 1 << 30


@dataclass
class Bill:
    """Bytes stored per site, and what they cost a month at each site's price."""

    bytes_by_site: Counter[str] = field(default_factory=Counter)

    def monthly(self, prices: dict[str, SiteProfile]) -> float:
        return sum(
            size / GIB * prices[site].storage_gb_month
            for site, size in self.bytes_by_site.items()
            if site in prices
        )

    def rows(self, prices: dict[str, SiteProfile]) -> list[dict[str, object]]:
        rows: list[dict[str, object]] = []
        for site, size in sorted(self.bytes_by_site.items()):
            profile = prices.get(site)
            price = profile.storage_gb_month if profile else 0.0
            rows.append(
                {
                    "site": site,
                    "provider": profile.provider if profile else None,
                    "bytes": size,
                    "storage_gb_month": price,
                    "monthly": size / GIB * price,
                    "egress_gb": profile.egress_gb if profile else None,
                    "per_1000_requests": profile.per_1000_requests if profile else None,
                }
            )
        return rows

    def as_dict(self, prices: dict[str, SiteProfile]) -> dict[str, object]:
        return {
            "bytes": sum(self.bytes_by_site.values()),
            "monthly": self.monthly(prices),
            "sites": self.rows(prices),
        }


async def current_bills(
    catalog: Catalog, profiles: Sequence[SiteProfile], buckets: Sequence[Bucket]
) -> dict[str, Bill]:
    """Per bucket: the bytes each site stores for it now."""
    held = await holdings(catalog, [p.name for p in profiles], buckets)
    bills = {bucket.name: Bill() for bucket in buckets}
    for site, holding in held.items():
        for bucket_name, size in holding.bytes_by_bucket.items():
            bills[bucket_name].bytes_by_site[site] += size
    return bills


async def proposed_bill(
    catalog: Catalog, profiles: Sequence[SiteProfile], bucket: Bucket, policy: Policy
) -> tuple[Bill, int]:
    """The bytes each site would store for `bucket` if every version of it were placed under
    `policy` (each seeded by its version id, as a write would be), and how many versions.
    Raises PolicyError when no placement meets the policy."""
    prove_feasible(policy, profiles)
    bill = Bill()
    versions = 0
    async for version, _ in stored_versions(catalog, bucket):
        versions += 1
        placement = solve(policy, profiles, seed=version.version_id)
        sizes = [size for _, size in version.laid_out()]  # padding included
        per_shard = sum(
            HEADER_SIZE + Layout(policy.k, policy.m, version.block_size, size).shard_data_size()
            for size in sizes
        )
        for site in placement.sites:
            bill.bytes_by_site[site] += per_shard
    return bill, versions
