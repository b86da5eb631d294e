"""Master and bucket key rotation over a real store: keys rewrapped, data never rewritten, reads
working before, during (an interrupted rotation) and after."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from tests.engine.helpers import Env, chunks, make_env, payload

from egide.crypto.aead import DecryptionError, new_key
from egide.crypto.keyfile import MasterKeyFiles, encode_key_file, write_key_file
from egide.crypto.keyring import Keyring
from egide.engine.keyrecords import read_key_records
from egide.engine.multipart import CompletedPart
from egide.engine.rekey import rotate_bucket_key, rotate_master_key

OBJECTS = {"small": 3_000, "medium": 200_000, "large": 700_000}


class Stop(Exception):
    """Raised from a step callback: the rotation stops there, as if killed."""


def stop_at(name: str, after: int = 1) -> object:
    seen: list[str] = []

    def on_step(step: str) -> None:
        seen.append(step)
        if seen.count(name) == after:
            raise Stop(step)

    return on_step


def keyed_env(tmp: Path) -> tuple[Env, MasterKeyFiles, bytes]:
    env = make_env(tmp)
    files = MasterKeyFiles(tmp / "master.key")
    master = new_key()
    write_key_file(files.current, encode_key_file(master))
    env.keyring = env.store.keyring = Keyring(master)
    return env, files, master


async def fill(env: Env) -> dict[tuple[str, str], str]:
    """Two buckets with packed, streamed and multipart objects; their SHA-256 by name."""
    digests = {}
    for bucket in ("alpha", "beta"):
        await env.store.create_bucket(bucket)
        for key, size in OBJECTS.items():
            data = payload(size, seed=hash((bucket, key)) & 0xFFFF)
            await env.put(bucket, key, data)
            digests[bucket, key] = hashlib.sha256(data).hexdigest()
    mp = env.store.multipart
    upload = await mp.create("alpha", "parts", {})
    data = payload(300_000, seed=7)
    part = await mp.upload_part(upload, 1, chunks(data))
    await mp.complete(upload, [CompletedPart(1, part.etag, {})])
    digests["alpha", "parts"] = hashlib.sha256(data).hexdigest()
    await env.catalog.add_credential("AKTEST", env.keyring.seal_secret("AKTEST", b"s3cret"))
    return digests


async def read_all(env: Env, digests: dict[tuple[str, str], str]) -> None:
    for (bucket, key), digest in digests.items():
        assert hashlib.sha256(await env.get(bucket, key)).hexdigest() == digest, (bucket, key)


def snapshot(env: Env) -> dict[Path, tuple[bytes, int]]:
    """Every shard and pack file's bytes and mtime (key records excluded)."""
    return {p: (p.read_bytes(), p.stat().st_mtime_ns) for p in env.all_files("")}


def test_bucket_rotation_rewraps_data_keys_and_reads_go_on(tmp_path: Path) -> None:
    env, _, _ = keyed_env(tmp_path)

    async def scenario() -> None:
        digests = await fill(env)
        await read_all(env, digests)  # the store caches alpha's first key
        before = snapshot(env)
        result = await rotate_bucket_key(
            env.catalog, env.keyring, env.store.sites, "alpha", batch=2
        )
        assert (result.generations, result.resumed, result.unreadable) == (2, False, 0)
        assert result.rewrapped == 4  # three objects and the multipart one
        await read_all(env, digests)  # the same store: its cached key is stale
        bucket = await env.catalog.get_bucket("alpha")
        assert bucket is not None
        current = env.keyring.bucket_key(bucket.id, bucket.wrapped_key)
        for owner, wrapped in await env.catalog.wrapped_data_keys(bucket.id, b"", 100):
            Keyring.data_key(current, owner, wrapped)  # every one under the new key
        records = await read_key_records(env.store.sites, env.keyring)
        assert records[bucket.id].wrapped_keys[0] == bucket.wrapped_key
        assert len(records[bucket.id].wrapped_keys) == 2
        assert snapshot(env) == before  # no data rewritten
        env.store.buckets._by_name.clear()
        await env.put("alpha", "after", b"written under the new key")
        assert await env.get("alpha", "after") == b"written under the new key"

    env.run(scenario)


