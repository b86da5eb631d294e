"""Get/PutBucketVersioning and ListObjectVersions.

https://docs.aws.amazon.com/AmazonS3/latest/userguide/Versioning.html — a bucket is never
versioned, Enabled or Suspended; once enabled it can only be suspended, never unversioned.
"""

from __future__ import annotations

from egide.domain import ObjectVersion
from egide.engine import changes
from egide.engine.store import ObjectStore
from egide.engine.versioning import VERSIONING
from egide.s3 import errors
from egide.s3.body import read_small_body
from egide.s3.controls import OwnerXml, owners_in
from egide.s3.http import Request, Response
from egide.s3.list import encoded, max_keys_of, url_encoding
from egide.s3.xml import document, element, iso8601, parse


async def handle_get_bucket_versioning(req: Request, store: ObjectStore) -> Response:
    assert req.bucket is not None
    status = await store.versioning(req.bucket)
    inner = element("Status", status) if status else ""
    return Response(
        200, {"content-type": "application/xml"}, document("VersioningConfiguration", inner)
    )


async def handle_put_bucket_versioning(req: Request, store: ObjectStore) -> Response:
    assert req.bucket is not None
    root = parse(await read_small_body(req))
    if root.tag != "VersioningConfiguration":
        raise errors.MalformedXML()
    status = root.findtext("Status")
    mfa = root.findtext("MfaDelete")
    if status not in (None, "Enabled", "Suspended") or mfa not in (None, "Enabled", "Disabled"):
        raise errors.MalformedXML()
    if mfa == "Enabled":
        raise errors.NotImplementedOperation("Égide does not implement MFA delete.")
    bucket = await store.bucket(req.bucket)
    if status is None:
        return Response(200)  # nothing to change, as S3 answers
    if status == "Suspended" and await store.bucket_settings.lock_configuration(bucket) is not None:
        raise errors.InvalidBucketState(
            "An Object Lock configuration is present on this bucket, so the versioning "
            "state cannot be changed."
        )
    await changes.put_bucket_setting(store, bucket, VERSIONING, status)
    return Response(200)


def _entry(version: ObjectVersion, latest: bool, encoding: str, owner: OwnerXml) -> str:
    common = (
        element("Key", encoded(version.key, encoding))
        + element("VersionId", version.s3_version_id)
        + element("IsLatest", latest)
        + element("LastModified", iso8601(version.last_modified))
    )
    if version.delete_marker:
        return f"<DeleteMarker>{common}<Owner>{owner(version.headers)}</Owner></DeleteMarker>"
    return (
        f"<Version>{common}"
        + element("ETag", f'"{version.etag}"')
        + element("Size", version.size)
        + f"<Owner>{owner(version.headers)}</Owner>"
        + element("StorageClass", "STANDARD")
        + "</Version>"
    )


async def handle_list_object_versions(req: Request, store: ObjectStore) -> Response:
    assert req.bucket is not None
    head = req.head
    prefix = head.query_value("prefix") or ""
    delimiter = head.query_value("delimiter") or ""
    key_marker = head.query_value("key-marker") or ""
    version_marker = head.query_value("version-id-marker") or ""
    if version_marker and not key_marker:
        raise errors.InvalidArgument(
            "A version-id marker cannot be specified without a key marker.",
            ArgumentName="version-id-marker", ArgumentValue=version_marker,
        )  # fmt: skip
    max_keys = max_keys_of(head)
    encoding_element, encoding = url_encoding(head)
    listing = await store.list_versions(
        req.bucket, prefix=prefix, delimiter=delimiter, key_marker=key_marker or None,
        version_marker=version_marker or None, max_keys=max_keys,
    )  # fmt: skip
    next_markers = ""
    if listing.truncated:
        next_markers = element("NextKeyMarker", encoded(listing.next_key or "", encoding))
        if listing.next_version is not None:
            next_markers += element("NextVersionIdMarker", listing.next_version.s3_version_id)
    owner = await owners_in(req)
    inner = (
        element("Name", req.bucket)
        + element("Prefix", encoded(prefix, encoding))
        + element("KeyMarker", encoded(key_marker, encoding))
        + element("VersionIdMarker", version_marker)
        + next_markers
        + element("MaxKeys", max_keys)
        + (element("Delimiter", encoded(delimiter, encoding)) if delimiter else "")
        + encoding_element
        + element("IsTruncated", listing.truncated)
        + "".join(_entry(v, latest, encoding, owner) for v, latest in listing.versions)
        + "".join(
            f"<CommonPrefixes>{element('Prefix', encoded(p, encoding))}</CommonPrefixes>"
            for p in listing.prefixes
        )
    )
    return Response(200, {"content-type": "application/xml"}, document("ListVersionsResult", inner))
