"""PutBucketLifecycleConfiguration, GetBucketLifecycleConfiguration, DeleteBucketLifecycle — and
the older PutBucketLifecycle and GetBucketLifecycle, which use the same `?lifecycle` URL and a
document whose rules carry their own `<Prefix>`.

A document is checked as S3 checks it
(https://docs.aws.amazon.com/AmazonS3/latest/API/API_PutBucketLifecycleConfiguration.html, and
the answers ceph s3-tests expect of S3): first against the schema, where anything off it is
MalformedXML, then value by value (InvalidArgument) and for combinations S3 refuses
(InvalidRequest). Transitions are valid S3 but move objects between storage classes, and Égide
has one: they are refused with 501 rather than stored and never acted on. The rules are applied
by engine/lifecycle.py.
"""

from __future__ import annotations

import base64
import re
import uuid
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TypedDict

from egide.engine.lifecycle import save_rules
from egide.engine.lifecyclerules import LifecycleFilter, LifecycleRule
from egide.engine.store import ObjectStore
from egide.s3 import errors
from egide.s3.body import read_checked_body
from egide.s3.http import Request, Response
from egide.s3.tagging import check_tags
from egide.s3.xml import document, element, iso8601, parse

MAX_RULES = 1000
MAX_ID_CHARS = 255
MAX_NEWER_NONCURRENT = 100
#: The classes S3 accepts in a transition (all of them are refused here, but a document naming
#: another one is malformed, as on S3).
TRANSITION_CLASSES = frozenset(
    {"GLACIER", "STANDARD_IA", "ONEZONE_IA", "INTELLIGENT_TIERING", "DEEP_ARCHIVE", "GLACIER_IR"}
)
_INT = re.compile(r"^[+-]?\d{1,18}$")
#: xsd:dateTime, or a date alone (S3 takes both).
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}(T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})?)?$")
_TRANSITIONS_REFUSED = (
    "Égide has a single storage class: lifecycle transitions (Transition, "
    "NoncurrentVersionTransition) are not implemented. Use Expiration or "
    "NoncurrentVersionExpiration to remove objects."
)


@dataclass
class _Checks:
    """The value errors found while reading the document: S3 answers a schema error first,
    wherever it is, so these are raised only once the whole document is read."""

    problems: list[errors.S3Error] = field(default_factory=list)
    transitions: bool = False

    def add(self, problem: errors.S3Error) -> None:
        self.problems.append(problem)


def _children(
    node: ET.Element, allowed: set[str], repeated: frozenset[str] = frozenset()
) -> dict[str, list[ET.Element]]:
    """`node`'s children by name: an unknown one, or one repeated that may not be, is off
    the schema."""
    found: dict[str, list[ET.Element]] = {}
    for child in node:
        if child.tag not in allowed or (child.tag in found and child.tag not in repeated):
            raise errors.MalformedXML()
        found.setdefault(child.tag, []).append(child)
    return found


def _text(node: ET.Element) -> str:
    return (node.text or "").strip()


def _int(node: ET.Element) -> int:
    text = _text(node)
    if not _INT.match(text):
        raise errors.MalformedXML()
    return int(text)


def _date(node: ET.Element, checks: _Checks) -> float:
    """A lifecycle Date: ISO 8601, and S3 takes only a midnight UTC."""
    text = _text(node)
    if not _DATE.match(text):
        raise errors.MalformedXML()
    try:
        moment = datetime.fromisoformat(text)
    except ValueError as exc:
        raise errors.MalformedXML() from exc
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    stamp = moment.timestamp()
    if stamp % 86_400:
        checks.add(
            errors.InvalidArgument(
                "'Date' must be at midnight GMT", ArgumentName="Date", ArgumentValue=text
            )
        )
    return stamp


def _positive(value: int, message: str, name: str, checks: _Checks) -> int:
    if value <= 0:
        checks.add(errors.InvalidArgument(message, ArgumentName=name, ArgumentValue=str(value)))
    return value


def _tags(nodes: list[ET.Element], checks: _Checks) -> tuple[tuple[str, str], ...]:
    pairs = []
    for node in nodes:
        fields = _children(node, {"Key", "Value"})
        if set(fields) != {"Key", "Value"}:
            raise errors.MalformedXML()
        pairs.append((fields["Key"][0].text or "", fields["Value"][0].text or ""))
    if len({key for key, _ in pairs}) != len(pairs):
        checks.add(errors.InvalidRequest("Duplicate Tag Keys are not allowed."))
    else:
        try:
            check_tags(pairs, max(len(pairs), 1))
        except errors.S3Error as exc:
            checks.add(exc)
    return tuple(pairs)


