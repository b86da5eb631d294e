"""The admin API on a real server: JSON under /_egide/admin/, SigV4-signed with the S3
credentials; a policy set through it places the very next write."""

from __future__ import annotations

import hashlib
import json
import sqlite3
from typing import Any

import pytest
from tests.conftest import Server, ServerFactory
from tests.e2e.test_auth import Reply, send, sign

pytestmark = pytest.mark.timeout(120)

SITES = "".join(
    f'[[sites]]\nname = "{name}"\npath = "data/sites/{name}"\nprovider = "{provider}"\n'
    f'city = "{city}"\ncertifications = {json.dumps(certs)}\n'
    for name, provider, city, certs in (
        ("lyon-1", "Ville de Lyon", "Lyon", ["HDS"]),
        ("lyon-2", "Ville de Lyon", "Lyon", ["HDS"]),
        ("ovh-gra", "OVHcloud", "Gravelines", ["HDS"]),
        ("aws-par", "AWS", "Paris", []),
        ("aws-iad", "AWS", "Ashburn", []),
    )
)
# One process, so that the policy set through the API is the one the next write sees at once.
CONFIG = "workers = 1\n" + SITES + "[[policies]]\nk = 3\nm = 2\n"


def admin(server: Server, method: str, path: str, body: bytes = b"", **signing: Any) -> Reply:
    signed = sign(server, method, path, hashlib.sha256(body).hexdigest(), **signing)
    return send(server, method, path, signed.headers, body)


def answer(reply: Reply, status: int = 200) -> Any:
    assert reply.status == status, reply.body
    assert reply.headers["content-type"] == "application/json"
    return json.loads(reply.body)


def _sites_of_versions(server: Server, key: str) -> list[tuple[int, int, list[str]]]:
    path = server.data_dir / "catalog.sqlite3"
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as db:
        rows = db.execute("SELECT k, m, sites FROM versions WHERE key = ?", (key,)).fetchall()
    return [(k, m, json.loads(sites)) for k, m, sites in rows]


@pytest.fixture
def server(make_server: ServerFactory) -> Server:
    return make_server(CONFIG)


def test_sites_show_profiles_and_health(server: Server) -> None:
    s3 = server.client()
    s3.create_bucket(Bucket="reads")
    s3.put_object(Bucket="reads", Key="a", Body=b"x" * 1000)
    s3.get_object(Bucket="reads", Key="a")["Body"].read()  # the health tracker learns latencies
    sites = {
        row["name"]: row for row in answer(admin(server, "GET", "/_egide/admin/sites"))["sites"]
    }
    assert list(sites) == ["lyon-1", "lyon-2", "ovh-gra", "aws-par", "aws-iad"]
    assert sites["aws-par"]["profile"]["laws"] == ["eu", "us-cloud-act"]
    assert sites["ovh-gra"]["profile"]["certifications"] == ["HDS"]
    assert sites["lyon-1"]["kind"] == "local"
    assert sites["lyon-1"]["where"].endswith("sites/lyon-1")
    for row in sites.values():
        assert row["available"] is True and row["suspect"] is False
        assert row["health"]["state"] == "closed"
    assert sum(row["health"]["reads"] for row in sites.values()) >= 3  # k pieces read


def test_requests_must_be_signed_with_a_known_secret(server: Server) -> None:
    reply = send(server, "GET", "/_egide/admin/sites", {})
    assert answer(reply, 403)["code"] == "AccessDenied"
    reply = admin(server, "GET", "/_egide/admin/sites", secret_key="not-the-secret-at-all")
    assert answer(reply, 403)["code"] == "SignatureDoesNotMatch"
    # A body that is not the one signed is refused.
    signed = sign(
        server, "PUT", "/_egide/admin/buckets/xyz/policy", hashlib.sha256(b"{}").hexdigest()
    )
    reply = send(server, "PUT", "/_egide/admin/buckets/xyz/policy", signed.headers, b"[]")
    assert answer(reply, 404)["code"] == "NoSuchBucket"  # the bucket is looked up first
    server.client().create_bucket(Bucket="xyz")
    reply = send(server, "PUT", "/_egide/admin/buckets/xyz/policy", signed.headers, b"[]")
    assert answer(reply, 400)["code"] == "XAmzContentSHA256Mismatch"


def test_policy_round_trip_places_the_next_write(server: Server) -> None:
    s3 = server.client()
    s3.create_bucket(Bucket="records")
    path = "/_egide/admin/buckets/records/policy"
    before = answer(admin(server, "GET", path))
    assert (before["source"], before["policy"]) == ("configuration default", {"k": 3, "m": 2})

    refused = answer(admin(server, "PUT", path, b'{"k": 2, "m": 1, "max_per_provider": 0}'), 400)
    assert refused == {"code": "InvalidPolicy", "message": "max_per_provider: 0 is below 1"}
    infeasible = answer(
        admin(server, "PUT", path, b'{"k": 3, "m": 1, "certifications": ["HDS"]}'), 400
    )
    assert infeasible["code"] == "InfeasiblePolicy"
    assert "only 3 sites hold HDS" in infeasible["message"]

    policy = {"k": 2, "m": 1, "certifications": ["HDS"], "exclude_laws": ["us-cloud-act"]}
    stored = answer(admin(server, "PUT", path, json.dumps(policy).encode()))
    assert (stored["source"], stored["policy"]) == ("catalog", policy)
    assert answer(admin(server, "GET", path))["policy"] == policy

    s3.put_object(Bucket="records", Key="r1", Body=b"x" * 100_000)
    [(k, m, sites)] = _sites_of_versions(server, "r1")
    assert (k, m) == (2, 1)
    assert sorted(sites) == ["lyon-1", "lyon-2", "ovh-gra"]

    placement = answer(admin(server, "GET", "/_egide/admin/buckets/records/placement"))
    assert sorted(placement["placement"]["sites"]) == ["lyon-1", "lyon-2", "ovh-gra"]
    verdicts = {site["name"]: site for site in placement["sites"]}
    assert verdicts["aws-iad"]["refusals"] == [
        "law us-cloud-act in exclude_laws",
        "lacks certification HDS",
    ]

    cleared = answer(admin(server, "DELETE", path))
    assert (cleared["source"], cleared["policy"]) == ("configuration default", {"k": 3, "m": 2})
    s3.put_object(Bucket="records", Key="r2", Body=b"y" * 100_000)
    assert [(k, m) for k, m, _ in _sites_of_versions(server, "r2")] == [(3, 2)]


def test_unknown_resources_and_methods(server: Server) -> None:
    assert answer(admin(server, "GET", "/_egide/admin/buckets/none/policy"), 404) == {
        "code": "NoSuchBucket",
        "message": "no bucket none",
    }
    assert answer(admin(server, "GET", "/_egide/admin/nothing"), 404)["code"] == "NotFound"
    assert answer(admin(server, "GET", "/_egide/other"), 404)["code"] == "NotFound"
    reply = admin(server, "POST", "/_egide/admin/sites")
    assert answer(reply, 405)["code"] == "MethodNotAllowed"
    # An object key that looks like the admin API stays an object key.
    s3 = server.client()
    s3.create_bucket(Bucket="keys")
    s3.put_object(Bucket="keys", Key="_egide/admin/sites", Body=b"just an object")
    got = s3.get_object(Bucket="keys", Key="_egide/admin/sites")["Body"].read()
    assert got == b"just an object"
