"""Writes while a provider dies: a town keeps its archive on four disks of its own, a SeaweedFS
provider in Paris and a moto provider in Frankfurt, each bucket under a placement policy. The
Frankfurt server process is killed in the middle of a series of writes: the bucket whose policy
can do without it goes on writing to the other sites, the bucket whose policy needs it refuses
writes with 503 rather than store below its policy, and every acknowledged object reads back."""

from __future__ import annotations

import hashlib
import http.client
import json
import re
import sqlite3
from collections.abc import Iterator
from contextlib import ExitStack
from typing import Any
from urllib.parse import urlsplit

import pytest
from botocore.exceptions import ClientError
from tests.conftest import Server, ServerFactory
from tests.providers import Provider, running_moto, running_seaweedfs

KiB, MiB = 1024, 1024 * 1024
FLEXIBLE = "town-archive"  # the default policy: 3+2, at least 3 shards in France
STRICT = "civil-registry"  # 2+2, at most 2 shards per provider: needs all three providers
DEAD = "moto-frankfurt"
ROUNDS, KILL_AT = 8, 3


@pytest.fixture(scope="module")
def providers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Provider, Provider]]:
    """Dedicated providers: the test kills one."""
    with ExitStack() as stack:
        weed = stack.enter_context(running_seaweedfs(tmp_path_factory.mktemp("weed")))
        moto = stack.enter_context(running_moto(tmp_path_factory.mktemp("moto")))
        yield weed, moto


def _config(weed: Provider, moto: Provider) -> str:
    disks = "".join(
        f'[[sites]]\nname = "disk-{i}"\npath = "data/sites/disk-{i}"\n'
        'provider = "Ville de Lyon"\ncity = "Lyon"\n'
        for i in range(1, 5)
    )
    remote = weed.site_toml(
        "seaweed-paris", weed.new_bucket("weed"), provider="Seaweed Hosting", city="Paris"
    )
    remote += moto.site_toml(DEAD, moto.new_bucket("moto"), provider="Moto Cloud", city="Frankfurt")
    policies = (
        "[[policies]]\nk = 3\nm = 2\nmin_in_country = { FR = 3 }\n"
        f'[[policies]]\nbuckets = ["{STRICT}"]\nk = 2\nm = 2\nmax_per_provider = 2\n'
    )
    # One server process, so that what it learns of the dead site serves every later write.
    return "workers = 1\n" + disks + remote + policies


