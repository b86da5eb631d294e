"""Self-healing with real damage, through a real server and the real `egide` command: a site
directory deleted, bit-rot on two sites, rot spread over blocks and parts, a repair SIGKILLed
midway, a provider evacuated while clients read and write, site directories replaced."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from boto3.s3.transfer import TransferConfig
from tests.conftest import Server, ServerFactory
from tests.providers import Provider, running_moto

from egide.coding.blocks import Layout
from egide.coding.shardfile import HEADER_SIZE
from egide.domain import KEY_RECORD_PREFIX, SITE_RECORD_PREFIXES, Part, shard_name

KiB, MiB = 1024, 1024 * 1024
NO_SCHEDULE = "[maintenance]\nrun_in_server = false\nscrub_period_days = 0\ngc_interval_hours = 0\n"


def _sites(count: int) -> str:
    return "".join(
        f'[[sites]]\nname = "disk-{i}"\npath = "data/sites/disk-{i}"\n' for i in range(count)
    )


def egide(server: Server, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "egide", *args, "--config", str(server.config)],
        capture_output=True, text=True, timeout=timeout,
        env={**os.environ, "COLUMNS": "200"},
    )  # fmt: skip


def _body(seed: int, size: int) -> bytes:
    block = hashlib.sha256(seed.to_bytes(8, "big")).digest() * 2048  # 64 KiB
    return (block * (size // len(block) + 1))[:size]


def _fill(server: Server, objects: dict[str, bytes]) -> None:
    s3 = server.client()
    s3.create_bucket(Bucket="town")
    multipart = TransferConfig(multipart_threshold=5 * MiB, multipart_chunksize=5 * MiB)
    for key, body in objects.items():
        if len(body) > 5 * MiB:
            import io

            s3.upload_fileobj(io.BytesIO(body), "town", key, Config=multipart)
        else:
            s3.put_object(Bucket="town", Key=key, Body=body)


def _check(server: Server, objects: dict[str, bytes]) -> None:
    s3 = server.client()
    for key, body in objects.items():
        got = s3.get_object(Bucket="town", Key=key)["Body"].read()
        assert hashlib.sha256(got).digest() == hashlib.sha256(body).digest(), key


def _catalog(server: Server, query: str) -> list[tuple[Any, ...]]:
    with sqlite3.connect(f"file:{server.data_dir / 'catalog.sqlite3'}?mode=ro", uri=True) as db:
        return db.execute(query).fetchall()


def _files_on_disk(server: Server) -> set[tuple[str, str]]:
    found = set()
    for site in (server.data_dir / "sites").iterdir():
        for path in (site / "shards").rglob("*"):
            if path.is_file() and not path.name.startswith(SITE_RECORD_PREFIXES):
                found.add((site.name, path.name))
    return found


def _referenced(server: Server) -> set[tuple[str, str]]:
    """Every (site, file) the catalog points at, computed from its tables directly."""
    wanted = set()
    for vid, sites, pack, parts in _catalog(
        server, "SELECT version_id, sites, pack, parts FROM versions WHERE delete_marker = 0"
    ):
        # A multipart object also keeps its completion record (part 0) beside its pieces.
        # Each part's files are named by its own id since decision 0018 (its seventh field).
        names = [f"{vid.hex()}-0"] + [
            f"{part[6]}-0" if len(part) > 6 else f"{vid.hex()}-{part[1]}"
            for part in (json.loads(parts) if parts else [])
        ]
        for index, site in enumerate(json.loads(sites)):
            if pack is not None:
                wanted.add((site, pack))
            else:
                wanted |= {(site, f"{name}-{index}") for name in names}
    return wanted


OBJECTS = {
    "minutes/2026-01.txt": _body(1, 40 * KiB),  # small: packed
    "minutes/2026-02.txt": _body(2, 100 * KiB),
    "scans/permit.pdf": _body(3, 3 * MiB),
    "video/council.mp4": _body(4, 11 * MiB),  # multipart, three parts
}


def test_a_lost_site_is_repaired_then_a_further_loss_loses_nothing(
    make_server: ServerFactory,
) -> None:
    server = make_server("code = { k = 4, m = 2 }\n" + _sites(8) + NO_SCHEDULE)
    _fill(server, OBJECTS)
    shutil.rmtree(server.data_dir / "sites" / "disk-0")
    _check(server, OBJECTS)  # degraded, still readable
    repaired = egide(server, "repair")
    assert repaired.returncode == 0, repaired.stdout + repaired.stderr
    assert "done" in repaired.stdout
    assert not [row for row in _catalog(server, "SELECT sites FROM versions") if "disk-0" in row[0]]
    assert _files_on_disk(server) >= _referenced(server)
    for name in ("disk-1", "disk-2"):  # then two more disks go
        shutil.rmtree(server.data_dir / "sites" / name)
    _check(server, OBJECTS)
    listed = egide(server, "job", "list", "--all", "--json")
    assert [job["state"] for job in json.loads(listed.stdout)] == ["done"]


def test_rot_on_two_sites_is_found_by_scrub_and_repaired(make_server: ServerFactory) -> None:
    server = make_server("code = { k = 4, m = 2 }\n" + _sites(6) + NO_SCHEDULE)
    _fill(server, OBJECTS)
    rotten = []
    for name in ("disk-1", "disk-4"):
        victim = max((server.data_dir / "sites" / name / "shards").rglob("*-0-*"),
                     key=lambda p: p.stat().st_size)  # fmt: skip
        with victim.open("r+b") as f:
            f.seek(1000)
            byte = f.read(1)
            f.seek(1000)
            f.write(bytes([byte[0] ^ 0x5A]))
        rotten.append(victim)
    _check(server, OBJECTS)
    found = egide(server, "scrub", "--no-repair", "--json")
    assert found.returncode == 1, found.stderr  # two versions left damaged
    job = json.loads(found.stdout)
    assert job["progress"]["bad_pieces"] == 2
    _check(server, OBJECTS)
    fixed = egide(server, "repair", "--queue-only")
    assert fixed.returncode == 0, fixed.stdout + fixed.stderr
    clean = egide(server, "scrub", "--json")
    assert json.loads(clean.stdout)["progress"].get("bad_pieces", 0) == 0
    _check(server, OBJECTS)


def test_a_repair_killed_midway_resumes_and_duplicates_nothing(make_server: ServerFactory) -> None:
    server = make_server("code = { k = 4, m = 2 }\n" + _sites(7) + NO_SCHEDULE)
    objects = {f"records/{i:03}.bin": _body(100 + i, 300 * KiB) for i in range(48)}
    _fill(server, objects)
    shutil.rmtree(server.data_dir / "sites" / "disk-3")
    proc = subprocess.Popen(
        [sys.executable, "-m", "egide", "repair", "--rate", "1MB", "--config", str(server.config)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        rows = _catalog(server, "SELECT progress FROM jobs")
        if rows and json.loads(rows[0][0]).get("repaired", 0) >= 3:
            break
        time.sleep(0.1)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    (state, progress), = _catalog(server, "SELECT state, progress FROM jobs")  # fmt: skip
    assert state == "running"
    assert 0 < json.loads(progress)["items"] < len(objects)
    resumed = egide(server, "repair")
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert "resuming job 1" in resumed.stdout
    assert [row[0] for row in _catalog(server, "SELECT state FROM jobs")] == ["done"]
    # Nothing duplicated: after collecting what the kill left half done, the sites hold
    # exactly the files the catalog references.
    collected = egide(server, "gc", "--grace-hours", "0")
    assert collected.returncode == 0, collected.stderr
    collected = egide(server, "gc", "--grace-hours", "0")
    assert _files_on_disk(server) == _referenced(server)
    _check(server, objects)


@pytest.fixture
def moto(tmp_path: Path) -> Iterator[Provider]:
    with running_moto(tmp_path / "moto") as provider:
        yield provider


def test_a_provider_is_evacuated_under_live_traffic(
    make_server: ServerFactory, moto: Provider
) -> None:
    bucket = moto.new_bucket("leaving")
    sites = _sites(6) + moto.site_toml("moto-cloud", bucket)
    server = make_server("code = { k = 4, m = 2 }\n" + sites + NO_SCHEDULE)
    objects = {f"docs/{i:02}.bin": _body(200 + i, (i % 5 + 1) * 150 * KiB) for i in range(20)}
    _fill(server, objects)
    assert moto.keys(bucket)  # the provider holds shards
    failures: list[str] = []
    written: dict[str, bytes] = {}
    stop = threading.Event()

    def traffic() -> None:
        s3 = server.client()
        n = 0
        while not stop.is_set():
            key = f"live/{n:04}.bin"
            body = _body(1000 + n, 64 * KiB * (n % 4 + 1))
            try:
                s3.put_object(Bucket="town", Key=key, Body=body)
                written[key] = body
                old = f"docs/{n % 20:02}.bin"
                got = s3.get_object(Bucket="town", Key=old)["Body"].read()
                if got != objects[old]:
                    failures.append(f"{old}: wrong bytes")
            except Exception as exc:  # every failed request is a test failure
                failures.append(f"{key}: {exc}")
            n += 1

    thread = threading.Thread(target=traffic)
    thread.start()
    try:
        evacuated = egide(server, "site", "evacuate", "moto-cloud", timeout=180)
    finally:
        stop.set()
        thread.join()
    assert evacuated.returncode == 0, evacuated.stdout + evacuated.stderr
    assert failures == []
    assert len(written) > 5
    # Nothing of Égide's is left at the provider but the site's label, which the site itself
    # writes (egide.sites.s3.MARKER) and which holds no data.
    assert moto.keys(bucket) == [".egide-site"]
    assert not [r for r in _catalog(server, "SELECT sites FROM versions") if "moto" in r[0]]
    removed = egide(server, "site", "remove", "moto-cloud")
    assert removed.returncode == 0, removed.stdout + removed.stderr
    assert "moto-cloud" not in server.config.read_text()
    server.stop()
    server.start()
    _check(server, objects | written)


def test_a_provider_stopped_for_good_is_repaired_around(
    make_server: ServerFactory, moto: Provider
) -> None:
    bucket = moto.new_bucket("gone")
    sites = _sites(6) + moto.site_toml("moto-gone", bucket)
    server = make_server("code = { k = 4, m = 2 }\n" + sites + NO_SCHEDULE)
    _fill(server, OBJECTS)
    moto.stop()  # the provider is gone for good
    repaired = egide(server, "repair", timeout=300)
    assert repaired.returncode == 0, repaired.stdout + repaired.stderr
    assert not [r for r in _catalog(server, "SELECT sites FROM versions") if "moto" in r[0]]
    for name in ("disk-0", "disk-1"):  # then two disks go as well
        shutil.rmtree(server.data_dir / "sites" / name)
    _check(server, OBJECTS)


def test_an_evacuation_killed_midway_resumes_and_ends_with_the_site_empty(
    make_server: ServerFactory,
) -> None:
    server = make_server("code = { k = 4, m = 2 }\n" + _sites(7) + NO_SCHEDULE)
    objects = {f"records/{i:03}.bin": _body(300 + i, 300 * KiB) for i in range(40)}
    _fill(server, objects)
    args = ["site", "evacuate", "disk-2", "--rate", "1MB", "--config", str(server.config)]
    proc = subprocess.Popen([sys.executable, "-m", "egide", *args],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        rows = _catalog(server, "SELECT progress FROM jobs")
        if rows and json.loads(rows[0][0]).get("moved", 0) >= 3:
            break
        time.sleep(0.1)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    resumed = egide(server, "site", "evacuate", "disk-2")
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert "resuming job 1" in resumed.stdout
    (state, cursor), = _catalog(server, "SELECT state, cursor FROM jobs")  # fmt: skip
    assert state == "done"
    proof = json.loads(cursor)["proof"]
    assert proof["files_listed"] == 0 and not any(proof["catalog_references"].values())
    left = [p.name for p in (server.data_dir / "sites" / "disk-2").rglob("*") if p.is_file()]
    assert left == [".egide-site"]  # the site's label only, no data
    egide(server, "gc", "--grace-hours", "0")
    egide(server, "gc", "--grace-hours", "0")
    assert _files_on_disk(server) == _referenced(server)
    _check(server, objects)


def _rot(server: Server, site: str, name: str, at: int) -> None:
    """Invert one byte of a file on a site directory (bit-rot)."""
    path = server.data_dir / "sites" / site / "shards" / name[:2] / name
    with path.open("r+b") as f:
        f.seek(at)
        byte = f.read(1)
        f.seek(at)
        f.write(bytes([byte[0] ^ 0xFF]))


def _version_row(server: Server, key: str) -> tuple[bytes, list[str], list[list[Any]]]:
    """(version id, sites, parts as [number, seq, size, …]) of a key's version."""
    ((vid, sites, parts),) = _catalog(
        server, f"SELECT version_id, sites, parts FROM versions WHERE key = '{key}'"
    )
    return vid, json.loads(sites), json.loads(parts) if parts else []


