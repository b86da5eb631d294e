"""Each S3 endpoint as the policy action and resource `authorize` is asked about.

Actions follow AWS's "Actions, resources, and condition keys for Amazon S3" and the permission
each API page names (DeleteBucketCors needs s3:PutBucketCORS, HeadBucket s3:ListBucket …):
https://docs.aws.amazon.com/service-authorization/latest/reference/list_amazons3.html
Every Endpoint has one row (a test holds the table to the router's enum).
"""

from __future__ import annotations

from collections.abc import Mapping
from urllib.parse import unquote_plus

from egide.s3.copy import copy_source
from egide.s3.router import Endpoint, Route
from egide.web.request import RequestHead

ACTIONS: dict[Endpoint, str] = {
    Endpoint.LIST_BUCKETS: "s3:ListAllMyBuckets",
    Endpoint.CREATE_BUCKET: "s3:CreateBucket",
    Endpoint.HEAD_BUCKET: "s3:ListBucket",
    Endpoint.DELETE_BUCKET: "s3:DeleteBucket",
    Endpoint.GET_BUCKET_LOCATION: "s3:GetBucketLocation",
    Endpoint.GET_BUCKET_VERSIONING: "s3:GetBucketVersioning",
    Endpoint.PUT_BUCKET_VERSIONING: "s3:PutBucketVersioning",
    Endpoint.GET_BUCKET_CORS: "s3:GetBucketCORS",
    Endpoint.PUT_BUCKET_CORS: "s3:PutBucketCORS",
    Endpoint.DELETE_BUCKET_CORS: "s3:PutBucketCORS",
    Endpoint.GET_BUCKET_ENCRYPTION: "s3:GetEncryptionConfiguration",
    Endpoint.PUT_BUCKET_ENCRYPTION: "s3:PutEncryptionConfiguration",
    Endpoint.DELETE_BUCKET_ENCRYPTION: "s3:PutEncryptionConfiguration",
    Endpoint.GET_BUCKET_TAGGING: "s3:GetBucketTagging",
    Endpoint.PUT_BUCKET_TAGGING: "s3:PutBucketTagging",
    Endpoint.DELETE_BUCKET_TAGGING: "s3:PutBucketTagging",
    Endpoint.GET_BUCKET_POLICY: "s3:GetBucketPolicy",
    Endpoint.PUT_BUCKET_POLICY: "s3:PutBucketPolicy",
    Endpoint.DELETE_BUCKET_POLICY: "s3:DeleteBucketPolicy",
    Endpoint.GET_BUCKET_POLICY_STATUS: "s3:GetBucketPolicyStatus",
    Endpoint.GET_BUCKET_LIFECYCLE: "s3:GetLifecycleConfiguration",
    Endpoint.PUT_BUCKET_LIFECYCLE: "s3:PutLifecycleConfiguration",
    Endpoint.DELETE_BUCKET_LIFECYCLE: "s3:PutLifecycleConfiguration",
    Endpoint.GET_OBJECT_LOCK_CONFIGURATION: "s3:GetBucketObjectLockConfiguration",
    Endpoint.PUT_OBJECT_LOCK_CONFIGURATION: "s3:PutBucketObjectLockConfiguration",
    Endpoint.LIST_OBJECTS: "s3:ListBucket",
    Endpoint.LIST_OBJECTS_V2: "s3:ListBucket",
    Endpoint.LIST_OBJECT_VERSIONS: "s3:ListBucketVersions",
    Endpoint.LIST_MULTIPART_UPLOADS: "s3:ListBucketMultipartUploads",
    # AWS checks s3:DeleteObject (s3:DeleteObjectVersion) for each key listed: delete.py asks
    # once per key (`delete_action`); the request itself is only authenticated.
    Endpoint.DELETE_OBJECTS: "s3:DeleteObject",
    # A form upload is authorized in post.py once its policy's signature is verified.
    Endpoint.POST_OBJECT: "s3:PutObject",
    Endpoint.PUT_OBJECT: "s3:PutObject",
    # A copy also reads its source (`also_asked`).
    Endpoint.COPY_OBJECT: "s3:PutObject",
    Endpoint.GET_OBJECT: "s3:GetObject",
    Endpoint.HEAD_OBJECT: "s3:GetObject",
    # AWS also asks for s3:GetObject (s3:GetObjectVersion with a versionId): `also_asked`.
    Endpoint.GET_OBJECT_ATTRIBUTES: "s3:GetObjectAttributes",
    Endpoint.GET_OBJECT_TORRENT: "s3:GetObjectTorrent",
    Endpoint.SELECT_OBJECT_CONTENT: "s3:GetObject",
    Endpoint.DELETE_OBJECT: "s3:DeleteObject",
    Endpoint.GET_OBJECT_TAGGING: "s3:GetObjectTagging",
    Endpoint.PUT_OBJECT_TAGGING: "s3:PutObjectTagging",
    Endpoint.DELETE_OBJECT_TAGGING: "s3:DeleteObjectTagging",
    Endpoint.GET_OBJECT_RETENTION: "s3:GetObjectRetention",
    Endpoint.PUT_OBJECT_RETENTION: "s3:PutObjectRetention",
    Endpoint.GET_OBJECT_LEGAL_HOLD: "s3:GetObjectLegalHold",
    Endpoint.PUT_OBJECT_LEGAL_HOLD: "s3:PutObjectLegalHold",
    Endpoint.CREATE_MULTIPART_UPLOAD: "s3:PutObject",
    Endpoint.UPLOAD_PART: "s3:PutObject",
    Endpoint.UPLOAD_PART_COPY: "s3:PutObject",
    Endpoint.COMPLETE_MULTIPART_UPLOAD: "s3:PutObject",
    Endpoint.ABORT_MULTIPART_UPLOAD: "s3:AbortMultipartUpload",
    Endpoint.LIST_PARTS: "s3:ListMultipartUploadParts",
    Endpoint.GET_BUCKET_ACL: "s3:GetBucketAcl",
    Endpoint.PUT_BUCKET_ACL: "s3:PutBucketAcl",
    Endpoint.GET_OBJECT_ACL: "s3:GetObjectAcl",
    Endpoint.PUT_OBJECT_ACL: "s3:PutObjectAcl",
    Endpoint.GET_OWNERSHIP_CONTROLS: "s3:GetBucketOwnershipControls",
    Endpoint.PUT_OWNERSHIP_CONTROLS: "s3:PutBucketOwnershipControls",
    Endpoint.DELETE_OWNERSHIP_CONTROLS: "s3:PutBucketOwnershipControls",
    Endpoint.GET_PUBLIC_ACCESS_BLOCK: "s3:GetBucketPublicAccessBlock",
    Endpoint.PUT_PUBLIC_ACCESS_BLOCK: "s3:PutBucketPublicAccessBlock",
    Endpoint.DELETE_PUBLIC_ACCESS_BLOCK: "s3:PutBucketPublicAccessBlock",
    # S3 has no action for a CORS preflight (it is answered from the bucket's CORS rules,
    # unauthenticated): Égide's own name, so that a policy can still refuse it.
    Endpoint.PREFLIGHT: "egide:CorsPreflight",
}

