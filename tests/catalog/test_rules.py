"""The catalog's rules (egide.catalog.rules): the decisions every backend shares, checked on
domain values alone (the contract suite checks them through each backend's facts)."""

from __future__ import annotations

from dataclasses import replace

import pytest

from egide.catalog import rules
from egide.catalog.rules import (
    CredentialsRecord,
    LegacySettingsRecord,
    PackFile,
    SettingsRecord,
    ShardFile,
    VersionRecord,
    prefix_end,
)
from egide.domain import (
    NO_BUCKET,
    KeyNotFound,
    ObjectLocked,
    ObjectVersion,
    Part,
    PreconditionFailed,
    WriteCondition,
    amendment_name,
    credentials_record_name,
    legacy_amendment_name,
    legacy_marker_record_name,
    legacy_settings_record_name,
    marker_record_name,
    new_id,
    settings_record_name,
    shard_name,
)

MAX = "\U0010ffff"
NOW = 1_800_000_000.0
SITES = ("paris", "lyon", "lille", "nantes", "brest", "nice")
BUCKET = new_id()


def _version(**changes: object) -> ObjectVersion:
    built = ObjectVersion(
        bucket_id=BUCKET, key="doc.txt", version_id=new_id(), size=10, etag='"e"',
        last_modified=NOW - 60, wrapped_data_key=b"dk", k=4, m=2, block_size=1024 * 1024,
        sites=SITES, headers={},
    )  # fmt: skip
    return replace(built, **changes) if changes else built  # type: ignore[arg-type]


# -- prefix_end -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("prefix", "end"),
    [
        ("abc", "abd"),
        ("a/", "a0"),
        ("", None),
        (MAX, None),
        (MAX * 3, None),
        (f"a{MAX}", "b"),
        (f"a{MAX}{MAX}", "b"),
        ("é", "ê"),
    ],
)
def test_prefix_end(prefix: str, end: str | None) -> None:
    assert prefix_end(prefix) == end


@pytest.mark.parametrize("prefix", ["abc", "a/", "é", f"a{MAX}", "😀"])
def test_prefix_end_bounds_every_extension_of_the_prefix(prefix: str) -> None:
    end = prefix_end(prefix)
    assert end is not None
    assert prefix < end
    for tail in ("", "a", MAX, MAX * 4):
        assert prefix + tail < end


# -- Object Lock --------------------------------------------------------------------------------


def _retained(mode: str, until: float) -> ObjectVersion:
    return _version(retention_mode=mode, retain_until=until)


@pytest.mark.parametrize("mode", ["GOVERNANCE", "COMPLIANCE"])
def test_a_retention_in_force_can_be_extended(mode: str) -> None:
    rules.check_retention_change(_retained(mode, NOW + 60), (mode, NOW + 120), False, NOW)


@pytest.mark.parametrize(
    "new", [("COMPLIANCE", NOW + 30), ("COMPLIANCE", None), (None, None), ("GOVERNANCE", NOW + 90)]
)
def test_a_compliance_retention_in_force_cannot_be_weakened_even_with_the_bypass(
    new: tuple[str | None, float | None],
) -> None:
    with pytest.raises(ObjectLocked, match="COMPLIANCE"):
        rules.check_retention_change(_retained("COMPLIANCE", NOW + 60), new, True, NOW)


@pytest.mark.parametrize("new", [("GOVERNANCE", NOW + 30), (None, None), ("COMPLIANCE", NOW + 90)])
def test_a_governance_retention_is_weakened_only_with_the_bypass(
    new: tuple[str | None, float | None],
) -> None:
    version = _retained("GOVERNANCE", NOW + 60)
    with pytest.raises(ObjectLocked, match="x-amz-bypass-governance-retention"):
        rules.check_retention_change(version, new, False, NOW)
    rules.check_retention_change(version, new, True, NOW)


def test_a_retention_past_at_the_time_given_can_be_changed_at_will() -> None:
    """`now` is the caller's clock: the same retention binds before its date, not after."""
    version = _retained("COMPLIANCE", NOW + 60)
    with pytest.raises(ObjectLocked):
        rules.check_retention_change(version, (None, None), False, NOW)
    rules.check_retention_change(version, (None, None), False, NOW + 61)


