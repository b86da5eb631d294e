"""GetObjectAttributes: what HeadObject and ListParts would say of a version, in one document.

Everything comes from the version's catalog record (ETag, size, the checksum kept with it, its
parts with their sizes and checksums): no object data is read. Parts are listed for every
multipart object, with or without checksums, as ceph/s3-tests expects (AWS lists them only
for an upload made with checksums, and otherwise answers the part count alone).
"""

from __future__ import annotations

from egide.domain import ObjectVersion
from egide.engine.multipart import ALGORITHM_HEADER, COMPOSITE, FULL_OBJECT, MAX_PARTS, TYPE_HEADER
from egide.engine.store import ObjectStore
from egide.s3 import encryption, errors
from egide.s3.get import check_conditions
from egide.s3.http import Request, Response, http_date
from egide.s3.multipart import checksum_elements
from egide.s3.xml import document, element
from egide.web.request import RequestHead

HEADER = "x-amz-object-attributes"
#: The attributes a request may name, in the order S3 answers them.
ATTRIBUTES = ("ETag", "Checksum", "ObjectParts", "StorageClass", "ObjectSize")
MAX_PARTS_PER_ANSWER = 1000


def requested_attributes(head: RequestHead) -> frozenset[str]:
    """The names in x-amz-object-attributes (comma-separated, spaces allowed); none, or one
    S3 does not know, is InvalidArgument as S3 answers it."""
    value = head.header(HEADER) or ""
    names = frozenset(name.strip() for name in value.split(",") if name.strip())
    if not names or not names <= set(ATTRIBUTES):
        raise errors.InvalidArgument(
            "Invalid attribute name specified.", ArgumentName=HEADER, ArgumentValue=value
        )
    return names


def _count(head: RequestHead, name: str, default: int, limit: int) -> int:
    value = head.header(name)
    if value is None:
        return default
    if not value.strip().isdigit():
        raise errors.InvalidArgument(
            f"Provided {name} not an integer or within integer range",
            ArgumentName=name, ArgumentValue=value,
        )  # fmt: skip
    return min(int(value), limit)


def checksum_xml(version: ObjectVersion) -> str:
    """The object's own checksum (full-object, or composite of its parts') and its type;
    nothing when it was stored without one."""
    values = {
        name: value
        for name, value in version.headers.items()
        if name.startswith("x-amz-checksum-") and name not in (TYPE_HEADER, ALGORITHM_HEADER)
    }
    if not values:
        return ""
    # Versions written before the type was kept: a single PUT's checksum is of the whole body,
    # a multipart one COMPOSITE but for CRC64NVME, which has only the full-object form.
    full = not version.parts or "x-amz-checksum-crc64nvme" in values
    default = FULL_OBJECT if full else COMPOSITE
    kind = version.headers.get(TYPE_HEADER, default)
    return f"<Checksum>{checksum_elements(values)}{element('ChecksumType', kind)}</Checksum>"


def parts_xml(version: ObjectVersion, marker: int, max_parts: int) -> str:
    """ObjectParts of a multipart version: the parts after `marker`, at most `max_parts`;
    nothing for an object uploaded in one piece."""
    if not version.parts:
        return ""
    after = [p for p in version.parts if p.number > marker]
    page = after[:max_parts]
    truncated = len(after) > len(page)
    entries = "".join(
        f"<Part>{checksum_elements(p.checksums)}{element('PartNumber', p.number)}"
        f"{element('Size', p.size)}</Part>"
        for p in page
    )
    return (
        "<ObjectParts>" + element("IsTruncated", truncated) + element("MaxParts", max_parts)
        + element("NextPartNumberMarker", page[-1].number if page else marker)
        + element("PartNumberMarker", marker) + entries
        + element("PartsCount", len(version.parts)) + "</ObjectParts>"
    )  # fmt: skip


def attributes_document(
    version: ObjectVersion, names: frozenset[str], marker: int = 0, max_parts: int = 1000
) -> bytes:
    inner = ""
    if "ETag" in names:
        inner += element("ETag", version.etag)
    if "Checksum" in names:
        inner += checksum_xml(version)
    if "ObjectParts" in names:
        inner += parts_xml(version, marker, max_parts)
    if "StorageClass" in names:
        inner += element("StorageClass", "STANDARD")
    if "ObjectSize" in names:
        inner += element("ObjectSize", version.size)
    return document("GetObjectAttributesResponse", inner)


async def handle_get_object_attributes(req: Request, store: ObjectStore) -> Response:
    assert req.bucket is not None and req.key is not None
    head = req.head
    names = requested_attributes(head)
    max_parts = _count(head, "x-amz-max-parts", MAX_PARTS_PER_ANSWER, MAX_PARTS_PER_ANSWER)
    marker = _count(head, "x-amz-part-number-marker", 0, MAX_PARTS)
    # As GET: no encryption can be chosen here, and a version stored under a customer key
    # (SSE-C) answers only to that key (decision 0027).
    encryption.refuse_write_encryption(head)
    key = encryption.customer_key(head)
    version = await store.head_object(req.bucket, req.key, head.query_value("versionId"))
    encryption.check_customer_key(key, version.headers)
    headers = {"last-modified": http_date(version.last_modified)}
    if not version.is_null:
        headers["x-amz-version-id"] = version.s3_version_id
    status = check_conditions(head, version)
    if status == 412:
        raise errors.PreconditionFailed(Condition="If-Match or If-Unmodified-Since")
    if status == 304:
        return Response(304, {"etag": f'"{version.etag}"', **headers})
    body = attributes_document(version, names, marker, max_parts)
    return Response(200, {"content-type": "application/xml", **headers}, body)
