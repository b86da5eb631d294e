"""Bucket and object tagging: Put/Get/DeleteBucketTagging, Put/Get/DeleteObjectTagging, and the
x-amz-tagging header of PutObject.

An object's tags are kept in its version's headers under `x-amz-tagging`, query-encoded in key
order, so they travel with the version (a new PUT replaces them) and cost no extra lookup on
GET/HEAD, which only count them. Limits and messages are S3's
(https://docs.aws.amazon.com/AmazonS3/latest/userguide/object-tagging.html and answers S3 was
recorded giving: more than 10 object tags is BadRequest, not InvalidTag).
"""

from __future__ import annotations

import json
import unicodedata
from urllib.parse import quote, unquote, unquote_plus

from egide.domain import TAGGING_HEADER, ObjectVersion
from egide.engine import changes
from egide.engine.store import ObjectStore
from egide.s3 import errors
from egide.s3.body import read_checked_body
from egide.s3.http import Request, Response
from egide.s3.xml import document, element, parse
from egide.web.request import RequestHead

HEADER = TAGGING_HEADER
COUNT_HEADER = "x-amz-tagging-count"
SETTING = "tagging"
MAX_OBJECT_TAGS = 10
MAX_BUCKET_TAGS = 50
MAX_KEY_CHARS = 128
MAX_VALUE_CHARS = 256
_SYMBOLS = frozenset("_.:/=+-@")
_BAD_HEADER = (
    "The header 'x-amz-tagging' shall be encoded as UTF-8 then URLEncoded URL query "
    "parameters without tag name duplicates."
)

Tags = dict[str, str]


def _utf16_length(text: str) -> int:
    """S3 keeps tags in UTF-16 and counts its code units: a letter beyond the BMP counts two."""
    return len(text.encode("utf-16-le")) // 2


def _valid_text(text: str, minimum: int, maximum: int) -> bool:
    """Unicode letters, numbers and spaces, and `_ . : / = + - @` (the tag rules of S3)."""
    return minimum <= _utf16_length(text) <= maximum and all(
        c in _SYMBOLS or unicodedata.category(c)[0] in "LNZ" for c in text
    )


def check_tags(pairs: list[tuple[str, str]], limit: int) -> Tags:
    """A tag set as S3 accepts it: at most `limit` tags, unique valid keys, valid values."""
    if len(pairs) > limit:
        what = "Object" if limit == MAX_OBJECT_TAGS else "Bucket"
        raise errors.BadRequest(f"{what} tags cannot be greater than {limit}")
    tags: Tags = {}
    for key, value in pairs:
        if not _valid_text(key, 1, MAX_KEY_CHARS):
            raise errors.InvalidTag("The TagKey you have provided is invalid", TagKey=key)
        if key.startswith("aws:"):
            raise errors.InvalidTag("Your TagKey cannot be prefixed with aws:", TagKey=key)
        if not _valid_text(value, 0, MAX_VALUE_CHARS):
            raise errors.InvalidTag("The TagValue you have provided is invalid", TagValue=value)
        if key in tags:
            raise errors.InvalidTag("Cannot provide multiple Tags with the same key", TagKey=key)
        tags[key] = value
    return tags


def parse_tagging(body: bytes, limit: int) -> Tags:
    """`<Tagging><TagSet><Tag><Key/><Value/></Tag>…</TagSet></Tagging>`; anything outside that
    schema is MalformedXML."""
    root = parse(body)
    if root.tag != "Tagging" or len(root) != 1 or root[0].tag != "TagSet":
        raise errors.MalformedXML()
    pairs = []
    for tag in root[0]:
        fields = {child.tag: child.text or "" for child in tag}
        if tag.tag != "Tag" or len(tag) != 2 or set(fields) != {"Key", "Value"}:
            raise errors.MalformedXML()
        pairs.append((fields["Key"], fields["Value"]))
    return check_tags(pairs, limit)


def render_tagging(tags: Tags) -> bytes:
    inner = "".join(
        f"<Tag>{element('Key', key)}{element('Value', value)}</Tag>" for key, value in tags.items()
    )
    return document("Tagging", f"<TagSet>{inner}</TagSet>")


def encode_tags(tags: Tags) -> str:
    """The canonical stored form: query-encoded, in key order (as S3 gives tags back)."""
    return "&".join(f"{quote(key, safe='')}={quote(tags[key], safe='')}" for key in sorted(tags))


def decode_tags(encoded: str) -> Tags:
    """The inverse of `encode_tags`."""
    tags: Tags = {}
    for pair in filter(None, encoded.split("&")):
        key, _, value = pair.partition("=")
        tags[unquote(key)] = unquote(value)
    return tags


