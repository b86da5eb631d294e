"""The SQLite catalog: WAL, synchronous=FULL, versioned migrations, one writer thread.

Every call runs on a single dedicated thread holding the one connection, so the event loop never
blocks on SQLite and transactions never interleave.

One module per concern of the catalog's interface (`buckets`, `versions`, `uploads`, `keys`,
`identities`, `roles`, `rights`, `tables` (Iceberg), `jobs`, `garbage`, `inventory`, and
recovery's `backup`), each a mixin over the connection (`connection`); the schema is `schema`,
rows ⇄ values `rows`, the writes several concerns share `changes`.
"""

from __future__ import annotations

from egide.catalog.rules import prefix_end
from egide.catalog.sqlite.backup import SQLiteBackup
from egide.catalog.sqlite.buckets import SQLiteBuckets
from egide.catalog.sqlite.garbage import SQLiteGarbage
from egide.catalog.sqlite.identities import SQLiteIdentities
from egide.catalog.sqlite.inventory import SQLiteInventory
from egide.catalog.sqlite.jobs import SQLiteJobs
from egide.catalog.sqlite.keys import SQLiteKeys
from egide.catalog.sqlite.rights import SQLiteRights
from egide.catalog.sqlite.roles import SQLiteRoles
from egide.catalog.sqlite.schema import MIGRATIONS
from egide.catalog.sqlite.tables import SQLiteTables
from egide.catalog.sqlite.uploads import SQLiteUploads
from egide.catalog.sqlite.versions import SQLiteVersions

__all__ = ["MIGRATIONS", "SQLiteCatalog", "prefix_end"]


class SQLiteCatalog(
    SQLiteBuckets,
    SQLiteVersions,
    SQLiteUploads,
    SQLiteKeys,
    SQLiteIdentities,
    SQLiteRoles,
    SQLiteRights,
    SQLiteTables,
    SQLiteJobs,
    SQLiteGarbage,
    SQLiteInventory,
    SQLiteBackup,
):
    """Writes go through one thread and are group-committed: every version waiting while a
    transaction runs is committed in the next one, so many PUTs share one fsync. Point reads
    use a read-only connection on the caller's thread: an indexed lookup in WAL mode takes
    microseconds, less than a hand-off to a thread."""
