"""DeleteObject: deleting a key that does not exist succeeds, as in S3."""

from __future__ import annotations

from egide.engine.store import ObjectStore
from egide.s3.http import Request, Response


async def handle_delete_object(req: Request, store: ObjectStore) -> Response:
    assert req.bucket is not None and req.key is not None
    await store.delete_object(req.bucket, req.key)
    return Response(204)