def test_a_locked_version_cannot_be_deleted() -> None:
    with pytest.raises(ObjectLocked, match="legal hold"):
        rules.check_delete(_version(legal_hold=True), NOW, bypass_governance=True)
    governance = _retained("GOVERNANCE", NOW + 60)
    with pytest.raises(ObjectLocked, match="GOVERNANCE"):
        rules.check_delete(governance, NOW)
    rules.check_delete(governance, NOW, bypass_governance=True)
    rules.check_delete(governance, NOW + 61)
    with pytest.raises(ObjectLocked, match="COMPLIANCE"):
        rules.check_delete(_retained("COMPLIANCE", NOW + 60), NOW, bypass_governance=True)


def test_a_delete_decided_on_a_version_goes_on_only_while_it_is_current() -> None:
    current = new_id()
    assert rules.still_expected(None, None)
    assert rules.still_expected(None, current)
    assert rules.still_expected(current, current)
    assert not rules.still_expected(current, new_id())
    assert not rules.still_expected(current, None)


# -- writes -------------------------------------------------------------------------------------


def test_a_write_without_condition_always_holds() -> None:
    rules.check_write(_version(), None, _version())


def test_a_conditional_write_is_checked_against_the_newest_version() -> None:
    current = _version(etag='"abc"')
    with pytest.raises(PreconditionFailed):
        rules.check_write(_version(), WriteCondition(if_none_match="*"), current)
    with pytest.raises(PreconditionFailed):
        rules.check_write(_version(), WriteCondition(if_match='"other"'), current)
    with pytest.raises(KeyNotFound):
        rules.check_write(_version(), WriteCondition(if_match="*"), None)
    rules.check_write(_version(), WriteCondition(if_match='"abc"'), current)
    rules.check_write(_version(), WriteCondition(if_none_match="*"), None)


def test_a_null_version_replaces_the_previous_null_version_unless_it_is_locked() -> None:
    previous = _version()
    assert rules.replaced_null(_version(), previous, NOW) == previous
    assert rules.replaced_null(_version(), None, NOW) is None
    assert rules.replaced_null(_version(is_null=False), previous, NOW) is None
    held = _version(legal_hold=True)
    with pytest.raises(ObjectLocked, match="null version"):
        rules.replaced_null(_version(), held, NOW)
    retained = _retained("GOVERNANCE", NOW + 60)
    with pytest.raises(ObjectLocked):
        rules.replaced_null(_version(), retained, NOW)
    assert rules.replaced_null(_version(), retained, NOW + 61) == retained


# -- jobs -------------------------------------------------------------------------------------


def test_a_runner_sees_its_job_s_state_or_that_another_took_it() -> None:
    assert rules.job_state_seen("w1", ("running", "w1")) == "running"
    assert rules.job_state_seen("w1", ("running", "w2")) == "taken"
    assert rules.job_state_seen("w1", ("paused", None)) == "paused"
    assert rules.job_state_seen("w1", ("cancelled", None)) == "cancelled"
    assert rules.job_state_seen("w1", None) == "cancelled"  # the job is gone


# -- files on sites ---------------------------------------------------------------------------


def test_each_kind_of_file_is_told_by_its_name() -> None:
    owner, marker_id = new_id(), new_id()
    assert rules.classify_file("pack-0123") == PackFile("pack-0123")
    assert rules.classify_file(credentials_record_name(3)) == CredentialsRecord()
    record = settings_record_name(new_id())
    assert rules.classify_file(record) == SettingsRecord(record)
    legacy = legacy_settings_record_name(BUCKET, 2)
    assert rules.classify_file(legacy) == LegacySettingsRecord(BUCKET)
    assert rules.classify_file(amendment_name(owner, 1)) == VersionRecord(NO_BUCKET, owner, False)
    assert rules.classify_file(legacy_amendment_name(BUCKET, owner, 1)) == VersionRecord(
        BUCKET, owner, False
    )
    assert rules.classify_file(marker_record_name(marker_id)) == VersionRecord(
        NO_BUCKET, marker_id, True
    )
    assert rules.classify_file(legacy_marker_record_name(BUCKET, marker_id)) == VersionRecord(
        BUCKET, marker_id, True
    )
    assert rules.classify_file(shard_name(owner, 3, 5)) == ShardFile(owner, 3, 5)


