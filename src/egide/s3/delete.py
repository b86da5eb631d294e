"""DeleteObject and DeleteObjects: deleting a key that does not exist succeeds, as in S3.

DeleteObjects asks the Authorizer about each key (s3:DeleteObject, s3:DeleteObjectVersion with
a VersionId), as AWS does: a key the caller may not delete is an AccessDenied entry of the
answer, and the others are deleted.

DeleteObjects: https://docs.aws.amazon.com/AmazonS3/latest/API/API_DeleteObjects.html
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from egide.domain import (
    BucketNotFound,
    DomainError,
    InvalidVersionId,
    ObjectLocked,
    ObjectVersion,
    SitesUnavailable,
)
from egide.engine.store import ObjectStore
from egide.s3 import errors
from egide.s3.body import read_checked_body
from egide.s3.http import Request, Response
from egide.s3.object_lock import bypass_governance
from egide.s3.put import check_key
from egide.s3.translate import to_s3_error
from egide.s3.xml import document, element, parse

log = logging.getLogger("egide.s3")
MAX_DELETE_KEYS = 1000
#: Keys of one DeleteObjects request deleted at once.
DELETE_CONCURRENCY = 16
#: 1000 keys of up to 1024 bytes each, with their markup, fit well within this.
MAX_DELETE_BODY = 4 * 1024 * 1024
#: May the caller delete (bucket, key, version id)? Given by the S3 app, which knows who asks.
KeyAuthorizer = Callable[[str, str, str | None], Awaitable[bool]]


@dataclass(frozen=True)
class _Target:
    key: str
    version_id: str | None


def _deleted_headers(version_id: str | None, removed: ObjectVersion | None) -> dict[str, str]:
    """What S3 says of a deletion: the version removed (or the delete marker added)."""
    headers: dict[str, str] = {}
    if removed is None:
        return headers
    if removed.delete_marker:
        headers["x-amz-delete-marker"] = "true"
    if version_id is not None or removed.delete_marker:
        headers["x-amz-version-id"] = removed.s3_version_id
    return headers


async def handle_delete_object(req: Request, store: ObjectStore) -> Response:
    assert req.bucket is not None and req.key is not None
    version_id = req.head.query_value("versionId")
    removed = await store.delete_object(
        req.bucket, req.key, version_id, bypass_governance=bypass_governance(req)
    )
    return Response(204, _deleted_headers(version_id, removed))


def _parse_request(body: bytes) -> tuple[list[_Target], bool]:
    """The objects to delete and whether the answer is quiet; S3 answers MalformedXML to
    anything outside its schema, including an empty list or more than 1000 keys."""
    root = parse(body)
    if root.tag != "Delete":
        raise errors.MalformedXML()
    quiet = False
    targets: list[_Target] = []
    for child in root:
        if child.tag == "Quiet":
            text = (child.text or "").strip().lower()
            if text not in ("true", "false"):
                raise errors.MalformedXML()
            quiet = text == "true"
        elif child.tag == "Object":
            key = child.find("Key")
            if key is None or not key.text:
                raise errors.MalformedXML()
            version = child.find("VersionId")
            version_id = (version.text or "") if version is not None else None
            targets.append(_Target(key.text, version_id))
        else:
            raise errors.MalformedXML()
    if not targets or len(targets) > MAX_DELETE_KEYS:
        raise errors.MalformedXML()
    return targets, quiet


async def _delete_one(
    store: ObjectStore, bucket: str, target: _Target, bypass: bool
) -> ObjectVersion | None:
    check_key(target.key)
    return await store.delete_object(
        bucket, target.key, target.version_id, bypass_governance=bypass
    )


async def handle_delete_objects(
    req: Request, store: ObjectStore, *, allowed: KeyAuthorizer
) -> Response:
    assert req.bucket is not None
    body = await read_checked_body(req, MAX_DELETE_BODY)
    targets, quiet = _parse_request(body)
    await store.bucket(req.bucket)  # a missing bucket fails the whole request
    bucket, bypass = req.bucket, bypass_governance(req)
    results: list[str] = [""] * len(targets)
    gone: list[BucketNotFound] = []
    limit = asyncio.Semaphore(DELETE_CONCURRENCY)

    async def one(i: int) -> None:
        target = targets[i]
        version = "" if target.version_id is None else element("VersionId", target.version_id)
        if not await allowed(bucket, target.key, target.version_id):
            denied = errors.AccessDenied()
            results[i] = _error(target, version, denied.code, denied.message)
            return
        try:
            removed = await _delete_one(store, bucket, target, bypass)
        except BucketNotFound as exc:
            gone.append(exc)
            return
        except errors.S3Error as exc:
            results[i] = _error(target, version, exc.code, exc.message)
            return
        except (ObjectLocked, InvalidVersionId, SitesUnavailable) as exc:
            error = to_s3_error(exc, None)
            results[i] = _error(target, version, error.code, error.message)
            return
        except DomainError:
            log.exception("DeleteObjects: deleting %r in %s failed", target.key, bucket)
            internal = errors.InternalError()
            results[i] = _error(target, version, internal.code, internal.message)
            return
        if not quiet:
            marker = ""
            if removed is not None and removed.delete_marker:
                marker = element("DeleteMarker", True)
                if target.version_id is None:
                    marker += element("DeleteMarkerVersionId", removed.s3_version_id)
            results[i] = f"<Deleted>{element('Key', target.key)}{version}{marker}</Deleted>"

    async def in_order(indexes: list[int]) -> None:
        async with limit:
            for i in indexes:
                await one(i)

    # Keys are deleted side by side (their catalog commits and marker records are grouped);
    # the entries naming one key stay in request order, as each may act on the last.
    by_key: dict[str, list[int]] = {}
    for i, target in enumerate(targets):
        by_key.setdefault(target.key, []).append(i)
    await asyncio.gather(*(in_order(indexes) for indexes in by_key.values()))
    if gone:
        raise gone[0]
    return Response(
        200, {"content-type": "application/xml"}, document("DeleteResult", "".join(results))
    )


def _error(target: _Target, version: str, code: str, message: str) -> str:
    return (
        f"<Error>{element('Key', target.key)}{version}{element('Code', code)}"
        f"{element('Message', message)}</Error>"
    )
