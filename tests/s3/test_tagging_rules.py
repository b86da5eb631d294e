"""Tag sets: limits, the x-amz-tagging header and the stored form (src/egide/s3/tagging.py)."""

from __future__ import annotations

import pytest

from egide.s3 import errors
from egide.s3.tagging import (
    MAX_BUCKET_TAGS,
    MAX_OBJECT_TAGS,
    check_tags,
    decode_tags,
    encode_tags,
    parse_tagging,
    render_tagging,
    stored_tagging,
    tag_count,
    with_tags,
)
from egide.web.request import RequestHead


def header(value: str) -> RequestHead:
    return RequestHead("PUT", "/b/k", headers={"x-amz-tagging": value})


def test_limits_are_inclusive() -> None:
    check_tags([("k" * 128, "v" * 256)], MAX_OBJECT_TAGS)
    check_tags([(f"k{i}", "") for i in range(10)], MAX_OBJECT_TAGS)
    check_tags([(f"k{i}", "") for i in range(50)], MAX_BUCKET_TAGS)
    # S3 counts UTF-16 code units: 64 letters outside the BMP are 128 units.
    check_tags([("𠀀" * 64, "𠀀" * 128)], MAX_OBJECT_TAGS)


@pytest.mark.parametrize(
    "pairs,limit,error,message",
    [
        (
            [(f"k{i}", "") for i in range(11)],
            MAX_OBJECT_TAGS,
            errors.BadRequest,
            "Object tags cannot be greater than 10",
        ),
        (
            [(f"k{i}", "") for i in range(51)],
            MAX_BUCKET_TAGS,
            errors.BadRequest,
            "Bucket tags cannot be greater than 50",
        ),
        ([("k" * 129, "v")], 10, errors.InvalidTag, "The TagKey you have provided is invalid"),
        ([("𠀀" * 65, "v")], 10, errors.InvalidTag, "The TagKey you have provided is invalid"),
        ([("", "v")], 10, errors.InvalidTag, "The TagKey you have provided is invalid"),
        ([("a,b", "v")], 10, errors.InvalidTag, "The TagKey you have provided is invalid"),
        ([("a\tb", "v")], 10, errors.InvalidTag, "The TagKey you have provided is invalid"),
        ([("k", "v" * 257)], 10, errors.InvalidTag, "The TagValue you have provided is invalid"),
        ([("k", "a*b")], 10, errors.InvalidTag, "The TagValue you have provided is invalid"),
        (
            [("aws:owner", "v")],
            10,
            errors.InvalidTag,
            "Your TagKey cannot be prefixed with aws:",
        ),
        (
            [("k", "1"), ("k", "2")],
            10,
            errors.InvalidTag,
            "Cannot provide multiple Tags with the same key",
        ),
    ],
)
def test_refused_tag_sets(
    pairs: list[tuple[str, str]], limit: int, error: type[errors.S3Error], message: str
) -> None:
    with pytest.raises(error) as exc:
        check_tags(pairs, limit)
    assert exc.value.message == message


def test_allowed_characters() -> None:
    text = "Été 2026 _.:/=+-@ 東京"
    assert check_tags([(text, text)], MAX_OBJECT_TAGS) == {text: text}


def test_document_round_trip_and_schema() -> None:
    tags = {"project": "égide", "empty": ""}
    assert parse_tagging(render_tagging(tags), MAX_OBJECT_TAGS) == tags
    assert parse_tagging(b"<Tagging><TagSet/></Tagging>", MAX_OBJECT_TAGS) == {}
    for body in (
        b"<Tagging/>",
        b"<Tags><TagSet/></Tags>",
        b"<Tagging><TagSet><Tag><Key>k</Key></Tag></TagSet></Tagging>",
        b"<Tagging><TagSet><Tag><Key>k</Key><Value/><Other/></Tag></TagSet></Tagging>",
        b"<Tagging><TagSet><Other><Key>k</Key><Value/></Other></TagSet></Tagging>",
    ):
        with pytest.raises(errors.MalformedXML):
            parse_tagging(body, MAX_OBJECT_TAGS)


def test_header_is_a_form_encoded_query() -> None:
    stored = stored_tagging(header("b=2&a=1&c&s=hello+world&%C3%A9t%C3%A9=%3D%2B"))
    assert decode_tags(stored["x-amz-tagging"]) == {
        "a": "1",
        "b": "2",
        "c": "",
        "s": "hello world",
        "été": "=+",
    }
    assert stored_tagging(header("")) == {}
    presigned = RequestHead("PUT", "/b/k", query=(("x-amz-tagging", "a=1"),))
    assert stored_tagging(presigned) == {"x-amz-tagging": "a=1"}
    assert stored_tagging(RequestHead("PUT", "/b/k")) == {}


@pytest.mark.parametrize(
    "value", ["a=b=c", "a=1&a=2", "TagSet=[{Key=string,Value=string}]", "k=%FF"]
)
def test_malformed_header_is_invalid_argument(value: str) -> None:
    with pytest.raises(errors.InvalidArgument) as exc:
        stored_tagging(header(value))
    assert exc.value.message == (
        "The header 'x-amz-tagging' shall be encoded as UTF-8 then URLEncoded URL query "
        "parameters without tag name duplicates."
    )
    assert exc.value.fields == {"ArgumentName": "x-amz-tagging", "ArgumentValue": value}


def test_header_tags_are_checked_like_xml_ones() -> None:
    with pytest.raises(errors.InvalidTag):
        stored_tagging(header("TagSet%3D%5B%7BKey%3Dstring%7D%5D"))
    with pytest.raises(errors.BadRequest):
        stored_tagging(header("&".join(f"k{i}=v" for i in range(11))))


def test_stored_form_is_canonical_and_counts() -> None:
    tags = {"z": "a&b=c", "a": "100%", "m m": "é"}
    encoded = encode_tags(tags)
    assert encoded == "a=100%25&m%20m=%C3%A9&z=a%26b%3Dc"
    assert decode_tags(encoded) == tags
    assert tag_count({"x-amz-tagging": encoded}) == 3
    assert tag_count({}) == 0


def test_with_tags_replaces_or_removes_only_the_tags() -> None:
    headers = {"content-type": "text/plain", "x-amz-tagging": "a=1"}
    assert with_tags(headers, {"b": "2"}) == {"content-type": "text/plain", "x-amz-tagging": "b=2"}
    assert with_tags(headers, {}) == {"content-type": "text/plain"}
    assert headers == {"content-type": "text/plain", "x-amz-tagging": "a=1"}  # not modified
