"""`egide user …`, `egide group …` and `egide key …`: the organisation's users, their groups
and their access keys (docs/guide.md, "Users, groups and access keys").

Each change goes through the store's identity service, like the admin API's: recorded on the
sites at once (a catalog rebuilt from them keeps it) and seen by running servers within a
second. A secret is printed once, when its key is created; nothing shows it again. Exit codes:
0 done, 1 refused (unknown or existing name, a user that still has keys), 2 no store here.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, TypeVar

import typer
from rich.table import Table

from egide.auth.policy import MalformedPolicy, check_identity_policy
from egide.catalog import catalog_exists
from egide.cli.common import ConfigOption, DataDirOption, JsonOption, fail, load, out, print_json
from egide.domain import AccessKey, DomainError, Group, User
from egide.engine.identities import IdentityService

T = TypeVar("T")

user_app = typer.Typer(help="Users of the organisation's account.", no_args_is_help=True)
group_app = typer.Typer(help="Groups of users.", no_args_is_help=True)
key_app = typer.Typer(help="Access keys of users.", no_args_is_help=True)

ExpiresOption = Annotated[
    str | None,
    typer.Option("--expires", help="When the key stops working: a duration (90d, 12h, 30m) or "
                 "a date and time (2027-06-30, 2027-06-30T18:00:00+02:00; UTC if no zone)."),
]  # fmt: skip
_DURATION = re.compile(r"(\d+)([smhd])")
_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_expiry(text: str | None, now: float) -> float | None:
    """--expires → wall time (None: never)."""
    if text is None:
        return None
    found = _DURATION.fullmatch(text.strip())
    if found:
        return now + int(found.group(1)) * _SECONDS[found.group(2)]
    try:
        when = datetime.fromisoformat(text.strip())
    except ValueError:
        raise typer.BadParameter(f"{text!r}: give a duration such as 90d or a date") from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    if when.timestamp() <= now:
        raise typer.BadParameter(f"{text!r} is already past")
    return when.timestamp()


def _iso(when: float | None) -> str | None:
    return None if when is None else datetime.fromtimestamp(when, UTC).isoformat(timespec="seconds")


def with_identities(
    config: ConfigOption,
    data_dir: DataDirOption,
    command: Callable[[IdentityService], Awaitable[T]],
) -> T:
    """Run `command` with the store's identity service; a refused change exits 1."""
    from egide.server import open_store

    settings = load(config, data_dir)
    if not catalog_exists(settings):
        fail(f"no Égide data in {settings.data_dir}: run `egide serve` first")

    async def main() -> T:
        store = open_store(settings)
        try:
            return await command(store.identities)
        finally:
            await store.catalog.close()

    try:
        return asyncio.run(main())
    except DomainError as exc:
        fail(f"refused: {exc}", 1)


def user_dict(user: User, account: str) -> dict[str, object]:
    from egide.domain import user_arn

    return {"name": user.name, "id": user.id, "arn": user_arn(account, user.name),
            "created": _iso(user.created)}  # fmt: skip


def group_dict(group: Group, account: str) -> dict[str, object]:
    from egide.domain import group_arn

    return {"name": group.name, "id": group.id, "arn": group_arn(account, group.name),
            "created": _iso(group.created), "members": list(group.members)}  # fmt: skip


def key_dict(key: AccessKey) -> dict[str, object]:
    return {"access_key": key.access_key, "user": key.user, "status": key.status,
            "created": _iso(key.created), "expires": _iso(key.expires)}  # fmt: skip


def _new_key(key: AccessKey, secret: str, json_output: bool) -> None:
    if json_output:
        print_json({**key_dict(key), "secret_key": secret})
        return
    out.print(f"user        {key.user}\naccess key  {key.access_key}\nsecret key  {secret}")
    if key.expires is not None:
        out.print(f"expires     {_iso(key.expires)}")
    out.print("The secret is shown once: keep it now.")


# -- users ------------------------------------------------------------------------------------


@user_app.command("create")
def user_create(
    name: str, config: ConfigOption = None, data_dir: DataDirOption = None,
    json_output: JsonOption = False,
) -> None:  # fmt: skip
    """Create a user (it signs with access keys: `egide key create NAME`)."""

    async def run(ids: IdentityService) -> dict[str, object]:
        return user_dict(await ids.create_user(name), await ids.account_id())

    created = with_identities(config, data_dir, run)
    print_json(created) if json_output else out.print(f"user {name} created: {created['arn']}")