#: With a versionId, these act on one version: AWS asks for the *Version* action.
VERSION_ACTIONS: dict[Endpoint, str] = {
    Endpoint.GET_OBJECT: "s3:GetObjectVersion",
    Endpoint.HEAD_OBJECT: "s3:GetObjectVersion",
    Endpoint.GET_OBJECT_ATTRIBUTES: "s3:GetObjectVersionAttributes",
    Endpoint.DELETE_OBJECT: "s3:DeleteObjectVersion",
    Endpoint.GET_OBJECT_TAGGING: "s3:GetObjectVersionTagging",
    Endpoint.PUT_OBJECT_TAGGING: "s3:PutObjectVersionTagging",
    Endpoint.DELETE_OBJECT_TAGGING: "s3:DeleteObjectVersionTagging",
    Endpoint.GET_OBJECT_ACL: "s3:GetObjectVersionAcl",
    Endpoint.PUT_OBJECT_ACL: "s3:PutObjectVersionAcl",
}


def action(target: Route, head: RequestHead) -> str:
    if head.query_value("versionId") is not None and target.endpoint in VERSION_ACTIONS:
        return VERSION_ACTIONS[target.endpoint]
    return ACTIONS[target.endpoint]


_COPIES = frozenset({Endpoint.COPY_OBJECT, Endpoint.UPLOAD_PART_COPY})


def also_asked(target: Route, head: RequestHead) -> list[tuple[str, str]]:
    """What else AWS asks (action, resource) for the request, all of which must be allowed:
    a copy reads its source (s3:GetObject, s3:GetObjectVersion with a versionId),
    GetObjectAttributes needs s3:GetObject (s3:GetObjectVersion) too."""
    if target.endpoint in _COPIES:
        bucket, key, version_id = copy_source(head)
        return [(_read(version_id), resource(bucket, key))]
    if target.endpoint is Endpoint.GET_OBJECT_ATTRIBUTES:
        return [(_read(head.query_value("versionId")), resource(target.bucket, target.key))]
    return []


