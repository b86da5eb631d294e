"""The admin API's users, groups and access keys: each operation takes the store's identity
service, the path's parameters and the request's JSON object, and answers (status, document);
egide.admin.http routes them (`egide:CreateUser` …) and reads the bodies. IAM's error codes:
NoSuchEntity, EntityAlreadyExists, DeleteConflict, ValidationError, MalformedPolicyDocument.

  GET    /_egide/admin/users                          users, with their ARN and key count
  POST   /_egide/admin/users                          {"name": …}
  DELETE /_egide/admin/users/{user}                   (?force: its keys too)
  GET    /_egide/admin/users/{user}/keys              its keys (never a secret)
  POST   /_egide/admin/users/{user}/keys              {"expires": unix time or null}: the
                                                      secret, in this answer only
  GET    /_egide/admin/groups                         groups with their members
  POST   /_egide/admin/groups                         {"name": …}
  DELETE /_egide/admin/groups/{group}
  PUT    /_egide/admin/groups/{group}/members/{user}  add; DELETE removes
  POST   /_egide/admin/keys/{key}/{disable|enable|rotate}
  DELETE /_egide/admin/keys/{key}
  GET    /_egide/admin/{users|groups}/{name}/policies            attached identity policies
  PUT    /_egide/admin/{users|groups}/{name}/policies/{policy}   attach (the body: the JSON
                                                                 document, at most 6 KiB)
  DELETE /_egide/admin/{users|groups}/{name}/policies/{policy}
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

from egide.admin.errors import AdminError
from egide.auth.policy import MalformedPolicy, check_identity_policy
from egide.domain import (
    AccessKey,
    IdentityExists,
    IdentityNotFound,
    IdentityRefused,
    InvalidIdentityName,
    UserHasKeys,
    group_arn,
    user_arn,
)
from egide.engine.identities import IdentityService

Params = dict[str, str]
#: An identity operation: (service, path parameters, JSON body) → (status, document).
IdentityOperation = Callable[[IdentityService, Params, dict[str, Any]], Awaitable[tuple[int, Any]]]


def _iso(when: float | None) -> str | None:
    return None if when is None else datetime.fromtimestamp(when, UTC).isoformat()


def key_document(key: AccessKey) -> dict[str, Any]:
    return {"access_key": key.access_key, "user": key.user, "status": key.status,
            "created": _iso(key.created), "expires": _iso(key.expires)}  # fmt: skip


def admin_errors(operation: IdentityOperation) -> IdentityOperation:
    """The identities' domain errors as IAM's codes."""

    async def run(ids: IdentityService, params: Params, body: dict[str, Any]) -> tuple[int, Any]:
        try:
            return await operation(ids, params, body)
        except IdentityNotFound as exc:
            raise AdminError(404, "NoSuchEntity", f"no {exc}") from None
        except IdentityExists as exc:
            raise AdminError(409, "EntityAlreadyExists", f"{exc} already exists") from None
        except (UserHasKeys, IdentityRefused) as exc:
            raise AdminError(409, "DeleteConflict", str(exc)) from None
        except InvalidIdentityName as exc:
            raise AdminError(400, "ValidationError", str(exc)) from None
        except MalformedPolicy as exc:
            raise AdminError(400, "MalformedPolicyDocument", exc.reason) from None

    return run


def _name(body: dict[str, Any]) -> str:
    name = body.get("name")
    if not isinstance(name, str):
        raise AdminError(400, "ValidationError", 'give the name: {"name": …}')
    return name


@admin_errors
async def list_users(ids: IdentityService, _: Params, __: dict[str, Any]) -> tuple[int, Any]:
    account, keys = await ids.account_id(), await ids.keys()
    users = [
        {"name": u.name, "id": u.id, "arn": user_arn(account, u.name), "created": _iso(u.created),
         "access_keys": sum(k.user == u.name for k in keys)}
        for u in await ids.users()
    ]  # fmt: skip
    return 200, {"account": account, "users": users}


@admin_errors
async def create_user(ids: IdentityService, _: Params, body: dict[str, Any]) -> tuple[int, Any]:
    user = await ids.create_user(_name(body))
    arn = user_arn(await ids.account_id(), user.name)
    return 201, {"name": user.name, "id": user.id, "arn": arn, "created": _iso(user.created)}


def delete_user(force: bool) -> IdentityOperation:
    @admin_errors
    async def run(ids: IdentityService, params: Params, _: dict[str, Any]) -> tuple[int, Any]:
        deleted = await ids.delete_user(params["user"], force=force)
        return 200, {"deleted": params["user"], "access_keys_deleted": deleted}

    return run


@admin_errors
async def list_keys(ids: IdentityService, params: Params, _: dict[str, Any]) -> tuple[int, Any]:
    if params["user"] not in {u.name for u in await ids.users()}:
        raise IdentityNotFound(f"user {params['user']}")
    return 200, {"access_keys": [key_document(k) for k in await ids.keys(params["user"])]}


def _expires(body: dict[str, Any]) -> float | None:
    expires = body.get("expires")
    if expires is not None and not isinstance(expires, (int, float)):
        raise AdminError(400, "ValidationError", "expires is a unix time in seconds, or null")
    return None if expires is None else float(expires)


@admin_errors
async def create_key(ids: IdentityService, params: Params, body: dict[str, Any]) -> tuple[int, Any]:
    key, secret = await ids.create_key(params["user"], expires=_expires(body))
    return 201, {**key_document(key), "secret_key": secret}


@admin_errors
async def list_groups(ids: IdentityService, _: Params, __: dict[str, Any]) -> tuple[int, Any]:
    account = await ids.account_id()
    groups = [
        {"name": g.name, "id": g.id, "arn": group_arn(account, g.name), "created": _iso(g.created),
         "members": list(g.members)}
        for g in await ids.groups()
    ]  # fmt: skip
    return 200, {"groups": groups}


@admin_errors
async def create_group(ids: IdentityService, _: Params, body: dict[str, Any]) -> tuple[int, Any]:
    group = await ids.create_group(_name(body))
    arn = group_arn(await ids.account_id(), group.name)
    return 201, {"name": group.name, "id": group.id, "arn": arn, "members": []}


@admin_errors
async def delete_group(ids: IdentityService, params: Params, _: dict[str, Any]) -> tuple[int, Any]:
    await ids.delete_group(params["group"])
    return 200, {"deleted": params["group"]}


def set_member(member: bool) -> IdentityOperation:
    @admin_errors
    async def run(ids: IdentityService, params: Params, _: dict[str, Any]) -> tuple[int, Any]:
        changed = await ids.set_member(params["group"], params["user"], member)
        return 200, {"group": params["group"], "user": params["user"], "changed": changed}

    return run


def set_key_active(active: bool) -> IdentityOperation:
    @admin_errors
    async def run(ids: IdentityService, params: Params, _: dict[str, Any]) -> tuple[int, Any]:
        await ids.set_key_active(params["key"], active)
        return 200, key_document(await ids.key(params["key"]))

    return run


@admin_errors
async def rotate_key(ids: IdentityService, params: Params, body: dict[str, Any]) -> tuple[int, Any]:
    key, secret = await ids.rotate_key(params["key"], expires=_expires(body))
    return 201, {**key_document(key), "secret_key": secret, "previous": params["key"]}


@admin_errors
async def delete_key(ids: IdentityService, params: Params, _: dict[str, Any]) -> tuple[int, Any]:
    await ids.delete_key(params["key"])
    return 200, {"deleted": params["key"]}


def policy_operation(kind: str, change: str) -> IdentityOperation:
    """List ("list"), attach ("put": the body is the document) or detach ("delete") the
    identity policies of a user, a group or a role."""

    @admin_errors
    async def run(ids: IdentityService, params: Params, body: dict[str, Any]) -> tuple[int, Any]:
        name = params[kind]
        if change == "put":
            document = json.dumps(body)
            await ids.put_policy(
                kind, name, params["policy"], document, validate=check_identity_policy
            )
        elif change == "delete":
            await ids.delete_policy(kind, name, params["policy"])
        if change != "delete" and name not in await _names(ids, kind):
            raise IdentityNotFound(f"{kind} {name}")
        attached = await ids.policies(kind, name)
        return 200, {kind: name, "policies": {p: json.loads(d) for p, d in attached.items()}}

    return run


async def _names(ids: IdentityService, kind: str) -> set[str]:
    if kind == "role":
        return {role.name for role in await ids.roles()}
    found = await (ids.users() if kind == "user" else ids.groups())
    return {each.name for each in found}