def _sizes(fields: dict[str, list[ET.Element]], checks: _Checks) -> tuple[int | None, int | None]:
    greater = (
        _int(fields["ObjectSizeGreaterThan"][0]) if "ObjectSizeGreaterThan" in fields else None
    )
    less = _int(fields["ObjectSizeLessThan"][0]) if "ObjectSizeLessThan" in fields else None
    if greater is not None and greater < 0:
        checks.add(errors.InvalidArgument("'ObjectSizeGreaterThan' must be a non-negative integer"))
    if less is not None and less <= 0:
        checks.add(errors.InvalidArgument("'ObjectSizeLessThan' must be a positive integer"))
    if greater is not None and less is not None and greater >= less:
        checks.add(
            errors.InvalidArgument("'ObjectSizeGreaterThan' must be less than 'ObjectSizeLessThan'")
        )
    return greater, less


_CONDITIONS = {"Prefix", "Tag", "ObjectSizeGreaterThan", "ObjectSizeLessThan"}


class _Actions(TypedDict, total=False):
    """The actions of a rule, as LifecycleRule's fields."""

    expiration_days: int
    expiration_date: float
    expired_object_delete_marker: bool
    noncurrent_days: int
    newer_noncurrent_versions: int | None
    abort_upload_days: int


def _filter(node: ET.Element, checks: _Checks) -> LifecycleFilter:
    """`<Filter>`: empty (every object), or exactly one of Prefix, Tag, a size bound, or And."""
    fields = _children(node, _CONDITIONS | {"And"})
    if len(fields) > 1:
        raise errors.MalformedXML()
    conjunction = "And" in fields
    if conjunction:
        fields = _children(fields["And"][0], _CONDITIONS, repeated=frozenset({"Tag"}))
        if not fields:
            raise errors.MalformedXML()
    greater, less = _sizes(fields, checks)
    return LifecycleFilter(
        prefix=(fields["Prefix"][0].text or "") if "Prefix" in fields else None,
        tags=_tags(fields.get("Tag", []), checks),
        size_greater_than=greater,
        size_less_than=less,
        conjunction=conjunction,
    )


def _expiration(node: ET.Element, checks: _Checks) -> _Actions:
    """Exactly one of Days, Date, ExpiredObjectDeleteMarker (S3 answers two with
    MalformedXML)."""
    fields = _children(node, {"Days", "Date", "ExpiredObjectDeleteMarker"})
    if len(fields) != 1:
        raise errors.MalformedXML()
    if "Days" in fields:
        message = "'Days' for Expiration action must be a positive integer"
        return {"expiration_days": _positive(_int(fields["Days"][0]), message, "Days", checks)}
    if "Date" in fields:
        return {"expiration_date": _date(fields["Date"][0], checks)}
    flag = _text(fields["ExpiredObjectDeleteMarker"][0])
    if flag not in ("true", "false"):
        raise errors.MalformedXML()
    return {"expired_object_delete_marker": flag == "true"}


def _noncurrent_expiration(node: ET.Element, checks: _Checks) -> _Actions:
    fields = _children(node, {"NoncurrentDays", "NewerNoncurrentVersions"})
    if not fields:
        raise errors.MalformedXML()
    days = _int(fields["NoncurrentDays"][0]) if "NoncurrentDays" in fields else 0
    _positive(
        days,
        "'NoncurrentDays' for NoncurrentVersionExpiration action must be a positive integer",
        "NoncurrentDays",
        checks,
    )
    newer = None
    if "NewerNoncurrentVersions" in fields:
        newer = _int(fields["NewerNoncurrentVersions"][0])
        if not 0 < newer <= MAX_NEWER_NONCURRENT:
            checks.add(
                errors.InvalidArgument(
                    "'NewerNoncurrentVersions' for NoncurrentVersionExpiration action must be "
                    f"a positive integer up to {MAX_NEWER_NONCURRENT}",
                    ArgumentName="NewerNoncurrentVersions",
                    ArgumentValue=str(newer),
                )
            )
    return {"noncurrent_days": days, "newer_noncurrent_versions": newer}


