"""The one place where engine (domain) errors, and the errors of the layers every front door
shares (auth, web), become S3 errors."""

from __future__ import annotations

from egide.domain import (
    BucketExists,
    BucketNotEmpty,
    BucketNotFound,
    CurrentIsDeleteMarker,
    DeleteMarkerHit,
    DomainError,
    InvalidPart,
    InvalidVersionId,
    KeyNotFound,
    NoSuchUpload,
    NoSuchVersion,
    ObjectLocked,
    ObjectLockNotEnabled,
    ObjectVersion,
    PreconditionFailed,
    QuotaExceeded,
    ShardsUnavailable,
    SitesUnavailable,
)
from egide.engine.multipart import MIN_PART_SIZE, InvalidPartOrder, PartTooSmall
from egide.s3 import errors
from egide.s3.http import http_date
from egide.s3.router import Route
from egide.web.errors import HttpError


def from_http_error(exc: HttpError) -> errors.S3Error:
    """An auth or web error as the S3 error of the same code, status, message and fields."""
    cls = errors.BY_CODE.get(exc.code)
    if cls is None or cls.status != exc.status:
        cls = type(exc.code, (errors.S3Error,), {"code": exc.code, "status": exc.status})
    return cls(exc.message, **exc.fields)


def to_s3_error(exc: DomainError, target: Route | None) -> errors.S3Error:
    """The one place where engine errors become S3 errors."""
    bucket_name = target.bucket if target and target.bucket else ""
    if isinstance(exc, BucketNotFound):
        return errors.NoSuchBucket(BucketName=bucket_name)
    if isinstance(exc, BucketNotEmpty):
        return errors.BucketNotEmpty(BucketName=bucket_name)
    if isinstance(exc, BucketExists):
        return errors.BucketAlreadyOwnedByYou(BucketName=bucket_name)
    key = target.key if target and target.key else ""
    if isinstance(exc, CurrentIsDeleteMarker):
        error = errors.NoSuchKey(Key=key)
        error.headers = _marker_headers(exc.marker)
        return error
    if isinstance(exc, DeleteMarkerHit):
        error = errors.MethodNotAllowed(Method="GET", ResourceType="DeleteMarker")
        error.headers = _marker_headers(exc.marker)
        return error
    if isinstance(exc, KeyNotFound):
        return errors.NoSuchKey(Key=key)
    if isinstance(exc, NoSuchVersion):
        return errors.NoSuchVersion(Key=key)
    if isinstance(exc, InvalidVersionId):
        return errors.InvalidArgument(
            "Invalid version id specified", ArgumentName="versionId", ArgumentValue=str(exc)
        )
    if isinstance(exc, ObjectLocked):
        return errors.AccessDenied(f"Access Denied because object protected by object lock: {exc}.")
    if isinstance(exc, ObjectLockNotEnabled):
        return errors.InvalidRequest(str(exc))
    if isinstance(exc, PreconditionFailed):
        return errors.PreconditionFailed(Condition="If-Match" if "If-Match" in str(exc)
                                         else "If-None-Match")  # fmt: skip
    if isinstance(exc, QuotaExceeded):
        return errors.QuotaExceeded(str(exc))
    if isinstance(exc, NoSuchUpload):
        return errors.NoSuchUpload()
    if isinstance(exc, InvalidPart):
        return errors.InvalidPart(str(exc) + ".")
    if isinstance(exc, InvalidPartOrder):
        return errors.InvalidPartOrder()
    if isinstance(exc, PartTooSmall):
        return errors.EntityTooSmall(
            "Your proposed upload is smaller than the minimum allowed object size: "
            f"{exc}.", ProposedSize=str(exc.size), MinSizeAllowed=str(MIN_PART_SIZE),
            PartNumber=str(exc.number),
        )  # fmt: skip
    if isinstance(exc, ShardsUnavailable | SitesUnavailable):
        return errors.ServiceUnavailable(str(exc))
    return errors.S3Error()


def _marker_headers(marker: ObjectVersion) -> dict[str, str]:
    return {
        "x-amz-delete-marker": "true",
        "x-amz-version-id": marker.s3_version_id,
        "last-modified": http_date(marker.last_modified),
    }
