"""The admin API: JSON over HTTP on the S3 listener, under `/_egide/admin/`.

Requests are signed with SigV4 by the same credentials as S3 (any S3 SDK's signer, `aws
--endpoint-url … s3api`-style tools, or `curl --aws-sigv4`). No bucket can shadow these paths:
bucket names cannot contain `_`. A virtual-hosted request (`<bucket>.<domain>/_egide/…`) is an
object key of that bucket, never the admin API.

  GET    /_egide/admin/sites                      profiles, health as this process sees it
  GET    /_egide/admin/buckets/{bucket}/policy    the policy the bucket follows, and its source
  PUT    /_egide/admin/buckets/{bucket}/policy    set it (JSON or TOML fields of a policy)
  DELETE /_egide/admin/buckets/{bucket}/policy    remove the stored one (the file's applies)
  GET    /_egide/admin/buckets/{bucket}/placement where a new version would go now, and why
  GET    /_egide/admin/jobs                       maintenance jobs not ended (?all: any)
  POST   /_egide/admin/jobs                       queue one: {"kind": "repair", "params": {…}}
  GET    /_egide/admin/jobs/{id}                  one job: state, counters, cursor
  POST   /_egide/admin/jobs/{id}/{action}         pause, resume or cancel it

Errors are `{"code": …, "message": …}` with the HTTP status; the signature errors are S3's own
codes (SignatureDoesNotMatch, AccessDenied …).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

from egide.admin.policies import (
    MAX_POLICY_BYTES,
    InfeasiblePolicy,
    PolicyError,
    effective_policy,
    explanation_dict,
    parse_policy,
    set_policy,
)
from egide.domain import Bucket
from egide.engine.store import ObjectStore
from egide.maintenance import jobs
from egide.maintenance.jobs import job_dict
from egide.placement import explain
from egide.s3 import errors
from egide.s3.addressing import virtual_host_target
from egide.s3.auth.sigv4 import AuthResult, PayloadMode, authenticate
from egide.s3.auth.streaming import SignedPayloadVerifier
from egide.s3.http import RequestBody, Response
from egide.s3.request import RequestHead
from egide.sites.local import LocalSite

log = logging.getLogger("egide.admin")

#: Paths under this prefix are never S3: reserved for Égide's own APIs.
RESERVED_PREFIX = "/_egide/"
ADMIN_PREFIX = "/_egide/admin/"


class AdminError(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


def is_admin_request(head: RequestHead, domains: tuple[str, ...]) -> bool:
    """A path-style request under /_egide/ (see the module docstring)."""
    return head.raw_path.startswith(RESERVED_PREFIX) and virtual_host_target(head, domains) is None


def _json(status: int, document: object) -> Response:
    body = json.dumps(document, ensure_ascii=False, indent=2).encode() + b"\n"
    return Response(status, {"content-type": "application/json"}, body)


async def handle_admin(
    head: RequestHead,
    raw: RequestBody,
    store: ObjectStore,
    load_secret: Callable[[RequestHead], Awaitable[None]],
    secret_of: Callable[[str], str | None],
) -> Response:
    """Authenticate, then answer one admin request; every error is answered as JSON."""
    try:
        await load_secret(head)
        auth = authenticate(head, secret_of, now=datetime.now(UTC))
        if auth is None:
            raise errors.AccessDenied("The admin API needs a signed request (SigV4).")
        return await _dispatch(head, raw, store, auth)
    except AdminError as exc:
        return _json(exc.status, {"code": exc.code, "message": exc.message})
    except PolicyError as exc:
        code = "InfeasiblePolicy" if isinstance(exc, InfeasiblePolicy) else "InvalidPolicy"
        return _json(400, {"code": code, "message": str(exc)})
    except errors.S3Error as exc:
        return _json(exc.status, {"code": exc.code, "message": exc.message})
    except Exception:
        log.exception("admin API: internal error on %s %s", head.method, head.raw_path)
        return _json(500, {"code": "InternalError", "message": "internal error (see the log)"})


async def _dispatch(
    head: RequestHead, raw: RequestBody, store: ObjectStore, auth: AuthResult
) -> Response:
    path = head.path
    if not path.startswith(ADMIN_PREFIX):
        raise AdminError(404, "NotFound", f"no such resource: {path}")
    parts = path[len(ADMIN_PREFIX) :].strip("/").split("/")
    if parts == ["sites"]:
        _allow(head, "GET")
        return _json(200, {"sites": _sites(store)})
    if len(parts) == 3 and parts[0] == "buckets" and parts[2] == "policy":
        _allow(head, "GET", "PUT", "DELETE")
        bucket = await _bucket(store, parts[1])
        if head.method == "PUT":
            policy = parse_policy(await _read_body(raw, auth))
            await set_policy(store.catalog, bucket, policy, store.placer.profiles)
            store.placer.forget(bucket.id)
        elif head.method == "DELETE":
            await set_policy(store.catalog, bucket, None, store.placer.profiles)
            store.placer.forget(bucket.id)
        return _json(200, await _policy(store, bucket))
    if parts[0] == "jobs":
        return await _jobs(head, raw, store, auth, parts[1:])
    if len(parts) == 3 and parts[0] == "buckets" and parts[2] == "placement":
        _allow(head, "GET")
        return _json(200, await _placement(store, await _bucket(store, parts[1])))
    raise AdminError(404, "NotFound", f"no such resource: {path}")


async def _jobs(
    head: RequestHead, raw: RequestBody, store: ObjectStore, auth: AuthResult, parts: list[str]
) -> Response:
    catalog = store.catalog
    try:
        if not parts:
            _allow(head, "GET", "POST")
            if head.method == "POST":
                request = _json_object(await _read_body(raw, auth, "job request"))
                params = request.get("params", {})
                if not isinstance(params, dict):
                    raise AdminError(400, "InvalidRequest", "params must be a JSON object")
                job = await jobs.submit(catalog, str(request.get("kind")), params)
                return _json(201, job_dict(job))
            states = () if head.query_value("all") is not None else jobs.OPEN_STATES
            return _json(200, {"jobs": [job_dict(j) for j in await catalog.list_jobs(states)]})
        if not parts[0].isdigit():
            raise AdminError(404, "NoSuchJob", f"no job {parts[0]}")
        job_id = int(parts[0])
        if len(parts) == 2 and parts[1] in ("pause", "resume", "cancel"):
            _allow(head, "POST")
            return _json(200, job_dict(await getattr(jobs, parts[1])(catalog, job_id)))
        if len(parts) == 1:
            _allow(head, "GET")
            found = await catalog.get_job(job_id)
            if found is None:
                raise AdminError(404, "NoSuchJob", f"no job {job_id}")
            return _json(200, job_dict(found))
    except jobs.JobError as exc:
        status, code = (404, "NoSuchJob") if str(exc).startswith("no job") else (409, "InvalidJob")
        raise AdminError(status, code, str(exc)) from None
    raise AdminError(404, "NotFound", f"no such resource: {head.path}")


def _json_object(text: str) -> dict[str, Any]:
    try:
        document = json.loads(text)
    except json.JSONDecodeError as exc:
        raise AdminError(400, "InvalidRequest", f"the body is not JSON: {exc}") from None
    if not isinstance(document, dict):
        raise AdminError(400, "InvalidRequest", "the body must be a JSON object")
    return document


def _allow(head: RequestHead, *methods: str) -> None:
    if head.method not in methods:
        raise AdminError(
            405, "MethodNotAllowed", f"{head.method} is not allowed here: {', '.join(methods)}"
        )


async def _read_body(raw: RequestBody, auth: AuthResult, what: str = "policy") -> str:
    if auth.payload_mode.streaming:
        raise AdminError(400, "InvalidRequest", f"send the {what} in one signed body, not chunked")
    body = raw.chunks()
    if auth.payload_mode is PayloadMode.SIGNED and auth.payload_sha256 is not None:
        body = SignedPayloadVerifier(auth.payload_sha256).wrap(body)
    data = bytearray()
    async for chunk in body:
        data += chunk
        if len(data) > MAX_POLICY_BYTES:
            raise AdminError(400, "InvalidPolicy", f"a policy is at most {MAX_POLICY_BYTES} bytes")
    try:
        return data.decode()
    except UnicodeDecodeError:
        raise AdminError(400, "InvalidPolicy", "the policy is not UTF-8 text") from None


async def _bucket(store: ObjectStore, name: str) -> Bucket:
    bucket = await store.catalog.get_bucket(name)
    if bucket is None:
        raise AdminError(404, "NoSuchBucket", f"no bucket {name}")
    return bucket


def _sites(store: ObjectStore) -> list[dict[str, Any]]:
    snapshot = store.health.snapshot()
    suspects = store.placer.suspects()
    down = store.health.unavailable()
    rows = []
    for profile in store.placer.profiles:
        site = store.sites.get(profile.name)
        if isinstance(site, LocalSite):
            kind, where = "local", str(site.root)
        else:
            kind, where = "s3", str(getattr(site, "where", lambda: "")())
        rows.append(
            {
                "name": profile.name,
                "kind": kind,
                "where": where,
                "profile": profile.model_dump(mode="json", exclude={"name"}),
                "available": profile.name not in down,
                "suspect": profile.name in suspects,
                "health": snapshot.get(profile.name),
            }
        )
    return rows


async def _policy(store: ObjectStore, bucket: Bucket) -> dict[str, object]:
    placer = store.placer
    effective = await effective_policy(
        store.catalog, placer.policies, placer.fallback, bucket.name, bucket
    )
    return {"bucket": bucket.name, **effective.as_dict()}


async def _placement(store: ObjectStore, bucket: Bucket) -> dict[str, object]:
    placer = store.placer
    effective = await effective_policy(
        store.catalog, placer.policies, placer.fallback, bucket.name, bucket
    )
    if effective.policy is None:
        raise AdminError(409, "InvalidPolicy", effective.error or "the stored policy is invalid")
    latency = {
        name: seconds * 1000
        for name in store.sites
        if (seconds := store.health.latency(name)) is not None
    }
    explanation = explain(
        effective.policy, placer.profiles, unavailable=store.health.unavailable(),
        latency_ms=latency,
    )  # fmt: skip
    return {"bucket": bucket.name, **effective.as_dict(), **explanation_dict(explanation)}
