"""Host header → bucket for virtual-hosted-style requests, and routing with it."""

from __future__ import annotations

import pytest

from egide.s3.router import Endpoint, route
from egide.web.hosts import bucket_from_host, host_name
from egide.web.request import RequestHead

DOMAINS = ["s3.example.org", "example.org"]


@pytest.mark.parametrize(
    "host,name",
    [
        ("Bucket.S3.Example.org:9000", "bucket.s3.example.org"),
        ("s3.example.org.", "s3.example.org"),
        ("s3.example.org.:443", "s3.example.org"),
        ("[::1]:9000", "[::1]"),
        ("[::1]", "[::1]"),
        ("127.0.0.1:9000", "127.0.0.1"),
    ],
)
def test_host_name(host: str, name: str) -> None:
    assert host_name(host) == name


@pytest.mark.parametrize(
    "host,bucket",
    [
        ("photos.s3.example.org", "photos"),
        ("photos.s3.example.org:9000", "photos"),
        ("PHOTOS.S3.EXAMPLE.ORG", "photos"),
        ("my.dotted.bucket.s3.example.org", "my.dotted.bucket"),
        ("photos.example.org", "photos"),  # the other domain
        ("s3.example.org", None),  # the domain itself is path style
        ("s3.example.org:9000", None),
        ("example.org", None),
        ("photos.example.com", None),
        ("xs3.example.org", "xs3"),  # under example.org, not s3.example.org
        ("127.0.0.1:9000", None),
        ("[::1]:9000", None),
        ("", None),
        (None, None),
    ],
)
def test_bucket_from_host(host: str | None, bucket: str | None) -> None:
    assert bucket_from_host(host, DOMAINS) == bucket


def test_no_domains_means_path_style() -> None:
    assert bucket_from_host("photos.s3.example.org", []) is None


def test_configured_domain_is_normalised() -> None:
    assert bucket_from_host("photos.s3.example.org", ["S3.Example.Org."]) == "photos"


def _head(host: str, path: str, method: str = "GET", query: str = "") -> RequestHead:
    pairs = tuple(tuple(p.split("=", 1)) if "=" in p else (p, "") for p in query.split("&") if p)
    return RequestHead(method, path, pairs, {"host": host}, query)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "host,path,method,query,endpoint,bucket,key",
    [
        ("b.s3.example.org", "/", "GET", "", Endpoint.LIST_OBJECTS, "b", None),
        ("b.s3.example.org", "/", "GET", "list-type=2", Endpoint.LIST_OBJECTS_V2, "b", None),
        ("b.s3.example.org", "/dir/k%20ey", "PUT", "", Endpoint.PUT_OBJECT, "b", "dir/k ey"),
        ("b.s3.example.org", "//lead", "GET", "", Endpoint.GET_OBJECT, "b", "/lead"),
        ("b.s3.example.org", "/", "POST", "delete", Endpoint.DELETE_OBJECTS, "b", None),
        ("b.s3.example.org", "/", "POST", "", Endpoint.POST_OBJECT, "b", None),
        ("s3.example.org", "/", "GET", "", Endpoint.LIST_BUCKETS, None, None),
        ("s3.example.org:9000", "/b/k", "GET", "", Endpoint.GET_OBJECT, "b", "k"),
        ("127.0.0.1:9000", "/b", "PUT", "", Endpoint.CREATE_BUCKET, "b", None),
    ],
)
def test_route_with_domains(
    host: str,
    path: str,
    method: str,
    query: str,
    endpoint: Endpoint,
    bucket: str | None,
    key: str | None,
) -> None:
    target = route(_head(host, path, method, query), DOMAINS)
    assert (target.endpoint, target.bucket, target.key) == (endpoint, bucket, key)


def test_route_without_domains_ignores_host() -> None:
    target = route(_head("b.s3.example.org", "/other/k"))
    assert (target.bucket, target.key) == ("other", "k")
