"""The GetObjectAttributesResponse document, element by element, as S3 shapes it."""

from __future__ import annotations

import pytest

from egide.domain import ObjectVersion, Part
from egide.s3.attributes import attributes_document, requested_attributes
from egide.s3.errors import InvalidArgument
from egide.web.request import RequestHead

NS = "http://s3.amazonaws.com/doc/2006-03-01/"
ALL = frozenset({"ETag", "Checksum", "ObjectParts", "StorageClass", "ObjectSize"})


def version(**fields: object) -> ObjectVersion:
    base: dict[str, object] = {
        "bucket_id": b"b", "key": "k", "version_id": b"\x01" * 16, "size": 3, "etag": "ab",
        "last_modified": 0.0, "wrapped_data_key": b"", "k": 1, "m": 0, "block_size": 1,
        "sites": ("s",),
    }  # fmt: skip
    return ObjectVersion(**{**base, **fields})  # type: ignore[arg-type]


def body(document: bytes) -> str:
    text = document.decode()
    prefix = f'<?xml version="1.0" encoding="UTF-8"?>\n<GetObjectAttributesResponse xmlns="{NS}">'
    assert text.startswith(prefix) and text.endswith("</GetObjectAttributesResponse>")
    return text[len(prefix) : -len("</GetObjectAttributesResponse>")]


def test_a_simple_object() -> None:
    plain = version(headers={"content-type": "text/plain"})
    assert body(attributes_document(plain, ALL)) == (
        "<ETag>ab</ETag><StorageClass>STANDARD</StorageClass><ObjectSize>3</ObjectSize>"
    )
    summed = version(
        headers={"x-amz-checksum-crc32": "AAAAAA==", "x-amz-checksum-type": "FULL_OBJECT"}
    )
    assert body(attributes_document(summed, frozenset({"Checksum", "ObjectParts"}))) == (
        "<Checksum><ChecksumCRC32>AAAAAA==</ChecksumCRC32>"
        "<ChecksumType>FULL_OBJECT</ChecksumType></Checksum>"
    )


def test_a_multipart_object_pages_its_parts() -> None:
    parts = tuple(
        Part(number=n, seq=n, size=10 * n, etag="e", checksums={"x-amz-checksum-sha1": f"s{n}"})
        for n in (1, 2, 3)
    )
    multipart = version(
        parts=parts, headers={"x-amz-checksum-sha1": "c-3", "x-amz-checksum-type": "COMPOSITE"}
    )
    page = attributes_document(multipart, frozenset({"ObjectParts"}), marker=1, max_parts=1)
    assert body(page) == (
        "<ObjectParts><IsTruncated>true</IsTruncated><MaxParts>1</MaxParts>"
        "<NextPartNumberMarker>2</NextPartNumberMarker><PartNumberMarker>1</PartNumberMarker>"
        "<Part><ChecksumSHA1>s2</ChecksumSHA1><PartNumber>2</PartNumber><Size>20</Size></Part>"
        "<PartsCount>3</PartsCount></ObjectParts>"
    )
    rest = body(attributes_document(multipart, frozenset({"ObjectParts"}), marker=3))
    assert "<IsTruncated>false</IsTruncated>" in rest and "<Part>" not in rest
    assert "<NextPartNumberMarker>3</NextPartNumberMarker>" in rest
    # A checksum kept before its type was: a multipart one is COMPOSITE.
    older = version(parts=parts, headers={"x-amz-checksum-sha1": "c-3"})
    assert "<ChecksumType>COMPOSITE</ChecksumType>" in body(
        attributes_document(older, frozenset({"Checksum"}))
    )


@pytest.mark.parametrize(
    ("value", "names"),
    [
        ("ETag", {"ETag"}),
        ("ETag,ObjectSize", {"ETag", "ObjectSize"}),
        (" ETag , Checksum ,", {"ETag", "Checksum"}),
    ],
)
def test_requested_attributes(value: str, names: set[str]) -> None:
    head = RequestHead("GET", "/b/k", (("attributes", ""),), {"x-amz-object-attributes": value})
    assert requested_attributes(head) == names


@pytest.mark.parametrize("value", [None, "", " , ", "ETag,Size", "etag"])
def test_unknown_or_missing_attributes(value: str | None) -> None:
    headers = {} if value is None else {"x-amz-object-attributes": value}
    with pytest.raises(InvalidArgument, match="Invalid attribute name specified"):
        requested_attributes(RequestHead("GET", "/b/k", (("attributes", ""),), headers))
