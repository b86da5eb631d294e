"""tools/s3tests.py: family classification, configuration writers and junit summary (no network)."""

from __future__ import annotations

import configparser
import importlib.util
import subprocess
import sys
import tomllib
from pathlib import Path
from types import ModuleType

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "tools" / "s3tests.py"


def _load() -> ModuleType:
    spec = importlib.util.spec_from_file_location("egide_tools_s3tests", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up by name
    spec.loader.exec_module(module)
    return module


s3t = _load()


@pytest.mark.parametrize(
    ("name", "family"),
    [
        ("test_bucket_list_empty", "list_objects"),
        ("test_bucket_list_delimiter_basic", "list_objects"),
        ("test_bucket_listv2_continuationtoken", "list_objects_v2"),
        ("test_basic_key_count", "list_objects_v2"),
        ("test_multipart_upload_small", "multipart"),
        ("test_abort_multipart_upload_not_found", "multipart"),
        ("test_multipart_checksum_sha256", "checksums"),
        ("test_object_checksum_crc64nvme", "checksums"),
        ("test_versioning_obj_create_read_remove", "versioning"),
        ("test_delete_marker_versioned", "versioning"),
        ("test_object_copy_same_bucket", "copy"),
        ("test_copy_object_ifmatch_good", "conditional"),
        ("test_get_object_ifmodifiedsince_failed", "conditional"),
        ("test_put_object_ifmatch_good", "conditional_write"),
        ("test_delete_objects_current_if_match_size", "conditional_write"),
        ("test_cors_origin_response", "cors"),
        ("test_cors_presigned_get_object_v2", "cors"),
        ("test_set_bucket_tagging", "tagging"),
        ("test_put_max_tags", "tagging"),
        ("test_object_lock_put_obj_retention", "object_lock"),
        ("test_lifecycle_set_filter", "lifecycle"),
        ("test_post_object_anonymous_request", "post_object"),
        ("test_multi_object_delete", "delete_objects"),
        ("test_multi_objectv2_delete_key_limit", "delete_objects"),
        ("test_bucket_create_naming_good_long_63", "bucket"),
        ("test_buckets_create_then_list", "bucket"),
        ("test_list_buckets_paginated", "bucket"),
        ("test_bucket_head_notexist", "bucket"),
        ("test_object_write_check_etag", "object_put"),
        ("test_object_create_bad_md5_bad", "object_put"),
        ("test_object_read_not_exist", "object_get"),
        ("test_object_head_zero_bytes", "object_head"),
        ("test_ranged_request_invalid_range", "ranges"),
        ("test_object_acl_canned_publicreadwrite", "acl"),
        ("test_access_bucket_private_object_private", "acl"),
        ("test_bucket_policy_acl", "policy"),
        ("test_block_public_put_bucket_acls", "policy"),
        ("test_encryption_sse_c_present", "encryption"),
        ("test_sse_kms_transfer_1b", "encryption"),
        ("test_object_raw_get_x_amz_expires_out_max_range", "presigned"),
        ("test_object_raw_authenticated_bucket_gone", "presigned"),
        ("test_object_create_bad_authorization_empty", "auth"),
        ("test_bucket_create_bad_date_none_aws2", "auth_sigv2"),
        ("test_bucket_logging_flush_j", "bucket_logging"),
        ("test_get_object_attributes", "object_attributes"),
        ("test_generate", "other"),
        ("test_bucket_list_many[param-1]", "list_objects"),
    ],
)
def test_family_of(name: str, family: str) -> None:
    assert s3t.family_of(name) == family


def test_write_conf_has_what_the_suite_reads(tmp_path: Path) -> None:
    users = s3t.default_users()
    path = s3t.write_conf(tmp_path / "s3tests.conf", "http://127.0.0.1:9123", users, "eg-{random}-")
    cfg = configparser.RawConfigParser()
    cfg.read(path)
    assert cfg.defaults() == {
        "host": "127.0.0.1",
        "port": "9123",
        "is_secure": "False",
        "ssl_verify": "False",
    }
    assert cfg.get("fixtures", "bucket prefix") == "eg-{random}-"
    for section, user in (("s3 main", users.main), ("s3 alt", users.alt)):
        assert cfg.get(section, "access_key") == user.access_key
        assert cfg.get(section, "secret_key") == user.secret_key
        for option in ("display_name", "user_id", "email"):
            assert cfg.get(section, option)
    assert cfg.get("s3 tenant", "access_key") == users.tenant.access_key
    assert cfg.get("s3 tenant", "tenant") == "testx"
    # configure() reads these sections unconditionally
    for section in ("iam", "iam root", "iam alt root"):
        assert cfg.get(section, "access_key")
        assert cfg.get(section, "secret_key")


def test_write_conf_https(tmp_path: Path) -> None:
    users = s3t.default_users()
    path = s3t.write_conf(tmp_path / "c.conf", "https://s3.example:8443", users, "p-")
    cfg = configparser.RawConfigParser()
    cfg.read(path)
    assert cfg.getboolean("DEFAULT", "is_secure") is True
    assert cfg.get("DEFAULT", "port") == "8443"
    with pytest.raises(ValueError):
        s3t.write_conf(tmp_path / "d.conf", "ftp://x", users, "p-")


def test_server_toml_has_three_credentials(tmp_path: Path) -> None:
    users = s3t.default_users()
    config = tomllib.loads(s3t.server_toml(tmp_path / "data", 9321, users))
    assert config["listen"] == "127.0.0.1:9321"
    assert [c["access_key"] for c in config["credentials"]] == [
        users.main.access_key,
        users.alt.access_key,
        users.tenant.access_key,
    ]


JUNIT = """<?xml version="1.0" encoding="utf-8"?>
<testsuites><testsuite name="pytest" tests="5">
<testcase classname="s3tests.functional.test_s3" name="test_bucket_list_empty" time="0.1"/>
<testcase classname="s3tests.functional.test_s3" name="test_multipart_upload" time="0.1">
  <failure message="botocore.exceptions.ClientError: NotImplemented&#10;more">tb</failure>
</testcase>
<testcase classname="s3tests.functional.test_s3" name="test_bucket_get_location" time="0">
  <skipped type="pytest.skip" message="no api_name configured">skip</skipped>
</testcase>
<testcase classname="s3tests.functional.test_s3" name="test_bucket_listv2_many" time="0.1">
  <error message="failed on teardown">tb</error>
</testcase>
<testcase classname="s3tests.functional.test_headers" name="test_object_create_bad_md5_bad"
  time="0.1"/>
</testsuite></testsuites>
"""


def test_parse_and_summarize_junit(tmp_path: Path) -> None:
    path = tmp_path / "junit.xml"
    path.write_text(JUNIT)
    results = s3t.parse_junit(path)
    assert [(r.name, r.outcome) for r in results] == [
        ("test_bucket_list_empty", "passed"),
        ("test_multipart_upload", "failed"),
        ("test_bucket_get_location", "skipped"),
        ("test_bucket_listv2_many", "errored"),
        ("test_object_create_bad_md5_bad", "passed"),
    ]
    assert results[1].message == "botocore.exceptions.ClientError: NotImplemented"
    assert results[4].module == "test_headers"
    summary = s3t.summarize(results)
    assert s3t.asdict(summary.totals) == {"passed": 2, "failed": 1, "errored": 1, "skipped": 1}
    assert s3t.asdict(summary.families["list_objects_v2"]) == {
        "passed": 0,
        "failed": 0,
        "errored": 1,
        "skipped": 0,
    }
    table = s3t.render_table(summary)
    assert table.splitlines()[0].split() == [
        "family",
        "passed",
        "failed",
        "errored",
        "skipped",
        "total",
    ]
    assert table.splitlines()[-1].split() == ["TOTAL", "2", "1", "1", "1", "5"]


def test_marker_expression() -> None:
    assert s3t.marker_expression(["a", "b"], None) == "not a and not b"
    assert s3t.marker_expression(["a"], "x or y") == "not a and (x or y)"
    assert s3t.marker_expression([], None) == ""


def test_the_profile_deselects_what_it_names(tmp_path: Path) -> None:
    """The node ids given to --deselect are the suite's own (relative to its root, where the
    run starts): pytest, run as the script runs it, leaves the named test out."""
    functional = tmp_path / "s3tests" / "functional"
    functional.mkdir(parents=True)
    tests = "def test_kept():\n    pass\n\n\ndef test_out():\n    pass\n"
    (functional / "test_s3.py").write_text(tests)
    cmd = s3t.pytest_command(
        Path(sys.executable), functional, tmp_path / "junit.xml", markers="", keyword=None,
        ignored=[], timeout=60, workers=1, plugin=False, extra=["-p", "no:randomly"],
        files=["test_s3.py"], deselected=["test_s3.py::test_out"],
    )  # fmt: skip
    cmd = [c for c in cmd if not c.startswith("--timeout")] + ["--collect-only"]
    done = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, check=False)
    assert "test_kept" in done.stdout and "test_out" not in done.stdout, done.stdout
    assert "1 deselected" in done.stdout
