"""PutBucketCors, GetBucketCors, DeleteBucketCors, preflights, and the CORS headers of responses.

How S3 evaluates rules (https://docs.aws.amazon.com/AmazonS3/latest/userguide/cors.html): the
first rule whose AllowedOrigin matches Origin, whose AllowedMethod holds the method (or
Access-Control-Request-Method), and whose AllowedHeader patterns cover every name in
Access-Control-Request-Headers wins. S3 refuses only preflights; an actual request no rule
allows is served, without CORS headers, and the browser withholds it from the page.
"""

from __future__ import annotations

import json
import logging
import re
import weakref
from dataclasses import asdict, dataclass
from functools import lru_cache

from egide.domain import Bucket, BucketNotFound, DomainError
from egide.engine import changes
from egide.engine.store import ObjectStore
from egide.s3 import errors
from egide.s3.body import read_checked_body
from egide.s3.http import Request, Response
from egide.s3.router import Endpoint, Route
from egide.s3.xml import document, element, parse
from egide.web.request import RequestHead

log = logging.getLogger("egide.s3")
SETTING = "cors"
METHODS = frozenset({"GET", "PUT", "POST", "DELETE", "HEAD"})
MAX_RULES = 100
MAX_ID_CHARS = 255
#: Rules read from the catalog serve until a bucket setting changes anywhere (`forget_all`, asked
#: by the rights watch before each request) and at most the store's `bucket_cache_seconds`.
_CACHE_LIMIT = 10_000
VARY = "Origin, Access-Control-Request-Headers, Access-Control-Request-Method"
_NOT_ALLOWED = (
    "CORSResponse: This CORS request is not allowed. This is usually because the evalution of "
    "Origin, request method / Access-Control-Request-Method or Access-Control-Request-Headers "
    "are not whitelisted by the resource's CORS spec."
)  # "evalution" is S3's spelling


@dataclass(frozen=True)
class CorsRule:
    allowed_origins: tuple[str, ...]
    allowed_methods: tuple[str, ...]
    allowed_headers: tuple[str, ...] = ()
    expose_headers: tuple[str, ...] = ()
    id: str | None = None
    max_age_seconds: int | None = None

    def allows(self, origin: str, method: str, requested: list[str]) -> bool:
        return (
            method in self.allowed_methods
            and any(_pattern(o, False).fullmatch(origin) for o in self.allowed_origins)
            and all(
                any(_pattern(h, True).fullmatch(name) for h in self.allowed_headers)
                for name in requested
            )
        )

    def headers(self, origin: str, requested: list[str]) -> dict[str, str]:
        """The CORS headers S3 answers for this rule (recorded answers of S3, not its docs:
        the rule's methods, the requested header names in lower case)."""
        # An origin matched by a pattern other than "*" is echoed and credentials allowed;
        # a bare "*" is answered as "*", which browsers accept only without credentials.
        specific = any(
            o != "*" and _pattern(o, False).fullmatch(origin) for o in self.allowed_origins
        )
        headers = {"access-control-allow-origin": origin if specific else "*"}
        if specific:
            headers["access-control-allow-credentials"] = "true"
        headers["access-control-allow-methods"] = ", ".join(self.allowed_methods)
        if requested:
            headers["access-control-allow-headers"] = ", ".join(requested)
        if self.expose_headers:
            headers["access-control-expose-headers"] = ", ".join(self.expose_headers)
        if self.max_age_seconds is not None:
            headers["access-control-max-age"] = str(self.max_age_seconds)
        headers["vary"] = VARY
        return headers


@lru_cache(maxsize=4096)
def _pattern(glob: str, ignore_case: bool) -> re.Pattern[str]:
    """An AllowedOrigin or AllowedHeader as a regex: its one `*` matches any text, even none
    (ceph s3-tests: `start*end` matches `startend`)."""
    return re.compile(
        ".*".join(re.escape(part) for part in glob.split("*")),
        re.IGNORECASE | re.DOTALL if ignore_case else re.DOTALL,
    )


def first_match(
    rules: tuple[CorsRule, ...], origin: str, method: str, requested: list[str]
) -> CorsRule | None:
    return next((rule for rule in rules if rule.allows(origin, method, requested)), None)


def requested_headers(head: RequestHead) -> list[str]:
    """Access-Control-Request-Headers as lower-case names, in the order sent."""
    value = head.header("access-control-request-headers") or ""
    return [name.strip().lower() for name in value.split(",") if name.strip()]


# -- the configuration document --------------------------------------------------------------

_LISTS = {
    "AllowedOrigin": "allowed_origins",
    "AllowedMethod": "allowed_methods",
    "AllowedHeader": "allowed_headers",
    "ExposeHeader": "expose_headers",
}
_MAX_AGE = re.compile(r"^[+-]?\d{1,10}$")