def _body(name: str, size: int) -> bytes:
    seed = hashlib.sha256(name.encode()).digest()
    return (seed * (size // len(seed) + 1))[:size]


def _versions(server: Server) -> dict[tuple[str, str], tuple[int, int, tuple[str, ...]]]:
    """(bucket, key) → (k, m, sites) of every version, read from the catalog itself."""
    path = server.data_dir / "catalog.sqlite3"
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as db:
        rows = db.execute(
            "SELECT b.name, v.key, v.k, v.m, v.sites FROM versions v "
            "JOIN buckets b ON b.id = v.bucket_id"
        ).fetchall()
    return {(b, key): (k, m, tuple(json.loads(sites))) for b, key, k, m, sites in rows}


def _put(s3: Any, bucket: str, key: str, body: bytes) -> ClientError | None:
    try:
        s3.put_object(Bucket=bucket, Key=key, Body=body)
    except ClientError as exc:
        return exc
    return None


def _put_killing(server: Server, provider: Provider, bucket: str, key: str, body: bytes) -> str:
    """PUT `body` through a presigned URL and kill `provider` halfway through sending it:
    the server has started writing the object's shards when the site dies. The reply."""
    presigner = server.client(signature_version="s3v4")
    url = urlsplit(
        presigner.generate_presigned_url(
            "put_object", Params={"Bucket": bucket, "Key": key}, ExpiresIn=300
        )
    )
    conn = http.client.HTTPConnection(url.hostname or "", url.port, timeout=120)
    try:
        conn.putrequest("PUT", f"{url.path}?{url.query}", skip_accept_encoding=True)
        conn.putheader("Content-Length", str(len(body)))
        conn.endheaders()
        conn.send(body[: len(body) // 2])
        provider.proc.kill()  # no goodbye: the process is simply gone
        provider.proc.wait()
        conn.send(body[len(body) // 2 :])
        reply = conn.getresponse()
        return f"{reply.status} {reply.read().decode()}"
    finally:
        conn.close()


def test_writes_follow_the_policy_when_a_provider_dies(
    make_server: ServerFactory, providers: tuple[Provider, Provider]
) -> None:
    weed, moto = providers
    server = make_server(_config(weed, moto))
    banner = server.output()
    assert "policy          the default policy: 3+2, spread" in banner
    assert f"policy          buckets {STRICT}: 2+2, spread" in banner
    # No retries: each 503 is seen as it is answered.
    s3 = server.client(retries={"max_attempts": 1, "mode": "standard"})
    for bucket in (FLEXIBLE, STRICT):
        s3.create_bucket(Bucket=bucket)

    acknowledged: dict[tuple[str, str], bytes] = {}
    refused: dict[tuple[str, str], ClientError] = {}
    for round_ in range(ROUNDS):
        for bucket in (FLEXIBLE, STRICT):
            # Small objects go to a pack, large ones are streamed in their own shard files.
            for kind, size in (("note", 4 * KiB), ("scan", 3 * MiB // 2)):
                key = f"round-{round_}/{kind}"
                body = _body(f"{bucket}/{key}", size)
                if (round_, bucket, kind) == (KILL_AT - 1, STRICT, "scan"):
                    # Frankfurt dies while this object is on its way: the body is consumed,
                    # so the write cannot go elsewhere: 503, naming the site, nothing stored.
                    reply = _put_killing(server, moto, bucket, key, body)
                    assert reply.startswith("503 ") and "<Code>ServiceUnavailable<" in reply
                    found = re.search(r"<Message>([^<]*)</Message>", reply)
                    assert found and f"could not write shards to {DEAD}" in found.group(1)
                    continue
                error = _put(s3, bucket, key, body)
                if error is None:
                    acknowledged[bucket, key] = body
                else:
                    refused[bucket, key] = error

    before = {(b, f"round-{r}/{kind}") for b in (FLEXIBLE, STRICT) for r in range(KILL_AT)
              for kind in ("note", "scan")} - {(STRICT, f"round-{KILL_AT - 1}/scan")}  # fmt: skip
    assert before <= set(acknowledged), "every write succeeds while all providers are up"
    for (_, key), error in refused.items():
        assert error.response["ResponseMetadata"]["HTTPStatusCode"] == 503, key
        assert error.response["Error"]["Code"] == "ServiceUnavailable", key
        assert DEAD in error.response["Error"]["Message"], (key, error.response["Error"])

    # The flexible bucket wrote around the dead provider, which the failed write made known.
    assert [key for bucket, key in refused if bucket == FLEXIBLE] == []
    # The strict bucket cannot meet its policy without Frankfurt: every write was refused,
    # with the solver's reason once the dead site was known.
    after = {(STRICT, f"round-{r}/{kind}") for r in range(KILL_AT, ROUNDS)
             for kind in ("note", "scan")}  # fmt: skip
    assert after <= set(refused), after - set(refused)
    reasons = [refused[item].response["Error"]["Message"] for item in sorted(after)]
    assert any("max_per_provider = 2" in reason for reason in reasons), reasons
    assert any(f"down: {DEAD}" in reason for reason in reasons), reasons

    # What the catalog holds obeys each bucket's policy; nothing new went to the dead site.
    versions = _versions(server)
    assert set(versions) == set(acknowledged)
    for (bucket, key), (k, m, sites) in versions.items():
        assert (k, m) == ((3, 2) if bucket == FLEXIBLE else (2, 2)), key
        assert len(set(sites)) == k + m
        if bucket == STRICT:
            assert {DEAD, "seaweed-paris"} <= set(sites)
        assert sum(1 for site in sites if site != DEAD) >= 3  # min_in_country FR (and more)
        if int(key.split("/")[0].removeprefix("round-")) >= KILL_AT:
            assert DEAD not in sites, key

    # Every acknowledged object reads back, degraded where a shard was in Frankfurt.
    for (bucket, key), body in acknowledged.items():
        got = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
        assert hashlib.sha256(got).digest() == hashlib.sha256(body).digest(), (bucket, key)
    # Listing and overwrites keep working in the flexible bucket.
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=FLEXIBLE)["Contents"]]
    assert sorted(keys) == sorted(key for bucket, key in acknowledged if bucket == FLEXIBLE)
    assert _put(s3, FLEXIBLE, "round-0/scan", b"rewritten") is None
    assert s3.get_object(Bucket=FLEXIBLE, Key="round-0/scan")["Body"].read() == b"rewritten"
