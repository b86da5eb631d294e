"""The S3 provider site against real servers (SeaweedFS and moto): the Site contract, streaming
multipart writes, prefixes, and failures that must become SiteError quickly, never hangs."""

from __future__ import annotations

import asyncio
import hashlib
import re
import socket
import time
from collections.abc import Callable, Coroutine, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest
from tests.providers import Provider, running_moto

from egide.config import ConfigError, LocalSiteConfig, S3SiteConfig, Settings, load_settings
from egide.sites.base import ShardMissing, SiteError
from egide.sites.s3 import MARKER, PART_SIZE, S3Site

T = TypeVar("T")
MiB = 1024 * 1024
SHARD = "0123abcd-0-1"


def run(fn: Callable[[], Coroutine[Any, Any, T]]) -> T:
    return asyncio.run(fn())


def make_site(provider: Provider, bucket: str, prefix: str = "shards/", **extra: Any) -> S3Site:
    extra = {"timeout_seconds": 10, "connect_timeout_seconds": 2, "max_retries": 1, **extra}
    return S3Site(provider.site_config("site-1", bucket, prefix, **extra))


@pytest.fixture
def site(provider: Provider) -> S3Site:
    site = make_site(provider, provider.new_bucket())
    site.prepare()
    site.attach()
    return site


async def _put(site: S3Site, shard: str, data: bytes, piece: int = 0) -> None:
    writer = await site.writer(shard)
    for start in range(0, len(data), piece or len(data) or 1):
        await writer.write(data[start : start + (piece or len(data))])
    await writer.commit()


async def _list(site: S3Site, prefix: str = "") -> list[str]:
    return [name async for name in site.list(prefix)]


def _uploads(provider: Provider, bucket: str) -> list[str]:
    """Multipart uploads begun and neither completed nor aborted."""
    found = provider.client().list_multipart_uploads(Bucket=bucket)
    return [upload["Key"] for upload in found.get("Uploads", [])]


def test_prepare_writes_a_marker_that_list_hides(provider: Provider, site: S3Site) -> None:
    assert provider.keys(site.config.bucket) == [f"shards/{MARKER}"]
    assert run(lambda: _list(site)) == []


def test_written_shard_is_invisible_until_commit(provider: Provider, site: S3Site) -> None:
    bucket = site.config.bucket

    async def scenario() -> None:
        writer = await site.writer(SHARD)
        await writer.write(b"hello ")
        await writer.write(b"world")
        with pytest.raises(ShardMissing):
            await site.read(SHARD, 0, -1)
        assert await site.size(SHARD) is None
        assert await _list(site) == []
        assert f"shards/{SHARD}" not in provider.keys(bucket)
        await writer.commit()
        assert await site.read(SHARD, 0, -1) == b"hello world"
        assert await site.size(SHARD) == 11
        assert await _list(site) == [SHARD]

    run(scenario)
    assert f"shards/{SHARD}" in provider.keys(bucket)


def test_ranged_reads_behave_like_a_file(site: S3Site) -> None:
    data = bytes(range(256)) * 40

    async def scenario() -> None:
        await _put(site, SHARD, data)
        assert await site.read(SHARD, 0, 10) == data[:10]
        assert await site.read(SHARD, 1000, 300) == data[1000:1300]
        assert await site.read(SHARD, 5000, -1) == data[5000:]
        assert await site.read(SHARD, 0, -1) == data
        # Past the end: what is there, then nothing; like a read(2) at that offset.
        assert await site.read(SHARD, len(data) - 5, 100) == data[-5:]
        assert await site.read(SHARD, len(data), 10) == b""
        assert await site.read(SHARD, len(data) + 100, -1) == b""
        assert await site.read(SHARD, 7, 0) == b""
        await _put(site, "empty-0-0", b"")
        assert await site.size("empty-0-0") == 0
        assert await site.read("empty-0-0", 0, -1) == b""
        assert await site.read("empty-0-0", 0, 10) == b""

    run(scenario)


def test_missing_shard(site: S3Site) -> None:
    async def scenario() -> None:
        for offset, length in [(0, -1), (0, 10), (5, -1), (0, 0)]:
            with pytest.raises(ShardMissing, match="site-1"):
                await site.read("absent-0-0", offset, length)
        assert await site.size("absent-0-0") is None
        await site.delete("absent-0-0")  # deleting what is not there is not an error

    run(scenario)


