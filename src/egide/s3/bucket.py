"""ListBuckets, CreateBucket, HeadBucket, DeleteBucket, GetBucketLocation."""

from __future__ import annotations

import ipaddress
import re

from egide.domain import BucketExists
from egide.engine.store import ObjectStore
from egide.s3 import errors
from egide.s3.body import read_small_body
from egide.s3.http import Request, Response
from egide.s3.xml import document, element, iso8601, parse

_NAME = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
OWNER = element("ID", "egide") + element("DisplayName", "egide")


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


async def handle_list_buckets(req: Request, store: ObjectStore) -> Response:
    buckets = "".join(
        f"<Bucket>{element('Name', b.name)}{element('CreationDate', iso8601(b.created))}</Bucket>"
        for b in await store.list_buckets()
    )
    body = document("ListAllMyBucketsResult", f"<Owner>{OWNER}</Owner><Buckets>{buckets}</Buckets>")
    return Response(200, {"content-type": "application/xml"}, body)


async def handle_create_bucket(req: Request, store: ObjectStore) -> Response:
    assert req.bucket is not None
    check_bucket_name(req.bucket)
    body = await read_small_body(req)
    if body.strip():
        config = parse(body)
        if config.tag != "CreateBucketConfiguration":
            raise errors.MalformedXML()
    try:
        await store.create_bucket(req.bucket)
    except BucketExists as exc:
        raise errors.BucketAlreadyOwnedByYou(BucketName=req.bucket) from exc
    return Response(200, {"location": f"/{req.bucket}"})


async def handle_head_bucket(req: Request, store: ObjectStore) -> Response:
    assert req.bucket is not None
    await store.bucket(req.bucket)
    return Response(200, {"x-amz-bucket-region": "us-east-1"})


async def handle_delete_bucket(req: Request, store: ObjectStore) -> Response:
    assert req.bucket is not None
    await store.delete_bucket(req.bucket)
    return Response(204)


async def handle_get_bucket_location(req: Request, store: ObjectStore) -> Response:
    assert req.bucket is not None
    await store.bucket(req.bucket)
    # us-east-1 is reported as an empty LocationConstraint, as AWS does.
    return Response(200, {"content-type": "application/xml"}, document("LocationConstraint", ""))