def _abort_upload(node: ET.Element, checks: _Checks) -> _Actions:
    fields = _children(node, {"DaysAfterInitiation"})
    if not fields:
        raise errors.MalformedXML()
    message = (
        "'DaysAfterInitiation' for AbortIncompleteMultipartUpload action must be a positive integer"
    )
    days = _positive(_int(fields["DaysAfterInitiation"][0]), message, "DaysAfterInitiation", checks)
    return {"abort_upload_days": days}


def _transition(node: ET.Element, noncurrent: bool, checks: _Checks) -> None:
    """Checked as S3 would, so that a broken document gets S3's answer, then refused."""
    checks.transitions = True
    if noncurrent:
        fields = _children(node, {"NoncurrentDays", "StorageClass", "NewerNoncurrentVersions"})
        when = {"NoncurrentDays"}
    else:
        fields = _children(node, {"Days", "Date", "StorageClass"})
        when = {"Days", "Date"}
    if "StorageClass" not in fields or _text(fields["StorageClass"][0]) not in TRANSITION_CLASSES:
        raise errors.MalformedXML()
    if len(when & set(fields)) != 1:
        raise errors.MalformedXML()
    for name in ("Days", "NoncurrentDays"):
        if name in fields and _int(fields[name][0]) < 0:
            checks.add(
                errors.InvalidArgument(f"'{name}' for Transition action must not be negative")
            )
    if "Date" in fields:
        _date(fields["Date"][0], checks)


_RULE_FIELDS = {
    "ID", "Status", "Prefix", "Filter", "Expiration", "Transition",
    "NoncurrentVersionTransition", "NoncurrentVersionExpiration",
    "AbortIncompleteMultipartUpload",
}  # fmt: skip


def _rule(node: ET.Element, checks: _Checks) -> LifecycleRule:
    fields = _children(
        node, _RULE_FIELDS, repeated=frozenset({"Transition", "NoncurrentVersionTransition"})
    )
    status = _text(fields["Status"][0]) if "Status" in fields else ""
    if status not in ("Enabled", "Disabled"):
        raise errors.MalformedXML()
    if ("Prefix" in fields) == ("Filter" in fields):
        raise errors.MalformedXML()  # exactly one: the rule's own Prefix, or a Filter
    if "Prefix" in fields:
        rule_filter = LifecycleFilter(prefix=fields["Prefix"][0].text or "")
    else:
        rule_filter = _filter(fields["Filter"][0], checks)
    actions = _Actions()
    if "Expiration" in fields:
        actions.update(_expiration(fields["Expiration"][0], checks))
    if "NoncurrentVersionExpiration" in fields:
        actions.update(_noncurrent_expiration(fields["NoncurrentVersionExpiration"][0], checks))
    if "AbortIncompleteMultipartUpload" in fields:
        actions.update(_abort_upload(fields["AbortIncompleteMultipartUpload"][0], checks))
    for name in ("Transition", "NoncurrentVersionTransition"):
        for transition in fields.get(name, []):
            _transition(transition, name != "Transition", checks)
    rule_id = (fields["ID"][0].text or "") if "ID" in fields else ""
    if len(rule_id) > MAX_ID_CHARS:
        checks.add(
            errors.InvalidArgument(f"ID length should not exceed allowed limit of {MAX_ID_CHARS}")
        )
    if not actions and not ({"Transition", "NoncurrentVersionTransition"} & set(fields)):
        checks.add(errors.InvalidRequest("At least one action needs to be specified in a rule"))
    if rule_filter.tags and actions.get("expired_object_delete_marker"):
        checks.add(errors.InvalidRequest("ExpiredObjectDeleteMarker cannot be specified with tags"))
    if rule_filter.tags and "abort_upload_days" in actions:
        checks.add(
            errors.InvalidRequest("AbortIncompleteMultipartUpload cannot be specified with Tags.")
        )
    return LifecycleRule(
        # S3 names a rule sent without an ID itself.
        id=rule_id or base64.b64encode(str(uuid.uuid4()).encode()).decode(),
        enabled=status == "Enabled",
        filter=rule_filter,
        legacy_prefix="Prefix" in fields,
        **actions,
    )


