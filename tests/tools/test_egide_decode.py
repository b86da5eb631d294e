"""tools/egide-decode.py: a store written by a real Égide server, read back without Égide.

The server writes packed, multi-block, multipart, tagged, overwritten and versioned objects and a
delete marker, and stops; then sites are removed or damaged and the tool, run in a process
where `import egide` fails, restores every object, compared with what the S3 API returned."""

from __future__ import annotations

import ast
import hashlib
import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from tests.conftest import ACCESS_KEY, SECRET_KEY, Server, free_port
from tests.providers import Provider, running_moto

from egide.coding.padding import padded_size
from egide.coding.shardfile import FOOTER_TAIL_SIZE, HEADER_SIZE, ShardFooter, ShardHeader
from egide.crypto import aead
from egide.domain import (
    NO_BUCKET_ID,
    amendment_name,
    credentials_record_name,
    legacy_amendment_name,
    legacy_marker_record_name,
    legacy_settings_record_name,
    marker_record_name,
    settings_record_name,
    shard_name,
)
from egide.engine.keyrecords import record_name
from egide.engine.packer import pack_name

TOOL = Path(__file__).resolve().parents[2] / "tools" / "egide-decode.py"
KiB = 1024
MiB = 1024 * KiB
PLAIN, HISTORY, EXACT = "plain", "history", "exact"
BIG_SIZE, EXACT_SIZE = 700 * KiB + 3, 300 * KiB + 7  # not packed: over 256 KiB
#: The bucket `exact` is written with padding off (decision 0017), the others padded.
EXACT_POLICY = f'[[policies]]\nbuckets = ["{EXACT}"]\nk = 4\nm = 2\npadding = false\n'


def body(name: str, size: int) -> bytes:
    seed = hashlib.sha256(name.encode()).digest()
    return (seed * (size // len(seed) + 1))[:size]


def decode(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """The tool in a fresh interpreter where `import egide` raises: proof it never needs it."""
    code = (
        "import sys, runpy; sys.modules['egide'] = None; "
        f"sys.argv = {[str(TOOL), *args]!r}; runpy.run_path({str(TOOL)!r}, run_name='__main__')"
    )
    return subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, **(env or {})},
    )


@dataclass
class Written:
    """What the S3 API said was stored: per bucket, (key, version id) → what GET returned."""

    data_dir: Path
    config: Path
    latest: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)
    #: Every version of the versioned bucket, oldest first per key (markers with body None).
    history: list[tuple[str, str, bytes | None]] = field(default_factory=list)


def seen(s3: Any, bucket: str, key: str) -> dict[str, Any]:
    got = s3.get_object(Bucket=bucket, Key=key)
    tags = s3.get_object_tagging(Bucket=bucket, Key=key)["TagSet"]
    return {
        "body": got["Body"].read(),
        "content_type": got["ContentType"],
        "metadata": got["Metadata"],
        "tags": {t["Key"]: t["Value"] for t in tags},
        "etag": got["ETag"].strip('"'),
    }


def in_parts(s3: Any, bucket: str, key: str, bodies: list[bytes], **create: Any) -> None:
    """A multipart upload of `bodies`, one part each, completed."""
    upload = s3.create_multipart_upload(Bucket=bucket, Key=key, **create)["UploadId"]
    parts = []
    for number, data in enumerate(bodies, 1):
        part = s3.upload_part(Bucket=bucket, Key=key, UploadId=upload, PartNumber=number, Body=data)
        parts.append({"PartNumber": number, "ETag": part["ETag"]})
    s3.complete_multipart_upload(
        Bucket=bucket, Key=key, UploadId=upload, MultipartUpload={"Parts": parts}
    )


