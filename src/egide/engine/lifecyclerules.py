"""A bucket's lifecycle rules as values: what each rule selects and when it is due, and their
stored form (the `lifecycle` bucket setting). Apart from egide.engine.lifecycle, which applies
them, so that reading a bucket's rules (egide.engine.bucketsettings) needs nothing of the store.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from typing import Any
from urllib.parse import unquote

from egide.catalog.base import Catalog
from egide.domain import TAGGING_HEADER, ObjectVersion

SETTING = "lifecycle"
DAY = 86_400.0


@dataclass(frozen=True)
class LifecycleFilter:
    """Which objects a rule applies to; every condition set must hold (an empty filter: all)."""

    prefix: str | None = None
    tags: tuple[tuple[str, str], ...] = ()
    size_greater_than: int | None = None
    size_less_than: int | None = None
    #: Written as `<And>`, so that GET gives the document back in the form it was sent.
    conjunction: bool = False

    def matches(self, key: str, size: int, tags: dict[str, str]) -> bool:
        return (
            key.startswith(self.prefix or "")
            and all(tags.get(name) == value for name, value in self.tags)
            and (self.size_greater_than is None or size > self.size_greater_than)
            and (self.size_less_than is None or size < self.size_less_than)
        )

    def matches_version(self, version: ObjectVersion) -> bool:
        return self.matches(version.key, version.size, version_tags(version))


@dataclass(frozen=True)
class LifecycleRule:
    id: str
    enabled: bool
    filter: LifecycleFilter = field(default_factory=LifecycleFilter)
    #: The filter came as the rule's own `<Prefix>` (the older form of the API).
    legacy_prefix: bool = False
    expiration_days: int | None = None
    #: Epoch seconds of a midnight UTC.
    expiration_date: float | None = None
    #: None: not in the document (kept apart from false so that GET gives it back as sent).
    expired_object_delete_marker: bool | None = None
    noncurrent_days: int | None = None
    newer_noncurrent_versions: int | None = None
    abort_upload_days: int | None = None

    @property
    def acts_on_versions(self) -> bool:
        return (
            self.expiration_days is not None
            or self.expiration_date is not None
            or bool(self.expired_object_delete_marker)
            or self.noncurrent_days is not None
        )

    def expires(self, start: float, now: float, day: float) -> bool:
        """Whether Expiration (Days or Date) is due for a version created at `start`."""
        if self.expiration_days is not None:
            return due(start, self.expiration_days, day) <= now
        return self.expiration_date is not None and self.expiration_date <= now


def due(start: float, days: int, day: float = DAY) -> float:
    """When `days` counted from `start` are over: rounded up to the next midnight UTC, which,
    with `day` as the length of a day, is the next multiple of `day` since the epoch."""
    return math.ceil((start + days * day) / day) * day


def version_tags(version: ObjectVersion) -> dict[str, str]:
    """The version's tags, decoded from the form s3/tagging.py stores."""
    tags: dict[str, str] = {}
    for pair in filter(None, version.headers.get(TAGGING_HEADER, "").split("&")):
        name, _, value = pair.partition("=")
        tags[unquote(name)] = unquote(value)
    return tags


def dumps_rules(rules: tuple[LifecycleRule, ...]) -> str:
    return json.dumps([asdict(rule) for rule in rules])


def loads_rules(text: str) -> tuple[LifecycleRule, ...]:
    rules = []
    for data in json.loads(text):
        shape: dict[str, Any] = data.pop("filter")
        shape["tags"] = tuple((name, value) for name, value in shape["tags"])
        rules.append(LifecycleRule(filter=LifecycleFilter(**shape), **data))
    return tuple(rules)


async def bucket_rules(catalog: Catalog, bucket_id: bytes) -> tuple[LifecycleRule, ...]:
    text = await catalog.get_bucket_setting(bucket_id, SETTING)
    return loads_rules(text) if text else ()
