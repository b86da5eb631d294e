"""What a query may do with stored objects, on the engine's loop: every object opened, listed
or written is first put to the authorization hook as the caller (s3:GetObject, s3:ListBucket,
s3:PutObject, s3:DeleteObject), exactly as the S3 API would ask it.

Only the engine's services are used (head, ranged reader, listing, put, multipart); never the
catalog or the sites (a contract in pyproject.toml).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime

from egide.auth.authorize import Authorizer, Principal, RequestContext
from egide.auth.errors import AccessDenied
from egide.domain import Bucket, ObjectVersion, Part, Upload
from egide.engine.multipart import CompletedPart
from egide.engine.store import ObjectStore


class QueryAccessDenied(PermissionError):
    """A query touched something its caller may not: the message names the action and object."""


@dataclass(frozen=True)
class Entry:
    """One listed key or common prefix (`version` None)."""

    key: str
    version: ObjectVersion | None = None


def _who(principal: Principal) -> str:
    return principal.user or principal.arn or principal.access_key or "anonymous"


class ObjectAccess:
    """The engine seen by one caller: each method checks the caller's right first."""

    def __init__(
        self,
        store: ObjectStore,
        authorizer: Authorizer,
        principal: Principal,
        context: RequestContext | None = None,
    ) -> None:
        self.store = store
        self.authorizer = authorizer
        self.principal = principal
        self._context = context

    def context(self, **keys: str) -> RequestContext:
        now = datetime.now(UTC)
        base = self._context or RequestContext(request_time=now)
        return replace(base, request_time=now, keys={**base.keys, **keys})

    async def check(
        self, action: str, bucket: str | None, key: str | None = None, **keys: str
    ) -> None:
        """QueryAccessDenied unless the caller may do `action` on the object, the bucket, or
        (bucket None: ListBuckets) `*`, the resources S3's API names."""
        if bucket is None:
            resource, target = "*", "egide://"
        elif key is None:
            resource, target = f"arn:aws:s3:::{bucket}", f"egide://{bucket}"
        else:
            resource, target = f"arn:aws:s3:::{bucket}/{key}", f"egide://{bucket}/{key}"
        try:
            await self.authorizer.authorize(self.principal, action, resource, self.context(**keys))
        except AccessDenied:
            raise QueryAccessDenied(
                f"AccessDenied: {_who(self.principal)} may not {action} on {target}"
            ) from None

    async def head(self, bucket: str, key: str) -> ObjectVersion:
        """The current version of an object (HeadObject asks s3:GetObject, as in S3)."""
        await self.check("s3:GetObject", bucket, key)
        return await self.store.head_object(bucket, key)

    async def read(self, version: ObjectVersion, first: int, last: int) -> bytes:
        """Plaintext bytes first..last of a version got from `head`: only the blocks that
        cover the range are fetched, checked and decrypted."""
        reader = await self.store.reader(version, first, last)
        try:
            return b"".join([chunk async for chunk in reader])
        finally:
            reader.close()

    async def buckets(self) -> list[Bucket]:
        await self.check("s3:ListAllMyBuckets", None)
        return await self.store.list_buckets()

    async def bucket(self, name: str) -> Bucket:
        return await self.store.bucket(name, cached=True)

    async def head_bucket(self, name: str) -> Bucket:
        """The bucket, if the caller may list it (HeadBucket asks s3:ListBucket, as in S3)."""
        await self.check("s3:ListBucket", name)
        return await self.bucket(name)

    async def entries(
        self, bucket: str, prefix: str, delimiter: str = "", limit: int | None = None
    ) -> AsyncIterator[Entry]:
        """Keys (and with a delimiter, common prefixes) under `prefix`, page by page."""
        keys = {"prefix": prefix, **({"delimiter": delimiter} if delimiter else {})}
        await self.check("s3:ListBucket", bucket, **keys)
        after: str | None = None
        after_is_prefix = False
        given = 0
        while True:
            page = await self.store.list_objects(
                bucket, prefix=prefix, delimiter=delimiter, after=after,
                after_is_prefix=after_is_prefix, max_keys=1000,
            )  # fmt: skip
            entries = [Entry(v.key, v) for v in page.objects] + [Entry(p) for p in page.prefixes]
            for entry in sorted(entries, key=lambda e: e.key):
                yield entry
                given += 1
                if limit is not None and given >= limit:
                    return
            if not page.truncated or page.last is None:
                return
            after, after_is_prefix = page.last, page.last_is_prefix

    async def put(self, bucket: str, key: str, data: bytes, content_type: str) -> ObjectVersion:
        await self.check("s3:PutObject", bucket, key)

        async def body() -> AsyncIterator[bytes]:
            yield data

        return await self.store.put_object(
            bucket, key, body(), size=len(data), headers={"content-type": content_type}
        )

    async def create_upload(self, bucket: str, key: str, content_type: str) -> Upload:
        await self.check("s3:PutObject", bucket, key)
        return await self.store.multipart.create(bucket, key, {"content-type": content_type})

    async def upload_part(self, bucket: str, upload: Upload, number: int, data: bytes) -> Part:
        """A part counts against the quotas as it is written, as an S3 UploadPart does."""
        await self.store.quotas.check(await self.bucket(bucket), adding_bytes=len(data),
                                      adding_objects=0)  # fmt: skip

        async def body() -> AsyncIterator[bytes]:
            yield data

        return await self.store.multipart.upload_part(upload, number, body())

    async def complete(self, bucket: str, upload: Upload, parts: list[Part]) -> ObjectVersion:
        await self.store.quotas.check(await self.bucket(bucket), adding_bytes=0, adding_objects=1)
        requested = [CompletedPart(p.number, p.etag, {}) for p in parts]
        return await self.store.multipart.complete(upload, requested)

    async def abort(self, upload: Upload) -> None:
        await self.store.multipart.abort(upload)

    async def delete(self, bucket: str, key: str) -> None:
        await self.check("s3:DeleteObject", bucket, key)
        await self.store.delete_object(bucket, key)