def parse_configuration(body: bytes) -> tuple[CorsRule, ...]:
    """A CORSConfiguration checked as S3 does: what breaks the schema is MalformedXML, what
    breaks a rule of S3's is InvalidRequest with S3's message."""
    root = parse(body)
    if root.tag != "CORSConfiguration" or any(child.tag != "CORSRule" for child in root):
        raise errors.MalformedXML()
    if not 0 < len(root) <= MAX_RULES:
        raise errors.MalformedXML(
            f"The CORS configuration must have between 1 and {MAX_RULES} rules."
        )
    rules = []
    for node in root:
        lists: dict[str, list[str]] = {field: [] for field in _LISTS.values()}
        rule_id: str | None = None
        max_age: int | None = None
        seen: set[str] = set()
        for child in node:
            text = (child.text or "").strip()
            if child.tag in _LISTS:
                lists[_LISTS[child.tag]].append(text)
            elif child.tag in ("ID", "MaxAgeSeconds") and child.tag not in seen:
                seen.add(child.tag)
                if child.tag == "ID":
                    rule_id = text
                elif not _MAX_AGE.match(text) or abs(int(text)) >= 2**31:
                    raise errors.MalformedXML()  # an xsd:int
                else:
                    max_age = int(text)
            else:
                raise errors.MalformedXML()
        if not lists["allowed_origins"] or not lists["allowed_methods"]:
            # "Each CORSRule must identify at least one origin and one method."
            raise errors.MalformedXML()
        rule = CorsRule(
            id=rule_id, max_age_seconds=max_age, **{k: tuple(v) for k, v in lists.items()}
        )
        _check_rule(rule)
        rules.append(rule)
    return tuple(rules)


def _check_rule(rule: CorsRule) -> None:
    for method in rule.allowed_methods:
        if method not in METHODS:
            raise errors.InvalidRequest(
                f"Found unsupported HTTP method in CORS config. Unsupported method is {method}"
            )
    for origin in rule.allowed_origins:
        if origin.count("*") > 1:
            raise errors.InvalidRequest(
                f'AllowedOrigin "{origin}" can not have more than one wildcard.'
            )
    for header in rule.allowed_headers:
        if header.count("*") > 1:
            raise errors.InvalidRequest(
                f'AllowedHeader "{header}" can not have more than one wildcard.'
            )
    for header in rule.expose_headers:
        if "*" in header:
            raise errors.InvalidRequest(
                f'ExposeHeader "{header}" contains wildcard. We currently do not support '
                "wildcard for ExposeHeader."
            )
    # Neither limit below has a recorded S3 answer; these are the codes S3 uses for the like.
    if rule.id is not None and len(rule.id) > MAX_ID_CHARS:
        raise errors.InvalidRequest(
            f"The ID of a CORSRule cannot be longer than {MAX_ID_CHARS} characters."
        )
    if rule.max_age_seconds is not None and rule.max_age_seconds < 0:
        raise errors.InvalidRequest("MaxAgeSeconds must not be negative.")


def render_configuration(rules: tuple[CorsRule, ...]) -> bytes:
    """The document GetBucketCors answers, elements in the order of S3's response syntax."""
    parts = []
    for rule in rules:
        inner = "".join(element("AllowedHeader", h) for h in rule.allowed_headers)
        inner += "".join(element("AllowedMethod", m) for m in rule.allowed_methods)
        inner += "".join(element("AllowedOrigin", o) for o in rule.allowed_origins)
        inner += "".join(element("ExposeHeader", h) for h in rule.expose_headers)
        if rule.id is not None:
            inner += element("ID", rule.id)
        if rule.max_age_seconds is not None:
            inner += element("MaxAgeSeconds", rule.max_age_seconds)
        parts.append(f"<CORSRule>{inner}</CORSRule>")
    return document("CORSConfiguration", "".join(parts))


def _dumps(rules: tuple[CorsRule, ...]) -> str:
    return json.dumps([asdict(rule) for rule in rules])


def _loads(text: str) -> tuple[CorsRule, ...]:
    return tuple(
        CorsRule(
            allowed_origins=tuple(fields["allowed_origins"]),
            allowed_methods=tuple(fields["allowed_methods"]),
            allowed_headers=tuple(fields["allowed_headers"]),
            expose_headers=tuple(fields["expose_headers"]),
            id=fields["id"],
            max_age_seconds=fields["max_age_seconds"],
        )
        for fields in json.loads(text)
    )


# -- the rules of a bucket, cached ----------------------------------------------------------

_RulesCache = dict[bytes, tuple[tuple[CorsRule, ...], float]]
#: Per store (each reads its own clock): bucket id → (its rules, empty if none; when read).
_caches: weakref.WeakKeyDictionary[ObjectStore, _RulesCache] = weakref.WeakKeyDictionary()