def write_store(s3: Any) -> tuple[dict[str, dict[str, dict[str, Any]]], list[Any]]:
    s3.create_bucket(Bucket=PLAIN)
    for i, size in enumerate([0, 1, 100, 5000, 200 * KiB]):  # packed (200 KiB: 4 blocks)
        s3.put_object(
            Bucket=PLAIN, Key=f"small/{i}", Body=body(f"s{i}", size),
            ContentType="text/plain; charset=utf-8", Metadata={"n": str(i), "city": "Lyon"},
            Tagging=f"class=small&i={i}",
        )  # fmt: skip
    s3.put_object(Bucket=PLAIN, Key="big.bin", Body=body("big", BIG_SIZE))  # 11 blocks
    s3.put_object(Bucket=PLAIN, Key="é/../odd key", Body=body("odd", 10))
    s3.put_object(Bucket=PLAIN, Key="again", Body=body("first", 300 * KiB))
    s3.put_object(Bucket=PLAIN, Key="again", Body=body("second", 50), ContentType="a/b")
    s3.put_object(Bucket=PLAIN, Key="retagged", Body=b"x", Tagging="old=1")
    s3.put_object_tagging(
        Bucket=PLAIN, Key="retagged", Tagging={"TagSet": [{"Key": "new", "Value": "2"}]}
    )
    in_parts(s3, PLAIN, "multi", [body("p1", 5 * MiB), body("p2", 100 * KiB + 1)],
             ContentType="video/mp4", Metadata={"take": "3"})  # fmt: skip
    keys = [f"small/{i}" for i in range(5)] + ["big.bin", "é/../odd key", "again", "retagged"]
    latest = {PLAIN: {key: seen(s3, PLAIN, key) for key in [*keys, "multi"]}}

    s3.create_bucket(Bucket=HISTORY)
    s3.put_bucket_versioning(Bucket=HISTORY, VersioningConfiguration={"Status": "Enabled"})
    for key, data in [("doc", b"v1"), ("kept", b"k1"), ("doc", b"v2"), ("kept", b"k2")]:
        s3.put_object(Bucket=HISTORY, Key=key, Body=data, Metadata={"v": data.decode()})
    s3.delete_object(Bucket=HISTORY, Key="doc")
    latest[HISTORY] = {"kept": seen(s3, HISTORY, "kept")}

    s3.create_bucket(Bucket=EXACT)  # its policy says `padding = false`: exact sizes
    for key, size in [("tiny", 23), ("blocks", EXACT_SIZE)]:
        s3.put_object(Bucket=EXACT, Key=key, Body=body(key, size), Tagging="exact=1")
    in_parts(s3, EXACT, "multi", [body("e1", 5 * MiB), body("e2", 10)])
    latest[EXACT] = {key: seen(s3, EXACT, key) for key in ["tiny", "blocks", "multi"]}
    listed = s3.list_object_versions(Bucket=HISTORY)
    return latest, [*listed.get("Versions", []), *listed.get("DeleteMarkers", [])]


def start_server(root: Path, extra: str = "") -> Server:
    port = free_port()
    config = root / "egide.toml"
    config.write_text(
        f'data_dir = "{root / "data"}"\nlisten = "127.0.0.1:{port}"\nblock_size = 65536\n'
        f"{extra}\n"
        f'[[credentials]]\naccess_key = "{ACCESS_KEY}"\nsecret_key = "{SECRET_KEY}"\n'
    )
    return Server(root / "data", config, port).start()


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Written]:
    """A store written by a real server over six local sites (4+2), the server stopped."""
    server = start_server(tmp_path_factory.mktemp("egide-decode"), EXACT_POLICY)
    try:
        latest, versions = write_store(server.client())
        bodies = {
            v["VersionId"]: server.client()
            .get_object(Bucket=HISTORY, Key=v["Key"], VersionId=v["VersionId"])["Body"]
            .read()
            for v in versions
            if "Size" in v
        }
        wait_for_settings_records(server.data_dir / "sites" / "local-1", 3)
        history = sorted(
            (v["Key"], v["LastModified"], v["VersionId"], bodies.get(v["VersionId"]))
            for v in versions
        )
    finally:
        server.stop()
    yield Written(
        server.data_dir, server.config, latest, [(k, vid, data) for k, _, vid, data in history]
    )


def wait_for_settings_records(site: Path, count: int) -> None:
    """Bucket settings are recorded by the servers' housekeeping round, seconds later."""
    deadline = time.monotonic() + 60
    while len(list(site.glob("shards/bs/bset-*"))) < count:
        assert time.monotonic() < deadline, "no settings records written"
        time.sleep(0.2)


