"""`egide role …`: roles that users and OpenID Connect sign-ins assume through STS for
temporary credentials (docs/sts.md).

A trust policy is validated as AWS validates one before it is kept (MalformedPolicy with the
reason, exit 1); attached identity policies are what the role's sessions may do. Each change
goes through the store's identity service, seen by running servers within a second.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from egide.auth.policy import MalformedPolicy, PolicyKind, check_identity_policy, parse_policy
from egide.cli.common import ConfigOption, DataDirOption, JsonOption, fail, out, print_json
from egide.cli.identities import _iso, with_identities
from egide.domain import ROLE_DEFAULT_MAX_SESSION, Role, role_arn
from egide.engine.identities import IdentityService

role_app = typer.Typer(help="Roles assumed through STS (temporary credentials).",
                       no_args_is_help=True)  # fmt: skip

MaxSessionOption = Annotated[
    int | None,
    typer.Option("--max-session-duration", help="Longest session, in seconds (900 to 43200)."),
]


def _read(file: Path, kind: PolicyKind) -> str:
    try:
        document = file.read_text()
    except (OSError, UnicodeDecodeError) as exc:
        fail(f"cannot read {file}: {exc}")
    try:
        parse_policy(document, kind)
    except MalformedPolicy as exc:
        fail(f"refused: {file}: {exc}", 1)
    return document


def role_dict(
    role: Role, account: str, policies: dict[str, str] | None = None
) -> dict[str, object]:
    described: dict[str, object] = {
        "name": role.name, "id": role.id, "arn": role_arn(account, role.name),
        "created": _iso(role.created), "max_session_duration": role.max_session,
        "trust_policy": json.loads(role.trust_policy),
    }  # fmt: skip
    if policies is not None:
        described["policies"] = {name: json.loads(doc) for name, doc in policies.items()}
    return described


@role_app.command("create")
def role_create(
    name: str,
    trust: Annotated[Path, typer.Argument(help="The trust policy (IAM JSON): who may assume it.")],
    max_session: MaxSessionOption = None,
    config: ConfigOption = None,
    data_dir: DataDirOption = None,
    json_output: JsonOption = False,
) -> None:
    """Create a role; attach what its sessions may do with `egide role attach-policy`."""
    document = _read(trust, PolicyKind.TRUST)

    async def run(ids: IdentityService) -> dict[str, object]:
        role = await ids.create_role(name, document, max_session or ROLE_DEFAULT_MAX_SESSION)
        return role_dict(role, await ids.account_id())

    created = with_identities(config, data_dir, run)
    print_json(created) if json_output else out.print(f"role {name} created: {created['arn']}")


@role_app.command("update")
def role_update(
    name: str,
    trust: Annotated[Path | None, typer.Option("--trust", help="A new trust policy.")] = None,
    max_session: MaxSessionOption = None,
    config: ConfigOption = None,
    data_dir: DataDirOption = None,
) -> None:
    """Replace a role's trust policy or its longest session."""
    document = None if trust is None else _read(trust, PolicyKind.TRUST)
    with_identities(
        config, data_dir,
        lambda ids: ids.update_role(name, trust_policy=document, max_session=max_session),
    )  # fmt: skip
    out.print(f"role {name} updated")


@role_app.command("list")
def role_list(
    config: ConfigOption = None, data_dir: DataDirOption = None, json_output: JsonOption = False
) -> None:
    """Every role with its ARN and longest session."""

    async def run(ids: IdentityService) -> list[dict[str, object]]:
        account = await ids.account_id()
        return [role_dict(r, account) for r in await ids.roles()]

    roles = with_identities(config, data_dir, run)
    if json_output:
        print_json(roles)
        return
    table = Table("role", "arn", "max session (s)", "created")
    for r in roles:
        table.add_row(str(r["name"]), str(r["arn"]), str(r["max_session_duration"]),
                      str(r["created"]))  # fmt: skip
    out.print(table)


@role_app.command("show")
def role_show(
    name: str, config: ConfigOption = None, data_dir: DataDirOption = None,
    json_output: JsonOption = False,
) -> None:  # fmt: skip
    """A role: its trust policy and attached policies."""

    async def run(ids: IdentityService) -> dict[str, object]:
        role = await ids.role(name)
        return role_dict(role, await ids.account_id(), await ids.policies("role", name))

    shown = with_identities(config, data_dir, run)
    if json_output:
        print_json(shown)
        return
    out.print(json.dumps(shown, indent=2, ensure_ascii=False))


@role_app.command("delete")
def role_delete(name: str, config: ConfigOption = None, data_dir: DataDirOption = None) -> None:
    """Delete a role and its policies: its sessions are refused within a second."""
    with_identities(config, data_dir, lambda ids: ids.delete_role(name))
    out.print(f"role {name} deleted")


@role_app.command("attach-policy")
def role_attach_policy(
    name: str,
    policy: str,
    file: Annotated[Path, typer.Argument(help="The IAM JSON identity policy document.")],
    config: ConfigOption = None,
    data_dir: DataDirOption = None,
) -> None:
    """Attach the identity policy in FILE as POLICY (replacing one of that name)."""
    document = _read(file, PolicyKind.IDENTITY)
    with_identities(
        config, data_dir,
        lambda ids: ids.put_policy("role", name, policy, document, validate=check_identity_policy),
    )  # fmt: skip
    out.print(f"policy {policy} attached to role {name}")


@role_app.command("detach-policy")
def role_detach_policy(
    name: str, policy: str, config: ConfigOption = None, data_dir: DataDirOption = None
) -> None:
    """Detach POLICY from the role: its sessions lose those rights within a second."""
    with_identities(config, data_dir, lambda ids: ids.delete_policy("role", name, policy))
    out.print(f"policy {policy} detached from role {name}")
