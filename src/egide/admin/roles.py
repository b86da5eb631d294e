"""The admin API's roles (STS): each operation takes the store's identity service, the path's
parameters and the request's JSON object, and answers (status, document), as
egide.admin.identities' do; egide.admin.http routes them (`egide:CreateRole` …).

  GET    /_egide/admin/roles                         roles, with their ARN
  POST   /_egide/admin/roles                         {"name": …, "trust_policy": {…},
                                                     "max_session_duration": seconds}
  GET    /_egide/admin/roles/{role}                  the role, its trust and attached policies
  DELETE /_egide/admin/roles/{role}                  its sessions are refused within a second
  GET    /_egide/admin/roles/{role}/policies         (as users' and groups')
  PUT    /_egide/admin/roles/{role}/policies/{policy}
  DELETE /_egide/admin/roles/{role}/policies/{policy}
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from egide.admin.errors import AdminError
from egide.admin.identities import Params, admin_errors
from egide.auth.policy import MalformedPolicy, PolicyKind, parse_policy
from egide.domain import ROLE_DEFAULT_MAX_SESSION, Role, role_arn
from egide.engine.identities import IdentityService


def role_document(role: Role, account: str) -> dict[str, Any]:
    return {
        "name": role.name, "id": role.id, "arn": role_arn(account, role.name),
        "created": datetime.fromtimestamp(role.created, UTC).isoformat(),
        "max_session_duration": role.max_session, "trust_policy": json.loads(role.trust_policy),
    }  # fmt: skip


@admin_errors
async def list_roles(ids: IdentityService, _: Params, __: dict[str, Any]) -> tuple[int, Any]:
    account = await ids.account_id()
    return 200, {"roles": [role_document(r, account) for r in await ids.roles()]}


@admin_errors
async def create_role(ids: IdentityService, _: Params, body: dict[str, Any]) -> tuple[int, Any]:
    name, trust = body.get("name"), body.get("trust_policy")
    longest = body.get("max_session_duration", ROLE_DEFAULT_MAX_SESSION)
    if not isinstance(name, str) or not isinstance(trust, dict) or not isinstance(longest, int):
        raise AdminError(400, "ValidationError", 'give {"name": …, "trust_policy": {…}} '
                         '(and "max_session_duration": seconds)')  # fmt: skip
    document = json.dumps(trust)
    try:
        parse_policy(document, PolicyKind.TRUST)
    except MalformedPolicy as exc:
        raise AdminError(400, "MalformedPolicyDocument", str(exc)) from None
    role = await ids.create_role(name, document, longest)
    return 201, role_document(role, await ids.account_id())


@admin_errors
async def get_role(ids: IdentityService, params: Params, _: dict[str, Any]) -> tuple[int, Any]:
    role = await ids.role(params["role"])
    attached = await ids.policies("role", role.name)
    return 200, {
        **role_document(role, await ids.account_id()),
        "policies": {p: json.loads(d) for p, d in attached.items()},
    }


@admin_errors
async def delete_role(ids: IdentityService, params: Params, _: dict[str, Any]) -> tuple[int, Any]:
    await ids.delete_role(params["role"])
    return 200, {"deleted": params["role"]}
