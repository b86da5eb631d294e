"""`egide site`: what each site is (its profile), whether it answers now, what it holds."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table
from rich.text import Text

from egide.admin.config_file import SiteAddError, add_site, remove_site
from egide.admin.probe import DEFAULT_TIMEOUT, Probe, probe_all
from egide.cli.common import (
    ConfigOption,
    DataDirOption,
    Env,
    JsonOption,
    fail,
    listing,
    load,
    money,
    out,
    print_json,
    run,
    size,
    where,
)
from egide.cli.jobs import BackgroundOption, RateOption, start
from egide.config import S3SiteConfig
from egide.inspection.scan import Holding, holdings

site_app = typer.Typer(help="Sites: profiles, health and what they hold.", no_args_is_help=True)

ExactOption = Annotated[
    bool,
    typer.Option(
        "--exact", help="Measure each site's files (one size query per file) instead of estimating."
    ),
]
ProbeOption = Annotated[
    bool, typer.Option("--probe/--no-probe", help="Reach each site once, timed (default: yes).")
]
TimeoutOption = Annotated[
    float, typer.Option("--timeout", help="Seconds a probe may take.", min=0.1)
]


async def _site_rows(
    env: Env, names: list[str], *, probe: bool, exact: bool, timeout: float
) -> list[dict[str, Any]]:
    sites = env.sites()
    chosen = {name: sites[name] for name in names}
    probes: dict[str, Probe] = await probe_all(chosen, timeout) if probe else {}
    held: dict[str, Holding] = {}
    if env.catalog is not None:
        held = await holdings(env.catalog, names, exact=chosen if exact else None)
    configs = {config.name: config for config in env.settings.resolved_sites()}
    profiles = {profile.name: profile for profile in env.profiles}
    rows = []
    for name in names:
        config, holding = configs[name], held.get(name, Holding())
        details: dict[str, Any] = {"where": where(config)}
        if isinstance(config, S3SiteConfig):
            details["region"] = config.region
        found = probes.get(name)
        rows.append(
            {
                "name": name,
                "kind": config.kind,
                **details,
                "profile": profiles[name].model_dump(mode="json", exclude={"name"}),
                "probe": found.as_dict() if found is not None else None,
                "held": {
                    "versions": holding.versions,
                    "shard_files": holding.shards,
                    "bytes": holding.bytes,
                    "bytes_measured": holding.measured,
                    "measure_error": holding.error,
                    "bytes_by_bucket": dict(sorted(holding.bytes_by_bucket.items())),
                },
            }
        )
    return rows


def _reachable(row: dict[str, Any]) -> tuple[Text, str]:
    probe = row["probe"]
    if probe is None:
        return Text("not probed"), ""
    latency = f"{probe['latency_ms']:.1f} ms"
    if probe["reachable"]:
        return Text("yes", style="green"), latency
    return Text("no", style="red"), latency


@site_app.command("list")
def site_list(
    config: ConfigOption = None,
    data_dir: DataDirOption = None,
    exact: ExactOption = False,
    probe: ProbeOption = True,
    timeout: TimeoutOption = DEFAULT_TIMEOUT,
    json_output: JsonOption = False,
) -> None:
    """Every configured site: profile, prices, whether it answers now, and what it holds."""
    settings = load(config, data_dir)
    names = [site.name for site in settings.resolved_sites()]

    async def command(env: Env) -> list[dict[str, Any]]:
        return await _site_rows(env, names, probe=probe, exact=exact, timeout=timeout)

    rows = run(settings, command)
    if json_output:
        print_json({"sites": rows})
        return
    table = Table(title="Sites")
    for column in ("site", "provider", "country", "laws", "certifications"):
        table.add_column(column)
    table.add_column("price GB-mo / egress GB / 1k req")
    table.add_column("reachable")
    table.add_column("latency", justify="right")
    table.add_column("shards", justify="right")
    table.add_column("stored", justify="right")
    for row in rows:
        profile = row["profile"]
        reachable, latency = _reachable(row)
        prices = " / ".join(
            money(profile[f]) for f in ("storage_gb_month", "egress_gb", "per_1000_requests")
        )
        stored = size(row["held"]["bytes"]) + ("" if row["held"]["bytes_measured"] else " ~")
        table.add_row(
            row["name"], profile["provider"], profile["country"], listing(profile["laws"]),
            listing(profile["certifications"]), prices, reachable, latency,
            str(row["held"]["shard_files"]), stored,
        )  # fmt: skip
    out.print(table)
    for row in rows:
        if row["probe"] and row["probe"]["error"]:
            out.print(f"{row['name']}: {row['probe']['error']}", style="red")
        if row["held"]["measure_error"]:
            out.print(f"{row['name']}: not measured: {row['held']['measure_error']}", style="red")
    if not exact:
        out.print("~ estimated from the catalog (headers, pieces, checksums); --exact measures")


@site_app.command("show")
def site_show(
    name: Annotated[str, typer.Argument(help="The site's name in the configuration.")],
    config: ConfigOption = None,
    data_dir: DataDirOption = None,
    exact: ExactOption = False,
    probe: ProbeOption = True,
    timeout: TimeoutOption = DEFAULT_TIMEOUT,
    json_output: JsonOption = False,
) -> None:
    """One site in detail: profile, where it is, whether it answers, versions and shards held."""
    settings = load(config, data_dir)
    names = [site.name for site in settings.resolved_sites()]
    if name not in names:
        fail(f"no site {name} in the configuration (sites: {', '.join(names)})")

    async def command(env: Env) -> list[dict[str, Any]]:
        return await _site_rows(env, [name], probe=probe, exact=exact, timeout=timeout)

    row = run(settings, command)[0]
    if json_output:
        print_json(row)
        return
    table = Table(title=f"Site {name}", show_header=False)
    table.add_column("field", style="bold")
    table.add_column("value")
    table.add_row("kind", row["kind"])
    table.add_row("where", row["where"])
    for field, value in row["profile"].items():
        shown = listing(value) if isinstance(value, list) else "—" if value is None else str(value)
        table.add_row(field, shown)
    reachable, latency = _reachable(row)
    table.add_row("reachable", Text.assemble(reachable, f" {latency}" if latency else ""))
    if row["probe"] and row["probe"]["error"]:
        table.add_row("error", row["probe"]["error"])
    held = row["held"]
    table.add_row("versions held", str(held["versions"]))
    table.add_row("shard files held", str(held["shard_files"]))
    estimate = "measured" if held["bytes_measured"] else "estimated"
    table.add_row("stored", f"{size(held['bytes'])} ({held['bytes']} bytes, {estimate})")
    for bucket, nbytes in held["bytes_by_bucket"].items():
        table.add_row(f"  bucket {bucket}", size(nbytes))
    out.print(table)


@site_app.command("add")
def site_add(
    name: Annotated[str, typer.Argument(help="A new site name (letters, digits, . _ -).")],
    config: Annotated[Path, typer.Option("--config", "-c", help="The egide.toml to edit.")],
    kind: Annotated[str, typer.Option(help="local or s3.")] = "local",
    path: Annotated[
        str | None,
        typer.Option(
            help="Local: directory (relative: from the working directory); "
            "by default data_dir/sites/NAME."
        ),
    ] = None,
    endpoint: Annotated[str | None, typer.Option(help="S3: https://… of the provider.")] = None,
    bucket: Annotated[str | None, typer.Option(help="S3: the bucket at the provider.")] = None,
    region: Annotated[str | None, typer.Option(help="S3: the bucket's region.")] = None,
    prefix: Annotated[str | None, typer.Option(help="S3: key prefix, e.g. egide/.")] = None,
    access_key: Annotated[
        str | None,
        typer.Option(help="S3: written to the file; prefer EGIDE_SITE_<NAME>_ACCESS_KEY."),
    ] = None,
    secret_key: Annotated[
        str | None,
        typer.Option(help="S3: written to the file; prefer EGIDE_SITE_<NAME>_SECRET_KEY."),
    ] = None,
    create_bucket: Annotated[
        bool, typer.Option(help="S3: create the bucket at the first start.")
    ] = False,
    provider: Annotated[str | None, typer.Option(help="Who runs the site.")] = None,
    country: Annotated[str | None, typer.Option(help="ISO 3166 code, e.g. FR.")] = None,
    city: Annotated[str | None, typer.Option(help="A built-in city (fills country).")] = None,
    latitude: Annotated[float | None, typer.Option()] = None,
    longitude: Annotated[float | None, typer.Option()] = None,
    law: Annotated[
        list[str] | None, typer.Option(help="A law reaching the site (repeat); else derived.")
    ] = None,
    certification: Annotated[
        list[str] | None, typer.Option(help="A certification it holds (repeat).")
    ] = None,
    storage_gb_month: Annotated[float | None, typer.Option(help="Price per GB-month.")] = None,
    egress_gb: Annotated[float | None, typer.Option(help="Price per GB read out.")] = None,
    per_1000_requests: Annotated[
        float | None, typer.Option(help="Price per 1000 requests.")
    ] = None,
    capacity_bytes: Annotated[int | None, typer.Option()] = None,
    json_output: JsonOption = False,
) -> None:
    """Append a \\[\\[sites]] entry to the configuration, validated as `egide serve` would."""
    entry: dict[str, Any] = {"name": name}
    if kind == "s3":
        entry["kind"] = "s3"
        fields = {"endpoint": endpoint, "bucket": bucket, "region": region, "prefix": prefix,
                  "access_key": access_key, "secret_key": secret_key}  # fmt: skip
        entry.update({k: v for k, v in fields.items() if v is not None})
        if create_bucket:
            entry["create_bucket"] = True
    elif kind == "local":
        entry["path"] = path  # written as the file's paths are read, by add_site
    else:
        fail(f"--kind must be local or s3, not {kind}")
    profile = {
        "provider": provider, "country": country, "city": city, "latitude": latitude,
        "longitude": longitude, "laws": law or None, "certifications": certification or None,
        "storage_gb_month": storage_gb_month, "egress_gb": egress_gb,
        "per_1000_requests": per_1000_requests, "capacity_bytes": capacity_bytes,
    }  # fmt: skip
    entry.update({k: v for k, v in profile.items() if v is not None})
    try:
        added = add_site(config, entry)
    except SiteAddError as exc:
        fail(f"refused: {exc}")
    new = next(site for site in added.after.resolved_sites() if site.name == name)
    profile_dump = new.profile().model_dump(mode="json", exclude={"name"})
    before, after = added.before.resolved_code(), added.after.resolved_code()
    notes = []
    if added.wrote_defaults:
        notes.append(
            "the file listed no site: the six default sites were written out first, "
            "so they stay configured"
        )
    if (before.k, before.m) != (after.k, after.m):
        notes.append(
            f"the default code changes from {before.k}+{before.m} to {after.k}+{after.m} "
            "for new versions of buckets without a policy"
        )
    notes.append("restart `egide serve` to use the new site")
    if json_output:
        print_json({"added": {"name": name, "kind": new.kind, **profile_dump}, "notes": notes})
        return
    out.print(f"Added site {name} ({new.kind}, {where(new)}) to {config}:")
    for field, value in profile_dump.items():
        if value not in (None, [], 0.0):
            shown = listing(value) if isinstance(value, list) else value
            out.print(f"  {field:<18} {shown}")
    for note in notes:
        out.print(f"Note: {note}.")


@site_app.command("evacuate")
def site_evacuate(
    name: str,
    config: ConfigOption = None,
    data_dir: DataDirOption = None,
    rate: RateOption = None,
    background: BackgroundOption = False,
    as_json: JsonOption = False,
) -> None:
    """Move every shard off a site onto sites the policies allow, verify each copy, delete
    the originals, and prove the site empty. New writes avoid the site from the start."""
    start(config, data_dir, "evacuate", {"site": name}, rate, background, as_json)


@site_app.command("remove")
def site_remove(
    name: str,
    config: Annotated[Path, typer.Option("--config", "-c", help="egide.toml to edit.")],
    data_dir: DataDirOption = None,
) -> None:
    """Remove an evacuated site from egide.toml (refused while the catalog references it)."""
    settings = load(config, data_dir)
    if name not in {site.name for site in settings.resolved_sites()}:
        fail(f"no site named {name} in {config}")

    async def references(env: Env) -> dict[str, int]:
        if env.catalog is None:
            return {}
        return await env.catalog.site_references(name)

    held = run(settings, references)
    if any(held.values()):
        fail(
            f"site {name} still holds data the catalog needs ({held}): run "
            f"`egide site evacuate {name}` first"
        )
    try:
        remove_site(config, name)
    except SiteAddError as exc:
        fail(str(exc))
    out.print(f"site {name} removed from {config}; restart the servers to apply")