@user_app.command("list")
def user_list(
    config: ConfigOption = None, data_dir: DataDirOption = None, json_output: JsonOption = False
) -> None:
    """Every user, with its ARN and how many access keys it has."""

    async def run(ids: IdentityService) -> list[dict[str, object]]:
        account, keys = await ids.account_id(), await ids.keys()
        return [
            {**user_dict(u, account), "access_keys": sum(k.user == u.name for k in keys)}
            for u in await ids.users()
        ]

    users = with_identities(config, data_dir, run)
    if json_output:
        print_json(users)
        return
    table = Table("user", "arn", "access keys", "created")
    for u in users:
        table.add_row(str(u["name"]), str(u["arn"]), str(u["access_keys"]), str(u["created"]))
    out.print(table)


@user_app.command("delete")
def user_delete(
    name: str,
    force: Annotated[bool, typer.Option("--force", help="Delete its access keys too.")] = False,
    config: ConfigOption = None,
    data_dir: DataDirOption = None,
) -> None:
    """Delete a user; one with access keys only with --force."""
    deleted = with_identities(config, data_dir, lambda ids: ids.delete_user(name, force=force))
    keys = f", and its access keys {', '.join(deleted)}" if deleted else ""
    out.print(f"user {name} deleted{keys}")


# -- groups -----------------------------------------------------------------------------------


@group_app.command("create")
def group_create(name: str, config: ConfigOption = None, data_dir: DataDirOption = None) -> None:
    """Create a group."""
    with_identities(config, data_dir, lambda ids: ids.create_group(name))
    out.print(f"group {name} created")


@group_app.command("list")
def group_list(
    config: ConfigOption = None, data_dir: DataDirOption = None, json_output: JsonOption = False
) -> None:
    """Every group with its members."""

    async def run(ids: IdentityService) -> list[dict[str, object]]:
        account = await ids.account_id()
        return [group_dict(g, account) for g in await ids.groups()]

    groups = with_identities(config, data_dir, run)
    if json_output:
        print_json(groups)
        return
    table = Table("group", "arn", "members")
    for g in groups:
        members = g["members"]
        assert isinstance(members, list)
        table.add_row(str(g["name"]), str(g["arn"]), ", ".join(members) or "-")
    out.print(table)


@group_app.command("delete")
def group_delete(name: str, config: ConfigOption = None, data_dir: DataDirOption = None) -> None:
    """Delete a group (its members stay, outside it)."""
    with_identities(config, data_dir, lambda ids: ids.delete_group(name))
    out.print(f"group {name} deleted")


@group_app.command("add")
def group_add(
    group: str, user: str, config: ConfigOption = None, data_dir: DataDirOption = None
) -> None:
    """Put USER in GROUP."""
    changed = with_identities(config, data_dir, lambda ids: ids.set_member(group, user, True))
    out.print(f"{user} {'added to' if changed else 'already in'} {group}")


@group_app.command("remove")
def group_remove(
    group: str, user: str, config: ConfigOption = None, data_dir: DataDirOption = None
) -> None:
    """Take USER out of GROUP."""
    changed = with_identities(config, data_dir, lambda ids: ids.set_member(group, user, False))
    out.print(f"{user} {'removed from' if changed else 'was not in'} {group}")


# -- access keys ------------------------------------------------------------------------------


@key_app.command("create")
def key_create(
    user: str, expires: ExpiresOption = None, config: ConfigOption = None,
    data_dir: DataDirOption = None, json_output: JsonOption = False,
) -> None:  # fmt: skip
    """Create an access key for USER; its secret is shown once."""
    when = parse_expiry(expires, time.time())
    key, secret = with_identities(config, data_dir, lambda ids: ids.create_key(user, expires=when))
    _new_key(key, secret, json_output)