def test_delete_removes_the_object(provider: Provider, site: S3Site) -> None:
    async def scenario() -> None:
        await _put(site, SHARD, b"x" * 100)
        await _put(site, "other-0-0", b"y")
        await site.delete(SHARD)
        with pytest.raises(ShardMissing):
            await site.read(SHARD, 0, -1)
        assert await _list(site) == ["other-0-0"]

    run(scenario)
    assert f"shards/{SHARD}" not in provider.keys(site.config.bucket)


def test_abort_of_a_small_shard_leaves_nothing(provider: Provider, site: S3Site) -> None:
    async def scenario() -> None:
        writer = await site.writer(SHARD)
        await writer.write(b"z" * 1000)
        await writer.abort()
        await writer.abort()  # twice is harmless
        assert await site.size(SHARD) is None

    run(scenario)
    assert provider.keys(site.config.bucket) == [f"shards/{MARKER}"]
    assert _uploads(provider, site.config.bucket) == []


def test_large_shard_streams_as_multipart_and_abort_discards_it(
    provider: Provider, site: S3Site
) -> None:
    """Past one part, bytes leave while the shard is written (an upload is under way before
    commit), yet nothing is visible; abort discards the upload itself."""
    bucket = site.config.bucket

    async def scenario() -> None:
        writer = await site.writer(SHARD)
        for _ in range(3 * PART_SIZE // MiB):
            await writer.write(b"q" * MiB)
        assert _uploads(provider, bucket) == [f"shards/{SHARD}"]
        assert await site.size(SHARD) is None
        await writer.abort()

    run(scenario)
    assert _uploads(provider, bucket) == []
    assert provider.keys(bucket) == [f"shards/{MARKER}"]


def test_multi_mib_shard_in_many_small_writes(provider: Provider, site: S3Site) -> None:
    size = 2 * PART_SIZE + 3 * MiB + 17  # three parts, the last one short
    data = hashlib.shake_256(b"egide").digest(size)

    async def scenario() -> None:
        await _put(site, SHARD, data, piece=64 * 1024 + 3)
        assert await site.size(SHARD) == size
        boundary = PART_SIZE - 10  # a range across the first part boundary
        assert await site.read(SHARD, boundary, 20) == data[boundary : boundary + 20]
        assert await site.read(SHARD, size - 100, -1) == data[-100:]
        whole = await site.read(SHARD, 0, -1)
        assert hashlib.sha256(whole).digest() == hashlib.sha256(data).digest()

    run(scenario)
    assert _uploads(provider, site.config.bucket) == []


def test_list_filters_by_prefix_in_order(site: S3Site) -> None:
    names = ["ab01-0-0", "ab01-0-1", "ab02-0-0", "cd01-0-0", "a-0-0"]

    async def scenario() -> None:
        for name in names:
            await _put(site, name, name.encode())
        assert await _list(site) == sorted(names)
        assert await _list(site, "ab") == ["ab01-0-0", "ab01-0-1", "ab02-0-0"]
        assert await _list(site, "ab01-") == ["ab01-0-0", "ab01-0-1"]
        assert await _list(site, "zz") == []

    run(scenario)


def test_prefixes_isolate_sites_sharing_a_bucket(provider: Provider) -> None:
    bucket = provider.new_bucket("shared")
    nested = make_site(provider, bucket, "egide/one/")
    sibling = make_site(provider, bucket, "egide/one-more/")
    flat = make_site(provider, bucket, "flat-")
    root = make_site(provider, bucket, "")

    async def scenario() -> None:
        await _put(nested, "aa-0-0", b"nested")
        await _put(sibling, "aa-0-1", b"sibling")
        await _put(flat, "aa-0-2", b"flat")
        await _put(root, "aa-0-3", b"root")
        assert await _list(nested) == ["aa-0-0"]
        assert await _list(sibling) == ["aa-0-1"]
        # "flat-" and "" see the whole bucket through listing: they keep only their own names.
        assert await _list(flat) == ["aa-0-2"]
        assert await _list(root) == ["aa-0-3", "flat-aa-0-2"]
        with pytest.raises(ShardMissing):
            await nested.read("aa-0-1", 0, -1)
        assert await sibling.read("aa-0-1", 0, -1) == b"sibling"

    run(scenario)
    assert sorted(provider.keys(bucket)) == [
        "aa-0-3", "egide/one-more/aa-0-1", "egide/one/aa-0-0", "flat-aa-0-2",
    ]  # fmt: skip


def test_prepare_refuses_a_missing_bucket_unless_told_to_create_it(provider: Provider) -> None:
    bucket = f"egide-absent-{time.monotonic_ns() % 10**9}"
    with pytest.raises(ConfigError, match=f"bucket '{bucket}' does not exist.*create_bucket"):
        make_site(provider, bucket).prepare()
    make_site(provider, bucket, create_bucket=True).prepare()
    assert provider.keys(bucket) == [f"shards/{MARKER}"]


def test_prepare_refuses_wrong_credentials(seaweedfs: Provider) -> None:
    """moto accepts any key, so this one needs SeaweedFS."""
    bucket = seaweedfs.new_bucket()
    site = make_site(seaweedfs, bucket, secret_key="not-the-secret")
    with pytest.raises(ConfigError, match=r"refused access.*SignatureDoesNotMatch") as caught:
        site.prepare()
    assert "not-the-secret" not in str(caught.value)
    with pytest.raises(SiteError, match=r"site-1: read .* failed.*403"):
        run(lambda: site.read(SHARD, 0, -1))


async def _every_operation_fails(site: S3Site) -> list[str]:
    """Each call of the interface, with the SiteError (never ShardMissing) it raised."""
    errors: list[str] = []

    async def write() -> None:
        await _put(site, SHARD, b"x" * 100)

    calls: list[Callable[[], Coroutine[Any, Any, object]]] = [
        write,
        lambda: site.read(SHARD, 0, 100),
        lambda: site.read(SHARD, 0, -1),
        lambda: site.size(SHARD),
        lambda: site.delete(SHARD),
        lambda: _list(site),
    ]
    for call in calls:
        with pytest.raises(SiteError) as caught:
            await call()
        assert not isinstance(caught.value, ShardMissing)
        errors.append(str(caught.value))
    return errors


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.timeout(60)
def test_unreachable_provider_fails_fast_with_site_error(moto_server: Provider) -> None:
    config = moto_server.site_config("far-away", "egide-bucket", "p/", max_retries=2)
    config = config.model_copy(update={"endpoint": f"http://127.0.0.1:{_closed_port()}"})
    site = S3Site(config)
    started = time.monotonic()
    errors = run(lambda: _every_operation_fails(site))
    assert time.monotonic() - started < 20
    assert all(e.startswith("site far-away: ") for e in errors)
    assert "cannot connect" in errors[1]
    assert moto_server.secret_key not in " ".join(errors)
    site.prepare()  # an unreachable provider at start is logged, not fatal


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A port that accepts connections (the kernel does) but never answers a request."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(64)
        yield int(sock.getsockname()[1])


@pytest.mark.timeout(60)
def test_provider_that_never_answers_times_out(moto_server: Provider, silent_port: int) -> None:
    config = moto_server.site_config(
        "silent", "egide-bucket", "", timeout_seconds=0.5, connect_timeout_seconds=0.5,
        max_retries=1,
    )  # fmt: skip
    site = S3Site(config.model_copy(update={"endpoint": f"http://127.0.0.1:{silent_port}"}))
    started = time.monotonic()
    with pytest.raises(SiteError, match=r"site silent: read .*\(timed out\)"):
        run(lambda: site.read(SHARD, 0, 10))
    assert time.monotonic() - started < 10
    with pytest.raises(SiteError, match="site silent: size of"):
        run(lambda: site.size(SHARD))


@pytest.mark.timeout(120)
def test_stopped_provider_gives_site_error_not_a_hang(tmp_path: Path) -> None:
    with running_moto(tmp_path / "moto") as moto:
        site = make_site(moto, moto.new_bucket(), max_retries=1)
        site.prepare()
        run(lambda: _put(site, SHARD, b"before the outage"))
        assert run(lambda: site.read(SHARD, 0, -1)) == b"before the outage"
    assert not moto.running
    started = time.monotonic()
    errors = run(lambda: _every_operation_fails(site))
    assert time.monotonic() - started < 30
    assert all(e.startswith("site site-1: ") for e in errors)


def _s3_site_toml(tmp_path: Path, extra: str = "") -> Path:
    path = tmp_path / "egide.toml"
    path.write_text(
        '[[sites]]\nname = "ovh.gra-1"\nkind = "s3"\nendpoint = "https://s3.gra.example"\n'
        f'bucket = "egide-shards"\n{extra}'
    )
    return path


def test_config_takes_credentials_from_the_site_variables_then_aws(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(ConfigError, match="EGIDE_SITE_OVH_GRA_1_ACCESS_KEY"):
        load_settings(_s3_site_toml(tmp_path))
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "aws-access")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "aws-secret")
    site = load_settings(_s3_site_toml(tmp_path)).resolved_sites()[0]
    assert isinstance(site, S3SiteConfig)
    assert site.resolved_credentials() == ("aws-access", "aws-secret")
    monkeypatch.setenv("EGIDE_SITE_OVH_GRA_1_ACCESS_KEY", "site-access")
    monkeypatch.setenv("EGIDE_SITE_OVH_GRA_1_SECRET_KEY", "site-secret")
    assert site.resolved_credentials() == ("site-access", "site-secret")
    in_file = 'access_key = "file-access"\nsecret_key = "file-secret"\n'
    site = load_settings(_s3_site_toml(tmp_path, in_file)).resolved_sites()[0]
    assert isinstance(site, S3SiteConfig)
    assert site.resolved_credentials() == ("file-access", "file-secret")
    assert "file-secret" not in repr(site)
    assert (site.allow_http, site.region, site.prefix, site.create_bucket) == (
        False, "us-east-1", "", False,
    )  # fmt: skip


