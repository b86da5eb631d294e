"""ListObjects v1/v2 options: marker, NextMarker, encoding-type=url, fetch-owner, start-after.

boto3 asks for encoding-type=url on every listing and decodes the answer itself, so the wire
format is checked on raw signed requests and the round trip through boto3.
"""

from __future__ import annotations

import hashlib
from typing import Any
from xml.etree import ElementTree

import pytest
from botocore.exceptions import ClientError
from tests.e2e.test_auth import send, sign
from tests.e2e.test_objects import error_of

NS = "{http://s3.amazonaws.com/doc/2006-03-01/}"
ODD_KEYS = ["a b/é", "a b/x+y", "plain", "pct%20/z", "tab\there", "zz|1|a", "zz|2"]


@pytest.fixture
def odd(s3: Any, bucket: str) -> str:
    for key in ODD_KEYS:
        s3.put_object(Bucket=bucket, Key=key, Body=b"x")
    return bucket


def _raw_list(server: Any, bucket: str, query: str) -> ElementTree.Element:
    path = f"/{bucket}?{query}"
    signed = sign(server, "GET", path, hashlib.sha256(b"").hexdigest())
    reply = send(server, "GET", path, signed.headers)
    assert reply.status == 200, reply.body
    return ElementTree.fromstring(reply.body)


def _texts(root: ElementTree.Element, path: str) -> list[str]:
    return [node.text or "" for node in root.iterfind("/".join(NS + p for p in path.split("/")))]


def _text(root: ElementTree.Element, name: str) -> str | None:
    node = root.find(NS + name)
    return None if node is None else node.text or ""


def test_boto3_round_trips_odd_keys(s3: Any, odd: str) -> None:
    v2 = s3.list_objects_v2(Bucket=odd)
    assert [o["Key"] for o in v2["Contents"]] == sorted(ODD_KEYS)
    v1 = s3.list_objects(Bucket=odd, Prefix="a b/", Delimiter="/")
    assert [o["Key"] for o in v1["Contents"]] == ["a b/x+y", "a b/é"]
    rolled = s3.list_objects_v2(Bucket=odd, Delimiter="|")
    assert [p["Prefix"] for p in rolled["CommonPrefixes"]] == ["zz|"]


def test_v1_marker(s3: Any, odd: str) -> None:
    listed = s3.list_objects(Bucket=odd, Marker="pct%20/z")
    assert [o["Key"] for o in listed["Contents"]] == ["plain", "tab\there", "zz|1|a", "zz|2"]
    assert listed["Marker"] == "pct%20/z"


def test_v1_next_marker_only_with_delimiter(s3: Any, odd: str) -> None:
    plain = s3.list_objects(Bucket=odd, MaxKeys=2)
    assert plain["IsTruncated"] and "NextMarker" not in plain
    delimited = s3.list_objects(Bucket=odd, Delimiter="/", MaxKeys=2)
    assert delimited["IsTruncated"]
    assert [p["Prefix"] for p in delimited["CommonPrefixes"]] == ["a b/", "pct%20/"]
    assert delimited["NextMarker"] == "pct%20/"
    rest = s3.list_objects(Bucket=odd, Delimiter="/", Marker=delimited["NextMarker"])
    assert [o["Key"] for o in rest["Contents"]] == ["plain", "tab\there", "zz|1|a", "zz|2"]
    assert not rest["IsTruncated"] and "NextMarker" not in rest