def copy_of(store: Written, tmp_path: Path) -> Path:
    copy = tmp_path / "data"
    shutil.copytree(store.data_dir, copy)
    return copy


def site_args(data: Path) -> list[str]:
    """All six sites, named whether they still exist or not (as a user would)."""
    return [arg for i in range(1, 7) for arg in ("--site", str(data / "sites" / f"local-{i}"))]


def restored(out: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (out / "manifest.jsonl").read_text().splitlines()]


def assert_latest_match(out: Path, expected: dict[str, dict[str, Any]]) -> None:
    entries = restored(out)
    assert [e["key"] for e in entries] == sorted(expected)
    for entry in entries:
        want = expected[entry["key"]]
        data = (out / entry["file"]).read_bytes()
        assert data == want["body"], entry["key"]
        assert entry["size"] == len(want["body"])
        assert entry["sha256"] == hashlib.sha256(want["body"]).hexdigest()
        assert entry["content_type"] == want["content_type"], entry["key"]
        assert entry["metadata"] == want["metadata"], entry["key"]
        assert entry["tags"] == want["tags"], entry["key"]
        assert entry["etag"] == want["etag"], entry["key"]
        assert entry["latest"] and not entry["delete_marker"]


def load_tool() -> ModuleType:
    spec = importlib.util.spec_from_file_location("egide_decode_tool", TOOL)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up by name
    spec.loader.exec_module(module)
    return module


def test_the_tool_parses_the_names_and_shards_egide_writes() -> None:
    """Where a format change lands first: the names and the header and footer layouts."""
    tool = load_tool()
    bucket, version = os.urandom(16), os.urandom(16)
    record = os.urandom(16)
    named = {  # name: kind, bucket id named, other ids, numbers
        shard_name(version, 3, 5): ("shard", b"", (version,), (3, 5)),
        pack_name(): ("pack", b"", None, ()),
        record_name(bucket): ("keys", bucket, (), ()),
        marker_record_name(version): ("mark", b"", (version,), ()),
        legacy_marker_record_name(bucket, version): ("mark", bucket, (version,), ()),
        amendment_name(version, 17): ("amend", b"", (version,), (17,)),
        legacy_amendment_name(bucket, version, 17): ("amend", bucket, (version,), (17,)),
        settings_record_name(record): ("bset", b"", (record,), ()),
        legacy_settings_record_name(bucket, 18): ("bset", bucket, (), (18,)),
        credentials_record_name(19): ("creds", b"", (), (19,)),
    }
    for name, (kind, named_bucket, ids, numbers) in named.items():
        parsed = tool.parse_name(name)
        assert (parsed.kind, parsed.bucket, parsed.numbers) == (kind, named_bucket, numbers), name
        assert ids is None or parsed.ids == ids, name

    assert tool.NO_BUCKET == NO_BUCKET_ID  # what clear headers hold since decision 0018
    header = ShardHeader(4, 2, 5, 3, 65536, bucket, version).encode()
    assert len(header) == HEADER_SIZE == tool.HEADER_SIZE
    footer = ShardFooter(0, 0, b"", b"sealed manifest").encode()
    copy = tool.parse_shard(None, "f", 0, header + footer)
    assert (copy.k, copy.m, copy.index, copy.part, copy.block_size) == (4, 2, 5, 3, 65536)
    assert (copy.bucket_id, copy.version_id) == (bucket, version)
    assert copy.sealed_manifest == b"sealed manifest"
    damaged = bytearray(header + footer)
    damaged[20] ^= 1
    assert tool.parse_shard(None, "f", 0, bytes(damaged)) is None


def test_the_tool_imports_only_the_standard_library_cryptography_and_zfec() -> None:
    allowed = set(sys.stdlib_module_names) | {"cryptography", "zfec", "__future__"}
    imported = set()
    for node in ast.walk(ast.parse(TOOL.read_text())):
        if isinstance(node, ast.Import):
            imported |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            assert node.level == 0 and node.module is not None
            imported.add(node.module.split(".")[0])
    assert imported - allowed == set()
    assert {"cryptography", "zfec"} <= imported