@pytest.mark.parametrize(
    "extra,field",
    [
        ('access_key = "only-half"\n', "set both"),
        ('secret_key = "s"\naccess_key = "a"\nregion = ""\n', "sites.0.region"),
        ('secret_key = "s"\naccess_key = "a"\nprefix = "/abs/"\n', "sites.0.prefix"),
        ('secret_key = "s"\naccess_key = "a"\nprefix = "a/../b/"\n', "sites.0.prefix"),
        ('secret_key = "s"\naccess_key = "a"\ntimeout_seconds = 0\n', "sites.0.timeout_seconds"),
        ('secret_key = "s"\naccess_key = "a"\npath = "x"\n', "sites.0.path"),
    ],
)
def test_config_refuses_bad_s3_sites(tmp_path: Path, extra: str, field: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(field)):
        load_settings(_s3_site_toml(tmp_path, extra))


def test_local_and_s3_sites_resolve_side_by_side(tmp_path: Path) -> None:
    path = _s3_site_toml(tmp_path, 'access_key = "a"\nsecret_key = "s"\n')
    path.write_text(path.read_text() + '[[sites]]\nname = "disk"\npath = "d"\n')
    settings = load_settings(path, data_dir=tmp_path / "data")
    s3_site, local_site = settings.resolved_sites()
    assert isinstance(s3_site, S3SiteConfig) and s3_site.endpoint == "https://s3.gra.example"
    assert isinstance(local_site, LocalSiteConfig) and local_site.path == tmp_path / "d"
    # The settings travel to worker processes as JSON: the union must survive the trip.
    assert Settings.model_validate_json(settings.model_dump_json()) == settings


@pytest.mark.parametrize("endpoint", ["ftp://s3.example", "s3.example:9000", "http://"])
def test_config_refuses_an_endpoint_that_is_not_an_http_url(endpoint: str) -> None:
    fields = {"name": "x", "kind": "s3", "endpoint": endpoint, "bucket": "bkt",
              "access_key": "a", "secret_key": "s"}  # fmt: skip
    with pytest.raises(ValueError, match="not an http:// or https:// URL"):
        S3SiteConfig.model_validate(fields)
    fields["endpoint"] = "http://127.0.0.1:9000/"
    assert S3SiteConfig.model_validate(fields).allow_http
