"""`egide bucket show`, `egide bucket quota` and `egide account quota`: byte and object quotas
and what they count (decision 0033). A change shows in every running gateway within its
`bucket_cache_seconds`."""

from __future__ import annotations

import re
from typing import Annotated

import typer

from egide.cli.bucket import bucket_app
from egide.cli.common import ConfigOption, DataDirOption, Env, fail, load, out, print_json, run
from egide.domain import BucketNotFound
from egide.engine.quotas import Quota, Quotas, Usage, quota_dict

account_app = typer.Typer(help="The account's quota and usage.", no_args_is_help=True)
_UNITS = {"": 1, "K": 1024, "M": 1024**2, "G": 1024**3, "T": 1024**4, "P": 1024**5}
_SIZE = re.compile(r"^\s*(\d+)\s*([KMGTP]?)(?:i?B)?\s*$", re.IGNORECASE)

MaxBytes = Annotated[
    str | None, typer.Option("--max-bytes", help="Bytes at most (suffixes KiB, MiB, GiB, TiB).")
]
MaxObjects = Annotated[int | None, typer.Option("--max-objects", help="Objects at most.", min=0)]
Clear = Annotated[bool, typer.Option("--clear", help="Remove the quota.")]
Json = Annotated[bool, typer.Option("--json", help="Print JSON.")]


def parse_size(text: str) -> int:
    match = _SIZE.match(text)
    if match is None:
        fail(f"not a size: {text!r} (say 500GiB, 2TiB or a number of bytes)")
    return int(match.group(1)) * _UNITS[match.group(2).upper()]


def _wanted(max_bytes: str | None, max_objects: int | None, clear: bool) -> Quota:
    if clear == (max_bytes is not None or max_objects is not None):
        fail("give --max-bytes and/or --max-objects, or --clear")
    if clear:
        return Quota()
    return Quota(parse_size(max_bytes) if max_bytes is not None else None, max_objects)


def _print(scope: str, quota: Quota, usage: Usage) -> None:
    limit_bytes = "none" if quota.max_bytes is None else f"{quota.max_bytes} bytes"
    limit_objects = "none" if quota.max_objects is None else f"{quota.max_objects} objects"
    out.print(f"{scope}: {usage.bytes} bytes in {usage.objects} objects")
    out.print(f"  byte quota:   {limit_bytes}")
    out.print(f"  object quota: {limit_objects}")


def _quotas(env: Env) -> Quotas:
    return Quotas(env.require_catalog(), cache_seconds=0)


async def _bucket_state(env: Env, name: str, change: Quota | None) -> tuple[Quota, Usage]:
    bucket = await env.require_catalog().get_bucket(name)
    if bucket is None:
        raise BucketNotFound(name)
    quotas = _quotas(env)
    if change is not None:
        await quotas.set_bucket_quota(bucket, change)
    return await quotas.bucket_quota(bucket), await quotas.usage(bucket)


def _bucket_command(name: str, change: Quota | None, as_json: bool, config: ConfigOption,
                    data_dir: DataDirOption) -> None:  # fmt: skip
    settings = load(config, data_dir)
    try:
        quota, usage = run(settings, lambda env: _bucket_state(env, name, change))
    except BucketNotFound:
        fail(f"no bucket named {name}")
    if as_json:
        print_json({"bucket": name, **quota_dict(quota, usage)})
    else:
        _print(f"Bucket {name}", quota, usage)


@bucket_app.command("show")
def show(
    name: Annotated[str, typer.Argument(help="The bucket.")],
    as_json: Json = False,
    config: ConfigOption = None,
    data_dir: DataDirOption = None,
) -> None:
    """A bucket's usage (bytes, objects) and quota."""
    _bucket_command(name, None, as_json, config, data_dir)


@bucket_app.command("quota")
def bucket_quota(
    name: Annotated[str, typer.Argument(help="The bucket.")],
    max_bytes: MaxBytes = None,
    max_objects: MaxObjects = None,
    clear: Clear = False,
    as_json: Json = False,
    config: ConfigOption = None,
    data_dir: DataDirOption = None,
) -> None:
    """Set (or --clear) a bucket's byte and object quota; writes past it get QuotaExceeded."""
    _bucket_command(name, _wanted(max_bytes, max_objects, clear), as_json, config, data_dir)


async def _account_state(env: Env, change: Quota | None) -> tuple[Quota, Usage]:
    quotas = _quotas(env)
    if change is not None:
        await quotas.set_account_quota(change)
    return await quotas.account_quota(), await quotas.usage(None)


@account_app.command("quota")
def account_quota(
    max_bytes: MaxBytes = None,
    max_objects: MaxObjects = None,
    clear: Clear = False,
    show_only: Annotated[bool, typer.Option("--show", help="Only show it.")] = False,
    as_json: Json = False,
    config: ConfigOption = None,
    data_dir: DataDirOption = None,
) -> None:
    """Set (or --clear, or --show) the account's byte and object quota, over all its buckets."""
    change = None if show_only else _wanted(max_bytes, max_objects, clear)
    quota, usage = run(load(config, data_dir), lambda env: _account_state(env, change))
    if as_json:
        print_json(quota_dict(quota, usage))
    else:
        _print("The account", quota, usage)
