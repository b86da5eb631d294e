"""The admin API: JSON over HTTP, mounted by the front door under `/_egide/admin/`.

Requests are signed with SigV4 by the same credentials as S3 (any S3 SDK's signer, `aws
--endpoint-url … s3api`-style tools, or `curl --aws-sigv4`). Path style only: a virtual-hosted
request (`<bucket>.<domain>/_egide/…`) is an object key of that bucket (egide.web.dispatch).
Routes are data (ROUTES below): path pattern → method → (policy action, handler), so every
request is authenticated, matched, authorized as its action on its resource, then handled.

  GET    /_egide/admin/sites                      profiles, health as this process sees it
  GET    /_egide/admin/buckets/{bucket}/policy    the policy the bucket follows, and its source
  PUT    /_egide/admin/buckets/{bucket}/policy    set it (JSON or TOML fields of a policy)
  DELETE /_egide/admin/buckets/{bucket}/policy    remove the stored one (the file's applies)
  GET    /_egide/admin/buckets/{bucket}/placement where a new version would go now, and why
  GET    /_egide/admin/jobs                       maintenance jobs not ended (?all: any)
  POST   /_egide/admin/jobs                       queue one: {"kind": "repair", "params": {…}}
  GET    /_egide/admin/jobs/{id}                  one job: state, counters, cursor
  POST   /_egide/admin/jobs/{id}/{action}         pause, resume or cancel it
  …      /_egide/admin/users, groups, keys        identities (egide.admin.identities)

Errors are `{"code": …, "message": …}` with the HTTP status (egide.admin.errors); the signature
and authorization errors keep AWS's codes (SignatureDoesNotMatch, AccessDenied …).
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from egide.admin import identities as ident
from egide.admin import roles
from egide.admin.errors import AdminError, error_response
from egide.admin.policies import (
    MAX_POLICY_BYTES,
    effective_policy,
    explanation_dict,
    parse_policy,
    set_policy,
)
from egide.auth import errors as auth_errors
from egide.auth.authorize import Authorizer, context_of
from egide.auth.credentials import SecretCache
from egide.auth.sigv4 import AuthResult, PayloadMode, SignedPayloadVerifier, authenticate
from egide.domain import Bucket, BucketNotFound, Job
from egide.engine.events import asking
from egide.engine.jobs import OPEN_STATES, JobQueue
from egide.engine.quotas import Quota, quota_dict
from egide.engine.store import ObjectStore
from egide.maintenance import jobs
from egide.maintenance.jobs import job_dict
from egide.placement import explain
from egide.sites.local import LocalSite
from egide.web.dispatch import Call, json_response, send_response
from egide.web.http import RequestBody, Response, Send

PREFIX = "/_egide/admin/"


@dataclass
class AdminRequest:
    """What a handler gets: the call, its authentication, the path's parameters, the store."""

    call: Call
    auth: AuthResult
    params: dict[str, str]
    store: ObjectStore


AdminHandler = Callable[[AdminRequest], Awaitable[Response]]


@dataclass(frozen=True)
class Operation:
    action: str  # the policy action `authorize` is asked about, egide:…
    handler: AdminHandler


@dataclass(frozen=True)
class AdminRoute:
    """A path pattern (`jobs/{job}`, relative to PREFIX), its resource ARN pattern, and one
    operation per method (in the order a 405 lists them)."""

    pattern: str
    resource: str
    methods: dict[str, Operation]
    #: Checks the path's parameters before anything else (an id that cannot exist: 404).
    check: Callable[[dict[str, str]], None] | None = None

    def match(self, path: str) -> dict[str, str] | None:
        found = _compiled(self.pattern).fullmatch(path)
        return None if found is None else found.groupdict()


