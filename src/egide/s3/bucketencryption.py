"""Put/Get/DeleteBucketEncryption, and the bucket default a write without encryption headers
takes (decision 0033).

A bucket's default is what a write that asks for nothing is answered and remembered as:
SSE-S3 (`AES256`) or SSE-KMS on the bucket's key. Like every header, it changes nothing of the
encryption itself (always on, under the bucket's keys); it says so, in S3's words. A write
that asks for an encryption of its own (SSE-S3, SSE-KMS, SSE-C) keeps what it asked.
"""

from __future__ import annotations

import json
import weakref

from egide.domain import Bucket
from egide.engine import changes
from egide.engine.store import ObjectStore
from egide.s3 import encryption, errors
from egide.s3.body import read_checked_body
from egide.s3.http import Request, Response
from egide.s3.xml import document, element, parse
from egide.web.request import RequestHead

SETTING = "encryption"
_ALGORITHMS = (encryption.AES256, encryption.KMS)
_CACHE_LIMIT = 10_000
#: Per store: bucket id → (the default's headers, {} if none; when read).
_caches: weakref.WeakKeyDictionary[ObjectStore, dict[bytes, tuple[dict[str, str], float]]] = (
    weakref.WeakKeyDictionary()
)


def parse_configuration(body: bytes, bucket: str) -> dict[str, str]:
    """A ServerSideEncryptionConfiguration checked as S3 checks it (one rule, AES256 or aws:kms,
    a KMSMasterKeyID only with aws:kms and naming the bucket's key): the default's fields."""
    root = parse(body)
    if root.tag != "ServerSideEncryptionConfiguration" or len(root) != 1 or root[0].tag != "Rule":
        raise errors.MalformedXML(
            "The configuration must hold exactly one Rule (S3 takes one default per bucket)."
        )
    by_default = None
    enabled: str | None = None
    for child in root[0]:
        if child.tag == "ApplyServerSideEncryptionByDefault" and by_default is None:
            by_default = child
        elif child.tag == "BucketKeyEnabled" and enabled is None:
            enabled = (child.text or "").strip().lower()
        else:
            raise errors.MalformedXML()
    if by_default is None:
        raise errors.MalformedXML("The Rule must hold ApplyServerSideEncryptionByDefault.")
    fields: dict[str, str] = {}
    for child in by_default:
        if child.tag in ("SSEAlgorithm", "KMSMasterKeyID") and child.tag not in fields:
            fields[child.tag] = (child.text or "").strip()
        else:
            raise errors.MalformedXML()
    algorithm = fields.get("SSEAlgorithm")
    if algorithm == "aws:kms:dsse":
        raise errors.NotImplementedOperation(
            "Égide does not implement dual-layer SSE-KMS (aws:kms:dsse); use aws:kms or AES256."
        )
    if algorithm not in _ALGORITHMS:
        raise errors.MalformedXML(f"SSEAlgorithm takes {' or '.join(_ALGORITHMS)}.")
    if enabled not in (None, "true", "false"):
        raise errors.MalformedXML("BucketKeyEnabled takes true or false.")
    if algorithm == encryption.AES256 and "KMSMasterKeyID" in fields:
        raise errors.InvalidArgument(
            "a KMSMasterKeyID is not applicable if the default sse algorithm is not aws:kms",
            ArgumentName="ApplyServerSideEncryptionByDefault",
        )  # fmt: skip
    if algorithm == encryption.KMS and enabled == "false":
        raise errors.NotImplementedOperation(
            "Égide cannot write SSE-KMS without a bucket key (BucketKeyEnabled false): every "
            "data key is wrapped under its bucket's key."
        )
    stored = {"SSEAlgorithm": algorithm}
    if algorithm == encryption.KMS and fields.get("KMSMasterKeyID"):
        key_id = fields["KMSMasterKeyID"]
        encryption.kms_key_id(bucket, key_id, name="KMSMasterKeyID")  # or KMS.NotFoundException
        stored["KMSMasterKeyID"] = key_id
    if enabled is not None:
        stored["BucketKeyEnabled"] = enabled
    return stored


def render_configuration(fields: dict[str, str]) -> bytes:
    inner = element("SSEAlgorithm", fields["SSEAlgorithm"])
    if "KMSMasterKeyID" in fields:
        inner += element("KMSMasterKeyID", fields["KMSMasterKeyID"])
    rule = f"<ApplyServerSideEncryptionByDefault>{inner}</ApplyServerSideEncryptionByDefault>"
    if "BucketKeyEnabled" in fields:
        rule += element("BucketKeyEnabled", fields["BucketKeyEnabled"])
    return document("ServerSideEncryptionConfiguration", f"<Rule>{rule}</Rule>")


def default_headers(bucket: str, fields: dict[str, str]) -> dict[str, str]:
    """The headers a version written with no encryption asked keeps under the default."""
    if fields["SSEAlgorithm"] == encryption.KMS:
        return encryption.kms_headers(bucket, fields.get("KMSMasterKeyID"))
    return {encryption.SSE: encryption.AES256}


def forget_all(store: ObjectStore) -> None:
    """A bucket setting changed somewhere (egide.auth.rights): read every default again."""
    _caches.pop(store, None)


async def _default(store: ObjectStore, bucket: Bucket) -> dict[str, str]:
    """The bucket default's headers ({} with none): one indexed catalog read when a bucket
    setting changed anywhere (`forget_all`), and at most every `store.bucket_cache_seconds`."""
    cache = _caches.setdefault(store, {})
    now = store.clock.monotonic()
    hit = cache.get(bucket.id)
    if hit is not None and now - hit[1] < store.bucket_cache_seconds:
        return hit[0]
    text = await changes.bucket_setting(store, bucket, SETTING)
    headers = default_headers(bucket.name, json.loads(text)) if text else {}
    if len(cache) >= _CACHE_LIMIT:
        cache.clear()
    cache[bucket.id] = (headers, now)
    return headers


async def write_encryption(
    head: RequestHead, bucket_name: str, store: ObjectStore
) -> encryption.WriteEncryption:
    """What a write asks for (egide.s3.encryption.write_encryption), or the bucket's default
    when it asks for nothing."""
    sse = encryption.write_encryption(head, bucket_name)
    if sse.asked:
        return sse
    bucket = await store.bucket(bucket_name, cached=True)
    default = await _default(store, bucket)
    return encryption.WriteEncryption(dict(default), default=True) if default else sse


async def handle_put(req: Request, store: ObjectStore) -> Response:
    assert req.bucket is not None
    bucket = await store.bucket(req.bucket)
    fields = parse_configuration(await read_checked_body(req), bucket.name)
    await changes.put_bucket_setting(store, bucket, SETTING, json.dumps(fields))
    _caches.setdefault(store, {}).pop(bucket.id, None)
    return Response(200)


async def handle_get(req: Request, store: ObjectStore) -> Response:
    assert req.bucket is not None
    bucket = await store.bucket(req.bucket)
    text = await changes.bucket_setting(store, bucket, SETTING)
    if not text:
        raise errors.ServerSideEncryptionConfigurationNotFoundError(BucketName=req.bucket)
    return Response(
        200, {"content-type": "application/xml"}, render_configuration(json.loads(text))
    )


async def handle_delete(req: Request, store: ObjectStore) -> Response:
    assert req.bucket is not None
    bucket = await store.bucket(req.bucket)
    await changes.put_bucket_setting(store, bucket, SETTING, None)
    _caches.setdefault(store, {}).pop(bucket.id, None)
    return Response(204)
