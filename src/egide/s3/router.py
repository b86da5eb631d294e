"""Method + path + query → an Endpoint, before anything else runs (the shape of Garage's router).

Routing is data: an unknown combination becomes NotImplemented in one place instead of
falling through to a wrong success.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from egide.s3.errors import MethodNotAllowed, NotImplementedOperation
from egide.s3.request import RequestHead


class Endpoint(Enum):
    LIST_BUCKETS = "ListBuckets"
    CREATE_BUCKET = "CreateBucket"
    HEAD_BUCKET = "HeadBucket"
    DELETE_BUCKET = "DeleteBucket"
    GET_BUCKET_LOCATION = "GetBucketLocation"
    LIST_OBJECTS = "ListObjects"
    LIST_OBJECTS_V2 = "ListObjectsV2"
    PUT_OBJECT = "PutObject"
    GET_OBJECT = "GetObject"
    HEAD_OBJECT = "HeadObject"
    DELETE_OBJECT = "DeleteObject"


@dataclass(frozen=True)
class Route:
    endpoint: Endpoint
    bucket: str | None
    key: str | None


# Query parameters that select another operation (a "subresource"); any of them that is not
# routed below is an operation Égide does not implement.
_SUBRESOURCES = frozenset(
    {
        "accelerate", "acl", "analytics", "attributes", "cors", "delete", "encryption",
        "intelligent-tiering", "inventory", "legal-hold", "lifecycle", "location", "logging",
        "metrics", "notification", "object-lock", "ownershipControls", "partNumber", "policy",
        "policyStatus", "publicAccessBlock", "replication", "requestPayment", "restore",
        "retention", "select", "session", "tagging", "torrent", "uploadId", "uploads",
        "versionId", "versioning", "versions", "website",
    }
)  # fmt: skip


def split_path(path: str) -> tuple[str | None, str | None]:
    """Path-style addressing: /bucket/key → (bucket, key)."""
    stripped = path.lstrip("/")
    if not stripped:
        return None, None
    bucket, _, key = stripped.partition("/")
    return bucket, key or None


def route(head: RequestHead) -> Route:
    bucket, key = split_path(head.path)
    method = head.method
    sub = sorted({name for name, _ in head.query} & _SUBRESOURCES)
    endpoint: Endpoint | None = None
    if bucket is None:
        if method == "GET" and not sub:
            endpoint = Endpoint.LIST_BUCKETS
    elif key is None:
        if sub == ["location"] and method == "GET":
            endpoint = Endpoint.GET_BUCKET_LOCATION
        elif not sub:
            endpoint = {
                "PUT": Endpoint.CREATE_BUCKET,
                "HEAD": Endpoint.HEAD_BUCKET,
                "DELETE": Endpoint.DELETE_BUCKET,
                "GET": (
                    Endpoint.LIST_OBJECTS_V2
                    if head.query_value("list-type") == "2"
                    else Endpoint.LIST_OBJECTS
                ),
            }.get(method)
    elif not sub:
        endpoint = {
            "PUT": Endpoint.PUT_OBJECT,
            "GET": Endpoint.GET_OBJECT,
            "HEAD": Endpoint.HEAD_OBJECT,
            "DELETE": Endpoint.DELETE_OBJECT,
        }.get(method)
    if endpoint is None:
        if method not in {"GET", "PUT", "POST", "DELETE", "HEAD"}:
            raise MethodNotAllowed(f"The method {method} is not allowed against this resource.")
        what = f"{method} with ?{'&'.join(sub)}" if sub else method
        raise NotImplementedOperation(f"Égide does not implement {what} on this resource yet.")
    return Route(endpoint, bucket, key)
