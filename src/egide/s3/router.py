"""Method + path + query → an Endpoint, before anything else runs (the shape of Garage's router).

Routing is data: an unknown combination becomes NotImplemented in one place instead of
falling through to a wrong success.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import Enum

from egide.s3.addressing import virtual_host_target
from egide.s3.errors import InvalidArgument, MethodNotAllowed, NotImplementedOperation
from egide.web.request import RequestHead


class Endpoint(Enum):
    LIST_BUCKETS = "ListBuckets"
    CREATE_BUCKET = "CreateBucket"
    HEAD_BUCKET = "HeadBucket"
    DELETE_BUCKET = "DeleteBucket"
    GET_BUCKET_LOCATION = "GetBucketLocation"
    GET_BUCKET_VERSIONING = "GetBucketVersioning"
    PUT_BUCKET_VERSIONING = "PutBucketVersioning"
    GET_BUCKET_CORS = "GetBucketCors"
    PUT_BUCKET_CORS = "PutBucketCors"
    DELETE_BUCKET_CORS = "DeleteBucketCors"
    GET_BUCKET_ENCRYPTION = "GetBucketEncryption"
    PUT_BUCKET_ENCRYPTION = "PutBucketEncryption"
    DELETE_BUCKET_ENCRYPTION = "DeleteBucketEncryption"
    GET_BUCKET_TAGGING = "GetBucketTagging"
    PUT_BUCKET_TAGGING = "PutBucketTagging"
    DELETE_BUCKET_TAGGING = "DeleteBucketTagging"
    GET_BUCKET_POLICY = "GetBucketPolicy"
    PUT_BUCKET_POLICY = "PutBucketPolicy"
    DELETE_BUCKET_POLICY = "DeleteBucketPolicy"
    GET_BUCKET_POLICY_STATUS = "GetBucketPolicyStatus"
    GET_BUCKET_LIFECYCLE = "GetBucketLifecycleConfiguration"
    PUT_BUCKET_LIFECYCLE = "PutBucketLifecycleConfiguration"
    DELETE_BUCKET_LIFECYCLE = "DeleteBucketLifecycle"
    GET_OBJECT_LOCK_CONFIGURATION = "GetObjectLockConfiguration"
    PUT_OBJECT_LOCK_CONFIGURATION = "PutObjectLockConfiguration"
    LIST_OBJECTS = "ListObjects"
    LIST_OBJECTS_V2 = "ListObjectsV2"
    LIST_OBJECT_VERSIONS = "ListObjectVersions"
    LIST_MULTIPART_UPLOADS = "ListMultipartUploads"
    DELETE_OBJECTS = "DeleteObjects"
    POST_OBJECT = "PostObject"
    PUT_OBJECT = "PutObject"
    COPY_OBJECT = "CopyObject"
    GET_OBJECT = "GetObject"
    HEAD_OBJECT = "HeadObject"
    GET_OBJECT_ATTRIBUTES = "GetObjectAttributes"
    GET_OBJECT_TORRENT = "GetObjectTorrent"
    SELECT_OBJECT_CONTENT = "SelectObjectContent"
    DELETE_OBJECT = "DeleteObject"
    GET_OBJECT_TAGGING = "GetObjectTagging"
    PUT_OBJECT_TAGGING = "PutObjectTagging"
    DELETE_OBJECT_TAGGING = "DeleteObjectTagging"
    GET_OBJECT_RETENTION = "GetObjectRetention"
    PUT_OBJECT_RETENTION = "PutObjectRetention"
    GET_OBJECT_LEGAL_HOLD = "GetObjectLegalHold"
    PUT_OBJECT_LEGAL_HOLD = "PutObjectLegalHold"
    CREATE_MULTIPART_UPLOAD = "CreateMultipartUpload"
    UPLOAD_PART = "UploadPart"
    UPLOAD_PART_COPY = "UploadPartCopy"
    COMPLETE_MULTIPART_UPLOAD = "CompleteMultipartUpload"
    ABORT_MULTIPART_UPLOAD = "AbortMultipartUpload"
    LIST_PARTS = "ListParts"
    GET_BUCKET_ACL = "GetBucketAcl"
    PUT_BUCKET_ACL = "PutBucketAcl"
    GET_OBJECT_ACL = "GetObjectAcl"
    PUT_OBJECT_ACL = "PutObjectAcl"
    GET_OWNERSHIP_CONTROLS = "GetBucketOwnershipControls"
    PUT_OWNERSHIP_CONTROLS = "PutBucketOwnershipControls"
    DELETE_OWNERSHIP_CONTROLS = "DeleteBucketOwnershipControls"
    GET_PUBLIC_ACCESS_BLOCK = "GetPublicAccessBlock"
    PUT_PUBLIC_ACCESS_BLOCK = "PutPublicAccessBlock"
    DELETE_PUBLIC_ACCESS_BLOCK = "DeletePublicAccessBlock"
    #: A CORS preflight (OPTIONS): answered from the bucket's rules, without a signature.
    PREFLIGHT = "Preflight"


@dataclass(frozen=True)
class Route:
    endpoint: Endpoint
    bucket: str | None
    key: str | None


# Query parameters that select another operation (a "subresource"); any of them that is not
# routed below is an operation Égide does not implement. versionId and partNumber only modify
# GET/HEAD/DELETE/PUT of an object, so they are not in this set.
_SUBRESOURCES = frozenset(
    {
        "accelerate", "acl", "analytics", "attributes", "cors", "delete", "encryption",
        "intelligent-tiering", "inventory", "legal-hold", "lifecycle", "location", "logging",
        "metrics", "notification", "object-lock", "ownershipControls", "policy",
        "policyStatus", "publicAccessBlock", "replication", "requestPayment", "restore",
        "retention", "select", "session", "tagging", "torrent", "uploadId", "uploads",
        "versioning", "versions", "website",
    }
)  # fmt: skip

#: Query parameters that only modify an operation. Any other parameter may name an operation
#: S3 added later (?renameObject, ?metadataTable …): answered 501, never taken for the plain
#: operation on the same path, which could delete or overwrite data.
_MODIFIERS = frozenset(
    {
        "bucket-region", "continuation-token", "delimiter", "encoding-type", "fetch-owner",
        "key-marker", "list-type", "marker", "max-buckets", "max-keys", "max-parts",
        "max-uploads", "part-number-marker", "partNumber", "prefix", "select-type", "start-after",
        "upload-id-marker", "version-id-marker", "versionId", "x-id",
        # Signature V2 query authentication: refused by the signature check, with its reason.
        "AWSAccessKeyId", "Expires", "Signature",
    }
)  # fmt: skip


def _unknown_parameters(head: RequestHead) -> list[str]:
    return sorted(
        {
            name
            for name, _ in head.query
            if name not in _SUBRESOURCES
            and name not in _MODIFIERS
            and not name.lower().startswith(("x-amz-", "response-"))
        }
    )


#: (bucket, key, method, subresources) → endpoint; "copy" marks a PUT with x-amz-copy-source.
_BUCKET, _OBJECT = "bucket", "object"
_TABLE: dict[tuple[str, str, tuple[str, ...]], Endpoint] = {
    (_BUCKET, "PUT", ()): Endpoint.CREATE_BUCKET,
    (_BUCKET, "HEAD", ()): Endpoint.HEAD_BUCKET,
    (_BUCKET, "DELETE", ()): Endpoint.DELETE_BUCKET,
    (_BUCKET, "GET", ()): Endpoint.LIST_OBJECTS,
    (_BUCKET, "POST", ()): Endpoint.POST_OBJECT,
    (_BUCKET, "OPTIONS", ()): Endpoint.PREFLIGHT,
    (_BUCKET, "GET", ("location",)): Endpoint.GET_BUCKET_LOCATION,
    (_BUCKET, "GET", ("versioning",)): Endpoint.GET_BUCKET_VERSIONING,
    (_BUCKET, "PUT", ("versioning",)): Endpoint.PUT_BUCKET_VERSIONING,
    (_BUCKET, "GET", ("cors",)): Endpoint.GET_BUCKET_CORS,
    (_BUCKET, "PUT", ("cors",)): Endpoint.PUT_BUCKET_CORS,
    (_BUCKET, "DELETE", ("cors",)): Endpoint.DELETE_BUCKET_CORS,
    (_BUCKET, "GET", ("encryption",)): Endpoint.GET_BUCKET_ENCRYPTION,
    (_BUCKET, "PUT", ("encryption",)): Endpoint.PUT_BUCKET_ENCRYPTION,
    (_BUCKET, "DELETE", ("encryption",)): Endpoint.DELETE_BUCKET_ENCRYPTION,
    (_BUCKET, "GET", ("tagging",)): Endpoint.GET_BUCKET_TAGGING,
    (_BUCKET, "PUT", ("tagging",)): Endpoint.PUT_BUCKET_TAGGING,
    (_BUCKET, "DELETE", ("tagging",)): Endpoint.DELETE_BUCKET_TAGGING,
    (_BUCKET, "GET", ("policy",)): Endpoint.GET_BUCKET_POLICY,
    (_BUCKET, "PUT", ("policy",)): Endpoint.PUT_BUCKET_POLICY,
    (_BUCKET, "DELETE", ("policy",)): Endpoint.DELETE_BUCKET_POLICY,
    (_BUCKET, "GET", ("policyStatus",)): Endpoint.GET_BUCKET_POLICY_STATUS,
    (_BUCKET, "GET", ("lifecycle",)): Endpoint.GET_BUCKET_LIFECYCLE,
    (_BUCKET, "PUT", ("lifecycle",)): Endpoint.PUT_BUCKET_LIFECYCLE,
    (_BUCKET, "DELETE", ("lifecycle",)): Endpoint.DELETE_BUCKET_LIFECYCLE,
    (_BUCKET, "GET", ("object-lock",)): Endpoint.GET_OBJECT_LOCK_CONFIGURATION,
    (_BUCKET, "PUT", ("object-lock",)): Endpoint.PUT_OBJECT_LOCK_CONFIGURATION,
    (_BUCKET, "GET", ("versions",)): Endpoint.LIST_OBJECT_VERSIONS,
    (_BUCKET, "GET", ("uploads",)): Endpoint.LIST_MULTIPART_UPLOADS,
    (_BUCKET, "POST", ("delete",)): Endpoint.DELETE_OBJECTS,
    (_BUCKET, "GET", ("acl",)): Endpoint.GET_BUCKET_ACL,
    (_BUCKET, "PUT", ("acl",)): Endpoint.PUT_BUCKET_ACL,
    (_BUCKET, "GET", ("ownershipControls",)): Endpoint.GET_OWNERSHIP_CONTROLS,
    (_BUCKET, "PUT", ("ownershipControls",)): Endpoint.PUT_OWNERSHIP_CONTROLS,
    (_BUCKET, "DELETE", ("ownershipControls",)): Endpoint.DELETE_OWNERSHIP_CONTROLS,
    (_BUCKET, "GET", ("publicAccessBlock",)): Endpoint.GET_PUBLIC_ACCESS_BLOCK,
    (_BUCKET, "PUT", ("publicAccessBlock",)): Endpoint.PUT_PUBLIC_ACCESS_BLOCK,
    (_BUCKET, "DELETE", ("publicAccessBlock",)): Endpoint.DELETE_PUBLIC_ACCESS_BLOCK,
    (_OBJECT, "GET", ("acl",)): Endpoint.GET_OBJECT_ACL,
    (_OBJECT, "PUT", ("acl",)): Endpoint.PUT_OBJECT_ACL,
    (_OBJECT, "PUT", ()): Endpoint.PUT_OBJECT,
    (_OBJECT, "PUT", ("copy",)): Endpoint.COPY_OBJECT,
    (_OBJECT, "GET", ()): Endpoint.GET_OBJECT,
    (_OBJECT, "HEAD", ()): Endpoint.HEAD_OBJECT,
    (_OBJECT, "GET", ("attributes",)): Endpoint.GET_OBJECT_ATTRIBUTES,
    (_OBJECT, "GET", ("torrent",)): Endpoint.GET_OBJECT_TORRENT,
    (_OBJECT, "POST", ("select",)): Endpoint.SELECT_OBJECT_CONTENT,
    (_OBJECT, "DELETE", ()): Endpoint.DELETE_OBJECT,
    (_OBJECT, "OPTIONS", ()): Endpoint.PREFLIGHT,
    (_OBJECT, "GET", ("tagging",)): Endpoint.GET_OBJECT_TAGGING,
    (_OBJECT, "PUT", ("tagging",)): Endpoint.PUT_OBJECT_TAGGING,
    (_OBJECT, "DELETE", ("tagging",)): Endpoint.DELETE_OBJECT_TAGGING,
    (_OBJECT, "GET", ("retention",)): Endpoint.GET_OBJECT_RETENTION,
    (_OBJECT, "PUT", ("retention",)): Endpoint.PUT_OBJECT_RETENTION,
    (_OBJECT, "GET", ("legal-hold",)): Endpoint.GET_OBJECT_LEGAL_HOLD,
    (_OBJECT, "PUT", ("legal-hold",)): Endpoint.PUT_OBJECT_LEGAL_HOLD,
    (_OBJECT, "POST", ("uploads",)): Endpoint.CREATE_MULTIPART_UPLOAD,
    (_OBJECT, "PUT", ("uploadId",)): Endpoint.UPLOAD_PART,
    (_OBJECT, "PUT", ("copy", "uploadId")): Endpoint.UPLOAD_PART_COPY,
    (_OBJECT, "POST", ("uploadId",)): Endpoint.COMPLETE_MULTIPART_UPLOAD,
    (_OBJECT, "DELETE", ("uploadId",)): Endpoint.ABORT_MULTIPART_UPLOAD,
    (_OBJECT, "GET", ("uploadId",)): Endpoint.LIST_PARTS,
}


#: The operations that act on the version a `versionId` query parameter names.
_TAKES_VERSION_ID = frozenset(
    {
        Endpoint.GET_OBJECT, Endpoint.HEAD_OBJECT, Endpoint.DELETE_OBJECT,
        Endpoint.GET_OBJECT_ATTRIBUTES, Endpoint.GET_OBJECT_ACL, Endpoint.PUT_OBJECT_ACL,
        Endpoint.GET_OBJECT_TAGGING, Endpoint.PUT_OBJECT_TAGGING, Endpoint.DELETE_OBJECT_TAGGING,
        Endpoint.GET_OBJECT_RETENTION, Endpoint.PUT_OBJECT_RETENTION,
        Endpoint.GET_OBJECT_LEGAL_HOLD, Endpoint.PUT_OBJECT_LEGAL_HOLD, Endpoint.PREFLIGHT,
    }
)  # fmt: skip


def split_path(path: str) -> tuple[str | None, str | None]:
    """Path-style addressing: /bucket/key → (bucket, key)."""
    stripped = path.lstrip("/")
    if not stripped:
        return None, None
    bucket, _, key = stripped.partition("/")
    return bucket, key or None


def route(head: RequestHead, domains: Sequence[str] = ()) -> Route:
    """`domains` enable virtual-hosted-style addressing (see addressing.py)."""
    bucket, key = virtual_host_target(head, domains) or split_path(head.path)
    method = head.method
    sub = sorted({name for name, _ in head.query} & _SUBRESOURCES)
    endpoint: Endpoint | None = None
    if unknown := _unknown_parameters(head):
        raise NotImplementedOperation(
            f"Égide does not implement the query parameter {', '.join(unknown)} on {method}."
        )
    if bucket is None:
        if method == "GET" and not sub:
            endpoint = Endpoint.LIST_BUCKETS
    else:
        level = _BUCKET if key is None else _OBJECT
        selector = sub
        if level == _OBJECT and method == "PUT" and head.header("x-amz-copy-source"):
            selector = sorted([*sub, "copy"])
        endpoint = _TABLE.get((level, method, tuple(selector)))
        if endpoint is Endpoint.LIST_OBJECTS and head.query_value("list-type") == "2":
            endpoint = Endpoint.LIST_OBJECTS_V2
    if (
        endpoint is not None
        and endpoint not in _TAKES_VERSION_ID
        and head.query_value("versionId") is not None
    ):
        # Refused rather than ignored: acting on the current version instead of the one named
        # could overwrite or delete the wrong data.
        raise InvalidArgument(
            f"{endpoint.value} does not take a version id.",
            ArgumentName="versionId", ArgumentValue=head.query_value("versionId") or "",
        )  # fmt: skip
    if endpoint is None:
        if method not in {"GET", "PUT", "POST", "DELETE", "HEAD", "OPTIONS"}:
            raise MethodNotAllowed(f"The method {method} is not allowed against this resource.")
        what = f"{method} with ?{'&'.join(sub)}" if sub else method
        raise NotImplementedOperation(f"Égide does not implement {what} on this resource yet.")
    return Route(endpoint, bucket, key)