def _cache(store: ObjectStore) -> _RulesCache:
    cache = _caches.get(store)
    if cache is None:
        cache = _caches[store] = {}
    return cache


def forget_all(store: ObjectStore) -> None:
    """A bucket setting changed somewhere (egide.auth.rights): read every bucket's rules again."""
    _caches.pop(store, None)


async def bucket_rules(store: ObjectStore, bucket: Bucket) -> tuple[CorsRule, ...]:
    """The bucket's rules: one indexed read of the catalog at most every
    `store.bucket_cache_seconds`."""
    now = store.clock.monotonic()
    cache = _cache(store)
    hit = cache.get(bucket.id)
    if hit is not None and now - hit[1] < store.bucket_cache_seconds:
        return hit[0]
    text = await changes.bucket_setting(store, bucket, SETTING)
    rules = _loads(text) if text else ()
    if len(cache) >= _CACHE_LIMIT:
        cache.clear()
    cache[bucket.id] = (rules, now)
    return rules


async def _save(store: ObjectStore, bucket: Bucket, rules: tuple[CorsRule, ...]) -> None:
    await changes.put_bucket_setting(store, bucket, SETTING, _dumps(rules) if rules else None)
    _cache(store).pop(bucket.id, None)


# -- handlers ---------------------------------------------------------------------------------


async def handle_put_bucket_cors(req: Request, store: ObjectStore) -> Response:
    assert req.bucket is not None
    bucket = await store.bucket(req.bucket)
    rules = parse_configuration(await read_checked_body(req))
    await _save(store, bucket, rules)
    return Response(200)


async def handle_get_bucket_cors(req: Request, store: ObjectStore) -> Response:
    assert req.bucket is not None
    bucket = await store.bucket(req.bucket)
    text = await changes.bucket_setting(store, bucket, SETTING)
    if not text:
        raise errors.NoSuchCORSConfiguration(BucketName=req.bucket)
    body = render_configuration(_loads(text))
    return Response(200, {"content-type": "application/xml"}, body)


async def handle_delete_bucket_cors(req: Request, store: ObjectStore) -> Response:
    assert req.bucket is not None
    bucket = await store.bucket(req.bucket)
    await _save(store, bucket, ())
    return Response(204)


async def handle_preflight(head: RequestHead, target: Route, store: ObjectStore) -> Response:
    """OPTIONS, sent by browsers without credentials: answered from the bucket's rules alone.

    Errors and their order follow S3's recorded answers: no Origin is 400; an unknown bucket
    or one without rules is 403 before the method is looked at; no matching rule is 403."""
    origin = head.header("origin")
    if origin is None:
        raise errors.BadRequest("Insufficient information. Origin request header needed.")
    method = head.header("access-control-request-method")
    assert target.bucket is not None
    try:
        bucket = await store.bucket(target.bucket, cached=True)
    except BucketNotFound as exc:
        raise errors.AccessForbidden(
            "CORSResponse: Bucket not found", Method=method or "OPTIONS", ResourceType="BUCKET"
        ) from exc
    rules = await bucket_rules(store, bucket)
    if not rules:
        raise errors.AccessForbidden(
            "CORSResponse: CORS is not enabled for this bucket.",
            Method=method or "OPTIONS",
            ResourceType="BUCKET",
        )
    if method is None:
        raise errors.BadRequest("Invalid Access-Control-Request-Method: null")
    requested = requested_headers(head)
    rule = first_match(rules, origin, method, requested)
    if rule is None:
        raise errors.AccessForbidden(
            _NOT_ALLOWED, Method=method, ResourceType="OBJECT" if target.key else "BUCKET"
        )
    return Response(200, rule.headers(origin, requested))


async def add_cors_headers(
    response: Response, head: RequestHead, target: Route | None, store: ObjectStore
) -> None:
    """Add the CORS headers of the first rule allowing this request, errors included (a
    browser shows the page an error only if they are there). Costs nothing without Origin."""
    origin = head.header("origin")
    if (
        origin is None
        or target is None
        or target.bucket is None
        or target.endpoint is Endpoint.PREFLIGHT
    ):
        return
    try:
        bucket = await store.bucket(target.bucket, cached=True)
        rules = await bucket_rules(store, bucket)
    except DomainError:
        return  # no bucket, no rules
    except Exception:
        # The response itself is ready: send it without CORS headers rather than fail it.
        log.exception("reading the CORS rules of %s", target.bucket)
        return
    # S3 matches an actual request as a preflight when it carries the preflight headers.
    method = head.header("access-control-request-method") or head.method
    requested = requested_headers(head)
    rule = first_match(rules, origin, method, requested)
    if rule is not None:
        response.headers.update(rule.headers(origin, requested))