@pytest.mark.parametrize("name", ["notes.txt", "a-b", "zz-1-2", "00ff--1", "00ff-x-1", "a-b-c-d"])
def test_a_name_that_is_no_file_of_egide_is_told_apart(name: str) -> None:
    assert rules.classify_file(name) is None


def test_a_pack_file_is_kept_on_the_sites_of_a_live_pack() -> None:
    assert rules.pack_kept("paris", ["lyon", "paris"])
    assert not rules.pack_kept("nice", ["lyon", "paris"])
    assert not rules.pack_kept("paris", None)


def test_an_old_settings_record_is_kept_until_its_bucket_has_a_newer_one() -> None:
    assert rules.legacy_settings_kept(bucket_exists=True, has_current_record=False)
    assert not rules.legacy_settings_kept(bucket_exists=True, has_current_record=True)
    assert not rules.legacy_settings_kept(bucket_exists=False, has_current_record=False)


def test_a_version_record_is_kept_while_its_version_is() -> None:
    version_id, other = new_id(), new_id()
    amendment = VersionRecord(NO_BUCKET, version_id, marker=False)
    assert rules.record_kept(amendment, (BUCKET, False))
    assert rules.record_kept(amendment, (BUCKET, True))
    assert not rules.record_kept(amendment, None)
    legacy = VersionRecord(BUCKET, version_id, marker=False)
    assert rules.record_kept(legacy, (BUCKET, False))
    assert not rules.record_kept(legacy, (other, False))  # another bucket's version
    marker = VersionRecord(NO_BUCKET, version_id, marker=True)
    assert rules.record_kept(marker, (BUCKET, True))
    assert not rules.record_kept(marker, (BUCKET, False))  # no longer a delete marker


def test_a_version_keeps_its_own_pieces_on_its_sites_only() -> None:
    owner = new_id()
    assert rules.shard_kept("lyon", ShardFile(owner, 0, 1), SITES, (), packed=False)
    assert not rules.shard_kept("paris", ShardFile(owner, 0, 1), SITES, (), packed=False)
    assert not rules.shard_kept("lyon", ShardFile(owner, 0, 9), SITES, (), packed=False)
    assert not rules.shard_kept("lyon", ShardFile(owner, 0, 1), SITES, (), packed=True)


def test_a_completed_upload_keeps_the_part_attempts_it_was_completed_from() -> None:
    owner = new_id()
    parts = (Part(1, 4, 10, '"a"'), Part(2, 7, 10, '"b"'))
    assert rules.shard_kept("paris", ShardFile(owner, 4, 0), SITES, parts, packed=False)
    assert rules.shard_kept("paris", ShardFile(owner, 7, 0), SITES, parts, packed=False)
    assert not rules.shard_kept("paris", ShardFile(owner, 5, 0), SITES, parts, packed=False)
    # A part named by its own file id has no files under the version's id.
    own = (Part(1, 4, 10, '"a"', pid=new_id()),)
    assert not rules.shard_kept("paris", ShardFile(owner, 4, 0), SITES, own, packed=False)


def test_a_part_file_is_kept_while_its_version_keeps_that_part() -> None:
    pid = new_id()
    parts = (Part(1, 4, 10, '"a"', pid=pid),)
    assert rules.part_file_kept("lille", ShardFile(pid, 0, 2), SITES, parts)
    assert not rules.part_file_kept("paris", ShardFile(pid, 0, 2), SITES, parts)
    assert not rules.part_file_kept("lille", ShardFile(pid, 0, 2), SITES, (Part(1, 5, 10, "x"),))
