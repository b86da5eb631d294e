"""The PostgreSQL catalog (docs/decisions/0034-postgresql-catalog.md): psycopg 3 and its async
pool, READ COMMITTED, row locks and per-key advisory locks where a rule spans rows, a bounded
retry on serialization failures and deadlocks, versioned migrations applied at open under an
advisory lock. Several gateways share one such catalog.

The same shape as the SQLite backend: one mixin per concern of the catalog's interface over
the pool (`connection`), the rights counter `rights` and Iceberg's `tables` among them; the
schema and migrations `schema`, rows ⇄ values `rows`, the writes several concerns share
`changes`, and recovery's `backup` (a copy into a catalog file).
"""

from __future__ import annotations

from egide.catalog.postgres.backup import PostgresBackup
from egide.catalog.postgres.buckets import PostgresBuckets
from egide.catalog.postgres.connection import CatalogUnreachable, redacted
from egide.catalog.postgres.garbage import PostgresGarbage
from egide.catalog.postgres.identities import PostgresIdentities
from egide.catalog.postgres.inventory import PostgresInventory
from egide.catalog.postgres.jobs import PostgresJobs
from egide.catalog.postgres.keys import PostgresKeys
from egide.catalog.postgres.rights import PostgresRights
from egide.catalog.postgres.roles import PostgresRoles
from egide.catalog.postgres.schema import MIGRATIONS, CatalogTooNew
from egide.catalog.postgres.tables import PostgresTables
from egide.catalog.postgres.uploads import PostgresUploads
from egide.catalog.postgres.versions import PostgresVersions

__all__ = [
    "MIGRATIONS",
    "CatalogTooNew",
    "CatalogUnreachable",
    "PostgresCatalog",
    "redacted",
]


class PostgresCatalog(
    PostgresBuckets,
    PostgresVersions,
    PostgresUploads,
    PostgresKeys,
    PostgresIdentities,
    PostgresRoles,
    PostgresRights,
    PostgresTables,
    PostgresJobs,
    PostgresGarbage,
    PostgresInventory,
    PostgresBackup,
):
    """One gateway's view of the shared catalog: every call takes a connection from the pool
    (reads in autocommit, writes in a transaction of their own)."""
