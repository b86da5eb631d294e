"""ListObjectsV2 and ListObjects over 2,500 keys: prefixes, delimiters, pagination."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from botocore.exceptions import ClientError
from tests.conftest import Server
from tests.e2e.test_objects import error_of

# 2,500 keys: 5 top-level folders × 10 sub-folders × 40 files, plus 500 files at the root.
KEYS = sorted(
    [f"dir{d}/sub{s:02d}/file{f:03d}" for d in range(5) for s in range(10) for f in range(40)]
    + [f"root{i:04d}.txt" for i in range(500)]
)


@pytest.fixture(scope="module")
def listed(shared_server: Server) -> str:
    s3 = shared_server.client(max_pool_connections=16)
    name = "listing-2500"
    s3.create_bucket(Bucket=name)
    with ThreadPoolExecutor(16) as pool:
        list(pool.map(lambda key: s3.put_object(Bucket=name, Key=key, Body=key.encode()), KEYS))
    return name


def test_paginates_all_keys_in_order(s3: Any, listed: str) -> None:
    pages = list(s3.get_paginator("list_objects_v2").paginate(Bucket=listed))
    assert len(pages) == 3
    assert [p["KeyCount"] for p in pages] == [1000, 1000, 500]
    assert [o["Key"] for p in pages for o in p["Contents"]] == KEYS
    assert pages[0]["IsTruncated"] and not pages[-1]["IsTruncated"]
    assert all(o["Size"] == len(o["Key"]) for p in pages for o in p["Contents"])


def test_delimiter_at_root(s3: Any, listed: str) -> None:
    result = s3.list_objects_v2(Bucket=listed, Delimiter="/")
    assert [p["Prefix"] for p in result["CommonPrefixes"]] == [f"dir{d}/" for d in range(5)]
    assert len(result["Contents"]) == 500
    assert result["KeyCount"] == 505


def test_prefix_and_delimiter(s3: Any, listed: str) -> None:
    result = s3.list_objects_v2(Bucket=listed, Prefix="dir3/", Delimiter="/")
    assert [p["Prefix"] for p in result["CommonPrefixes"]] == [
        f"dir3/sub{s:02d}/" for s in range(10)
    ]
    assert "Contents" not in result
    files = s3.list_objects_v2(Bucket=listed, Prefix="dir3/sub07/", Delimiter="/")
    assert [o["Key"] for o in files["Contents"]] == [f"dir3/sub07/file{f:03d}" for f in range(40)]


def test_small_pages_mixing_prefixes_and_keys(s3: Any, listed: str) -> None:
    entries: list[str] = []
    paginator = s3.get_paginator("list_objects_v2")
    for page in paginator.paginate(Bucket=listed, Delimiter="/", PaginationConfig={"PageSize": 7}):
        assert page["KeyCount"] <= 7
        entries += [p["Prefix"] for p in page.get("CommonPrefixes", [])]
        entries += [o["Key"] for o in page.get("Contents", [])]
    assert sorted(entries) == sorted([f"dir{d}/" for d in range(5)] + KEYS[2000:])
    assert len(entries) == len(set(entries))


def test_start_after_and_max_keys(s3: Any, listed: str) -> None:
    result = s3.list_objects_v2(Bucket=listed, StartAfter="dir4/sub09/file038", MaxKeys=3)
    assert [o["Key"] for o in result["Contents"]] == [
        "dir4/sub09/file039",
        "root0000.txt",
        "root0001.txt",
    ]
    assert result["IsTruncated"]
    empty = s3.list_objects_v2(Bucket=listed, MaxKeys=0)
    assert empty["KeyCount"] == 0 and not empty["IsTruncated"]


def test_list_objects_v1_markers(s3: Any, listed: str) -> None:
    keys: list[str] = []
    for page in s3.get_paginator("list_objects").paginate(Bucket=listed):
        keys += [o["Key"] for o in page["Contents"]]
    assert keys == KEYS
    delimited = s3.list_objects(Bucket=listed, Delimiter="/", MaxKeys=3)
    assert delimited["IsTruncated"] and delimited["NextMarker"] == "dir2/"
    rest = s3.list_objects(Bucket=listed, Delimiter="/", Marker="dir2/", MaxKeys=2)
    assert [p["Prefix"] for p in rest["CommonPrefixes"]] == ["dir3/", "dir4/"]


def test_url_encoding_and_fetch_owner(s3: Any, bucket: str) -> None:
    s3.put_object(Bucket=bucket, Key="a b/é", Body=b"x")
    result = s3.list_objects_v2(Bucket=bucket, EncodingType="url", FetchOwner=True)
    # Asked for explicitly, the encoding reaches the caller (boto3 decodes only its own).
    assert result["Contents"][0]["Key"] == "a%20b/%C3%A9"
    assert result["Contents"][0]["Owner"]["ID"]


def test_bad_continuation_token_and_max_keys(s3: Any, listed: str) -> None:
    with pytest.raises(ClientError) as exc:
        s3.list_objects_v2(Bucket=listed, ContinuationToken="!!!")
    assert error_of(exc) == ("InvalidArgument", 400)
    with pytest.raises(ClientError) as exc:
        s3.list_objects_v2(Bucket=listed, MaxKeys=-1)
    assert error_of(exc) == ("InvalidArgument", 400)
