"""Lifecycle rules of a bucket, and the background pass that applies them.

The rules are the bucket setting SETTING (JSON), written by PutBucketLifecycleConfiguration.
A pass walks each bucket that has rules, key by key in pages of the catalog's version listing,
and acts on what is due. Every action is one catalog transaction made conditional on what it
was decided on (the version still current, the upload still there), so a pass can stop anywhere
— crash, shutdown — and the next one continues; two passes at once (several server processes)
never act twice, and a version written after evaluation is never removed nor hidden.

Days are counted as S3 counts them
(https://docs.aws.amazon.com/AmazonS3/latest/userguide/lifecycle-expire-general-considerations.html):
from the object's creation (for a noncurrent version, from the creation of the version that
replaced it), plus the rule's days, rounded up to the next midnight UTC.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from typing import TYPE_CHECKING

from egide.domain import (
    Bucket,
    BucketNotFound,
    KeyNotFound,
    NoSuchUpload,
    ObjectLocked,
    ObjectVersion,
    PreconditionFailed,
    SitesUnavailable,
    WriteCondition,
    new_id,
)
from egide.engine.changes import put_bucket_setting
from egide.engine.events import EventKind, asking
from egide.engine.lifecyclerules import (
    DAY,
    SETTING,
    LifecycleRule,
    bucket_rules,
    due,
    dumps_rules,
)
from egide.engine.markers import commit_marker, marker_version
from egide.engine.versioning import versioning_status

if TYPE_CHECKING:
    from egide.engine.store import ObjectStore

log = logging.getLogger("egide.lifecycle")
#: Where s3/tagging.py keeps an object's tags in its version's headers (query-encoded).
#: Versions (or uploads) read from the catalog at a time: a bucket is never loaded whole.
PAGE = 500


async def save_rules(store: ObjectStore, bucket: Bucket, rules: tuple[LifecycleRule, ...]) -> None:
    """Replace the bucket's rules (none: remove the configuration)."""
    await put_bucket_setting(store, bucket, SETTING, dumps_rules(rules) if rules else None)


# -- the pass ----------------------------------------------------------------------------------


@dataclass
class LifecycleReport:
    """What one pass did, per action, and what it left alone."""

    #: Current versions removed for good (a bucket whose versioning was never enabled).
    expired: int = 0
    #: Delete markers added over expired current versions (a versioned bucket).
    delete_markers_added: int = 0
    #: Delete markers removed because no other version of their key was left.
    delete_markers_removed: int = 0
    noncurrent_removed: int = 0
    uploads_aborted: int = 0
    #: Due, but Object Lock protects the version: kept.
    locked: int = 0
    #: Due, but written, removed or completed since evaluated: left to the next pass.
    changed: int = 0
    #: Due, but no site could take the delete marker's record: left to the next pass.
    unrecorded: int = 0

    @property
    def actions(self) -> int:
        return (
            self.expired + self.delete_markers_added + self.delete_markers_removed
            + self.noncurrent_removed + self.uploads_aborted
        )  # fmt: skip


#: Who asked, in the events of a lifecycle pass.
LIFECYCLE = "egide:lifecycle"


async def apply_lifecycle(store: ObjectStore, now: float, day: float = DAY) -> LifecycleReport:
    """One pass over every bucket with enabled rules, as if the time were `now`; `day` is the
    length of a lifecycle day (shorter only in tests)."""
    report = LifecycleReport()
    token = asking.set(LIFECYCLE)  # the changes of this pass are its own, not a client's
    try:
        for bucket in await store.catalog.list_buckets():
            rules = tuple(
                rule for rule in await bucket_rules(store.catalog, bucket.id) if rule.enabled
            )
            if not rules:
                continue
            status = await versioning_status(store.catalog, bucket.id)
            scan = _BucketPass(store, bucket, rules, status, now, day, report)
            try:
                await scan.versions()
                await scan.uploads()
            except BucketNotFound:
                continue  # deleted during the pass
    finally:
        asking.reset(token)
    return report


