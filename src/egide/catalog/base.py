"""The catalog interface, whole: the protocols by concern that every backend implements.

Code that needs one concern takes that protocol (`BucketCatalog`, `JobCatalog` …); code that
needs several takes `Catalog`. The rules every backend applies the same way (Object Lock,
conditional writes, null versions, which files are still referenced) are in `catalog.rules`.
"""

from __future__ import annotations

from typing import Protocol

from egide.catalog.backup import CatalogBackup
from egide.catalog.buckets import BucketCatalog
from egide.catalog.garbage import (
    GarbageCatalog,
    ShreddedBucket,
    ShreddingCatalog,
    ShredSummary,
    TrashedShard,
)
from egide.catalog.identities import (
    AccessKeyCatalog,
    Identities,
    IdentityPolicyCatalog,
    KeyHolder,
    UserCatalog,
)
from egide.catalog.inventory import FindingsCatalog, InventoryCatalog, RecordedReport
from egide.catalog.jobs import JobCatalog
from egide.catalog.keys import CredentialCatalog, KeyRotationCatalog
from egide.catalog.rights import RightsCatalog
from egide.catalog.roles import RoleCatalog
from egide.catalog.tables import TableCatalog
from egide.catalog.uploads import UploadCatalog
from egide.catalog.versions import VersionCatalog

__all__ = [
    "AccessKeyCatalog",
    "BucketCatalog",
    "Catalog",
    "CatalogBackup",
    "CredentialCatalog",
    "FindingsCatalog",
    "GarbageCatalog",
    "Identities",
    "IdentityPolicyCatalog",
    "InventoryCatalog",
    "JobCatalog",
    "KeyHolder",
    "KeyRotationCatalog",
    "RecordedReport",
    "RightsCatalog",
    "RoleCatalog",
    "ShredSummary",
    "ShreddedBucket",
    "ShreddingCatalog",
    "TableCatalog",
    "TrashedShard",
    "UploadCatalog",
    "UserCatalog",
    "VersionCatalog",
]


class Catalog(
    BucketCatalog,
    VersionCatalog,
    UploadCatalog,
    CredentialCatalog,
    UserCatalog,
    AccessKeyCatalog,
    IdentityPolicyCatalog,
    RoleCatalog,
    RightsCatalog,
    TableCatalog,
    KeyRotationCatalog,
    JobCatalog,
    GarbageCatalog,
    ShreddingCatalog,
    InventoryCatalog,
    FindingsCatalog,
    CatalogBackup,
    Protocol,
):
    async def close(self) -> None: ...
