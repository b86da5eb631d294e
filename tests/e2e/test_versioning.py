"""Versioning through boto3 against a real server: version ids, the null version, delete
markers, GET/HEAD/DELETE by version, ListObjectVersions, and the suspended state."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from typing import Any

import pytest
from botocore.exceptions import ClientError


def error_of(exc: pytest.ExceptionInfo[ClientError]) -> tuple[str, int]:
    response = exc.value.response
    return response["Error"]["Code"], response["ResponseMetadata"]["HTTPStatusCode"]


def _enable(s3: Any, bucket: str, status: str = "Enabled") -> None:
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": status})


def _versions(s3: Any, bucket: str, **params: Any) -> list[tuple[str, str, bool, bool]]:
    """(key, version id, is latest, is delete marker) in the order of the XML answer (boto3
    splits versions and delete markers into two lists and loses it)."""
    raw: list[bytes] = []

    def keep(http_response: Any, **_: Any) -> None:
        raw.append(http_response.content)

    s3.meta.events.register("after-call.s3.ListObjectVersions", keep)
    try:
        s3.list_object_versions(Bucket=bucket, **params)
    finally:
        s3.meta.events.unregister("after-call.s3.ListObjectVersions", keep)
    root = ET.fromstring(raw[0])
    entries = []
    for node in root:
        tag = node.tag.split("}")[-1]
        if tag in ("Version", "DeleteMarker"):
            text = {child.tag.split("}")[-1]: child.text or "" for child in node}
            entries.append(
                (text["Key"], text["VersionId"], text["IsLatest"] == "true", tag == "DeleteMarker")
            )
    return entries


def test_versioning_status_round_trip(s3: Any, bucket: str) -> None:
    assert "Status" not in s3.get_bucket_versioning(Bucket=bucket)
    _enable(s3, bucket)
    assert s3.get_bucket_versioning(Bucket=bucket)["Status"] == "Enabled"
    _enable(s3, bucket, "Suspended")
    assert s3.get_bucket_versioning(Bucket=bucket)["Status"] == "Suspended"
    with pytest.raises(ClientError) as exc:
        s3.put_bucket_versioning(
            Bucket=bucket, VersioningConfiguration={"Status": "Enabled", "MFADelete": "Enabled"}
        )
    assert error_of(exc) == ("NotImplemented", 501)
    with pytest.raises(ClientError) as exc:
        s3.put_bucket_versioning(
            Bucket="no-such-bucket-v", VersioningConfiguration={"Status": "Enabled"}
        )
    assert error_of(exc) == ("NoSuchBucket", 404)


def test_every_put_keeps_a_version(s3: Any, bucket: str) -> None:
    _enable(s3, bucket)
    ids = [
        s3.put_object(Bucket=bucket, Key="k", Body=f"v{i}".encode())["VersionId"] for i in range(3)
    ]
    assert len(set(ids)) == 3 and "null" not in ids
    for i, version_id in enumerate(ids):
        got = s3.get_object(Bucket=bucket, Key="k", VersionId=version_id)
        assert got["Body"].read() == f"v{i}".encode()
        assert got["VersionId"] == version_id
        assert s3.head_object(Bucket=bucket, Key="k", VersionId=version_id)["ContentLength"] == 2
    assert s3.get_object(Bucket=bucket, Key="k")["Body"].read() == b"v2"
    listed = s3.list_object_versions(Bucket=bucket)["Versions"]
    assert [v["VersionId"] for v in listed] == ids[::-1]
    assert [v["IsLatest"] for v in listed] == [True, False, False]
    # One current object in the plain listing.
    assert [o["Key"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"]] == ["k"]


def test_delete_marker_hides_and_its_removal_restores(s3: Any, bucket: str) -> None:
    _enable(s3, bucket)
    first = s3.put_object(Bucket=bucket, Key="k", Body=b"data")["VersionId"]
    deleted = s3.delete_object(Bucket=bucket, Key="k")
    assert deleted["DeleteMarker"] is True
    marker = deleted["VersionId"]
    assert marker not in (first, "null")
    with pytest.raises(ClientError) as exc:
        s3.get_object(Bucket=bucket, Key="k")
    assert error_of(exc) == ("NoSuchKey", 404)
    headers = exc.value.response["ResponseMetadata"]["HTTPHeaders"]
    assert headers["x-amz-delete-marker"] == "true"
    assert headers["x-amz-version-id"] == marker
    with pytest.raises(ClientError) as exc:
        s3.get_object(Bucket=bucket, Key="k", VersionId=marker)
    assert error_of(exc) == ("MethodNotAllowed", 405)
    assert "Contents" not in s3.list_objects_v2(Bucket=bucket)
    # The old version is still readable by id.
    assert s3.get_object(Bucket=bucket, Key="k", VersionId=first)["Body"].read() == b"data"
    reply = s3.list_object_versions(Bucket=bucket)
    assert [(d["VersionId"], d["IsLatest"]) for d in reply["DeleteMarkers"]] == [(marker, True)]
    assert [(v["VersionId"], v["IsLatest"]) for v in reply["Versions"]] == [(first, False)]
    # Removing the marker makes the previous version current again.
    removed = s3.delete_object(Bucket=bucket, Key="k", VersionId=marker)
    assert removed["DeleteMarker"] is True and removed["VersionId"] == marker
    assert s3.get_object(Bucket=bucket, Key="k")["Body"].read() == b"data"


def test_delete_version_for_good(s3: Any, bucket: str) -> None:
    _enable(s3, bucket)
    a = s3.put_object(Bucket=bucket, Key="k", Body=b"a")["VersionId"]
    b = s3.put_object(Bucket=bucket, Key="k", Body=b"b")["VersionId"]
    assert s3.delete_object(Bucket=bucket, Key="k", VersionId=b)["VersionId"] == b
    assert s3.get_object(Bucket=bucket, Key="k")["Body"].read() == b"a"
    with pytest.raises(ClientError) as exc:
        s3.get_object(Bucket=bucket, Key="k", VersionId=b)
    assert error_of(exc) == ("NoSuchVersion", 404)
    with pytest.raises(ClientError) as exc:
        s3.get_object(Bucket=bucket, Key="k", VersionId="not-a-version")
    assert error_of(exc) == ("InvalidArgument", 400)
    # A bucket keeps its versions: it cannot be deleted until the last one is gone.
    s3.delete_object(Bucket=bucket, Key="k")  # a marker, the version stays
    with pytest.raises(ClientError) as exc:
        s3.delete_bucket(Bucket=bucket)
    assert error_of(exc) == ("BucketNotEmpty", 409)
    for key, version_id, _, _ in _versions(s3, bucket):
        s3.delete_object(Bucket=bucket, Key=key, VersionId=version_id)
    assert "Versions" not in s3.list_object_versions(Bucket=bucket)
    s3.delete_bucket(Bucket=bucket)
    s3.create_bucket(Bucket=bucket)  # for the fixture's cleanup
    assert a != b


def test_null_version_before_enabling_stays(s3: Any, bucket: str) -> None:
    s3.put_object(Bucket=bucket, Key="k", Body=b"old")
    _enable(s3, bucket)
    new = s3.put_object(Bucket=bucket, Key="k", Body=b"new")["VersionId"]
    assert s3.get_object(Bucket=bucket, Key="k", VersionId="null")["Body"].read() == b"old"
    assert [v[1] for v in _versions(s3, bucket)] == [new, "null"]


def test_suspended_writes_replace_the_null_version(s3: Any, bucket: str) -> None:
    _enable(s3, bucket)
    kept = s3.put_object(Bucket=bucket, Key="k", Body=b"kept")["VersionId"]
    _enable(s3, bucket, "Suspended")
    first = s3.put_object(Bucket=bucket, Key="k", Body=b"null-1")
    assert "VersionId" not in first or first["VersionId"] == "null"
    s3.put_object(Bucket=bucket, Key="k", Body=b"null-2")
    assert [v[1] for v in _versions(s3, bucket)] == ["null", kept]
    assert s3.get_object(Bucket=bucket, Key="k", VersionId="null")["Body"].read() == b"null-2"
    # A delete while suspended replaces the null version with a null delete marker.
    marker = s3.delete_object(Bucket=bucket, Key="k")
    assert marker["DeleteMarker"] is True and marker["VersionId"] == "null"
    assert _versions(s3, bucket) == [("k", "null", True, True), ("k", kept, False, False)]
    # Removing the null marker brings the kept version back.
    s3.delete_object(Bucket=bucket, Key="k", VersionId="null")
    assert s3.get_object(Bucket=bucket, Key="k")["Body"].read() == b"kept"


def test_list_versions_pages_with_markers_and_delimiter(s3: Any, bucket: str) -> None:
    _enable(s3, bucket)
    expected: list[tuple[str, str]] = []
    for key in ("a", "b", "c"):
        ids = [s3.put_object(Bucket=bucket, Key=key, Body=b"x")["VersionId"] for _ in range(3)]
        expected += [(key, i) for i in reversed(ids)]
    for key in ("dir/x", "dir/y"):
        s3.put_object(Bucket=bucket, Key=key, Body=b"x")
    seen: list[tuple[str, str]] = []
    prefixes: list[str] = []
    kwargs: dict[str, Any] = {"MaxKeys": 2, "Delimiter": "/"}
    while True:
        reply = s3.list_object_versions(Bucket=bucket, **kwargs)
        seen += [(v["Key"], v["VersionId"]) for v in reply.get("Versions", [])]
        prefixes += [p["Prefix"] for p in reply.get("CommonPrefixes", [])]
        if not reply["IsTruncated"]:
            break
        kwargs["KeyMarker"] = reply["NextKeyMarker"]
        if "NextVersionIdMarker" in reply:
            kwargs["VersionIdMarker"] = reply["NextVersionIdMarker"]
        else:
            kwargs.pop("VersionIdMarker", None)
    assert seen == expected
    assert prefixes == ["dir/"]
    with pytest.raises(ClientError) as exc:
        s3.list_object_versions(Bucket=bucket, VersionIdMarker=expected[0][1])
    assert error_of(exc) == ("InvalidArgument", 400)


def test_copy_and_tag_a_given_version(s3: Any, bucket: str) -> None:
    _enable(s3, bucket)
    old = s3.put_object(Bucket=bucket, Key="src", Body=b"old")["VersionId"]
    s3.put_object(Bucket=bucket, Key="src", Body=b"new")
    copied = s3.copy_object(
        Bucket=bucket, Key="dst", CopySource={"Bucket": bucket, "Key": "src", "VersionId": old}
    )
    assert copied["CopySourceVersionId"] == old
    assert copied["VersionId"] not in (old, "null")
    assert s3.get_object(Bucket=bucket, Key="dst")["Body"].read() == b"old"
    s3.put_object_tagging(
        Bucket=bucket, Key="src", VersionId=old, Tagging={"TagSet": [{"Key": "t", "Value": "1"}]}
    )
    assert s3.get_object_tagging(Bucket=bucket, Key="src", VersionId=old)["TagSet"] == [
        {"Key": "t", "Value": "1"}
    ]
    assert s3.get_object_tagging(Bucket=bucket, Key="src")["TagSet"] == []
    marker = s3.delete_object(Bucket=bucket, Key="src")["VersionId"]
    with pytest.raises(ClientError) as exc:
        s3.copy_object(
            Bucket=bucket,
            Key="d2",
            CopySource={"Bucket": bucket, "Key": "src", "VersionId": marker},
        )
    assert error_of(exc) == ("InvalidRequest", 400)


def test_multipart_upload_makes_a_version(s3: Any, bucket: str) -> None:
    _enable(s3, bucket)
    first = s3.put_object(Bucket=bucket, Key="k", Body=b"small")["VersionId"]
    upload = s3.create_multipart_upload(Bucket=bucket, Key="k")["UploadId"]
    part = s3.upload_part(Bucket=bucket, Key="k", UploadId=upload, PartNumber=1, Body=b"p" * 10)
    done = s3.complete_multipart_upload(
        Bucket=bucket, Key="k", UploadId=upload,
        MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": part["ETag"]}]},
    )  # fmt: skip
    assert done["VersionId"] not in (first, "null")
    assert [v[1] for v in _versions(s3, bucket)] == [done["VersionId"], first]
    assert s3.get_object(Bucket=bucket, Key="k", VersionId=first)["Body"].read() == b"small"


def test_delete_objects_with_versions(s3: Any, bucket: str) -> None:
    _enable(s3, bucket)
    a1 = s3.put_object(Bucket=bucket, Key="a", Body=b"1")["VersionId"]
    s3.put_object(Bucket=bucket, Key="a", Body=b"2")
    s3.put_object(Bucket=bucket, Key="b", Body=b"1")
    reply = s3.delete_objects(
        Bucket=bucket, Delete={"Objects": [{"Key": "a", "VersionId": a1}, {"Key": "b"}]}
    )
    deleted = {d["Key"]: d for d in reply["Deleted"]}
    assert deleted["a"]["VersionId"] == a1 and "DeleteMarker" not in deleted["a"]
    assert deleted["b"]["DeleteMarker"] is True
    marker = deleted["b"]["DeleteMarkerVersionId"]
    assert ("b", marker, True, True) in _versions(s3, bucket)
    remaining = [v[1] for v in _versions(s3, bucket, Prefix="a")]
    assert len(remaining) == 1 and a1 not in remaining


def test_version_id_refused_where_it_means_nothing(s3: Any, bucket: str) -> None:
    """PUT ?versionId= would write the current version instead of the one named."""
    s3.put_object(Bucket=bucket, Key="k", Body=b"x")

    def add_version(request: Any, **_: Any) -> None:
        request.url += ("&" if "?" in request.url else "?") + "versionId=null"

    s3.meta.events.register_first("before-sign.s3.PutObject", add_version)
    try:
        with pytest.raises(ClientError) as exc:
            s3.put_object(Bucket=bucket, Key="k", Body=b"y")
    finally:
        s3.meta.events.unregister("before-sign.s3.PutObject", add_version)
    assert error_of(exc) == ("InvalidArgument", 400)
    assert s3.get_object(Bucket=bucket, Key="k")["Body"].read() == b"x"


def test_paging_survives_the_marker_version_being_deleted(s3: Any, bucket: str) -> None:
    """Emptying a bucket page by page deletes the very version the next page starts after."""
    _enable(s3, bucket)
    for _ in range(5):
        s3.put_object(Bucket=bucket, Key="k", Body=b"x")
    kwargs: dict[str, Any] = {"MaxKeys": 2}
    deleted = 0
    while True:
        reply = s3.list_object_versions(Bucket=bucket, **kwargs)
        for version in reply.get("Versions", []):
            s3.delete_object(Bucket=bucket, Key="k", VersionId=version["VersionId"])
            deleted += 1
        if not reply["IsTruncated"]:
            break
        kwargs = {"MaxKeys": 2, "KeyMarker": reply["NextKeyMarker"],
                  "VersionIdMarker": reply["NextVersionIdMarker"]}  # fmt: skip
    assert deleted == 5
    assert "Versions" not in s3.list_object_versions(Bucket=bucket)
