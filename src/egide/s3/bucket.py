"""ListBuckets, CreateBucket, HeadBucket, DeleteBucket, GetBucketLocation."""

from __future__ import annotations

import base64
import binascii
import ipaddress
import re

from egide.domain import Bucket, BucketExists
from egide.engine import changes
from egide.engine.store import ObjectStore
from egide.s3 import controls, errors, object_lock
from egide.s3.body import read_small_body
from egide.s3.http import Request, Response
from egide.s3.xml import document, element, iso8601, parse

_NAME = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
#: Égide answers as one S3 region: HeadBucket, GetBucketLocation and ListBuckets report it.
REGION = "us-east-1"
#: ListBuckets' max-buckets runs from 1 to 10,000 (AWS's page limit).
MAX_BUCKETS = 10_000


def check_bucket_name(name: str) -> None:
    """The general-purpose bucket naming rules:
    https://docs.aws.amazon.com/AmazonS3/latest/userguide/bucketnamingrules.html"""
    problem = None
    if not _NAME.match(name):
        problem = (
            "must be 3 to 63 characters of lowercase letters, digits, dots and hyphens, "
            "starting and ending with a letter or digit"
        )
    elif ".." in name or ".-" in name or "-." in name:
        problem = "must not contain two adjacent periods or a period next to a hyphen"
    elif name.startswith(("xn--", "sthree-", "amzn-s3-demo-")) or name.endswith(
        ("-s3alias", "--ol-s3", ".mrap", "--x-s3", "--table-s3")
    ):
        problem = "uses a prefix or suffix reserved by S3"
    else:
        try:
            ipaddress.IPv4Address(name)
            problem = "must not be formatted as an IP address"
        except ValueError:
            pass
    if problem:
        raise errors.InvalidBucketName(
            f"The specified bucket is not valid: the name {problem}.", BucketName=name
        )


def _max_buckets(value: str) -> int:
    try:
        parsed = int(value)
    except ValueError:
        parsed = 0
    if not 1 <= parsed <= MAX_BUCKETS:
        raise errors.InvalidArgument(
            f"Argument max-buckets must be an integer between 1 and {MAX_BUCKETS}.",
            ArgumentName="max-buckets", ArgumentValue=value,
        )  # fmt: skip
    return parsed


def _bucket_token(name: str) -> str:
    return base64.urlsafe_b64encode(name.encode()).decode()


def _bucket_after_token(token: str) -> str:
    """The bucket name a continuation token resumes after; InvalidArgument if it is not
    one of ours (tokens are opaque to clients, as S3's are)."""
    try:
        name = base64.urlsafe_b64decode(token.encode()).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        name = ""
    if not _NAME.match(name):
        raise errors.InvalidArgument(
            "The continuation token provided is incorrect",
            ArgumentName="continuation-token", ArgumentValue=token,
        )  # fmt: skip
    return name


def _page(
    buckets: list[Bucket], prefix: str, after: str, limit: int | None
) -> tuple[list[Bucket], bool]:
    """The buckets of one ListBuckets page (sorted by name, as the catalog returns them) and
    whether more follow."""
    selected = [b for b in buckets if b.name.startswith(prefix) and b.name > after]
    if limit is None or len(selected) <= limit:
        return selected, False
    return selected[:limit], True


async def handle_list_buckets(req: Request, store: ObjectStore) -> Response:
    """Without parameters the answer is the classic full list; max-buckets, continuation-token,
    prefix and bucket-region (added to S3 in 2024) page and filter it."""
    head = req.head
    max_value = head.query_value("max-buckets")
    token = head.query_value("continuation-token") or ""
    prefix = head.query_value("prefix") or ""
    region = head.query_value("bucket-region")
    paged = max_value is not None or bool(token) or head.has_query("prefix") or region is not None
    limit = _max_buckets(max_value) if max_value is not None else None
    after = _bucket_after_token(token) if token else ""
    buckets: list[Bucket] = []
    if region is None or region == REGION:
        buckets = await controls.visible_buckets(req, await store.list_buckets())
    page, truncated = _page(buckets, prefix, after, limit)
    # BucketRegion is there "if the request contains at least one valid parameter" (the
    # Bucket type of the S3 API reference); the classic answer stays as it was.
    region_element = element("BucketRegion", REGION) if paged else ""
    entries = "".join(
        f"<Bucket>{element('Name', b.name)}{element('CreationDate', iso8601(b.created))}"
        f"{region_element}</Bucket>"
        for b in page
    )
    inner = f"<Owner>{await controls.owner_xml(req)}</Owner><Buckets>{entries}</Buckets>"
    if truncated:
        inner += element("ContinuationToken", _bucket_token(page[-1].name))
    if head.has_query("prefix"):
        inner += element("Prefix", prefix)
    return Response(
        200, {"content-type": "application/xml"}, document("ListAllMyBucketsResult", inner)
    )


async def handle_create_bucket(req: Request, store: ObjectStore) -> Response:
    assert req.bucket is not None
    check_bucket_name(req.bucket)
    body = await read_small_body(req)
    if body.strip():
        config = parse(body)
        if config.tag != "CreateBucketConfiguration":
            raise errors.MalformedXML()
    settings = await controls.new_bucket_settings(req)
    # Égide is one region, us-east-1, where S3 answers 200 to an owner creating its bucket
    # again "for legacy compatibility" (the other regions answer 409 BucketAlreadyOwnedByYou),
    # and 409 BucketAlreadyExists to anyone else: CreateBucket, "Errors",
    # https://docs.aws.amazon.com/AmazonS3/latest/API/API_CreateBucket.html
    try:
        created = await store.create_bucket(req.bucket)
    except BucketExists:
        await controls.check_recreate(req, req.bucket)
        return Response(200, {"location": f"/{req.bucket}"})  # its settings stay as they are
    for name, value in settings.items():
        await changes.put_bucket_setting(store, created, name, value)
    assert req.access is not None
    req.access.forget(req.bucket)
    if (req.head.header("x-amz-bucket-object-lock-enabled") or "").lower() == "true":
        await object_lock.enable_on_create(store, req.bucket)
    return Response(200, {"location": f"/{req.bucket}"})


async def handle_head_bucket(req: Request, store: ObjectStore) -> Response:
    assert req.bucket is not None
    await store.bucket(req.bucket)
    return Response(200, {"x-amz-bucket-region": REGION})


async def handle_delete_bucket(req: Request, store: ObjectStore) -> Response:
    assert req.bucket is not None
    await store.delete_bucket(req.bucket)
    return Response(204)


async def handle_get_bucket_location(req: Request, store: ObjectStore) -> Response:
    assert req.bucket is not None
    await store.bucket(req.bucket)
    # us-east-1 is reported as an empty LocationConstraint, as AWS does.
    return Response(200, {"content-type": "application/xml"}, document("LocationConstraint", ""))
