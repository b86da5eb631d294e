"""Object Lock (WORM): the bucket configuration, per-version retention and legal hold.

https://docs.aws.amazon.com/AmazonS3/latest/userguide/object-lock.html — a locked version
cannot be removed by anyone until its date (COMPLIANCE), or without
x-amz-bypass-governance-retention (GOVERNANCE), or while a legal hold is on. The rule is
enforced by the catalog in the transaction that would remove the version, so no API call,
lifecycle rule or maintenance job can get around it.
"""

from __future__ import annotations

import time
from datetime import datetime

from egide.engine import changes
from egide.engine.store import ObjectStore
from egide.engine.versioning import (
    LOCK_HOLD,
    LOCK_MODE,
    LOCK_UNTIL,
    OBJECT_LOCK,
    VERSIONING,
    LockConfiguration,
)
from egide.s3 import errors
from egide.s3.body import read_checked_body, read_small_body
from egide.s3.http import Request, Response
from egide.s3.xml import document, element, iso8601, parse
from egide.web.request import RequestHead

MODES = ("GOVERNANCE", "COMPLIANCE")
_XML = {"content-type": "application/xml"}


def _parse_date(text: str | None) -> float:
    try:
        return datetime.fromisoformat((text or "").strip().replace("Z", "+00:00")).timestamp()
    except ValueError as exc:
        raise errors.InvalidArgument(
            f"The retain-until date {text!r} is not an ISO 8601 date-time."
        ) from exc


def bypass_governance(req: Request) -> bool:
    return (req.head.header("x-amz-bypass-governance-retention") or "").lower() == "true"


def lock_request(head: RequestHead) -> dict[str, str]:
    """The Object Lock headers of a write, checked, in the form the store takes them
    (the date as epoch seconds)."""
    mode = head.header(LOCK_MODE)
    until = head.header(LOCK_UNTIL)
    hold = head.header(LOCK_HOLD)
    stored: dict[str, str] = {}
    if (mode is None) != (until is None):
        raise errors.InvalidArgument(
            "x-amz-object-lock-retain-until-date and x-amz-object-lock-mode must both be supplied."
        )
    if mode is not None:
        if mode not in MODES:
            raise errors.InvalidArgument(f"Unknown wormMode directive {mode!r}.")
        retain_until = _parse_date(until)
        if retain_until <= time.time():
            raise errors.InvalidArgument("The retain until date must be in the future!")
        stored[LOCK_MODE], stored[LOCK_UNTIL] = mode, repr(retain_until)
    if hold is not None:
        if hold not in ("ON", "OFF"):
            raise errors.InvalidArgument(f"Unknown legal hold status {hold!r}.")
        stored[LOCK_HOLD] = hold
    return stored


async def enable_on_create(store: ObjectStore, bucket_name: str) -> None:
    """CreateBucket with x-amz-bucket-object-lock-enabled: versioning on, lock on."""
    bucket = await store.bucket(bucket_name)
    await changes.put_bucket_setting(store, bucket, VERSIONING, "Enabled")
    await changes.put_bucket_setting(store, bucket, OBJECT_LOCK, LockConfiguration().dumps())


async def _require_lock(store: ObjectStore, bucket_name: str) -> LockConfiguration:
    bucket = await store.bucket(bucket_name, cached=True)
    config = await store.bucket_settings.lock_configuration(bucket)
    if config is None:
        raise errors.InvalidRequest("Bucket is missing Object Lock Configuration")
    return config


def _parse_configuration(body: bytes) -> LockConfiguration:
    root = parse(body)
    if root.tag != "ObjectLockConfiguration" or root.findtext("ObjectLockEnabled") != "Enabled":
        raise errors.MalformedXML()
    rule = root.find("Rule")
    if rule is None:
        return LockConfiguration()
    retention = rule.find("DefaultRetention")
    if retention is None:
        raise errors.MalformedXML()
    mode = retention.findtext("Mode")
    days, years = retention.findtext("Days"), retention.findtext("Years")
    if mode not in MODES or (days is None) == (years is None):
        raise errors.MalformedXML()
    period = days if days is not None else years
    try:
        value = int(period or "")
    except ValueError as exc:
        raise errors.MalformedXML() from exc
    if value <= 0:
        raise errors.InvalidRetentionPeriod(
            "Default retention period must be a positive integer value."
        )
    return LockConfiguration(
        mode, value if days is not None else None, value if years is not None else None
    )


