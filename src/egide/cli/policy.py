"""`egide policy`: which policy a bucket follows and why, set it, and prove what is stored."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table
from rich.text import Text

from egide.admin.policies import (
    EffectivePolicy,
    PolicyError,
    document,
    effective_policy,
    explanation_dict,
    parse_policy,
    set_policy,
)
from egide.admin.probe import DEFAULT_TIMEOUT, probe_all
from egide.admin.proof import CheckResult, PolicyCheck
from egide.admin.report import POLICY_CHECK, Comparison, compare, iso, write_report
from egide.catalog.base import RecordedReport
from egide.cli.common import (
    ConfigOption,
    DataDirOption,
    Env,
    JsonOption,
    fail,
    listing,
    load,
    out,
    plural,
    print_json,
    run,
    size,
)
from egide.domain import Bucket
from egide.engine.bucketsettings import BucketSettings
from egide.placement import explain

policy_app = typer.Typer(
    help="Placement policies: explain, set, and prove what is stored.", no_args_is_help=True
)

BucketArgument = Annotated[str, typer.Argument(help="The bucket's name.")]


async def _effective(env: Env, name: str) -> tuple[Bucket | None, EffectivePolicy]:
    settings, catalog = env.settings, env.catalog
    bucket = await catalog.get_bucket(name) if catalog is not None else None
    effective = await effective_policy(
        BucketSettings(catalog) if catalog is not None else None,
        settings.bucket_policies(),
        settings.fallback_policy(),
        name,
        bucket,
    )
    return bucket, effective


@policy_app.command("explain")
def policy_explain(
    bucket: BucketArgument,
    config: ConfigOption = None,
    data_dir: DataDirOption = None,
    probe: Annotated[
        bool,
        typer.Option("--probe/--no-probe", help="Count the sites that do not answer as down."),
    ] = True,
    timeout: Annotated[float, typer.Option(help="Seconds a probe may take.")] = DEFAULT_TIMEOUT,
    json_output: JsonOption = False,
) -> None:
    """The policy BUCKET follows and where it comes from, each site allowed or refused and
    why, and where the solver would put a new version now."""
    settings = load(config, data_dir)

    async def command(env: Env) -> dict[str, Any]:
        found, effective = await _effective(env, bucket)
        result: dict[str, Any] = {
            "bucket": bucket,
            "exists": found is not None,
            **effective.as_dict(),
        }
        if effective.policy is None:
            return result
        probes = await probe_all(env.sites(), timeout) if probe else {}
        down = {name for name, p in probes.items() if not p.reachable}
        latency = {name: p.latency_ms for name, p in probes.items() if p.reachable}
        explanation = explain(
            effective.policy, env.profiles, unavailable=down, latency_ms=latency or None
        )
        result.update(explanation_dict(explanation))
        result["probed"] = probe
        return result

    result = run(settings, command)
    if json_output:
        print_json(result)
    else:
        _print_explanation(result)
    if result["policy"] is None:
        raise typer.Exit(1)


def _print_explanation(result: dict[str, Any]) -> None:
    exists = "" if result["exists"] else " (not created yet)"
    out.print(f"Bucket {result['bucket']}{exists} follows {result['origin']}.")
    if result["error"]:
        out.print(f"{result['error']}: its writes fail until it is set again.", style="red")
        return
    out.print("Policy:")
    for line in result["description"]:
        out.print(f"  {line}")
    placement = result["placement"]
    if placement is None:
        out.print(f"No placement now: {result['infeasible']}", style="red")
    else:
        out.print(
            "A new version would go to: "
            + ", ".join(f"{i}:{site}" for i, site in enumerate(placement["sites"]))
            + f" (shards 0–{placement['k'] - 1} data, the rest parity)"
        )
    table = Table(title="Sites")
    for column in ("site", "verdict", "shard", "if it went down"):
        table.add_column(column)
    for site in result["sites"]:
        if site["refusals"]:
            verdict = Text("refused: " + "; ".join(site["refusals"]), style="red")
        elif site["down"]:
            verdict = Text("allowed, down", style="yellow")
        elif site["shard"] is not None:
            verdict = Text("chosen", style="green")
        else:
            verdict = Text("allowed, not chosen")
        shard = "" if site["shard"] is None else f"{site['shard']} ({site['role']})"
        if_down = site["if_down"] if site["shard"] is not None else ""
        table.add_row(site["name"], verdict, shard, if_down)
    out.print(table)


@policy_app.command("set")
def policy_set(
    bucket: BucketArgument,
    file: Annotated[
        Path | None,
        typer.Argument(
            help="The policy: TOML fields of a \\[\\[policies]] entry, or JSON; - reads stdin."
        ),
    ] = None,
    clear: Annotated[
        bool, typer.Option("--clear", help="Remove the stored policy: the file's applies again.")
    ] = False,
    config: ConfigOption = None,
    data_dir: DataDirOption = None,
    json_output: JsonOption = False,
) -> None:
    """Store BUCKET's policy in the catalog (it wins over the configuration; every gateway
    applies it to new versions within a second). Refused, with the rule named, if invalid or
    if no placement over the configured sites can meet it."""
    if clear == (file is not None):
        fail("give a policy FILE, or --clear")
    settings = load(config, data_dir)
    policy = None
    if file is not None:
        try:
            text = sys.stdin.read() if str(file) == "-" else file.read_text()
        except OSError as exc:
            fail(f"cannot read {file}: {exc.strerror}")
        try:
            policy = parse_policy(text)
        except PolicyError as exc:
            fail(f"refused: {exc}")

    async def command(env: Env) -> dict[str, Any]:
        catalog = env.require_catalog()
        found = await catalog.get_bucket(bucket)
        if found is None:
            fail(f"no bucket {bucket}")
        try:
            await set_policy(BucketSettings(catalog), found, policy, env.profiles)
        except PolicyError as exc:
            fail(f"refused: {exc}")
        _, effective = await _effective(env, bucket)
        return {"bucket": bucket, **effective.as_dict()}

    result = run(settings, command)
    if json_output:
        print_json(result)
        return
    if policy is None:
        out.print(f"Removed the stored policy of {bucket}; it now follows {result['origin']}.")
    else:
        out.print(f"Stored for bucket {bucket}: {document(policy)}")
    out.print("New versions are placed by:")
    for line in result["description"]:
        out.print(f"  {line}")
    out.print(
        "Stored versions keep their sites; `egide policy check` lists those that do not "
        "comply with it."
    )


@policy_app.command("check")
def policy_check(
    bucket: Annotated[str | None, typer.Argument(help="One bucket; every bucket without.")] = None,
    deep: Annotated[
        bool,
        typer.Option(
            "--deep", help="Read every shard: header, each block's checksum, footer (no keys)."
        ),
    ] = False,
    catalog_only: Annotated[
        bool, typer.Option("--catalog-only", help="Do not look at the sites at all.")
    ] = False,
    report: Annotated[
        Path | None,
        typer.Option("--report", help="Write a canonical JSON report; record its SHA-256."),
    ] = None,
    strict: Annotated[
        bool,
        typer.Option(
            "--strict",
            help="Also fail if losing one provider loses data, or a foreign law reaches k shards.",
        ),
    ] = False,
    config: ConfigOption = None,
    data_dir: DataDirOption = None,
    json_output: JsonOption = False,
) -> None:
    """Prove that every stored version (noncurrent ones too) obeys its bucket's current policy
    and that its shards are on their sites; say what survives the loss of each provider,
    country and law, and whether any foreign jurisdiction holds k shards of any version.
    Exits 1 when a version breaks its policy or a shard is missing or damaged."""
    if deep and catalog_only:
        fail("--deep reads the shards; --catalog-only does not look at the sites: choose one")
    settings = load(config, data_dir)
    files = "read" if deep else "not checked" if catalog_only else "listed"
    scope = f"{bucket or '*'} files={files}"

    async def command(
        env: Env,
    ) -> tuple[CheckResult, Comparison, RecordedReport | None]:
        catalog = env.require_catalog()
        if bucket is None:
            buckets = await catalog.list_buckets()
        else:
            found = await catalog.get_bucket(bucket)
            if found is None:
                fail(f"no bucket {bucket}")
            buckets = [found]
        checker = PolicyCheck(
            catalog, env.profiles, settings.bucket_policies(), settings.fallback_policy(),
            {} if catalog_only else env.sites(), settings.home_laws,
        )  # fmt: skip
        result = await checker.run(buckets, files=not catalog_only, deep=deep)
        content = result.content()
        comparison = await compare(catalog, POLICY_CHECK, scope, content)
        recorded = None
        if report is not None:
            recorded = await write_report(
                catalog, report, POLICY_CHECK, scope, content, _summary(result)
            )
        return result, comparison, recorded

    result, comparison, recorded = run(settings, command)
    if json_output:
        recorded_doc = None
        if recorded is not None:
            recorded_doc = {"path": str(report), "sha256": recorded.sha256,
                            "created": iso(recorded.created)}  # fmt: skip
        print_json({**result.content(), "comparison": comparison.as_dict(), "report": recorded_doc})
    else:
        _print_check(result, comparison)
        if recorded is not None:
            out.print(
                f"Report written to {report}: sha256 {recorded.sha256}, recorded in the "
                f"catalog at {iso(recorded.created)}."
            )
    provider_loss = any(
        not row["readable"] for row in result.survival if row["dimension"] == "provider"
    )
    if not result.ok or (strict and (provider_loss or not result.exposure_proven)):
        raise typer.Exit(1)


def _summary(result: CheckResult) -> str:
    s = result.summary
    return (
        f"{s['versions']} versions in {s['buckets']} buckets: {s['violations']} violations, "
        f"{s['shard_problems']} shard problems, {s['site_problems']} site problems; "
        f"exposure proof {'holds' if result.exposure_proven else 'fails'}"
    )


def _print_check(result: CheckResult, comparison: Comparison) -> None:
    s = result.summary
    out.print(
        f"Checked {plural(s['versions'], 'version')} ({plural(s['shard_files'], 'shard file')}, "
        f"{result.scope['files']}) in {plural(s['buckets'], 'bucket')}."
    )
    for row in result.buckets:
        if row["policy_error"]:
            out.print(f"bucket {row['name']}: {row['policy_error']}", style="red")
    if result.violations:
        table = Table(title=f"Versions breaking their bucket's policy ({len(result.violations)})")
        for column in ("bucket", "key", "version", "problems"):
            table.add_column(column)
        for violation in result.violations:
            ref = violation.ref
            current = "" if ref.latest else " (noncurrent)"
            table.add_row(ref.bucket, ref.key, ref.version + current, "\n".join(violation.problems))
        out.print(table)
    if result.shard_problems:
        table = Table(title=f"Shard problems ({len(result.shard_problems)})")
        for column in ("bucket", "key", "version", "shard", "site", "problem"):
            table.add_column(column)
        for p in result.shard_problems:
            shard = f"{p.shard}" + (f" (part {p.part})" if p.part else "")
            table.add_row(p.ref.bucket, p.ref.key, p.ref.version, shard, p.site, p.problem)
        out.print(table)
    for problem in result.site_problems:
        out.print(f"site {problem['site']}: {problem['problem']}", style="red")
    if result.ok:
        out.print("Every version obeys its policy; every shard checked is sound.", style="green")
    _print_survival(result)
    _print_exposure(result)
    out.print(f"Result {comparison.describe()}.")


def _print_survival(result: CheckResult) -> None:
    table = Table(title="If every site of one of these disappeared")
    for column in ("lost", "sites", "readable", "lost versions", "degraded"):
        table.add_column(column)
    for row in result.survival:
        readable = Text("everything", "green") if row["readable"] else Text("no", "red")
        lost = _names(row["lost_versions"], row["unreadable"])
        table.add_row(
            f"{row['dimension']} {row['value']}", listing(row["sites"]), readable, lost,
            str(row["degraded"]),
        )  # fmt: skip
    out.print(table)


def _print_exposure(result: CheckResult) -> None:
    exposure = result.exposure
    table = Table(title="Exposure: who holds shards, under which laws")
    for column in ("provider", "laws", "countries", "sites", "shard files", "stored"):
        table.add_column(column)
    for row in exposure["providers"]:
        table.add_row(
            row["provider"], listing(row["laws"]), listing(row["countries"]),
            listing(row["sites"]), str(row["shard_files"]), size(row["bytes"]),
        )  # fmt: skip
    out.print(table)
    table = Table(title="Laws")
    for column in ("law", "foreign", "providers", "shard files", "most of one version", "k+ of"):
        table.add_column(column)
    for row in exposure["laws"]:
        reached = _names(row["versions"], row["versions_with_k_shards"])
        table.add_row(
            row["law"], "yes" if row["foreign"] else "home", listing(row["providers"]),
            str(row["shard_files"]), str(row["most_shards_of_a_version"]), reached,
        )  # fmt: skip
    out.print(table)
    proof = exposure["proof"]
    if proof["holds"]:
        out.print(f"Proven: {proof['statement']}.", style="green")
    else:
        laws = ", ".join(proof["failing_laws"])
        out.print(f"Not proven: {proof['statement']}: {laws} can reach k shards.", style="yellow")


def _names(refs: list[dict[str, Any]], total: int, shown: int = 5) -> str:
    if not total:
        return "none"
    names = [f"{r['bucket']}/{r['key']}@{r['version'][:8]}" for r in refs[:shown]]
    more = f" (+{total - len(names)})" if total > len(names) else ""
    return f"{total}: " + ", ".join(names) + more
