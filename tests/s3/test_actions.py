"""Every S3 endpoint is one policy action on one resource (AWS's names)."""

from __future__ import annotations

from egide.s3.actions import (
    ACTIONS,
    ConditionKeys,
    action,
    condition_keys,
    form_condition_keys,
    resource,
)
from egide.s3.router import Endpoint, route
from egide.web.request import RequestHead


def test_every_endpoint_has_its_action() -> None:
    assert set(ACTIONS) == set(Endpoint)
    for endpoint, name in ACTIONS.items():
        service, _, verb = name.partition(":")
        assert service in ("s3", "egide") and verb[:1].isupper(), (endpoint, name)


def test_the_action_of_a_request() -> None:
    def of(method: str, path: str, query: tuple[tuple[str, str], ...] = ()) -> str:
        head = RequestHead(method, path, query)
        return action(route(head), head)

    assert of("GET", "/") == "s3:ListAllMyBuckets"
    assert of("HEAD", "/b") == "s3:ListBucket"
    assert of("DELETE", "/b", (("cors", ""),)) == "s3:PutBucketCORS"
    assert of("GET", "/b/k") == "s3:GetObject"
    assert of("GET", "/b/k", (("versionId", "v1"),)) == "s3:GetObjectVersion"
    assert of("DELETE", "/b/k", (("versionId", "v1"),)) == "s3:DeleteObjectVersion"
    assert of("PUT", "/b/k", (("tagging", ""), ("versionId", "v"))) == "s3:PutObjectVersionTagging"
    assert of("PUT", "/b/k", (("retention", ""), ("versionId", "v"))) == "s3:PutObjectRetention"
    assert of("OPTIONS", "/b/k") == "egide:CorsPreflight"
    assert of("GET", "/b/k", (("attributes", ""),)) == "s3:GetObjectAttributes"
    versioned = (("attributes", ""), ("versionId", "v"))
    assert of("GET", "/b/k", versioned) == "s3:GetObjectVersionAttributes"


def test_resources_are_arns() -> None:
    assert resource(None) == "*"
    assert resource("b") == "arn:aws:s3:::b"
    assert resource("b", "a/k") == "arn:aws:s3:::b/a/k"


def test_the_s3_condition_keys_of_a_request() -> None:
    def keys(
        method: str, path: str, query: tuple[tuple[str, str], ...] = (),
        headers: dict[str, str] | None = None, signed: str | None = "header",
    ) -> ConditionKeys:  # fmt: skip
        head = RequestHead(method, path, query, headers or {})
        return condition_keys(route(head), head, signed)

    listing = (("list-type", "2"), ("prefix", "home/a/"), ("delimiter", "/"), ("max-keys", "5"))
    assert keys("GET", "/b", listing) == {
        "s3:prefix": "home/a/", "s3:delimiter": "/", "s3:max-keys": "5",
        "s3:signatureversion": "AWS4-HMAC-SHA256", "s3:authType": "REST-HEADER",
    }  # fmt: skip
    assert keys("GET", "/b", signed=None) == {}  # anonymous, no prefix asked: absent
    put = {"x-amz-acl": "private", "x-amz-server-side-encryption": "AES256",
           "x-amz-tagging": "team=blue&cost%20centre=42",
           "x-amz-grant-full-control": "id=abc"}  # fmt: skip
    assert keys("PUT", "/b/k", headers=put, signed="query") == {
        "s3:x-amz-acl": "private", "s3:x-amz-server-side-encryption": "AES256",
        "s3:x-amz-grant-full-control": "id=abc",
        "s3:RequestObjectTag/team": "blue", "s3:RequestObjectTag/cost centre": "42",
        "s3:RequestObjectTagKeys": ("team", "cost centre"),
        "s3:signatureversion": "AWS4-HMAC-SHA256", "s3:authType": "REST-QUERY-STRING",
    }  # fmt: skip
    assert keys("GET", "/b/k", (("versionId", "v1"),), signed=None) == {"s3:VersionId": "v1"}


def test_a_forms_fields_are_its_condition_keys() -> None:
    """A POST form's fields are a PUT's headers; its tagging document, x-amz-tagging."""
    fields = {"acl": "public-read", "x-amz-server-side-encryption": "AES256", "key": "k"}
    assert form_condition_keys(fields, {"class": "public"}, signed=True) == {
        "s3:x-amz-acl": "public-read", "s3:x-amz-server-side-encryption": "AES256",
        "s3:RequestObjectTag/class": "public", "s3:RequestObjectTagKeys": ("class",),
        "s3:signatureversion": "AWS4-HMAC-SHA256", "s3:authType": "POST",
    }  # fmt: skip
    assert form_condition_keys({"key": "k"}, {}, signed=False) == {}  # anonymous, untagged


def test_an_sse_c_request_names_its_algorithm() -> None:
    """s3:x-amz-server-side-encryption-customer-algorithm, so that a bucket policy can require
    SSE-C (Null) or one algorithm (StringNotEquals) as on AWS; the key itself is never a key."""
    sse_c = {
        "x-amz-server-side-encryption-customer-algorithm": "AES256",
        "x-amz-server-side-encryption-customer-key": "secret",
        "x-amz-server-side-encryption-customer-key-md5": "md5",
    }
    head = RequestHead("PUT", "/b/k", (), sse_c)
    assert condition_keys(route(head), head, None) == {
        "s3:x-amz-server-side-encryption-customer-algorithm": "AES256"
    }