@key_app.command("list")
def key_list(
    user: Annotated[str | None, typer.Argument(help="Only this user's keys.")] = None,
    config: ConfigOption = None,
    data_dir: DataDirOption = None,
    json_output: JsonOption = False,
) -> None:
    """Access keys (never their secrets), with their user, status and expiry."""
    keys = [key_dict(k) for k in with_identities(config, data_dir, lambda ids: ids.keys(user))]
    if json_output:
        print_json(keys)
        return
    table = Table("access key", "user", "status", "created", "expires")
    for k in keys:
        table.add_row(*(str(k[c] or "-") for c in ("access_key", "user", "status", "created",
                                                   "expires")))  # fmt: skip
    out.print(table)


@key_app.command("disable")
def key_disable(
    access_key: str, config: ConfigOption = None, data_dir: DataDirOption = None
) -> None:
    """Refuse ACCESS_KEY from now on (every server within a second) until enabled again."""
    with_identities(config, data_dir, lambda ids: ids.set_key_active(access_key, False))
    out.print(f"{access_key} disabled")


@key_app.command("enable")
def key_enable(
    access_key: str, config: ConfigOption = None, data_dir: DataDirOption = None
) -> None:
    """Accept a disabled ACCESS_KEY again."""
    with_identities(config, data_dir, lambda ids: ids.set_key_active(access_key, True))
    out.print(f"{access_key} enabled")


@key_app.command("rotate")
def key_rotate(
    access_key: str, expires: ExpiresOption = None, config: ConfigOption = None,
    data_dir: DataDirOption = None, json_output: JsonOption = False,
) -> None:  # fmt: skip
    """A new key for the user of ACCESS_KEY; the old one works until you delete it."""
    when = parse_expiry(expires, time.time())
    key, secret = with_identities(
        config, data_dir, lambda ids: ids.rotate_key(access_key, expires=when)
    )
    _new_key(key, secret, json_output)
    if not json_output:
        out.print(f"{access_key} still works: `egide key delete {access_key}` once clients moved.")


@key_app.command("delete")
def key_delete(
    access_key: str, config: ConfigOption = None, data_dir: DataDirOption = None
) -> None:
    """Delete ACCESS_KEY for good (every server refuses it within a second)."""
    with_identities(config, data_dir, lambda ids: ids.delete_key(access_key))
    out.print(f"{access_key} deleted")


# -- identity policies (evaluated by egide.auth.decide) ------------------------------------------


def _policy_commands(app: typer.Typer, kind: str) -> None:
    """`egide user|group policy-put|policies|policy-delete`."""

    @app.command("policy-put")
    def policy_put(
        name: str,
        policy: str,
        file: Annotated[Path, typer.Argument(help="The IAM JSON policy document.")],
        config: ConfigOption = None,
        data_dir: DataDirOption = None,
    ) -> None:
        """Attach the policy document in FILE as POLICY (replacing one of that name)."""
        try:
            document = file.read_text()
        except (OSError, UnicodeDecodeError) as exc:
            fail(f"cannot read {file}: {exc}")
        try:
            with_identities(
                config, data_dir,
                lambda ids: ids.put_policy(
                    kind, name, policy, document, validate=check_identity_policy
                ),
            )  # fmt: skip
        except MalformedPolicy as exc:
            fail(f"refused: the policy is not valid: {exc.reason}", 1)
        out.print(f"policy {policy} attached to {kind} {name}")

    @app.command("policies")
    def policies(
        name: str, config: ConfigOption = None, data_dir: DataDirOption = None,
        json_output: JsonOption = False,
    ) -> None:  # fmt: skip
        """The identity policies attached (they grant the user its rights: decision 0030)."""
        attached = with_identities(config, data_dir, lambda ids: ids.policies(kind, name))
        if json_output:
            print_json({p: json.loads(d) for p, d in attached.items()})
            return
        for policy, document in attached.items():
            out.print(f"{policy}\n{json.dumps(json.loads(document), indent=2)}")

    @app.command("policy-delete")
    def policy_delete(
        name: str, policy: str, config: ConfigOption = None, data_dir: DataDirOption = None
    ) -> None:
        """Detach POLICY."""
        with_identities(config, data_dir, lambda ids: ids.delete_policy(kind, name, policy))
        out.print(f"policy {policy} detached from {kind} {name}")


_policy_commands(user_app, "user")
_policy_commands(group_app, "group")
