"""`egide cost`: the monthly storage bill per bucket and per site, and a policy's bill before
it is set."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from egide.admin.cost import Bill, current_bills, proposed_bill
from egide.admin.policies import PolicyError, document, parse_policy
from egide.cli.common import (
    ConfigOption,
    DataDirOption,
    Env,
    JsonOption,
    fail,
    load,
    money,
    out,
    print_json,
    run,
    size,
)


def cost(
    bucket: Annotated[str | None, typer.Option("--bucket", "-b", help="One bucket only.")] = None,
    policy: Annotated[
        Path | None,
        typer.Option(
            "--policy", help="A proposed policy (TOML or JSON): what BUCKET would cost under it."
        ),
    ] = None,
    config: ConfigOption = None,
    data_dir: DataDirOption = None,
    json_output: JsonOption = False,
) -> None:
    """Monthly storage cost per bucket and per site, from the sites' prices.

    Storage per GiB-month × the bytes of every shard (parity included); egress and requests
    are shown as rates, since they depend on traffic."""
    settings = load(config, data_dir)
    proposed = None
    if policy is not None:
        if bucket is None:
            fail("--policy needs --bucket: the bucket to place again under it")
        try:
            proposed = parse_policy(policy.read_text())
        except OSError as exc:
            fail(f"cannot read {policy}: {exc.strerror}")
        except PolicyError as exc:
            fail(f"refused: {exc}")

    async def command(env: Env) -> dict[str, Any]:
        catalog = env.require_catalog()
        prices = {profile.name: profile for profile in env.profiles}
        if bucket is None:
            buckets = await catalog.list_buckets()
        else:
            found = await catalog.get_bucket(bucket)
            if found is None:
                fail(f"no bucket {bucket}")
            buckets = [found]
        bills = await current_bills(catalog, env.profiles, buckets)
        total = Bill()
        for bill in bills.values():
            total.bytes_by_site.update(bill.bytes_by_site)
        every_site = Bill()
        every_site.bytes_by_site.update({name: 0 for name in prices})
        every_site.bytes_by_site.update(total.bytes_by_site)
        result: dict[str, Any] = {
            "currency_note": "prices as written in the site profiles, per GiB-month",
            "buckets": [
                {
                    "bucket": name,
                    "bytes": sum(bill.bytes_by_site.values()),
                    "monthly": bill.monthly(prices),
                }
                for name, bill in sorted(bills.items())
            ],
            "sites": every_site.rows(prices),
            "total": {"bytes": sum(total.bytes_by_site.values()), "monthly": total.monthly(prices)},
            "proposal": None,
        }
        if proposed is not None:
            try:
                new, versions = await proposed_bill(catalog, env.profiles, buckets[0], proposed)
            except PolicyError as exc:
                fail(f"refused: {exc}")
            current = bills[buckets[0].name]
            result["proposal"] = {
                "bucket": buckets[0].name,
                "policy": document(proposed),
                "versions": versions,
                "current": current.as_dict(prices),
                "proposed": new.as_dict(prices),
                "monthly_difference": new.monthly(prices) - current.monthly(prices),
            }
        return result

    result = run(settings, command)
    if json_output:
        print_json(result)
        return
    table = Table(title="Monthly storage cost per bucket")
    table.add_column("bucket")
    table.add_column("stored", justify="right")
    table.add_column("per month", justify="right")
    for row in result["buckets"]:
        table.add_row(row["bucket"], size(row["bytes"]), money(row["monthly"]))
    table.add_row("total", size(result["total"]["bytes"]), money(result["total"]["monthly"]))
    out.print(table)
    table = Table(title="Per site")
    for column in ("site", "provider", "stored", "price GB-mo", "per month", "egress GB", "1k req"):
        table.add_column(column, justify="left" if column in ("site", "provider") else "right")
    for row in result["sites"]:
        table.add_row(
            row["site"], row["provider"] or "—", size(row["bytes"]),
            money(row["storage_gb_month"]), money(row["monthly"]),
            money(row["egress_gb"] or 0.0), money(row["per_1000_requests"] or 0.0),
        )  # fmt: skip
    out.print(table)
    proposal = result["proposal"]
    if proposal is None:
        return
    table = Table(title=f"Bucket {proposal['bucket']} placed again under the proposed policy")
    for column in ("site", "stored now", "per month now", "stored then", "per month then"):
        table.add_column(column, justify="left" if column == "site" else "right")
    now = {row["site"]: row for row in proposal["current"]["sites"]}
    then = {row["site"]: row for row in proposal["proposed"]["sites"]}
    for site in sorted(now.keys() | then.keys()):
        a, b = now.get(site), then.get(site)
        table.add_row(
            site, size(a["bytes"]) if a else "—", money(a["monthly"]) if a else "—",
            size(b["bytes"]) if b else "—", money(b["monthly"]) if b else "—",
        )  # fmt: skip
    out.print(table)
    out.print(
        f"{proposal['versions']} versions: {money(proposal['current']['monthly'])} a month now, "
        f"{money(proposal['proposed']['monthly'])} under the proposed policy "
        f"({proposal['monthly_difference']:+.4f})."
    )