def test_v1_url_encoding_on_the_wire(shared_server: Any, odd: str) -> None:
    query = "delimiter=%7C&encoding-type=url&marker=pct%2520%2Fz&max-keys=2&prefix=zz%7C"
    root = _raw_list(shared_server, odd, query)
    assert _text(root, "EncodingType") == "url"
    assert _text(root, "Prefix") == "zz%7C"
    assert _text(root, "Delimiter") == "%7C"
    assert _text(root, "Marker") == "pct%2520/z"
    assert _texts(root, "CommonPrefixes/Prefix") == ["zz%7C1%7C"]
    assert _texts(root, "Contents/Key") == ["zz%7C2"]
    assert _text(root, "IsTruncated") == "false"
    truncated = _raw_list(shared_server, odd, "delimiter=%2F&encoding-type=url&max-keys=1")
    assert _texts(truncated, "CommonPrefixes/Prefix") == ["a%20b/"]
    assert _text(truncated, "NextMarker") == "a%20b/"
    # Owner is always part of a v1 listing: the writer, here the administrator.
    assert _texts(root, "Contents/Owner/DisplayName") == ["admin"]
    assert len(_texts(root, "Contents/Owner/ID")[0] or "") == 64


def test_v1_without_encoding_sends_keys_as_they_are(shared_server: Any, odd: str) -> None:
    root = _raw_list(shared_server, odd, "prefix=a%20b%2F")
    assert _text(root, "EncodingType") is None
    assert _texts(root, "Contents/Key") == ["a b/x+y", "a b/é"]


def test_v2_url_encoding_on_the_wire(shared_server: Any, odd: str) -> None:
    query = "delimiter=%2F&encoding-type=url&list-type=2&prefix=a%20b%2F&start-after=a%20b%2Fx%2By"
    root = _raw_list(shared_server, odd, query)
    assert _text(root, "EncodingType") == "url"
    assert _text(root, "Prefix") == "a%20b/"
    assert _text(root, "Delimiter") == "/"
    assert _text(root, "StartAfter") == "a%20b/x%2By"
    assert _texts(root, "Contents/Key") == ["a%20b/%C3%A9"]
    tab = _raw_list(shared_server, odd, "encoding-type=url&list-type=2&prefix=tab")
    assert _texts(tab, "Contents/Key") == ["tab%09here"]


def test_v2_fetch_owner(shared_server: Any, s3: Any, odd: str) -> None:
    with_owner = s3.list_objects_v2(Bucket=odd, FetchOwner=True, MaxKeys=1)
    admin = s3.list_buckets()["Owner"]
    assert admin["DisplayName"] == "admin" and len(admin["ID"]) == 64
    assert with_owner["Contents"][0]["Owner"] == admin
    without = s3.list_objects_v2(Bucket=odd, MaxKeys=1)
    assert "Owner" not in without["Contents"][0]
    root = _raw_list(shared_server, odd, "fetch-owner=false&list-type=2")
    assert _texts(root, "Contents/Owner/ID") == []


def test_v2_start_after(s3: Any, odd: str) -> None:
    listed = s3.list_objects_v2(Bucket=odd, StartAfter="plain")
    assert listed["StartAfter"] == "plain"
    assert [o["Key"] for o in listed["Contents"]] == ["tab\there", "zz|1|a", "zz|2"]
    # start-after inside a rolled-up prefix does not repeat the prefix.
    rolled = s3.list_objects_v2(Bucket=odd, StartAfter="a b/x", Delimiter="/")
    assert [p["Prefix"] for p in rolled["CommonPrefixes"]] == ["pct%20/"]
    assert [o["Key"] for o in rolled["Contents"]] == ["plain", "tab\there", "zz|1|a", "zz|2"]
    # A continuation token wins over start-after.
    first = s3.list_objects_v2(Bucket=odd, MaxKeys=2)
    second = s3.list_objects_v2(
        Bucket=odd, MaxKeys=2, StartAfter="zz", ContinuationToken=first["NextContinuationToken"]
    )
    assert [o["Key"] for o in second["Contents"]] == ["pct%20/z", "plain"]


@pytest.mark.parametrize("operation", ["list_objects", "list_objects_v2"])
def test_unknown_encoding_type_is_invalid_argument(s3: Any, odd: str, operation: str) -> None:
    with pytest.raises(ClientError) as exc:
        getattr(s3, operation)(Bucket=odd, EncodingType="base64")
    assert error_of(exc) == ("InvalidArgument", 400)