def test_restores_every_object_with_its_metadata_after_losing_two_sites(
    store: Written, tmp_path: Path
) -> None:
    data = copy_of(store, tmp_path)
    shutil.rmtree(data / "sites" / "local-2")
    shutil.rmtree(data / "sites" / "local-5")
    key = ["--key", str(data / "master.key")]

    listed = decode(*key, *site_args(data), "buckets")
    assert listed.returncode == 0, listed.stderr
    assert listed.stdout.split() == [EXACT, HISTORY, PLAIN]
    assert "local-2: no shards directory, taken as lost" in listed.stderr

    out = tmp_path / "out"
    result = decode(*key, *site_args(data), "restore", PLAIN, str(out))
    assert result.returncode == 0, result.stderr
    assert_latest_match(out, store.latest[PLAIN])
    assert json.loads((out / "bucket.json").read_text())["failed"] == 0

    out = tmp_path / "history-latest"
    result = decode(*key, *site_args(data), "restore", HISTORY, str(out))
    assert result.returncode == 0, result.stderr
    assert_latest_match(out, store.latest[HISTORY])  # "doc" is hidden by its delete marker
    settings = json.loads((out / "bucket.json").read_text())["settings"]
    assert settings.get("versioning") == "Enabled", settings

    out = tmp_path / "exact"
    result = decode(*key, *site_args(data), "restore", EXACT, str(out))
    assert result.returncode == 0, result.stderr
    assert_latest_match(out, store.latest[EXACT])


def test_the_store_read_is_padded_or_exact_with_opaque_names(store: Written) -> None:
    """What the restores read (decisions 0017 and 0018): footers giving padded sizes, and exact
    ones in the bucket with padding off; every part attempt in files of its own id (part 0),
    no clear header naming a bucket."""
    shards = [
        (ShardHeader.decode(raw[:HEADER_SIZE]), ShardFooter.decode(raw))
        for path in (store.data_dir / "sites").glob("local-*/shards/*/*")
        if re.fullmatch(r"[0-9a-f]{32}-\d+-\d+", path.name) and (raw := path.read_bytes())
    ]
    assert {(header.part, header.bucket_id) for header, _ in shards} == {(0, NO_BUCKET_ID)}
    sizes = {footer.size for _, footer in shards}
    assert padded_size(BIG_SIZE) in sizes and BIG_SIZE not in sizes  # plain: padded
    assert padded_size(100 * KiB + 1) in sizes and 100 * KiB + 1 not in sizes  # a padded part
    assert {EXACT_SIZE, 10} <= sizes  # exact: a multi-block object and a part, not padded


