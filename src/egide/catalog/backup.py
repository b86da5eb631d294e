"""What catalog recovery needs of a catalog backend, in the backend's own terms.

Snapshots, restore and rebuild (egide.recovery) move whole catalogs around as *catalog files*:
one self-contained file per catalog, in the backend's own format, holding all of it (what a
snapshot stores, what a rebuild or a restore writes). A live catalog copies itself into one
(`CatalogBackup`); a catalog opened from one takes recovery's writes (`CatalogRecovery`, its
fix-ups in `CatalogRepair`); and the functions of `egide.catalog` put one in place of the live
catalog (`install_catalog`). Nothing here names a table, a journal or a connection: a second
backend implements these and recovery works on it unchanged.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Protocol, TypeVar

from egide.catalog.identities import Identities
from egide.domain import Bucket, ObjectVersion

T = TypeVar("T")


class CatalogBackup(Protocol):
    """What a live catalog gives a snapshot."""

    async def copy_to(self, target: Path) -> None:
        """Write the whole catalog, as it was at one instant, into the new file `target`,
        while writers go on: the copy is consistent (every transaction in it whole or not at
        all), self-contained (no journal or side file is needed to read it) and opens with
        `egide.catalog.open_catalog_file`. The live catalog is left as it was."""


class CatalogRepair(Protocol):
    """Recovery's writes on a catalog opened from a file (a restored snapshot), all in the one
    transaction `CatalogRecovery.repair` runs; nothing else uses that catalog meanwhile.
    The catalog's own rules (conditional writes, Object Lock, the trash) do not apply: these
    state what the sites showed, which already happened."""

    def uploads_in_progress(self) -> set[bytes]:
        """Ids of the multipart uploads begun and neither completed nor aborted."""

    def delete_marker_ids(self) -> set[bytes]: ...

    def bucket_ids(self) -> set[bytes]: ...

    def add_bucket(self, bucket: Bucket) -> None:
        """A bucket the sites hold and the catalog does not (its current key only)."""

    def append_versions(
        self, bucket_id: bytes, key: str, versions: Sequence[ObjectVersion]
    ) -> None:
        """Add `versions` (oldest first) after the key's others, as newer than all of them;
        which version is the key's current is left to `point_at_newest`."""

    def null_versions(self, bucket_id: bytes, key: str) -> list[bytes]:
        """Ids of the key's null versions (a new null version replaces them)."""

    def drop_versions(self, version_ids: Sequence[bytes]) -> None:
        """Forget these versions wholly (deleted, or replaced, since the snapshot): no key
        points at them any more, and their files are not put in the trash (garbage collection
        finds them unreferenced)."""

    def relocate_versions(
        self, moves: Sequence[tuple[bytes, tuple[str, ...], str | None, int]]
    ) -> None:
        """Each (version id, sites, pack, pack offset): where its pieces are now (a repair or
        an evacuation moved them)."""

    def amend_versions(self, versions: Sequence[ObjectVersion]) -> None:
        """Give these versions (by id) the headers (tags), retention and legal hold of the
        values passed: changes recorded on the sites after the snapshot."""

    def point_at_newest(self, bucket_id: bytes, key: str) -> None:
        """Make the key's newest version its current one (a delete marker too); a key left
        without versions is gone."""

    def forget_uploads(self, upload_ids: Sequence[bytes]) -> None:
        """Uploads completed after the snapshot: their versions were added, the uploads and
        their parts go."""

    def replace_credentials(self, identities: Identities, now: float) -> None:
        """The users, groups, their policies and the access keys (sealed secrets) become
        exactly these, and the account id the recorded one. A record from before users (no
        account id) replaces the keys alone, each keeping the creation time it had (else
        `now`)."""

    def replace_bucket_settings(self, settings: Mapping[bytes, Mapping[str, str]]) -> int:
        """Each present bucket's settings become exactly those given; buckets gone are
        skipped. How many were replaced."""

    def recount_packs(self) -> None:
        """Each pack's count of live versions (and its sites) from the versions now in it;
        packs with none are forgotten (their files are garbage)."""

    def keep_referenced_out_of_trash(self) -> None:
        """Remove from the trash every file a version references again (a piece found on the
        site it had left): it must not be deleted."""

    def forget_sightings(self) -> None:
        """Garbage collection's sightings of unreferenced files are dropped: it looks again
        from scratch."""

    def totals(self) -> tuple[int, int, int, int]:
        """Buckets, versions, their bytes, and keys with a current version."""


class CatalogRecovery(Protocol):
    """A catalog opened from a catalog file (`egide.catalog.open_catalog_file`), being
    rebuilt or restored by a process that alone uses it."""

    async def fill(
        self,
        buckets: Sequence[Bucket],
        keys: Mapping[tuple[bytes, str], Sequence[ObjectVersion]],
        settings: Mapping[bytes, Mapping[str, str]],
        retired: Mapping[bytes, Sequence[bytes]],
        credentials: Identities,
    ) -> None:
        """Fill this new, empty catalog in one transaction: the buckets, each (bucket, key)'s
        versions oldest first (the newest current), each bucket's settings, its retired key
        generations (master-wrapped, newest first) and the identities (users, groups, access
        keys with their sealed secrets, the account id);
        packs counted from the versions in them."""

    async def repair(self, work: Callable[[CatalogRepair], T]) -> T:
        """Run `work` with recovery's writes in one transaction (all of it, or none if it
        raises); `work` runs off the event loop."""

    async def close_as_file(self) -> None:
        """Close, leaving the catalog one self-contained file again (nothing beside it): a
        backend with a journal checkpoints it into the file first."""
