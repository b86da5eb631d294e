"""`egide keys` and `egide bucket delete --shred` on a store written by a real server: the
passphrase, rotations killed with SIGKILL and finished, and the proof that a shredded bucket's
raw shards open under no key the organisation keeps."""

from __future__ import annotations

import asyncio
import hashlib
import json
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from tests.cli.conftest import Store

from egide.catalog import open_catalog
from egide.coding.blocks import CHECKSUM_SIZE, Layout
from egide.coding.erasure import ErasureCode
from egide.coding.shardfile import HEADER_SIZE, ShardFooter, ShardHeader
from egide.config import Settings, load_settings
from egide.crypto import aead
from egide.crypto.aead import DecryptionError
from egide.crypto.keyfile import V2_MAGIC
from egide.crypto.keyring import Keyring
from egide.domain import SITE_RECORD_PREFIXES, parse_marker_record_name
from egide.engine.markers import open_record
from egide.masterkey import key_files, load_keyring
from egide.server import open_store

PASSPHRASE = "a long passphrase for tests"
_FOOTER_FIXED = 22  # block count, size (Q, Q), key length (H), manifest length (I)


def read_everything(store: Store, buckets: tuple[str, ...] = ()) -> dict[str, str]:
    """SHA-256 of every version holding data, read through a freshly opened ObjectStore (what
    a restarted server would do)."""
    settings = load_settings(store.config)
    wanted = [v for v in store.versions() if not buckets or v["bucket"] in buckets]

    async def main() -> dict[str, str]:
        objects = open_store(settings)
        try:
            found = {}
            for v in wanted:
                version = await objects.head_object(v["bucket"], v["key"], v["version"])
                data = b""
                if version.size:
                    reader = await objects.reader(version, 0, version.size - 1)
                    data = b"".join([chunk async for chunk in reader])
                found[f"{v['bucket']}/{v['key']}/{v['version']}"] = hashlib.sha256(data).hexdigest()
            return found
        finally:
            await objects.catalog.close()

    return asyncio.run(main())


def data_files(store: Store) -> dict[Path, tuple[bytes, int]]:
    """Shard and pack files with their bytes and mtime (the records kept on every site and
    catalog snapshots, which are not object data, left out)."""
    sites = store.root / "data" / "sites"
    return {
        p: (p.read_bytes(), p.stat().st_mtime_ns)
        for p in sites.rglob("*")
        if p.is_file() and not p.name.startswith((*SITE_RECORD_PREFIXES, "snap-"))
    }


# -- passphrase -------------------------------------------------------------------------------


