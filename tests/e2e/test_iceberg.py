"""The Iceberg REST catalog driven by PyIceberg's own REST client (SigV4-signed) against a
real server: tables whose metadata and data files are Égide objects."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from pyiceberg.catalog import Catalog
from pyiceberg.catalog.rest import RestCatalog
from pyiceberg.exceptions import (
    CommitFailedException,
    ForbiddenError,
    NamespaceNotEmptyError,
    NoSuchTableError,
    TableAlreadyExistsError,
)
from pyiceberg.types import StringType
from tests.conftest import ACCESS_KEY, SECRET_KEY, InProcessFactory, Server, ServerFactory

from egide.auth.authorize import Authorizer, Principal, RequestContext


def catalog_of(
    server: Server,
    warehouse: str,
    name: str = "egide",
    keys: tuple[str, str] = (ACCESS_KEY, SECRET_KEY),
) -> Catalog:
    """A PyIceberg REST catalog as a user would configure it (docs/analytics.md)."""
    access, secret = keys
    return RestCatalog(
        name,
        **{
            "uri": f"{server.endpoint}/_iceberg",
            "warehouse": warehouse,
            "rest.sigv4-enabled": "true",
            "rest.signing-name": "s3",
            "rest.signing-region": "us-east-1",
            "client.access-key-id": access,
            "client.secret-access-key": secret,
            "client.region": "us-east-1",
            "s3.access-key-id": access,
            "s3.secret-access-key": secret,
            "s3.region": "us-east-1",
        },
    )


def readings(first: int, count: int) -> pa.Table:
    return pa.table(
        {
            "id": pa.array(range(first, first + count), pa.int64()),
            "kwh": pa.array([float(i) / 2 for i in range(first, first + count)], pa.float64()),
        }
    )


def test_a_table_is_created_appended_evolved_scanned_and_time_travelled(
    shared_server: Server, s3: Any
) -> None:
    s3.create_bucket(Bucket="lake")
    catalog = catalog_of(shared_server, "lake")
    catalog.create_namespace("energy", {"owner": "ops"})
    assert ("energy",) in catalog.list_namespaces()
    assert catalog.load_namespace_properties("energy") == {"owner": "ops"}
    table = catalog.create_table("energy.meters", schema=readings(0, 1).schema)
    assert catalog.list_tables("energy") == [("energy", "meters")]
    assert catalog.table_exists("energy.meters")

    table.append(readings(0, 100))
    first = table.current_snapshot()
    assert first is not None
    table.append(readings(100, 50))
    with table.update_schema() as update:
        update.add_column("city", StringType())
    table.append(readings(150, 10).append_column("city", pa.array(["Lyon"] * 10)))

    reloaded = catalog.load_table("energy.meters")
    assert [f.name for f in reloaded.schema().fields] == ["id", "kwh", "city"]
    assert reloaded.scan().to_arrow().num_rows == 160
    selected = reloaded.scan(row_filter="id >= 140").to_arrow()
    assert sorted(selected["id"].to_pylist()) == list(range(140, 160))
    assert selected.filter(pa.compute.equal(selected["city"], "Lyon")).num_rows == 10
    old = reloaded.scan(snapshot_id=first.snapshot_id).to_arrow()
    assert old.num_rows == 100 and "city" not in old.column_names

    # Metadata and data files are objects of the warehouse bucket, readable through S3.
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket="lake")["Contents"]]
    assert any(
        k.startswith("energy/meters/metadata/") and k.endswith(".metadata.json") for k in keys
    )
    assert any(k.startswith("energy/meters/data/") and k.endswith(".parquet") for k in keys)


def test_two_racing_commits_exactly_one_wins(shared_server: Server, s3: Any) -> None:
    s3.create_bucket(Bucket="race")
    catalog = catalog_of(shared_server, "race")
    catalog.create_namespace("ns")
    # PyIceberg retries a failed commit on the refreshed table by default: off, to see the race.
    catalog.create_table(
        "ns.t", schema=readings(0, 1).schema, properties={"commit.retry.num-retries": "0"}
    )
    tables = [catalog_of(shared_server, "race", f"c{i}").load_table("ns.t") for i in range(2)]
    outcomes: list[BaseException | None] = [None, None]
    start = threading.Barrier(2)

    def write(i: int) -> None:
        start.wait()
        try:
            tables[i].append(readings(i * 1000, 10))
        except BaseException as exc:
            outcomes[i] = exc

    threads = [threading.Thread(target=write, args=(i,)) for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    failed = [o for o in outcomes if o is not None]
    assert len(failed) == 1 and isinstance(failed[0], CommitFailedException), outcomes
    assert catalog.load_table("ns.t").scan().to_arrow().num_rows == 10
    # The loser, refreshed, commits on top of the winner.
    loser = tables[outcomes.index(failed[0])]
    loser.refresh()
    loser.append(readings(5000, 5))
    assert catalog.load_table("ns.t").scan().to_arrow().num_rows == 15


def test_tables_are_renamed_dropped_and_purged(shared_server: Server, s3: Any) -> None:
    s3.create_bucket(Bucket="moves")
    catalog = catalog_of(shared_server, "moves")
    catalog.create_namespace("a")
    catalog.create_namespace("b")
    table = catalog.create_table("a.t", schema=readings(0, 1).schema)
    table.append(readings(0, 3))
    with pytest.raises(TableAlreadyExistsError):
        catalog.create_table("a.t", schema=readings(0, 1).schema)
    catalog.rename_table("a.t", "b.renamed")
    assert not catalog.table_exists("a.t")
    assert catalog.load_table("b.renamed").scan().to_arrow().num_rows == 3
    with pytest.raises(NamespaceNotEmptyError):
        catalog.drop_namespace("b")
    # Registered again under another name from its current metadata file.
    location = catalog.load_table("b.renamed").metadata_location
    catalog.drop_table("b.renamed")
    with pytest.raises(NoSuchTableError):
        catalog.load_table("b.renamed")
    registered = catalog.register_table("a.back", location)
    assert registered.scan().to_arrow().num_rows == 3
    catalog.purge_table("a.back")
    assert s3.list_objects_v2(Bucket="moves", Prefix="b/renamed/").get("KeyCount") == 0
    catalog.drop_namespace("b")
    assert catalog.list_namespaces() == [("a",)]


def test_a_caller_without_iceberg_rights_is_refused(
    make_inprocess_server: InProcessFactory,
) -> None:
    async def decide(
        principal: Principal, action: str, resource: str, context: RequestContext
    ) -> bool:
        return not (action.startswith("iceberg:") and resource.endswith("/hidden/t"))

    server = make_inprocess_server(Authorizer(decide))
    server.client().create_bucket(Bucket="warehouse")
    catalog = catalog_of(server, "warehouse")
    catalog.create_namespace("hidden")
    with pytest.raises(ForbiddenError):
        catalog.create_table("hidden.t", schema=readings(0, 1).schema)
    assert catalog.list_tables("hidden") == []


def egide(server: Server, *args: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "egide", *args, "--config", str(server.config)],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def test_a_user_gets_iceberg_rights_from_its_policy(
    make_server: ServerFactory, tmp_path: Path
) -> None:
    server = make_server()
    server.client().create_bucket(Bucket="shared")
    admin = catalog_of(server, "shared")
    admin.create_namespace("sales")
    admin.create_namespace("hr")
    egide(server, "user", "create", "analyst")
    policy = tmp_path / "analyst.json"
    policy.write_text(json.dumps({"Statement": [
        {"Effect": "Allow", "Action": "iceberg:*",
         "Resource": ["arn:aws:s3:::shared", "arn:aws:s3:::shared/sales/*"]},
        {"Effect": "Allow", "Action": "s3:*",
         "Resource": ["arn:aws:s3:::shared", "arn:aws:s3:::shared/sales/*"]},
    ]}))  # fmt: skip
    egide(server, "user", "policy-put", "analyst", "tables", str(policy))
    key = json.loads(egide(server, "key", "create", "analyst", "--json"))
    analyst = catalog_of(server, "shared", "analyst", (key["access_key"], key["secret_key"]))
    table = analyst.create_table("sales.orders", schema=readings(0, 1).schema)
    table.append(readings(0, 7))
    assert analyst.load_table("sales.orders").scan().to_arrow().num_rows == 7
    with pytest.raises(ForbiddenError):
        analyst.create_table("hr.salaries", schema=readings(0, 1).schema)
    egide(server, "user", "create", "nobody")
    other = json.loads(egide(server, "key", "create", "nobody", "--json"))
    with pytest.raises(ForbiddenError):  # its very first call, the configuration
        catalog_of(server, "shared", "nobody", (other["access_key"], other["secret_key"]))