async def handle_put_configuration(req: Request, store: ObjectStore) -> Response:
    assert req.bucket is not None
    config = _parse_configuration(await read_small_body(req))
    bucket = await store.bucket(req.bucket)
    if await store.bucket_settings.versioning(bucket) != "Enabled":
        raise errors.InvalidBucketState(
            "Versioning must be 'Enabled' on the bucket to apply a Object Lock configuration"
        )
    await changes.put_bucket_setting(store, bucket, OBJECT_LOCK, config.dumps())
    return Response(200)


async def handle_get_configuration(req: Request, store: ObjectStore) -> Response:
    assert req.bucket is not None
    bucket = await store.bucket(req.bucket)
    config = await store.bucket_settings.lock_configuration(bucket)
    if config is None:
        raise errors.ObjectLockConfigurationNotFoundError()
    rule = ""
    if config.mode is not None:
        period = (
            element("Days", config.days)
            if config.days is not None
            else element("Years", config.years)
        )
        retention = element("Mode", config.mode) + period
        rule = f"<Rule><DefaultRetention>{retention}</DefaultRetention></Rule>"
    inner = element("ObjectLockEnabled", "Enabled") + rule
    return Response(200, dict(_XML), document("ObjectLockConfiguration", inner))


async def handle_put_retention(req: Request, store: ObjectStore) -> Response:
    assert req.bucket is not None and req.key is not None
    await _require_lock(store, req.bucket)
    root = parse(await read_checked_body(req))
    mode = root.findtext("Mode")
    until_text = root.findtext("RetainUntilDate")
    if root.tag != "Retention" or mode not in (*MODES, None):
        raise errors.MalformedXML()
    if (mode is None) != (until_text is None):
        raise errors.MalformedXML()
    until = _parse_date(until_text) if until_text is not None else None
    if until is not None and until <= time.time():
        raise errors.InvalidArgument("The retain until date must be in the future!")
    version = await store.head_object(req.bucket, req.key, req.head.query_value("versionId"))
    await changes.set_retention(
        store, version, mode, until, bypass_governance=bypass_governance(req)
    )
    return Response(200)


async def handle_get_retention(req: Request, store: ObjectStore) -> Response:
    assert req.bucket is not None and req.key is not None
    await _require_lock(store, req.bucket)
    version = await store.head_object(req.bucket, req.key, req.head.query_value("versionId"))
    if version.retention_mode is None or version.retain_until is None:
        raise errors.NoSuchObjectLockConfiguration()
    inner = element("Mode", version.retention_mode) + element(
        "RetainUntilDate", iso8601(version.retain_until)
    )
    return Response(200, dict(_XML), document("Retention", inner))


async def handle_put_legal_hold(req: Request, store: ObjectStore) -> Response:
    assert req.bucket is not None and req.key is not None
    await _require_lock(store, req.bucket)
    root = parse(await read_checked_body(req))
    status = root.findtext("Status")
    if root.tag != "LegalHold" or status not in ("ON", "OFF"):
        raise errors.MalformedXML()
    version = await store.head_object(req.bucket, req.key, req.head.query_value("versionId"))
    await changes.set_legal_hold(store, version, status == "ON")
    return Response(200)


async def handle_get_legal_hold(req: Request, store: ObjectStore) -> Response:
    assert req.bucket is not None and req.key is not None
    await _require_lock(store, req.bucket)
    version = await store.head_object(req.bucket, req.key, req.head.query_value("versionId"))
    inner = element("Status", "ON" if version.legal_hold else "OFF")
    return Response(200, dict(_XML), document("LegalHold", inner))