def test_protect_unprotect_and_wrong_passphrase(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = read_everything(store)
    key_file = store.root / "data" / "master.key"
    monkeypatch.setenv("EGIDE_NEW_PASSPHRASE", PASSPHRASE)
    result = store.egide("keys", "protect")
    assert result.exit_code == 0, result.output
    assert "Argon2id m=65536 t=3 p=4" in result.output
    assert key_file.read_text().startswith(V2_MAGIC) and oct(key_file.stat().st_mode)[-3:] == "600"

    monkeypatch.delenv("EGIDE_NEW_PASSPHRASE")
    result = store.egide("keys", "status")  # needs no passphrase
    assert result.exit_code == 0 and "argon2id" in result.output
    result = store.egide("keys", "unprotect")
    assert result.exit_code == 2 and "EGIDE_PASSPHRASE" in result.output
    monkeypatch.setenv("EGIDE_PASSPHRASE", "not the passphrase")
    result = store.egide("keys", "unprotect")
    assert result.exit_code == 2 and "wrong passphrase" in result.output

    monkeypatch.setenv("EGIDE_PASSPHRASE", PASSPHRASE)
    assert read_everything(store) == before
    secret = store.root / "passphrase.txt"  # the passphrase_file setting works the same
    secret.write_text(PASSPHRASE + "\n")
    secret.chmod(0o600)
    text = store.config.read_text()  # a top-level key: before the tables
    store.config.write_text('passphrase_file = "passphrase.txt"\n' + text)
    monkeypatch.delenv("EGIDE_PASSPHRASE")
    assert read_everything(store) == before
    result = store.egide("keys", "unprotect")
    assert result.exit_code == 0, result.output
    assert not key_file.read_text().startswith(V2_MAGIC)


def test_short_new_passphrase_is_refused(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EGIDE_NEW_PASSPHRASE", "short")
    result = store.egide("keys", "protect")
    assert result.exit_code == 2 and "at least 8" in result.output


# -- master key rotation, killed anywhere -----------------------------------------------------

KILL_AT = """
import os, signal, sys
from pathlib import Path
from egide.cli.common import run
from egide.config import load_settings
from egide.engine.rekey import rotate_bucket_key, rotate_master_key
from egide.masterkey import key_files, load_keyring, passphrase_source

settings = load_settings(Path(sys.argv[1]))
what, step = sys.argv[2], sys.argv[3]

def on_step(name: str) -> None:
    if name == step:
        os.kill(os.getpid(), signal.SIGKILL)

if what == "master":
    run(settings, lambda env: rotate_master_key(
        key_files(settings), passphrase_source(settings), env.require_catalog(), env.sites(),
        on_step=on_step))
else:
    run(settings, lambda env: rotate_bucket_key(
        env.require_catalog(), load_keyring(settings), env.sites(), what, batch=1,
        on_step=on_step))
"""


def kill_at(store: Store, what: str, step: str) -> None:
    proc = subprocess.run(
        [sys.executable, "-c", KILL_AT, str(store.config), what, step],
        capture_output=True, timeout=60,
    )  # fmt: skip
    assert proc.returncode == -signal.SIGKILL, proc.stderr.decode()


@pytest.mark.parametrize(
    ("step", "protected"),
    [("next-key", True), ("bucket-keys", False), ("records", False), ("swapped", True)],
)
def test_master_rotation_killed_reads_then_finishes(
    store: Store, step: str, protected: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Killed with SIGKILL after each step: a server starting then reads everything, and
    running the command again finishes the rotation (a protected key stays protected)."""
    if protected:
        monkeypatch.setenv("EGIDE_PASSPHRASE", PASSPHRASE)
        monkeypatch.setenv("EGIDE_NEW_PASSPHRASE", PASSPHRASE)
        assert store.egide("keys", "protect").exit_code == 0
    before, files_before = read_everything(store), data_files(store)
    old = key_files(load_settings(store.config)).load(PASSPHRASE)[0]

    kill_at(store, "master", step)
    assert read_everything(store) == before  # a server starting now reads everything
    result = store.egide("keys", "rotate-master")
    assert result.exit_code == 0, result.output
    assert "no data rewritten" in result.output
    assert read_everything(store) == before
    assert data_files(store) == files_before

    files = key_files(load_settings(store.config))
    new = files.load(PASSPHRASE)
    assert len(new) == 1 and new[0] != old and files.protected() == protected
    assert sorted(p.name for p in files.current.parent.glob("master.key*")) == ["master.key"]
    for (wrapped,) in store.sql("SELECT wrapped_key FROM buckets"):
        with pytest.raises(DecryptionError):
            aead.unwrap(old, wrapped, b"egide/bucket-key/" + b"?" * 16)  # any context fails
    ids = store.sql("SELECT id, wrapped_key FROM buckets")
    for bucket_id, wrapped in ids:
        with pytest.raises(DecryptionError):
            Keyring(old).bucket_key(bucket_id, wrapped)


def test_rotate_master_keeps_the_old_key_when_asked(store: Store) -> None:
    result = store.egide("keys", "rotate-master", "--keep-old")
    assert result.exit_code == 0, result.output
    kept = list((store.root / "data").glob("master.key.old-*"))
    assert len(kept) == 1 and oct(kept[0].stat().st_mode)[-3:] == "600"


# -- bucket key rotation ------------------------------------------------------------------------


def test_bucket_rotation_killed_then_resumed(store: Store) -> None:
    before = read_everything(store)
    kill_at(store, "archive", "batch")
    assert read_everything(store) == before
    result = store.egide("keys", "status", "--json")
    assert json.loads(result.stdout)["bucket_rotations_pending"] == ["archive"]
    result = store.egide("keys", "rotate-bucket", "archive")
    assert result.exit_code == 0, result.output
    assert "unfinished rotation resumed" in result.output and "2 key generations" in result.output
    assert read_everything(store) == before
    result = store.egide("keys", "rotate-bucket", "archive")
    assert "new key" in result.output and "3 key generations" in result.output
    assert read_everything(store) == before
    assert store.egide("keys", "rotate-bucket", "nothing").exit_code == 2


# -- crypto-shredding -----------------------------------------------------------------------------


@dataclass
class Segment:
    """One shard of one part of a version, as a provider stores it."""

    header: ShardHeader
    footer: ShardFooter
    data: bytes
    layout: Layout


def segments(store: Store, bucket: str) -> dict[tuple[bytes, int], dict[int, Segment]]:
    """(version id, part seq) → shard index → its segment, read raw from the site files."""
    rows = store.sql(
        "SELECT v.version_id, coalesce(v.padded_size, v.size), v.block_size, v.k, v.m, v.sites, "
        "v.pack, v.pack_offset, v.parts FROM versions v JOIN buckets b ON b.id = v.bucket_id "
        "WHERE b.name = ? AND v.delete_marker = 0",
        bucket,
    )
    found: dict[tuple[bytes, int], dict[int, Segment]] = {}
    for version_id, size, block, k, m, sites, pack, offset, parts in rows:
        if size == 0:
            continue
        # A part's blocks hold its padded size (decision 0017, its 8th field when padded) and
        # its files are named by its own id (decision 0018, its 7th field).
        listed = json.loads(parts) if parts else []
        part_sizes = [
            (p[1], p[7] if len(p) > 7 else p[2], p[6] if len(p) > 6 else "") for p in listed
        ] or [(0, size, "")]
        for seq, part_size, pid in part_sizes:
            layout = Layout(k, m, block, part_size)
            for index, site in enumerate(json.loads(sites)):
                name = pack or (f"{pid}-0-{index}" if pid else f"{version_id.hex()}-{seq}-{index}")
                raw = (store.root / "data/sites" / site / "shards" / name[:2] / name).read_bytes()
                start = offset if pack else 0
                foot = start + HEADER_SIZE + layout.shard_data_size()
                key_len = int.from_bytes(raw[foot + 16 : foot + 18], "big")
                manifest_len = int.from_bytes(raw[foot + 18 : foot + 22], "big")
                end = foot + _FOOTER_FIXED + key_len + manifest_len + 12
                segment = raw[start:end]
                found.setdefault((version_id, seq), {})[index] = Segment(
                    ShardHeader.decode(segment[:HEADER_SIZE]),
                    ShardFooter.decode(segment),
                    segment,
                    layout,
                )
    return found


def first_block(shards: dict[int, Segment]) -> bytes:
    """Block 0 of a part, sealed, rebuilt from its k data shards."""
    layout = next(iter(shards.values())).layout
    pieces = {}
    for index in range(layout.k):
        at = layout.piece_offset(HEADER_SIZE, 0)
        pieces[index] = shards[index].data[at : at + layout.piece_len(0)]
        assert len(shards[index].data[at:]) > layout.piece_len(0) + CHECKSUM_SIZE
    return ErasureCode(layout.k, layout.m).decode(pieces, layout.sealed_len(0))


def opens(
    key: bytes, shards: dict[int, Segment], bucket_id: bytes, version_id: bytes, seq: int
) -> tuple[bool, bool]:
    """Whether `key` opens (the manifest as a bucket key, block 0 as a data key). The ids come
    from the catalog: a clear header names no bucket (decision 0018)."""
    manifest = block = True
    try:
        aead.unwrap(key, shards[0].footer.sealed_manifest, b"egide/manifest/" + version_id)
    except DecryptionError:
        manifest = False
    try:
        aead.open_block(AESGCM(key), bucket_id, version_id, seq, 0, first_block(shards))
    except DecryptionError:
        block = False
    return manifest, block


def organisation_keys(store: Store) -> list[bytes]:
    """Every key the organisation still holds: the master key, every generation of every
    bucket key, every data key of every version and upload."""
    keyring = load_keyring(load_settings(store.config))
    master = key_files(load_settings(store.config)).load()[0]
    keys = [master]
    bucket_keys: dict[bytes, list[bytes]] = {}
    for bucket_id, wrapped in store.sql("SELECT id, wrapped_key FROM buckets"):
        bucket_keys.setdefault(bucket_id, []).append(keyring.bucket_key(bucket_id, wrapped))
    for bucket_id, wrapped in store.sql(
        "SELECT bucket_id, wrapped_key FROM bucket_key_generations"
    ):
        bucket_keys[bucket_id].append(keyring.bucket_key(bucket_id, wrapped))
    for owner, bucket_id, wrapped in store.sql(
        "SELECT version_id, bucket_id, wrapped_data_key FROM versions WHERE delete_marker = 0 "
        "UNION ALL SELECT upload_id, bucket_id, wrapped_data_key FROM uploads"
    ):
        for bucket_key in bucket_keys[bucket_id]:
            try:
                keys.append(Keyring.data_key(bucket_key, owner, wrapped))
            except DecryptionError:
                continue
    keys += [key for generations in bucket_keys.values() for key in generations]
    return keys


def test_shredded_bucket_opens_under_no_key_left(store: Store) -> None:
    store.egide("keys", "rotate-bucket", "archive")  # two generations to destroy
    others = read_everything(store, ("health", "scratch"))
    raw = segments(store, "archive")  # a provider's copy, taken before
    # minutes.txt twice (versioned), draft.txt (behind its delete marker), plan.tif, empty
    # (padded to the smallest class: decision 0017) and the two parts of council.mp4; packed
    # and standalone files both
    assert len(raw) == 7
    keyring = load_keyring(load_settings(store.config))
    (bucket_id, wrapped), *_ = store.sql("SELECT id, wrapped_key FROM buckets WHERE name='archive'")
    bucket_key = keyring.bucket_key(bucket_id, wrapped)
    generations = [bucket_key] + [
        keyring.bucket_key(bucket_id, w)
        for (w,) in store.sql("SELECT wrapped_key FROM bucket_key_generations")
    ]
    data_keys = {
        vid: Keyring.data_key(bucket_key, vid, w)
        for vid, w in store.sql(
            "SELECT version_id, wrapped_data_key FROM versions WHERE bucket_id = ? "
            "AND delete_marker = 0",
            bucket_id,
        )
    }
    sites = store.root / "data/sites"
    markers = [(p.name, p.read_bytes()) for p in sites.rglob("mark-*")]
    assert len(markers) == 6  # draft.txt's delete marker, recorded on every site
    for name, sealed in markers:  # the control: the bucket key opens them
        marker_id = parse_marker_record_name(name)  # names no bucket (decision 0018)
        assert marker_id is not None and marker_id[0] == b""
        assert open_record(generations, bucket_id, marker_id[1], sealed) is not None
    for (version_id, seq), shards in raw.items():  # the control: the right keys do open them
        # The shards predate the rotation: their manifests are sealed under the old key.
        ids = (bucket_id, version_id, seq)
        assert any(opens(key, shards, *ids)[0] for key in generations)
        assert opens(data_keys[version_id], shards, *ids)[1]
        assert all(s.footer.wrapped_bucket_key == b"" for s in shards.values())

    result = store.egide("bucket", "delete", "archive", "--shred", "--yes")
    assert result.exit_code == 0, result.output
    assert "crypto-shredded" in result.output and "2 generations" in result.output
    assert "key record on 6 sites" in result.output
    assert "a fresh snapshot taken" in result.output  # old snapshots held the key

    assert store.sql("SELECT count(*) FROM buckets WHERE id = ?", bucket_id) == [(0,)]
    assert not list((store.root / "data/sites").rglob(f"keys-{bucket_id.hex()}"))
    catalog = (store.root / "data/catalog.sqlite3").read_bytes()
    assert wrapped not in catalog and not (store.root / "data/catalog.sqlite3-wal").read_bytes()
    candidates = organisation_keys(store)
    assert len(candidates) > 5
    for (version_id, seq), shards in raw.items():
        for key in candidates:
            assert opens(key, shards, bucket_id, version_id, seq) == (False, False)
    for name, sealed in markers:  # nor does any key left open the marker records
        marker_id = parse_marker_record_name(name)
        assert marker_id is not None
        assert all(
            open_record([key], bucket_id, marker_id[1], sealed) is None for key in candidates
        )
    assert read_everything(store) == others  # what is left reads, and only that is left


def test_shred_refused_under_legal_hold_then_allowed(store: Store) -> None:
    version = next(v for v in store.versions("archive") if v["key"] == "scans/plan.tif")
    path = store.root / "data" / "catalog.sqlite3"

    async def hold(on: bool) -> None:
        catalog = open_catalog(Settings(data_dir=path.parent))
        bucket = await catalog.get_bucket("archive")
        assert bucket is not None
        await catalog.set_lock(bucket.id, "scans/plan.tif", version["version_id"], legal_hold=on)
        await catalog.close()

    asyncio.run(hold(True))
    result = store.egide("bucket", "delete", "archive", "--shred", "--yes")
    assert result.exit_code == 2 and "scans/plan.tif" in result.output
    assert "legal hold" in result.output
    assert store.sql("SELECT count(*) FROM buckets WHERE name = 'archive'") == [(1,)]
    asyncio.run(hold(False))
    assert store.egide("bucket", "delete", "archive", "--shred").exit_code == 2  # no --yes
    assert store.egide("bucket", "delete", "archive", "--shred", "--yes").exit_code == 0


def test_plain_delete_refuses_a_bucket_with_objects(store: Store) -> None:
    result = store.egide("bucket", "delete", "scratch")
    assert result.exit_code == 2 and "--shred" in result.output


def test_shred_with_a_site_offline_finishes_later(store: Store) -> None:
    site = store.root / "data/sites/aws-iad"
    (bucket_id,) = store.sql("SELECT id FROM buckets WHERE name = 'health'")[0]
    record = next(site.rglob(f"keys-{bucket_id.hex()}"))
    away = record.with_name("away")
    record.rename(away)
    record.mkdir()  # a failing site: its copy of the record cannot be deleted now
    (record / "x").write_bytes(b"")
    result = store.egide("bucket", "delete", "health", "--shred", "--yes")
    assert result.exit_code == 0, result.output
    assert "aws-iad (unreachable now)" in result.output
    status = json.loads(store.egide("keys", "status", "--json").stdout)
    assert status["shred_records_pending"] == {"health": ["aws-iad"]}
    assert store.egide("bucket", "finish-shred").exit_code == 1
    (record / "x").unlink()
    record.rmdir()
    away.rename(record)  # the site is back, its copy of the record with it
    result = store.egide("bucket", "finish-shred")
    assert result.exit_code == 0 and "every key record is deleted" in result.output
    assert not record.exists()
    assert json.loads(store.egide("keys", "status", "--json").stdout)["shred_records_pending"] == {}


def test_catalog_commands_open_a_protected_key(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Disaster recovery with a passphrase-protected key: `egide catalog …` unlocks it as
    every other command does."""
    monkeypatch.setenv("EGIDE_NEW_PASSPHRASE", PASSPHRASE)
    assert store.egide("keys", "protect").exit_code == 0
    monkeypatch.delenv("EGIDE_NEW_PASSPHRASE")
    locked = store.egide("catalog", "snapshot")
    assert locked.exit_code == 2 and "EGIDE_PASSPHRASE" in locked.output
    monkeypatch.setenv("EGIDE_PASSPHRASE", PASSPHRASE)
    taken = store.egide("catalog", "snapshot")
    assert taken.exit_code == 0, taken.output
    rebuilt = store.egide("catalog", "rebuild", "--into", str(store.root / "rebuilt.sqlite3"))
    assert rebuilt.exit_code == 0, rebuilt.output
