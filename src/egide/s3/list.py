"""ListObjects (v1) and ListObjectsV2 over the engine's listing."""

from __future__ import annotations

import base64
import binascii
from urllib.parse import quote

from egide.engine.listing import Listing
from egide.engine.store import ObjectStore
from egide.s3 import errors
from egide.s3.controls import OwnerXml, owners_in
from egide.s3.http import Request, Response
from egide.s3.xml import document, element, iso8601
from egide.web.request import RequestHead

MAX_KEYS = 1000


def max_keys_of(head: RequestHead) -> int:
    value = head.query_value("max-keys")
    if value is None:
        return MAX_KEYS
    try:
        parsed = int(value)
    except ValueError as exc:
        raise errors.InvalidArgument(
            "Provided max-keys not an integer or within integer range",
            ArgumentName="max-keys", ArgumentValue=value,
        ) from exc  # fmt: skip
    if parsed < 0:
        raise errors.InvalidArgument(
            "Argument maxKeys must be an integer between 0 and 2147483647",
            ArgumentName="maxKeys", ArgumentValue=value,
        )  # fmt: skip
    return min(parsed, MAX_KEYS)


def url_encoding(head: RequestHead) -> tuple[str, str]:
    """(encoding-type element, 'url' or '') for encoding-type=url."""
    encoding = head.query_value("encoding-type")
    if encoding is None:
        return "", ""
    if encoding != "url":
        raise errors.InvalidArgument(
            "Invalid Encoding Method specified in Request",
            ArgumentName="encoding-type", ArgumentValue=encoding,
        )  # fmt: skip
    return element("EncodingType", "url"), "url"


def encoded(value: str, encoding: str) -> str:
    return quote(value, safe="/") if encoding else value


def _entries(listing: Listing, encoding: str, owner_xml: OwnerXml | None) -> str:
    parts = [
        "<Contents>"
        + element("Key", encoded(v.key, encoding))
        + element("LastModified", iso8601(v.last_modified))
        + element("ETag", f'"{v.etag}"')
        + element("Size", v.size)
        + (f"<Owner>{owner_xml(v.headers)}</Owner>" if owner_xml else "")
        + element("StorageClass", "STANDARD")
        + "</Contents>"
        for v in listing.objects
    ]
    parts.extend(
        f"<CommonPrefixes>{element('Prefix', encoded(p, encoding))}</CommonPrefixes>"
        for p in listing.prefixes
    )
    return "".join(parts)


def _token(listing: Listing) -> str:
    assert listing.last is not None
    marker = ("P" if listing.last_is_prefix else "K") + listing.last
    return base64.urlsafe_b64encode(marker.encode()).decode()


def _untoken(token: str) -> tuple[str, bool]:
    try:
        marker = base64.urlsafe_b64decode(token.encode()).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError) as exc:
        raise errors.InvalidArgument(
            "The continuation token provided is incorrect",
            ArgumentName="continuation-token", ArgumentValue=token,
        ) from exc  # fmt: skip
    if not marker or marker[0] not in "PK":
        raise errors.InvalidArgument(
            "The continuation token provided is incorrect",
            ArgumentName="continuation-token", ArgumentValue=token,
        )  # fmt: skip
    return marker[1:], marker[0] == "P"


async def handle_list_objects_v2(req: Request, store: ObjectStore) -> Response:
    assert req.bucket is not None
    head = req.head
    prefix = head.query_value("prefix") or ""
    delimiter = head.query_value("delimiter") or ""
    max_keys = max_keys_of(head)
    encoding_element, encoding = url_encoding(head)
    token = head.query_value("continuation-token")
    start_after = head.query_value("start-after")
    # An empty token (`continuation-token=`) is no token: the listing starts over and the
    # empty value is echoed back (what ceph/s3-tests' test_bucket_listv2_continuationtoken_empty
    # checks, RGW and Ozone answer; MinIO and moto refuse it with InvalidArgument instead).
    after, after_is_prefix = _untoken(token) if token else (start_after, False)
    listing = await store.list_objects(
        req.bucket, prefix=prefix, delimiter=delimiter, after=after or None,
        after_is_prefix=after_is_prefix, max_keys=max_keys,
    )  # fmt: skip
    inner = (
        element("Name", req.bucket)
        + element("Prefix", encoded(prefix, encoding))
        + (element("Delimiter", encoded(delimiter, encoding)) if delimiter else "")
        + element("MaxKeys", max_keys)
        + encoding_element
        + element("KeyCount", len(listing.objects) + len(listing.prefixes))
        + element("IsTruncated", listing.truncated)
        + (element("ContinuationToken", token) if token is not None else "")
        + (element("NextContinuationToken", _token(listing)) if listing.truncated else "")
        + (element("StartAfter", encoded(start_after, encoding)) if start_after else "")
        + _entries(
            listing,
            encoding,
            await owners_in(req) if head.query_value("fetch-owner") == "true" else None,
        )
    )
    return Response(200, {"content-type": "application/xml"}, document("ListBucketResult", inner))


async def handle_list_objects(req: Request, store: ObjectStore) -> Response:
    assert req.bucket is not None
    head = req.head
    prefix = head.query_value("prefix") or ""
    delimiter = head.query_value("delimiter") or ""
    marker = head.query_value("marker") or ""
    max_keys = max_keys_of(head)
    encoding_element, encoding = url_encoding(head)
    listing = await store.list_objects(
        req.bucket, prefix=prefix, delimiter=delimiter, after=marker or None, max_keys=max_keys
    )
    # NextMarker is returned only with a delimiter; without one the client uses the last key.
    next_marker = (
        element("NextMarker", encoded(listing.last or "", encoding))
        if listing.truncated and delimiter
        else ""
    )
    inner = (
        element("Name", req.bucket)
        + element("Prefix", encoded(prefix, encoding))
        + element("Marker", encoded(marker, encoding))
        + next_marker
        + element("MaxKeys", max_keys)
        + (element("Delimiter", encoded(delimiter, encoding)) if delimiter else "")
        + encoding_element
        + element("IsTruncated", listing.truncated)
        + _entries(listing, encoding, await owners_in(req))
    )
    return Response(200, {"content-type": "application/xml"}, document("ListBucketResult", inner))
