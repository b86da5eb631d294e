"""CORS rules: the configuration document, how a request is matched, and how long a store
keeps a bucket's rules (src/egide/s3/cors.py)."""

from __future__ import annotations

from pathlib import Path

import pytest
from tests.clocks import ManualClock
from tests.engine.helpers import BLOCK, PACK, K, M, make_env

from egide.engine.store import BUCKET_CACHE_SECONDS, ObjectStore
from egide.s3 import errors
from egide.s3.cors import (
    CorsRule,
    _save,
    bucket_rules,
    first_match,
    parse_configuration,
    render_configuration,
)


def doc(*rules: str) -> bytes:
    inner = "".join(f"<CORSRule>{rule}</CORSRule>" for rule in rules)
    return (
        '<CORSConfiguration xmlns="http://s3.amazonaws.com/doc/2006-03-01/">'
        f"{inner}</CORSConfiguration>"
    ).encode()


def test_full_rule_parses_and_renders_back() -> None:
    body = doc(
        "<ID>r1</ID><AllowedOrigin>https://a.test</AllowedOrigin>"
        "<AllowedOrigin>http://*.b.test</AllowedOrigin><AllowedMethod>GET</AllowedMethod>"
        "<AllowedMethod>PUT</AllowedMethod><AllowedHeader>x-amz-*</AllowedHeader>"
        "<ExposeHeader>ETag</ExposeHeader><MaxAgeSeconds> 600 </MaxAgeSeconds>",
        "<AllowedOrigin>*</AllowedOrigin><AllowedMethod>HEAD</AllowedMethod>",
    )
    rules = parse_configuration(body)
    assert rules == (
        CorsRule(
            allowed_origins=("https://a.test", "http://*.b.test"),
            allowed_methods=("GET", "PUT"),
            allowed_headers=("x-amz-*",),
            expose_headers=("ETag",),
            id="r1",
            max_age_seconds=600,
        ),
        CorsRule(allowed_origins=("*",), allowed_methods=("HEAD",)),
    )
    assert parse_configuration(render_configuration(rules)) == rules


@pytest.mark.parametrize(
    "body",
    [
        b"<CORSConfiguration/>",
        b"<Other><CORSRule/></Other>",
        doc("<AllowedMethod>GET</AllowedMethod>"),
        doc("<AllowedOrigin>*</AllowedOrigin>"),
        doc("<AllowedOrigin>*</AllowedOrigin><AllowedMethod>GET</AllowedMethod><X/>"),
        doc(
            "<AllowedOrigin>*</AllowedOrigin><AllowedMethod>GET</AllowedMethod>"
            "<MaxAgeSeconds>1</MaxAgeSeconds><MaxAgeSeconds>2</MaxAgeSeconds>"
        ),
        doc(
            "<AllowedOrigin>*</AllowedOrigin><AllowedMethod>GET</AllowedMethod>"
            "<MaxAgeSeconds>99999999999</MaxAgeSeconds>"
        ),
        doc(*["<AllowedOrigin>*</AllowedOrigin><AllowedMethod>GET</AllowedMethod>"] * 101),
        b"<CORSConfiguration><CORSRule>",
    ],
)
def test_outside_the_schema_is_malformed(body: bytes) -> None:
    with pytest.raises(errors.MalformedXML):
        parse_configuration(body)


@pytest.mark.parametrize(
    "rule,message",
    [
        (
            "<AllowedOrigin>*</AllowedOrigin><AllowedMethod>OPTIONS</AllowedMethod>",
            "Found unsupported HTTP method in CORS config. Unsupported method is OPTIONS",
        ),
        (
            "<AllowedOrigin>*</AllowedOrigin><AllowedMethod></AllowedMethod>",
            "Found unsupported HTTP method in CORS config. Unsupported method is ",
        ),
        (
            "<AllowedOrigin>http://*.*.test</AllowedOrigin><AllowedMethod>GET</AllowedMethod>",
            'AllowedOrigin "http://*.*.test" can not have more than one wildcard.',
        ),
        (
            f"<ID>{'i' * 256}</ID><AllowedOrigin>*</AllowedOrigin>"
            "<AllowedMethod>GET</AllowedMethod>",
            "The ID of a CORSRule cannot be longer than 255 characters.",
        ),
        (
            "<AllowedOrigin>*</AllowedOrigin><AllowedMethod>GET</AllowedMethod>"
            "<MaxAgeSeconds>-1</MaxAgeSeconds>",
            "MaxAgeSeconds must not be negative.",
        ),
    ],
)
def test_rules_s3_refuses_are_invalid_request(rule: str, message: str) -> None:
    with pytest.raises(errors.InvalidRequest) as exc:
        parse_configuration(doc(rule))
    assert exc.value.message == message