def _rot_piece(server: Server, key: str, index: int, seq: int, block: int) -> None:
    """Rot in the piece of `block` in shard `index` of part attempt `seq` (0: one part)."""
    vid, sites, parts = _version_row(server, key)
    if seq:
        part = next(Part.from_fields(p) for p in parts if p[1] == seq)
        size, name = part.stored_size, part.file(vid, index)  # padded; named by its own id
    else:
        ((padded,),) = _catalog(server, f"SELECT padded_size FROM versions WHERE key = '{key}'")
        size, name = padded or len(SPREAD[key]), shard_name(vid, 0, index)
    layout = Layout(4, 2, MiB, size)
    _rot(server, sites[index], name, layout.piece_offset(HEADER_SIZE, block))


def _json(done: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    job: dict[str, Any] = json.loads(done.stdout)
    return job


SPREAD = {"three-blocks.bin": _body(7, 3 * MiB - 5), "three-parts.bin": _body(8, 11 * MiB)}


def test_damage_spread_over_blocks_and_parts_is_healed_by_scrub(
    make_server: ServerFactory,
) -> None:
    server = make_server("code = { k = 4, m = 2 }\n" + _sites(6) + NO_SCHEDULE)
    _fill(server, SPREAD)  # the larger in three parts of 5, 5 and 1 MiB
    assert [len(_version_row(server, key)[2]) for key in SPREAD] == [0, 3]
    for index in range(3):  # piece 0 of block (part) 1, piece 1 of 2, piece 2 of 3
        _rot_piece(server, "three-blocks.bin", index, 0, index)
        seq = _version_row(server, "three-parts.bin")[2][index][1]
        _rot_piece(server, "three-parts.bin", index, seq, 0)
    vid, sites, _ = _version_row(server, "three-parts.bin")
    record = shard_name(vid, 0, 5)  # a completion record: header and footer only
    _rot(server, sites[5], record, (server.data_dir / "sites" / sites[5] / "shards" / record[:2]
                                    / record).stat().st_size - 30)  # fmt: skip
    _check(server, SPREAD)  # reads rebuild around the rot
    proof = egide(server, "policy", "check", "--deep", "--json")
    assert proof.returncode == 1
    problems = {(p["key"], p["shard"], p["part"]) for p in _json(proof)["shard_problems"]}
    assert len(problems) == 7 and ("three-parts.bin", 5, 0) in problems
    found = egide(server, "scrub", "--no-repair", "--json")
    assert found.returncode == 1, found.stderr  # left damaged: the exit code says so
    assert _json(found)["progress"]["damaged"] == 2
    assert _json(found)["progress"]["bad_pieces"] == 7
    healed = egide(server, "scrub", "--json")
    assert healed.returncode == 0, healed.stderr
    progress = _json(healed)["progress"]
    assert progress["repaired"] == 2 and "unrecoverable" not in progress, progress
    again = egide(server, "scrub", "--json")
    assert again.returncode == 0, again.stderr
    assert _json(again)["progress"]["bad_pieces"] == 0
    assert _json(egide(server, "policy", "check", "--deep", "--json"))["shard_problems"] == []
    _check(server, SPREAD)


def test_scrub_and_repair_exit_non_zero_with_json_when_a_block_is_lost(
    make_server: ServerFactory,
) -> None:
    server = make_server("code = { k = 4, m = 2 }\n" + _sites(6) + NO_SCHEDULE)
    _fill(server, SPREAD)
    for index in range(3):  # three of six pieces of block 1: k = 4 cannot be met
        _rot_piece(server, "three-blocks.bin", index, 0, 1)
    for command in (["scrub"], ["repair", "--deep"]):
        for output in ([], ["--json"]):
            done = egide(server, *command, *output)
            assert done.returncode == 1, (command, output, done.stdout, done.stderr)
            # (A repair meets the version twice: queued by the scrub, then in its pass.)
            if output:
                assert _json(done)["progress"]["unrecoverable"] >= 1
            else:
                assert " unrecoverable" in done.stdout
    ((reason,),) = _catalog(server, "SELECT reason FROM damaged")
    assert reason.startswith("3 of 4 needed pieces left in block 1"), reason


def test_a_repair_leaves_the_site_records_on_replaced_sites(make_server: ServerFactory) -> None:
    server = make_server("code = { k = 4, m = 2 }\n" + _sites(6) + NO_SCHEDULE)
    _fill(server, OBJECTS)
    s3 = server.client()
    s3.create_bucket(Bucket="annex")
    s3.put_bucket_versioning(Bucket="annex", VersioningConfiguration={"Status": "Enabled"})
    s3.put_object(Bucket="annex", Key="draft.txt", Body=b"to be deleted")
    s3.delete_object(Bucket="annex", Key="draft.txt")  # a delete marker and its record

    def records(site: str) -> set[str]:
        found = (server.data_dir / "sites" / site).rglob("*")
        return {p.name for p in found if p.is_file() and p.name.startswith(SITE_RECORD_PREFIXES)}

    kept = records("disk-5")
    assert len([name for name in kept if name.startswith(KEY_RECORD_PREFIX)]) == 2
    server.stop()
    for name in ("disk-0", "disk-3"):  # two disks replaced by empty ones
        shutil.rmtree(server.data_dir / "sites" / name)
    server.start()  # which prepares the new directories
    assert records("disk-0") == set()
    repaired = egide(server, "repair")
    assert repaired.returncode == 0, repaired.stdout + repaired.stderr
    for name in ("disk-0", "disk-3"):
        assert records(name) == kept, name
    _check(server, OBJECTS)
