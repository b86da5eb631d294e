"""Table metadata as objects of the warehouse bucket, and commits applied with PyIceberg.

A table's metadata is a JSON file `<location>/metadata/<n>-<uuid>.metadata.json` written
through the engine (encrypted, erasure-coded like every object); the catalog keeps which file
is current (`catalog.tables`). A commit reads the current file, checks the requirements and
applies the updates with PyIceberg (`update_table_metadata`), writes the next file, then
swaps the location in the catalog only if it is still the one read: of two writers that
read the same file, exactly one swaps; the other gets CommitConflict and its file is deleted.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator

from pyiceberg.exceptions import CommitFailedException
from pyiceberg.table import CommitTableRequest
from pyiceberg.table.metadata import TableMetadata, TableMetadataUtil
from pyiceberg.table.update import update_table_metadata

from egide.catalog.tables import CommitConflict, Namespace, NoSuchTable, TableSwap
from egide.domain import KeyNotFound
from egide.engine.store import ObjectStore

#: A metadata file larger than this is refused (they are kilobytes to a few megabytes).
MAX_METADATA_BYTES = 64 * 1024 * 1024


def split_location(location: str) -> tuple[str, str]:
    """`s3://bucket/key` → (bucket, key)."""
    for scheme in ("s3://", "s3a://", "s3n://"):
        if location.startswith(scheme):
            bucket, _, key = location[len(scheme) :].partition("/")
            return bucket, key
    raise ValueError(f"not an s3:// location: {location}")


def default_location(warehouse: str, namespace: Namespace, name: str) -> str:
    return f"s3://{warehouse}/{'/'.join(namespace)}/{name}"


def next_metadata_location(metadata: TableMetadata, previous: str | None) -> str:
    number = 0
    if previous is not None:
        head = previous.rsplit("/", 1)[-1].split("-", 1)[0]
        number = int(head) + 1 if head.isdigit() else 0
    return f"{metadata.location.rstrip('/')}/metadata/{number:05d}-{uuid.uuid4()}.metadata.json"


async def _once(data: bytes) -> AsyncIterator[bytes]:
    yield data


class MetadataFiles:
    """Reads and writes metadata files in the warehouse bucket through the engine."""

    def __init__(self, store: ObjectStore) -> None:
        self.store = store

    async def read(self, location: str) -> TableMetadata:
        bucket, key = split_location(location)
        version = await self.store.head_object(bucket, key)
        if version.size > MAX_METADATA_BYTES:
            raise ValueError(f"metadata file {location} is larger than {MAX_METADATA_BYTES}")
        reader = await self.store.reader(version, 0, max(version.size - 1, 0))
        try:
            data = b"".join([chunk async for chunk in reader]) if version.size else b""
        finally:
            reader.close()
        return TableMetadataUtil.parse_raw(data.decode())

    async def write(self, location: str, metadata: TableMetadata) -> None:
        bucket, key = split_location(location)
        data = metadata.model_dump_json(by_alias=True, exclude_none=True).encode()
        await self.store.put_object(
            bucket, key, _once(data), size=len(data), headers={"content-type": "application/json"}
        )

    async def forget(self, location: str) -> None:
        """Delete a file no table points to (a lost commit's)."""
        bucket, key = split_location(location)
        with contextlib.suppress(KeyNotFound):
            await self.store.delete_object(bucket, key)


async def prepare_commit(
    files: MetadataFiles,
    current: str | None,
    request: CommitTableRequest,
) -> tuple[TableSwap, TableMetadata, str]:
    """Check `request`'s requirements against the current metadata, apply its updates and
    write the next file: the swap to make, the new metadata and its location."""
    if current is None:
        raise NoSuchTable(".".join((*request.identifier.namespace.root, request.identifier.name)))
    base = await files.read(current)
    for requirement in request.requirements:
        try:
            requirement.validate(base)
        except CommitFailedException as exc:
            raise CommitConflict(str(exc)) from exc
    updated = update_table_metadata(base, request.updates, metadata_location=current)
    location = next_metadata_location(updated, current)
    await files.write(location, updated)
    namespace = tuple(request.identifier.namespace.root)
    return TableSwap(namespace, request.identifier.name, current, location), updated, location
