"""What the records beside the shards and the multipart uploads need of a store: its catalog,
its sites (and which of them take new data), its buckets with their keys, and the placement of
new data.

The store builds one (`ObjectStore.vault`) and hands it to the record modules (markers,
amendments, settings and credentials records, completion records) and to its `Multipart`,
which therefore never import the store: the engine's modules depend on each other one way only
(the import-linter contracts in pyproject.toml).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from egide.catalog.base import Catalog
from egide.domain import Bucket
from egide.engine.buckets import Buckets
from egide.engine.placing import Placer
from egide.sites.base import Site


@dataclass(eq=False)
class Vault:
    """One store's shared parts (not the store: nothing here imports it)."""

    catalog: Catalog
    #: Every configured site by name.
    sites: Mapping[str, Site]
    buckets: Buckets
    #: Which sites are retired (being emptied) and, through its health, which are down.
    placer: Placer
    #: Digest of the credentials this process last recorded on the sites
    #: (egide.engine.credentialrecords).
    recorded_credentials: str | None = field(default=None)

    async def writable_sites(self) -> dict[str, Site]:
        """The sites a new record goes to: neither retired nor down."""
        skip = set(await self.placer.retired()) | set(self.placer.health.unavailable())
        return {name: site for name, site in self.sites.items() if name not in skip}

    async def pads(self, bucket: Bucket) -> bool:
        """Whether new data of `bucket` is padded to size classes (its policy's `padding`)."""
        return (await self.placer.policy(bucket)).padding