@functools.lru_cache(maxsize=64)
def _compiled(pattern: str) -> re.Pattern[str]:
    return re.compile(re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", pattern))


def _job_id(params: dict[str, str]) -> None:
    if not params["job"].isdigit():
        raise AdminError(404, "NoSuchJob", f"no job {params['job']}")


class AdminApp:
    def __init__(self, store: ObjectStore, secrets: SecretCache, authorizer: Authorizer) -> None:
        self.store = store
        self.secrets = secrets
        self.authorizer = authorizer

    async def serve(self, call: Call, send: Send) -> None:
        call.exchange.operation = "Admin"
        try:
            response = await self._answer(call)
        except Exception as exc:
            response = error_response(exc, call.head)
        await send_response(response, call, send)

    async def _answer(self, call: Call) -> Response:
        head = call.head
        now = datetime.now(UTC)
        await self.secrets.load(head)
        auth = authenticate(head, self.secrets.get, now=now)
        if auth is None:
            raise auth_errors.AccessDenied("The admin API needs a signed request (SigV4).")
        path = head.path
        relative = path[len(PREFIX) :].strip("/") if path.startswith(PREFIX) else None
        for route in ROUTES:
            params = None if relative is None else route.match(relative)
            if params is None:
                continue
            if route.check is not None:
                route.check(params)
            operation = route.methods.get(head.method)
            if operation is None:
                allowed = ", ".join(route.methods)
                raise AdminError(
                    405, "MethodNotAllowed", f"{head.method} is not allowed here: {allowed}"
                )
            await self.authorizer.authorize(
                self.secrets.principal(auth.access_key), operation.action,
                route.resource.format(**params), context_of(call, now),
            )  # fmt: skip
            token = asking.set(auth.access_key)  # who asked, in the engine's events
            try:
                return await operation.handler(AdminRequest(call, auth, params, self.store))
            finally:
                asking.reset(token)
        raise AdminError(404, "NotFound", f"no such resource: {path}")


async def _get_sites(req: AdminRequest) -> Response:
    return json_response(200, {"sites": _sites(req.store)})


async def _get_policy(req: AdminRequest) -> Response:
    bucket = await _bucket(req.store, req.params["bucket"])
    return json_response(200, await _policy(req.store, bucket))


async def _put_policy(req: AdminRequest) -> Response:
    store = req.store
    bucket = await _bucket(store, req.params["bucket"])
    policy = parse_policy(await _read_body(req.call.body, req.auth))
    await set_policy(store.bucket_settings, bucket, policy, store.placer.profiles)
    return json_response(200, await _policy(store, bucket))


async def _delete_policy(req: AdminRequest) -> Response:
    store = req.store
    bucket = await _bucket(store, req.params["bucket"])
    await set_policy(store.bucket_settings, bucket, None, store.placer.profiles)
    return json_response(200, await _policy(store, bucket))


async def _get_placement(req: AdminRequest) -> Response:
    bucket = await _bucket(req.store, req.params["bucket"])
    return json_response(200, await _placement(req.store, bucket))


def _quota_of(document: dict[str, Any]) -> Quota:
    """A quota as a PUT sends it: {"max_bytes": n | null, "max_objects": n | null}."""
    values = []
    for name in ("max_bytes", "max_objects"):
        value = document.get(name)
        if value is not None and (type(value) is not int or value < 0):
            raise AdminError(400, "InvalidRequest", f"{name} must be a whole number or null")
        values.append(value)
    unknown = set(document) - {"max_bytes", "max_objects"}
    if unknown:
        raise AdminError(400, "InvalidRequest", f"unknown fields: {', '.join(sorted(unknown))}")
    return Quota(*values)


async def _bucket_quota(req: AdminRequest) -> Response:
    store = req.store
    bucket = await _bucket(store, req.params["bucket"])
    method = req.call.head.method
    if method != "GET":
        text = await _read_body(req.call.body, req.auth, "quota") if method == "PUT" else ""
        await store.quotas.set_bucket_quota(bucket, _quota_of(_json_object(text or "{}")))
    quota, usage = await store.quotas.bucket_quota(bucket), await store.quotas.usage(bucket)
    return json_response(200, {"bucket": bucket.name, **quota_dict(quota, usage)})


async def _account_quota(req: AdminRequest) -> Response:
    store = req.store
    method = req.call.head.method
    if method != "GET":
        text = await _read_body(req.call.body, req.auth, "quota") if method == "PUT" else ""
        await store.quotas.set_account_quota(_quota_of(_json_object(text or "{}")))
    quota, usage = await store.quotas.account_quota(), await store.quotas.usage(None)
    return json_response(200, quota_dict(quota, usage))


async def _list_jobs(req: AdminRequest) -> Response:
    states = () if req.call.head.query_value("all") is not None else OPEN_STATES
    listed = await req.store.jobs.listed(states)
    return json_response(200, {"jobs": [job_dict(j) for j in listed]})


async def _submit_job(req: AdminRequest) -> Response:
    request = _json_object(await _read_body(req.call.body, req.auth, "job request"))
    params = request.get("params", {})
    if not isinstance(params, dict):
        raise AdminError(400, "InvalidRequest", "params must be a JSON object")
    job = await jobs.submit(req.store.jobs, str(request.get("kind")), params)
    return json_response(201, job_dict(job))


async def _get_job(req: AdminRequest) -> Response:
    return json_response(200, job_dict(await req.store.jobs.get(int(req.params["job"]))))


def _job_change(change: Callable[[JobQueue, int], Awaitable[Job]]) -> AdminHandler:
    async def handle(req: AdminRequest) -> Response:
        return json_response(200, job_dict(await change(req.store.jobs, int(req.params["job"]))))

    return handle


def _identity(operation: ident.IdentityOperation, *, body: bool = False) -> AdminHandler:
    """An identity operation as a handler: its JSON body read when it takes one."""

    async def handle(req: AdminRequest) -> Response:
        document: dict[str, Any] = {}
        if body and (text := await _read_body(req.call.body, req.auth, "request")):
            document = _json_object(text)
        status, answer = await operation(req.store.identities, req.params, document)
        return json_response(status, answer)

    return handle


async def _delete_user(req: AdminRequest) -> Response:
    force = req.call.head.query_value("force") is not None
    return await _identity(ident.delete_user(force))(req)


_USERS, _GROUPS, _KEYS, _ROLES = (
    f"arn:egide:admin:::{kind}" for kind in ("users", "groups", "keys", "roles")
)

ROUTES: tuple[AdminRoute, ...] = (
    AdminRoute("sites", "arn:egide:admin:::sites", {
        "GET": Operation("egide:ListSites", _get_sites),
    }),
    AdminRoute("buckets/{bucket}/policy", "arn:aws:s3:::{bucket}", {
        "GET": Operation("egide:GetBucketPolicy", _get_policy),
        "PUT": Operation("egide:PutBucketPolicy", _put_policy),
        "DELETE": Operation("egide:DeleteBucketPolicy", _delete_policy),
    }),
    AdminRoute("buckets/{bucket}/placement", "arn:aws:s3:::{bucket}", {
        "GET": Operation("egide:GetBucketPlacement", _get_placement),
    }),
    AdminRoute("buckets/{bucket}/quota", "arn:aws:s3:::{bucket}", {
        "GET": Operation("egide:GetBucketQuota", _bucket_quota),
        "PUT": Operation("egide:PutBucketQuota", _bucket_quota),
        "DELETE": Operation("egide:PutBucketQuota", _bucket_quota),
    }),
    AdminRoute("account/quota", "arn:egide:admin:::account", {
        "GET": Operation("egide:GetAccountQuota", _account_quota),
        "PUT": Operation("egide:PutAccountQuota", _account_quota),
        "DELETE": Operation("egide:PutAccountQuota", _account_quota),
    }),
    AdminRoute("jobs", "arn:egide:admin:::jobs", {
        "GET": Operation("egide:ListJobs", _list_jobs),
        "POST": Operation("egide:SubmitJob", _submit_job),
    }),
    AdminRoute("jobs/{job}", "arn:egide:admin:::jobs/{job}", {
        "GET": Operation("egide:GetJob", _get_job),
    }, check=_job_id),
    AdminRoute("jobs/{job}/pause", "arn:egide:admin:::jobs/{job}", {
        "POST": Operation("egide:PauseJob", _job_change(JobQueue.pause)),
    }, check=_job_id),
    AdminRoute("jobs/{job}/resume", "arn:egide:admin:::jobs/{job}", {
        "POST": Operation("egide:ResumeJob", _job_change(JobQueue.resume)),
    }, check=_job_id),
    AdminRoute("jobs/{job}/cancel", "arn:egide:admin:::jobs/{job}", {
        "POST": Operation("egide:CancelJob", _job_change(JobQueue.cancel)),
    }, check=_job_id),
    AdminRoute("users", _USERS, {
        "GET": Operation("egide:ListUsers", _identity(ident.list_users)),
        "POST": Operation("egide:CreateUser", _identity(ident.create_user, body=True)),
    }),
    AdminRoute("users/{user}", _USERS + "/{user}", {
        "DELETE": Operation("egide:DeleteUser", _delete_user),
    }),
    AdminRoute("users/{user}/keys", _USERS + "/{user}", {
        "GET": Operation("egide:ListAccessKeys", _identity(ident.list_keys)),
        "POST": Operation("egide:CreateAccessKey", _identity(ident.create_key, body=True)),
    }),
    AdminRoute("groups", _GROUPS, {
        "GET": Operation("egide:ListGroups", _identity(ident.list_groups)),
        "POST": Operation("egide:CreateGroup", _identity(ident.create_group, body=True)),
    }),
    AdminRoute("groups/{group}", _GROUPS + "/{group}", {
        "DELETE": Operation("egide:DeleteGroup", _identity(ident.delete_group)),
    }),
    AdminRoute("groups/{group}/members/{user}", _GROUPS + "/{group}", {
        "PUT": Operation("egide:AddUserToGroup", _identity(ident.set_member(True))),
        "DELETE": Operation("egide:RemoveUserFromGroup", _identity(ident.set_member(False))),
    }),
    AdminRoute("users/{user}/policies", _USERS + "/{user}", {
        "GET": Operation("egide:ListUserPolicies",
                         _identity(ident.policy_operation("user", "list"))),
    }),
    AdminRoute("users/{user}/policies/{policy}", _USERS + "/{user}", {
        "PUT": Operation("egide:PutUserPolicy",
                         _identity(ident.policy_operation("user", "put"), body=True)),
        "DELETE": Operation("egide:DeleteUserPolicy",
                            _identity(ident.policy_operation("user", "delete"))),
    }),
    AdminRoute("groups/{group}/policies", _GROUPS + "/{group}", {
        "GET": Operation("egide:ListGroupPolicies",
                         _identity(ident.policy_operation("group", "list"))),
    }),
    AdminRoute("groups/{group}/policies/{policy}", _GROUPS + "/{group}", {
        "PUT": Operation("egide:PutGroupPolicy",
                         _identity(ident.policy_operation("group", "put"), body=True)),
        "DELETE": Operation("egide:DeleteGroupPolicy",
                            _identity(ident.policy_operation("group", "delete"))),
    }),
    AdminRoute("roles", _ROLES, {
        "GET": Operation("egide:ListRoles", _identity(roles.list_roles)),
        "POST": Operation("egide:CreateRole", _identity(roles.create_role, body=True)),
    }),
    AdminRoute("roles/{role}", _ROLES + "/{role}", {
        "GET": Operation("egide:GetRole", _identity(roles.get_role)),
        "DELETE": Operation("egide:DeleteRole", _identity(roles.delete_role)),
    }),
    AdminRoute("roles/{role}/policies", _ROLES + "/{role}", {
        "GET": Operation("egide:ListRolePolicies",
                         _identity(ident.policy_operation("role", "list"))),
    }),
    AdminRoute("roles/{role}/policies/{policy}", _ROLES + "/{role}", {
        "PUT": Operation("egide:PutRolePolicy",
                         _identity(ident.policy_operation("role", "put"), body=True)),
        "DELETE": Operation("egide:DeleteRolePolicy",
                            _identity(ident.policy_operation("role", "delete"))),
    }),
    AdminRoute("keys/{key}", _KEYS + "/{key}", {
        "DELETE": Operation("egide:DeleteAccessKey", _identity(ident.delete_key)),
    }),
    AdminRoute("keys/{key}/disable", _KEYS + "/{key}", {
        "POST": Operation("egide:UpdateAccessKey", _identity(ident.set_key_active(False))),
    }),
    AdminRoute("keys/{key}/enable", _KEYS + "/{key}", {
        "POST": Operation("egide:UpdateAccessKey", _identity(ident.set_key_active(True))),
    }),
    AdminRoute("keys/{key}/rotate", _KEYS + "/{key}", {
        "POST": Operation("egide:RotateAccessKey", _identity(ident.rotate_key, body=True)),
    }),
)  # fmt: skip


def _json_object(text: str) -> dict[str, Any]:
    try:
        document = json.loads(text)
    except json.JSONDecodeError as exc:
        raise AdminError(400, "InvalidRequest", f"the body is not JSON: {exc}") from None
    if not isinstance(document, dict):
        raise AdminError(400, "InvalidRequest", "the body must be a JSON object")
    return document


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
    try:
        return await store.bucket(name)
    except BucketNotFound:
        raise AdminError(404, "NoSuchBucket", f"no bucket {name}") from None


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
        store.bucket_settings, placer.policies, placer.fallback, bucket.name, bucket
    )
    return {"bucket": bucket.name, **effective.as_dict()}


async def _placement(store: ObjectStore, bucket: Bucket) -> dict[str, object]:
    placer = store.placer
    effective = await effective_policy(
        store.bucket_settings, placer.policies, placer.fallback, bucket.name, bucket
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