def _read(version_id: str | None) -> str:
    return (
        ACTIONS[Endpoint.GET_OBJECT] if version_id is None else VERSION_ACTIONS[Endpoint.GET_OBJECT]
    )


def delete_action(version_id: str | None) -> str:
    """What deleting one key of a DeleteObjects request asks (a VersionId names a version)."""
    return ACTIONS[Endpoint.DELETE_OBJECT] if version_id is None else "s3:DeleteObjectVersion"


def resource(bucket: str | None, key: str | None = None) -> str:
    """The ARN: `arn:aws:s3:::bucket/key`, `arn:aws:s3:::bucket`, or `*` (ListBuckets)."""
    if bucket is None:
        return "*"
    return f"arn:aws:s3:::{bucket}" if key is None else f"arn:aws:s3:::{bucket}/{key}"


_LISTINGS = frozenset(
    {Endpoint.LIST_OBJECTS, Endpoint.LIST_OBJECTS_V2, Endpoint.LIST_OBJECT_VERSIONS}
)
_HEADER_KEYS = {
    "x-amz-acl": "s3:x-amz-acl",
    "x-amz-grant-read": "s3:x-amz-grant-read",
    "x-amz-grant-write": "s3:x-amz-grant-write",
    "x-amz-grant-read-acp": "s3:x-amz-grant-read-acp",
    "x-amz-grant-write-acp": "s3:x-amz-grant-write-acp",
    "x-amz-grant-full-control": "s3:x-amz-grant-full-control",
    "x-amz-server-side-encryption": "s3:x-amz-server-side-encryption",
    "x-amz-server-side-encryption-aws-kms-key-id": "s3:x-amz-server-side-encryption-aws-kms-key-id",
    "x-amz-server-side-encryption-customer-algorithm": (
        "s3:x-amz-server-side-encryption-customer-algorithm"
    ),
    "x-amz-copy-source": "s3:x-amz-copy-source",
    "x-amz-metadata-directive": "s3:x-amz-metadata-directive",
    "x-amz-storage-class": "s3:x-amz-storage-class",
}


#: A request's condition keys: one value, or several (s3:RequestObjectTagKeys).
ConditionKeys = dict[str, str | tuple[str, ...]]


def tag_keys(tags: Mapping[str, str]) -> ConditionKeys:
    """s3:RequestObjectTag/<key> of each tag a write asks for, and s3:RequestObjectTagKeys
    (absent when it asks for none, as AWS)."""
    keys: ConditionKeys = {f"s3:RequestObjectTag/{k}": v for k, v in tags.items()}
    if tags:
        keys["s3:RequestObjectTagKeys"] = tuple(tags)
    return keys


def form_condition_keys(
    fields: Mapping[str, str], tags: Mapping[str, str], signed: bool
) -> ConditionKeys:
    """The condition keys of a form upload (POST): its fields are the headers of a PUT
    (`acl` is x-amz-acl), its `tagging` document (`tags`) the x-amz-tagging header."""
    keys: ConditionKeys = {}
    if signed:
        keys.update({"s3:signatureversion": "AWS4-HMAC-SHA256", "s3:authType": "POST"})
    if "acl" in fields:
        keys["s3:x-amz-acl"] = fields["acl"]
    keys.update({key: fields[h] for h, key in _HEADER_KEYS.items() if h in fields})
    return keys | tag_keys(tags)


def condition_keys(target: Route, head: RequestHead, signed: str | None) -> ConditionKeys:
    """S3's condition keys of a request (s3:prefix …), as AWS fills them: a key the request
    does not carry is absent. `signed`: "header" or "query" for a SigV4 request, None if not."""
    keys: ConditionKeys = {}
    if target.endpoint in _LISTINGS:
        for name in ("prefix", "delimiter", "max-keys"):
            value = head.query_value(name)
            if value is not None:
                keys[f"s3:{name}"] = value
    version = head.query_value("versionId")
    if version is not None:
        keys["s3:VersionId"] = version
    for header, key in _HEADER_KEYS.items():
        value = head.header(header)
        if value is not None:
            keys[key] = value
    tagging = head.header("x-amz-tagging")
    if tagging:
        pairs = (pair.partition("=") for pair in tagging.split("&"))
        keys.update(tag_keys({unquote_plus(n): unquote_plus(v) for n, _, v in pairs}))
    if signed is not None:
        keys["s3:signatureversion"] = "AWS4-HMAC-SHA256"
        keys["s3:authType"] = "REST-QUERY-STRING" if signed == "query" else "REST-HEADER"
    return keys