def test_an_empty_origin_is_kept() -> None:
    """S3 accepts and gives back an empty AllowedOrigin (LocalStack's AWS recording)."""
    rules = parse_configuration(
        doc("<AllowedOrigin></AllowedOrigin><AllowedMethod>GET</AllowedMethod>")
    )
    assert rules[0].allowed_origins == ("",)


ORIGINS = CorsRule(
    allowed_origins=("*suffix", "start*end", "prefix*", "https://exact.test"),
    allowed_methods=("GET",),
)


@pytest.mark.parametrize(
    "origin,allowed",
    [
        ("foo.suffix", True),
        ("startend", True),
        ("start12end", True),
        ("prefix", True),
        ("prefix.suffix", True),
        ("https://exact.test", True),
        ("foo.bar", False),
        ("foo.suffix.get", False),  # anchored at the end
        ("0start12end", False),  # and at the start
        ("bla.prefix", False),
        ("HTTPS://EXACT.TEST", False),  # origins are compared as sent
        ("https://exact.test.", False),
    ],
)
def test_origin_patterns_as_ceph_s3_tests(origin: str, allowed: bool) -> None:
    assert ORIGINS.allows(origin, "GET", []) is allowed


def test_regex_characters_in_origins_are_literal() -> None:
    rule = CorsRule(allowed_origins=("http://a.test",), allowed_methods=("GET",))
    assert not rule.allows("http://aXtest", "GET", [])


def test_headers_match_without_case_and_all_must_match() -> None:
    rule = CorsRule(
        allowed_origins=("*",),
        allowed_methods=("PUT",),
        allowed_headers=("X-Amz-*", "content-type"),
    )
    assert rule.allows("o", "PUT", ["x-amz-date", "content-type"])
    assert rule.allows("o", "PUT", ["x-amz-"])  # the * may match nothing
    assert not rule.allows("o", "PUT", ["x-amz-date", "authorization"])
    no_headers = CorsRule(allowed_origins=("*",), allowed_methods=("PUT",))
    assert no_headers.allows("o", "PUT", [])
    assert not no_headers.allows("o", "PUT", ["content-type"])


def test_first_matching_rule_is_chosen() -> None:
    rules = (
        CorsRule(allowed_origins=("https://a.test",), allowed_methods=("PUT",), id="put"),
        CorsRule(allowed_origins=("*",), allowed_methods=("GET",), id="any"),
        CorsRule(allowed_origins=("https://a.test",), allowed_methods=("GET",), id="later"),
    )
    assert first_match(rules, "https://a.test", "GET", []) == rules[1]
    assert first_match(rules, "https://a.test", "PUT", []) == rules[0]
    assert first_match(rules, "https://a.test", "DELETE", []) is None


def test_response_headers_of_a_rule() -> None:
    rule = CorsRule(
        allowed_origins=("https://*.a.test", "*"),
        allowed_methods=("GET", "HEAD"),
        expose_headers=("ETag", "x-amz-version-id"),
        max_age_seconds=0,
    )
    assert rule.headers("https://x.a.test", ["x-amz-date"]) == {
        "access-control-allow-origin": "https://x.a.test",
        "access-control-allow-credentials": "true",
        "access-control-allow-methods": "GET, HEAD",
        "access-control-allow-headers": "x-amz-date",
        "access-control-expose-headers": "ETag, x-amz-version-id",
        "access-control-max-age": "0",
        "vary": "Origin, Access-Control-Request-Headers, Access-Control-Request-Method",
    }
    # Matched only by "*": answered "*", without credentials.
    anyone = rule.headers("https://b.test", [])
    assert anyone["access-control-allow-origin"] == "*"
    assert "access-control-allow-credentials" not in anyone
    assert "access-control-allow-headers" not in anyone


def test_a_store_keeps_a_bucket_s_rules_until_the_cache_ends(tmp_path: Path) -> None:
    """Rules another gateway changed are seen once BUCKET_CACHE_SECONDS have passed on this
    store's clock, not before; a change made through a store is seen by it at once."""
    clock = ManualClock()
    env = make_env(tmp_path, clock=clock)
    other = ObjectStore(
        env.catalog, env.keyring, env.sites, k=K, m=M, block_size=BLOCK, pack_threshold=PACK
    )
    rule = CorsRule(("https://app.test",), ("GET",))

    async def scenario() -> None:
        bucket = await env.store.create_bucket("web")
        assert await bucket_rules(env.store, bucket) == ()
        await _save(other, bucket, (rule,))
        assert await bucket_rules(other, bucket) == (rule,)
        clock.advance(BUCKET_CACHE_SECONDS - 0.25)
        assert await bucket_rules(env.store, bucket) == ()
        clock.advance(0.25)
        assert await bucket_rules(env.store, bucket) == (rule,)
        await _save(env.store, bucket, ())
        assert await bucket_rules(env.store, bucket) == ()

    env.run(scenario)