def test_interrupted_bucket_rotation_reads_then_resumes(tmp_path: Path) -> None:
    env, _, _ = keyed_env(tmp_path)

    async def scenario() -> None:
        digests = await fill(env)
        with pytest.raises(Stop):
            await rotate_bucket_key(
                env.catalog, env.keyring, env.store.sites, "alpha", batch=1,
                on_step=stop_at("batch"),  # type: ignore[arg-type]
            )  # fmt: skip
        bucket = await env.catalog.get_bucket("alpha")
        assert bucket is not None and await env.catalog.bucket_key_rotation(bucket.id)
        await read_all(env, digests)  # half rewrapped: generations are tried
        result = await rotate_bucket_key(env.catalog, env.keyring, env.store.sites, "alpha")
        assert result.resumed and result.generations == 2 and result.rewrapped == 3
        assert await env.catalog.bucket_key_rotation(bucket.id) is None
        await read_all(env, digests)

    env.run(scenario)


def test_master_rotation_rewraps_keys_only(tmp_path: Path) -> None:
    env, files, old = keyed_env(tmp_path)

    async def scenario() -> None:
        digests = await fill(env)
        await rotate_bucket_key(env.catalog, env.keyring, env.store.sites, "beta")
        before = snapshot(env)
        result = await rotate_master_key(files, None, env.catalog, env.store.sites)
        assert (result.bucket_keys, result.credentials, result.records) == (3, 1, 2)
        assert result.old_key is None and not result.failed_sites
        keys = files.load()
        assert len(keys) == 1 and keys[0] != old
        assert not files.next.exists() and not files.retired.exists()
        assert [p.name for p in tmp_path.glob("master.key*")] == ["master.key"]
        new, stale = Keyring(keys[0]), Keyring(old)
        for bucket in await env.catalog.list_buckets():
            new.bucket_key(bucket.id, bucket.wrapped_key)
            with pytest.raises(DecryptionError):
                stale.bucket_key(bucket.id, bucket.wrapped_key)
        for bucket_id, _, wrapped in await env.catalog.retired_bucket_keys():
            new.bucket_key(bucket_id, wrapped)
        sealed = await env.catalog.get_credential("AKTEST")
        assert sealed is not None and new.open_secret("AKTEST", sealed) == b"s3cret"
        assert len(await read_key_records(env.store.sites, new)) == 2
        assert await read_key_records(env.store.sites, stale) == {}
        assert snapshot(env) == before
        env.store.keyring = new  # a restarted server
        env.store.buckets._keys.clear()
        env.store.buckets._retired_keys.clear()
        await read_all(env, digests)

    env.run(scenario)


@pytest.mark.parametrize("step", ["next-key", "bucket-keys", "credentials", "records", "swapped"])
def test_master_rotation_stopped_anywhere_reads_then_finishes(tmp_path: Path, step: str) -> None:
    env, files, old = keyed_env(tmp_path)

    async def scenario() -> None:
        digests = await fill(env)
        with pytest.raises(Stop):
            await rotate_master_key(
                files,
                None,
                env.catalog,
                env.store.sites,
                on_step=stop_at(step),  # type: ignore[arg-type]
            )
        keys = files.load()  # what a server starting now loads
        env.store.keyring = Keyring(keys[0], keys[1:])
        env.store.buckets._keys.clear()
        await read_all(env, digests)
        result = await rotate_master_key(files, None, env.catalog, env.store.sites)
        assert result.resumed
        final = files.load()
        assert len(final) == 1 and final[0] != old
        env.store.keyring = Keyring(final[0])
        env.store.buckets._keys.clear()
        await read_all(env, digests)
        assert not files.next.exists() and not files.retired.exists()

    env.run(scenario)