def parse_configuration(body: bytes) -> tuple[LifecycleRule, ...]:
    """A LifecycleConfiguration (1 to 1000 rules, unique IDs) as S3 checks it."""
    root = parse(body)
    if root.tag != "LifecycleConfiguration" or any(child.tag != "Rule" for child in root):
        raise errors.MalformedXML()
    if not 0 < len(root) <= MAX_RULES:
        raise errors.MalformedXML()
    checks = _Checks()
    rules = tuple(_rule(node, checks) for node in root)
    if checks.problems:
        raise checks.problems[0]
    ids = [rule.id for rule in rules]
    if len(set(ids)) != len(ids):
        raise errors.InvalidArgument(
            "Rule ID must be unique. Found same ID for more than one rule",
            ArgumentName="ID",
            ArgumentValue=next(rule_id for rule_id in ids if ids.count(rule_id) > 1),
        )
    if checks.transitions:
        raise errors.NotImplementedOperation(_TRANSITIONS_REFUSED)
    return rules


# -- the answer of GET -------------------------------------------------------------------------


def _render_filter(rule: LifecycleRule) -> str:
    shape = rule.filter
    if rule.legacy_prefix:
        return element("Prefix", shape.prefix or "")
    inner = element("Prefix", shape.prefix) if shape.prefix is not None else ""
    inner += "".join(
        f"<Tag>{element('Key', key)}{element('Value', value)}</Tag>" for key, value in shape.tags
    )
    if shape.size_greater_than is not None:
        inner += element("ObjectSizeGreaterThan", shape.size_greater_than)
    if shape.size_less_than is not None:
        inner += element("ObjectSizeLessThan", shape.size_less_than)
    if shape.conjunction:
        inner = f"<And>{inner}</And>"
    return f"<Filter>{inner}</Filter>"


def render_configuration(rules: tuple[LifecycleRule, ...]) -> bytes:
    """The document GetBucketLifecycleConfiguration answers, in the element order of S3's."""
    parts = []
    for rule in rules:
        inner = ""
        if rule.expiration_days is not None:
            inner += f"<Expiration>{element('Days', rule.expiration_days)}</Expiration>"
        elif rule.expiration_date is not None:
            inner += f"<Expiration>{element('Date', iso8601(rule.expiration_date))}</Expiration>"
        elif rule.expired_object_delete_marker is not None:
            flag = element("ExpiredObjectDeleteMarker", rule.expired_object_delete_marker)
            inner += f"<Expiration>{flag}</Expiration>"
        inner += element("ID", rule.id) + _render_filter(rule)
        inner += element("Status", "Enabled" if rule.enabled else "Disabled")
        if rule.noncurrent_days is not None:
            noncurrent = element("NoncurrentDays", rule.noncurrent_days)
            if rule.newer_noncurrent_versions is not None:
                noncurrent += element("NewerNoncurrentVersions", rule.newer_noncurrent_versions)
            inner += f"<NoncurrentVersionExpiration>{noncurrent}</NoncurrentVersionExpiration>"
        if rule.abort_upload_days is not None:
            days = element("DaysAfterInitiation", rule.abort_upload_days)
            inner += f"<AbortIncompleteMultipartUpload>{days}</AbortIncompleteMultipartUpload>"
        parts.append(f"<Rule>{inner}</Rule>")
    return document("LifecycleConfiguration", "".join(parts))


# -- handlers ---------------------------------------------------------------------------------


async def handle_put_bucket_lifecycle(req: Request, store: ObjectStore) -> Response:
    assert req.bucket is not None
    bucket = await store.bucket(req.bucket)
    rules = parse_configuration(await read_checked_body(req))
    await save_rules(store, bucket, rules)
    return Response(200)


async def handle_get_bucket_lifecycle(req: Request, store: ObjectStore) -> Response:
    assert req.bucket is not None
    bucket = await store.bucket(req.bucket)
    rules = await store.bucket_settings.lifecycle_rules(bucket)
    if not rules:
        raise errors.NoSuchLifecycleConfiguration(BucketName=req.bucket)
    return Response(200, {"content-type": "application/xml"}, render_configuration(rules))


async def handle_delete_bucket_lifecycle(req: Request, store: ObjectStore) -> Response:
    assert req.bucket is not None
    bucket = await store.bucket(req.bucket)
    await save_rules(store, bucket, ())
    return Response(204)