def tags_of(headers: dict[str, str]) -> Tags:
    return decode_tags(headers.get(HEADER, ""))


def stored_tagging(head: RequestHead) -> dict[str, str]:
    """The x-amz-tagging header of a PutObject, checked, as the entry kept in the version's
    headers (none if the request has no tags).

    The header is a form-encoded query (`k1=v1&k2`, `+` a space); a key without `=` has the
    empty value (ceph s3-tests). A pair that is not `key=value` or a repeated key is
    InvalidArgument, a key or value S3 would refuse in XML is InvalidTag, as S3 answers.
    SDK presigners (JavaScript v3) move x-amz-* headers into the query, and S3 applies them."""
    header = head.header(HEADER) or head.query_value(HEADER)
    if not header:
        return {}
    pairs = []
    try:
        for pair in header.split("&"):
            if pair.count("=") > 1 or not pair.isascii():
                raise ValueError(pair)
            key, _, value = pair.partition("=")
            pairs.append((unquote_plus(key, errors="strict"), unquote_plus(value, errors="strict")))
    except (ValueError, UnicodeDecodeError) as exc:
        raise errors.InvalidArgument(
            _BAD_HEADER, ArgumentName=HEADER, ArgumentValue=header
        ) from exc
    if len({key for key, _ in pairs}) != len(pairs):
        raise errors.InvalidArgument(_BAD_HEADER, ArgumentName=HEADER, ArgumentValue=header)
    tags = check_tags(pairs, MAX_OBJECT_TAGS)
    return {HEADER: encode_tags(tags)} if tags else {}


def with_tags(headers: dict[str, str], tags: Tags) -> dict[str, str]:
    """A version's headers with its tag set replaced (removed when empty)."""
    updated = {name: value for name, value in headers.items() if name != HEADER}
    if tags:
        updated[HEADER] = encode_tags(tags)
    return updated


def tag_count(headers: dict[str, str]) -> int:
    encoded = headers.get(HEADER, "")
    return encoded.count("&") + 1 if encoded else 0


# -- bucket tagging --------------------------------------------------------------------------


async def handle_put_bucket_tagging(req: Request, store: ObjectStore) -> Response:
    assert req.bucket is not None
    bucket = await store.bucket(req.bucket)
    tags = parse_tagging(await read_checked_body(req), MAX_BUCKET_TAGS)
    # An empty tag set is allowed and leaves the bucket untagged (GetBucketTagging: 404).
    await changes.put_bucket_setting(store, bucket, SETTING, json.dumps(tags) if tags else None)
    return Response(204)


async def handle_get_bucket_tagging(req: Request, store: ObjectStore) -> Response:
    assert req.bucket is not None
    bucket = await store.bucket(req.bucket)
    text = await changes.bucket_setting(store, bucket, SETTING)
    if not text:
        raise errors.NoSuchTagSet(BucketName=req.bucket)
    return Response(200, {"content-type": "application/xml"}, render_tagging(json.loads(text)))


async def handle_delete_bucket_tagging(req: Request, store: ObjectStore) -> Response:
    assert req.bucket is not None
    bucket = await store.bucket(req.bucket)
    await changes.put_bucket_setting(store, bucket, SETTING, None)
    return Response(204)


# -- object tagging --------------------------------------------------------------------------


async def _target_version(req: Request, store: ObjectStore) -> ObjectVersion:
    """The version a tagging call names: `versionId`, else the current one."""
    assert req.bucket is not None and req.key is not None
    return await store.head_object(req.bucket, req.key, req.head.query_value("versionId"))


async def _set_tags(req: Request, store: ObjectStore, tags: Tags) -> None:
    version = await _target_version(req, store)
    await changes.set_version_headers(store, version, with_tags(version.headers, tags))


async def handle_put_object_tagging(req: Request, store: ObjectStore) -> Response:
    await _target_version(req, store)  # NoSuchKey before the body is read
    tags = parse_tagging(await read_checked_body(req), MAX_OBJECT_TAGS)
    await _set_tags(req, store, tags)
    return Response(200)


async def handle_get_object_tagging(req: Request, store: ObjectStore) -> Response:
    version = await _target_version(req, store)
    body = render_tagging(tags_of(version.headers))
    return Response(200, {"content-type": "application/xml"}, body)


async def handle_delete_object_tagging(req: Request, store: ObjectStore) -> Response:
    await _set_tags(req, store, {})
    return Response(204)