@dataclass
class _KeyState:
    """What the pass knows of the key it is walking, newest version first."""

    key: str
    #: The key's newest version when the pass reached it (None: not seen, or removed).
    current: ObjectVersion | None = None
    #: Id of the key's newest version now: the condition of every removal in this key.
    current_id: bytes | None = None
    #: last_modified of the version just newer than the next one: when that one became
    #: noncurrent.
    successor_time: float | None = None
    #: Noncurrent versions kept so far (all newer than the next one).
    newer_noncurrent: int = 0
    #: Versions of the key left, as far as the pass knows.
    remaining: int = 0


class _BucketPass:
    def __init__(
        self, store: ObjectStore, bucket: Bucket, rules: tuple[LifecycleRule, ...],
        status: str | None, now: float, day: float, report: LifecycleReport,
    ) -> None:  # fmt: skip
        self.store = store
        self.catalog = store.catalog
        self.bucket = bucket
        self.rules = rules
        self.status = status
        self.now, self.day = now, day
        self.report = report

    def _log(self, rule: LifecycleRule, what: str, version: ObjectVersion) -> None:
        log.info("lifecycle rule %r of bucket %s: %s %r (version %s)", rule.id,
                 self.bucket.name, what, version.key, version.s3_version_id)  # fmt: skip

    # -- versions --------------------------------------------------------------------------

    async def versions(self) -> None:
        rules = [rule for rule in self.rules if rule.acts_on_versions]
        if not rules:
            return
        # Key prefixes, not paths: character by character is what is meant.
        prefix = os.path.commonprefix([rule.filter.prefix or "" for rule in rules])  # noqa: RUF071
        after: tuple[str, int] | None = None
        state: _KeyState | None = None
        while True:
            rows = await self.catalog.list_versions(self.bucket.id, prefix, after, PAGE)
            for version, latest in rows:
                if state is None or version.key != state.key:
                    if state is not None:
                        await self._end_of_key(state)
                    state = _KeyState(version.key)
                await self._version(state, version, latest)
                state.successor_time = version.last_modified
                after = (version.key, version.seq)
            if len(rows) < PAGE:
                break
        if state is not None:
            await self._end_of_key(state)

    async def _version(self, state: _KeyState, version: ObjectVersion, latest: bool) -> None:
        if latest and state.successor_time is None:
            state.current, state.current_id = version, version.version_id
            state.remaining += 1
            if not version.delete_marker:
                await self._expire_current(state, version)
        elif state.successor_time is not None:
            await self._expire_noncurrent(state, version, state.successor_time)
        # Else the key changed between two pages: the next pass sees it whole.

    async def _expire_current(self, state: _KeyState, version: ObjectVersion) -> None:
        rule = next(
            (
                rule
                for rule in self.rules
                if rule.expires(version.last_modified, self.now, self.day)
                and rule.filter.matches_version(version)
            ),
            None,
        )
        if rule is None:
            return
        if self.status is None:
            await self._remove_current(state, version, rule)
        else:
            await self._add_marker(state, version, rule)

    async def _remove_newest(self, version: ObjectVersion) -> bool:
        """Remove `version` if it is still its key's newest and no lock protects it; else
        count why not and answer False."""
        try:
            removed = await self.catalog.delete_version(
                self.bucket.id, version.key, _catalog_id(version), expected=version.version_id
            )
        except ObjectLocked:
            self.report.locked += 1
            return False
        if removed is None:
            self.report.changed += 1
            return False
        self.store.announce_version(EventKind.OBJECT_REMOVED, self.bucket.name, removed)
        return True

    async def _remove_current(
        self, state: _KeyState, version: ObjectVersion, rule: LifecycleRule
    ) -> None:
        """Versioning never enabled: the object goes, unless a newer one was written since."""
        if not await self._remove_newest(version):
            return
        self.report.expired += 1
        self._log(rule, "expired", version)
        state.current = state.current_id = None
        state.remaining -= 1

    async def _add_marker(
        self, state: _KeyState, version: ObjectVersion, rule: LifecycleRule
    ) -> None:
        """A versioned bucket keeps the version (noncurrent now) under a delete marker, null
        while versioning is suspended (replacing the null version), as DeleteObject does."""
        marker = marker_version(
            self.bucket.id, new_id(), version.key, self.now, is_null=self.status == "Suspended"
        )
        try:
            await commit_marker(
                self.store.vault, self.bucket, marker, WriteCondition(if_version=version.version_id)
            )
        except ObjectLocked:  # the null version a null marker would replace is locked
            self.report.locked += 1
            return
        except (PreconditionFailed, KeyNotFound):
            self.report.changed += 1
            return
        except SitesUnavailable as exc:
            log.warning("lifecycle rule %r of bucket %s: %s", rule.id, self.bucket.name, exc)
            self.report.unrecorded += 1
            return
        self.report.delete_markers_added += 1
        self.store.announce_version(EventKind.DELETE_MARKER_CREATED, self.bucket.name, marker)
        self._log(rule, "added a delete marker over", version)
        state.current_id = marker.version_id
        if not (marker.is_null and version.is_null):
            state.remaining += 1  # else the marker replaced the version
            state.newer_noncurrent += 1

    async def _expire_noncurrent(
        self, state: _KeyState, version: ObjectVersion, noncurrent_since: float
    ) -> None:
        state.remaining += 1
        rule = next(
            (
                rule
                for rule in self.rules
                if rule.noncurrent_days is not None
                and due(noncurrent_since, rule.noncurrent_days, self.day) <= self.now
                and state.newer_noncurrent >= (rule.newer_noncurrent_versions or 0)
                and rule.filter.matches_version(version)
            ),
            None,
        )
        if rule is None or state.current_id is None:
            state.newer_noncurrent += 1
            return
        try:
            # Conditional on the key's newest version: if that changed, this one may have
            # become current again (a client removed the newer ones) and must stay.
            removed = await self.catalog.delete_version(
                self.bucket.id, version.key, _catalog_id(version), expected=state.current_id
            )
        except ObjectLocked:
            self.report.locked += 1
            state.newer_noncurrent += 1
            return
        if removed is None:
            self.report.changed += 1
            state.newer_noncurrent += 1
            return
        self.report.noncurrent_removed += 1
        self.store.announce_version(EventKind.OBJECT_REMOVED, self.bucket.name, removed)
        self._log(rule, "removed noncurrent", version)
        state.remaining -= 1

    async def _end_of_key(self, state: _KeyState) -> None:
        """A delete marker left alone (an "expired object delete marker") goes, by a rule with
        ExpiredObjectDeleteMarker, or one whose Days or Date it has reached (S3 does both)."""
        marker = state.current
        if marker is None or not marker.delete_marker or state.remaining != 1:
            return
        rule = next(
            (
                rule
                for rule in self.rules
                if (
                    rule.expired_object_delete_marker
                    or rule.expires(marker.last_modified, self.now, self.day)
                )
                and rule.filter.matches_version(marker)
            ),
            None,
        )
        if rule is None or not await self._remove_newest(marker):
            return
        self.report.delete_markers_removed += 1
        self._log(rule, "removed the expired delete marker of", marker)

    # -- multipart uploads -----------------------------------------------------------------

    async def uploads(self) -> None:
        """AbortIncompleteMultipartUpload: uploads started DaysAfterInitiation days ago. The
        rule's prefix is its only condition (S3 refuses tag filters with this action)."""
        for rule in self.rules:
            if rule.abort_upload_days is None:
                continue
            after: tuple[str, bytes] | None = None
            while True:
                batch = await self.catalog.list_uploads(
                    self.bucket.id, rule.filter.prefix or "", after, PAGE
                )
                kept = after  # the listing resumes after an upload still there
                for upload in batch:
                    if due(upload.created, rule.abort_upload_days, self.day) > self.now:
                        kept = (upload.key, upload.upload_id)
                        continue
                    try:
                        await self.catalog.abort_upload(upload.upload_id)
                    except NoSuchUpload:
                        self.report.changed += 1  # completed or aborted meanwhile
                        continue
                    self.report.uploads_aborted += 1
                    log.info("lifecycle rule %r of bucket %s: aborted upload %s of %r",
                             rule.id, self.bucket.name, upload.upload_id.hex(),
                             upload.key)  # fmt: skip
                if len(batch) < PAGE:
                    break
                after = kept  # unchanged if the whole page was aborted: list it again


def _catalog_id(version: ObjectVersion) -> bytes | None:
    """How the catalog names a version: None for the key's null version."""
    return None if version.is_null else version.version_id