def test_all_versions_and_the_delete_marker_come_back_in_order(
    store: Written, tmp_path: Path
) -> None:
    data = copy_of(store, tmp_path)
    shutil.rmtree(data / "sites" / "local-1")
    shutil.rmtree(data / "sites" / "local-6")
    out = tmp_path / "out"
    result = decode(
        "--key", str(data / "master.key"), *site_args(data),
        "restore", HISTORY, str(out), "--all-versions",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    entries = restored(out)
    got = [
        (e["key"], e["version_id"], (out / e["file"]).read_bytes() if "file" in e else None)
        for e in entries
    ]
    assert sorted(got) == sorted(store.history)
    by_key: dict[str, list[dict[str, Any]]] = {}
    for entry in entries:
        by_key.setdefault(entry["key"], []).append(entry)
    assert [e["delete_marker"] for e in by_key["doc"]] == [False, False, True]
    assert [e["latest"] for e in by_key["doc"]] == [False, False, True]
    assert [(out / e["file"]).read_bytes() for e in by_key["kept"]] == [b"k1", b"k2"]
    assert by_key["kept"][0]["metadata"] == {"v": "k1"}

    listing = decode("--key", str(data / "master.key"), *site_args(data), "list", HISTORY, "--json")
    assert listing.returncode == 0, listing.stderr
    assert [json.loads(line)["key"] for line in listing.stdout.splitlines()] == ["kept"]


def test_a_corrupt_piece_is_caught_by_its_checksum_and_another_used(
    store: Written, tmp_path: Path
) -> None:
    data = copy_of(store, tmp_path)
    # Piece 0 damaged in block 1 and piece 1 in block 2 of every standalone shard that has
    # them: pieces read first, in different blocks (each block still has five good pieces).
    piece = -(-(65536 + 16) // 4) + 4  # after the header, each full block's piece and CRC
    damaged = 0
    for shard in (data / "sites").glob("local-*/shards/*/*-*-*"):
        if not re.fullmatch(r"[0-9a-f]{32}-\d+-\d+", shard.name):
            continue  # records
        raw = bytearray(shard.read_bytes())
        index = int(shard.name.rsplit("-", 1)[1])
        if index < 2 and len(raw) > 52 + 3 * piece:
            raw[52 + (index + 1) * piece + 40] ^= 0xFF
            shard.write_bytes(bytes(raw))
            damaged += 1
    assert damaged >= 4  # big.bin and the multipart's first part at least
    out = tmp_path / "out"
    result = decode("--key", str(data / "master.key"), *site_args(data), "restore", PLAIN, str(out))
    assert result.returncode == 0, result.stderr
    assert "fails its checksum" in result.stderr
    assert_latest_match(out, store.latest[PLAIN])


def test_too_many_sites_lost_is_reported_and_the_rest_restored(
    store: Written, tmp_path: Path
) -> None:
    data = copy_of(store, tmp_path)
    for i in (1, 2, 3):
        for shard in (data / "sites" / f"local-{i}" / "shards").glob("*/*-*-*"):
            if re.fullmatch(r"[0-9a-f]{32}-\d+-\d+", shard.name):
                shard.unlink()  # standalone shards only: packed objects stay readable
    out = tmp_path / "out"
    result = decode("--key", str(data / "master.key"), *site_args(data), "restore", PLAIN, str(out))
    assert result.returncode == 1
    assert "big.bin" in result.stderr and "pieces" in result.stderr
    keys = [e["key"] for e in restored(out)]
    assert "small/4" in keys and "big.bin" not in keys and "multi" not in keys
    assert not list((out / "objects").glob("*.part"))


def test_a_passphrase_protected_master_key(store: Written, tmp_path: Path) -> None:
    data = copy_of(store, tmp_path)
    phrase = "correct horse battery staple"
    protect = subprocess.run(
        [sys.executable, "-m", "egide", "keys", "protect", "--data-dir", str(data)],
        capture_output=True, text=True, timeout=120,
        env={**os.environ, "EGIDE_NEW_PASSPHRASE": phrase},
    )  # fmt: skip
    assert protect.returncode == 0, protect.stdout + protect.stderr
    assert "argon2id" in (data / "master.key").read_text()
    key = ["--key", str(data / "master.key")]

    refused = decode(*key, *site_args(data), "buckets", env={"EGIDE_PASSPHRASE": "wrong one"})
    assert refused.returncode == 2
    assert "wrong passphrase" in refused.stderr

    phrase_file = tmp_path / "phrase"
    phrase_file.write_text(phrase + "\n")
    out = tmp_path / "out"
    result = decode(
        *key, "--passphrase-file", str(phrase_file), *site_args(data), "restore", PLAIN, str(out)
    )
    assert result.returncode == 0, result.stderr
    assert_latest_match(out, store.latest[PLAIN])


@pytest.fixture(scope="module")
def moto(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Provider]:
    with running_moto(tmp_path_factory.mktemp("moto")) as provider:
        yield provider


def test_reads_s3_bucket_sites(moto: Provider, tmp_path_factory: pytest.TempPathFactory) -> None:
    """Three local sites and three buckets at a provider (one under a prefix); two local
    sites lost, so every object is read through the provider."""
    buckets = [moto.new_bucket(f"d{i}") for i in range(3)]
    prefixes = ["", "egide/shards/", ""]
    sites = "".join(
        f'[[sites]]\nname = "disk-{i}"\npath = "data/sites/disk-{i}"\n' for i in range(3)
    )
    sites += "".join(
        moto.site_toml(f"moto-{i}", bucket, prefix)
        for i, (bucket, prefix) in enumerate(zip(buckets, prefixes, strict=True))
    )
    root = tmp_path_factory.mktemp("egide-decode-s3")
    server = start_server(root, "code = { k = 4, m = 2 }\n" + sites)
    try:
        s3 = server.client()
        s3.create_bucket(Bucket=PLAIN)
        expected = {}
        for key, size in [("note", 300), ("scan", 400 * KiB), ("empty", 0)]:
            s3.put_object(Bucket=PLAIN, Key=key, Body=body(key, size), Metadata={"k": key})
            expected[key] = seen(s3, PLAIN, key)
    finally:
        server.stop()
    shutil.rmtree(server.data_dir / "sites" / "disk-0")
    shutil.rmtree(server.data_dir / "sites" / "disk-2")
    local = [
        arg for i in range(3) for arg in ("--site", str(server.data_dir / "sites" / f"disk-{i}"))
    ]
    remote = [
        arg
        for bucket, prefix in zip(buckets, prefixes, strict=True)
        for arg in ("--s3", f"{moto.endpoint}/{bucket}/{prefix}")
    ]
    credentials = {"AWS_ACCESS_KEY_ID": moto.access_key, "AWS_SECRET_ACCESS_KEY": moto.secret_key}
    out = root / "out"
    result = decode(
        "--key", str(server.data_dir / "master.key"), *local, *remote,
        "restore", PLAIN, str(out), env=credentials,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert_latest_match(out, expected)


def as_before_0018(data: Path) -> str:
    """The copy of a store at `data` as an Égide before decision 0018 wrote it (as
    tests/maintenance/test_rebuild.py simulates it): `plain`'s standalone shards with its bucket
    id in their clear header, its multipart object's part files named by version id and seq,
    its amendment and `history`'s delete marker named with their bucket id, and `history`'s
    settings in a record `bset-<bucket>-<number>`, newer than its current one. Which
    settings the older record holds."""
    tool = load_tool()
    sites = {path.name: tool.LocalSite(path) for path in sorted((data / "sites").glob("local-*"))}
    store = tool.Store(list(sites.values()), tool.master_key(data / "master.key", None))
    plain, history = store.bucket(PLAIN), store.bucket(HISTORY)

    for version, _ in store.versions(plain, all_versions=True):
        vid = version.version_id
        for plan in version.parts:
            for copy in plan.copies:
                if not copy.file.startswith("pack-"):
                    name = shard_name(vid, plan.seq, copy.index)
                    rewrite(copy.site.root, copy.file, name, plain.id, vid, plan.seq)
        if "parts" in version.manifest:  # its completion record's parts name no file id
            for site in sites.values():
                for path in site.root.glob(f"shards/*/{vid.hex()}-0-*"):
                    rewrite(site.root, path.name, path.name, plain.id, vid, 0, plain.keys[0])

    renames = {}
    for record in store.listing.records("amend"):
        renames[record.name] = legacy_amendment_name(plain.id, *record.ids, *record.numbers)
    for record in store.listing.records("mark"):
        renames[record.name] = legacy_marker_record_name(history.id, *record.ids)
    older = {"versioning": "Enabled", "written": "before 0018"}
    number = time.time_ns() * 2  # newer than the record of 0018
    sealed = aead.wrap(history.keys[0], json.dumps(older).encode(),
                       b"egide/bucket-settings/" + history.id + str(number).encode())  # fmt: skip
    for site in sites.values():
        for name, new in renames.items():
            path = site.root / "shards" / name[:2] / name
            path.rename(site.root / "shards" / new[:2] / new)
        legacy = legacy_settings_record_name(history.id, number)
        (site.root / "shards" / legacy[:2] / legacy).write_bytes(sealed)
    return json.dumps(older, sort_keys=True)


def rewrite(
    root: Path, name: str, new: str, bucket_id: bytes, version_id: bytes, part: int,
    bucket_key: bytes | None = None,
) -> None:  # fmt: skip
    """Shard file `name` of site `root` as `new`, its clear header naming `bucket_id`,
    `version_id` and `part`; with `bucket_key`, its (completion record) manifest's parts
    without file ids."""
    raw = (root / "shards" / name[:2] / name).read_bytes()
    footer = ShardFooter.decode(raw)
    body = raw[HEADER_SIZE : len(raw) - ShardFooter.body_length(raw) - FOOTER_TAIL_SIZE]
    if bucket_key is not None:
        context = b"egide/manifest/" + version_id
        manifest = json.loads(aead.unwrap(bucket_key, footer.sealed_manifest, context))
        manifest["parts"] = [[*p[:6], "", *p[7:]] for p in manifest["parts"]]
        sealed = aead.wrap(bucket_key, json.dumps(manifest).encode(), context)
        footer = replace(footer, sealed_manifest=sealed)
    header = ShardHeader.decode(raw[:HEADER_SIZE])
    header = replace(header, part=part, bucket_id=bucket_id, version_id=version_id)
    (root / "shards" / name[:2] / name).unlink()
    (root / "shards" / new[:2]).mkdir(exist_ok=True)
    (root / "shards" / new[:2] / new).write_bytes(header.encode() + body + footer.encode())


def test_a_store_written_before_opaque_names_is_read_too(store: Written, tmp_path: Path) -> None:
    data = copy_of(store, tmp_path)
    older = as_before_0018(data)
    names = {path.name for path in (data / "sites").glob("local-*/shards/*/*")}
    assert any(re.fullmatch(r"[0-9a-f]{32}-[12]-\d", name) for name in names)  # part files
    assert any(re.fullmatch(r"amend-[0-9a-f]{32}-[0-9a-f]{32}-\d+", name) for name in names)
    assert any(re.fullmatch(r"mark-[0-9a-f]{32}-[0-9a-f]{32}", name) for name in names)
    shutil.rmtree(data / "sites" / "local-3")
    key = ["--key", str(data / "master.key")]

    out = tmp_path / "plain"
    result = decode(*key, *site_args(data), "restore", PLAIN, str(out))
    assert result.returncode == 0, result.stderr
    assert_latest_match(out, store.latest[PLAIN])

    out = tmp_path / "history"
    result = decode(*key, *site_args(data), "restore", HISTORY, str(out), "--all-versions")
    assert result.returncode == 0, result.stderr
    got = [(e["key"], e["version_id"], e["delete_marker"]) for e in restored(out)]
    assert sorted(got) == sorted((k, vid, data is None) for k, vid, data in store.history)
    settings = json.loads((out / "bucket.json").read_text())["settings"]
    assert json.dumps(settings, sort_keys=True) == older


def test_a_version_under_a_customer_key_is_named_never_restored(
    tmp_path_factory: pytest.TempPathFactory, tmp_path: Path
) -> None:
    """SSE-C (decision 0027): the master key alone cannot open such a version's data key; the
    tool says it needs the customer key, writes nothing of it, restores the others."""
    server = start_server(tmp_path_factory.mktemp("egide-decode-ssec"))
    try:
        s3 = server.client()
        s3.create_bucket(Bucket="keyed")
        key = os.urandom(32)
        s3.put_object(Bucket="keyed", Key="secret", Body=b"s" * 5000, SSECustomerAlgorithm="AES256",
                      SSECustomerKey=key)  # fmt: skip
        s3.put_object(Bucket="keyed", Key="public", Body=b"p" * 5000)
    finally:
        server.stop()
    out = tmp_path / "out"
    data = server.data_dir
    result = decode("--key", str(data / "master.key"), *site_args(data), "restore", "keyed",
                    str(out))  # fmt: skip
    assert result.returncode == 1, result.stderr
    assert "keyed/secret" in result.stderr and "needs the customer key" in result.stderr
    restored = [json.loads(line) for line in (out / "manifest.jsonl").open()]
    assert [entry["key"] for entry in restored] == ["public"]
    assert (out / restored[0]["file"]).read_bytes() == b"p" * 5000
    assert [p.name for p in (out / "objects").iterdir()] == [Path(restored[0]["file"]).name]
    listed = decode("--key", str(data / "master.key"), *site_args(data), "list", "keyed")
    lines = {line.split()[2]: line for line in listed.stdout.splitlines()}  # size, time, key
    assert "needs the customer key" in lines["secret"] and "SSE-C" not in lines["public"]
