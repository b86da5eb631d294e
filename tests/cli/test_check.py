"""`egide policy check`: the proofs over what a real server stored, and what they catch when
shard files are deleted, moved, swapped or flipped by hand."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path
from typing import Any

from tests.cli.conftest import Store

from egide.coding.shardfile import HEADER_SIZE
from egide.domain import shard_name

Ref = tuple[str, str, str]


def _refs(rows: list[dict[str, Any]]) -> set[Ref]:
    return {(row["bucket"], row["key"], row["version"]) for row in rows}


def _version(store: Store, bucket: str, key: str, *, latest: bool = True) -> dict[str, Any]:
    """A version with data; with `latest` False, the older of two."""
    found = [v for v in store.versions(bucket) if v["key"] == key]
    seqs = {
        row[0]: row[1]
        for row in store.sql("SELECT version_id, seq FROM versions WHERE key = ?", key)
    }
    found.sort(key=lambda v: seqs[v["version_id"]], reverse=True)
    return found[0] if latest else found[-1]


def _flip(path: Path, offset: int) -> None:
    data = bytearray(path.read_bytes())
    data[offset] ^= 0x40
    path.write_bytes(bytes(data))


def test_a_sound_store_is_proven_and_survival_is_computed(store: Store) -> None:
    result = store.json("policy", "check")
    everything = _refs(store.versions())
    assert result["summary"]["versions"] == len(everything) == 9  # the delete marker skipped
    assert result["summary"]["compliant"] is True
    assert result["violations"] == [] and result["shard_problems"] == []
    assert {b["name"]: b["source"] for b in result["buckets"]} == {
        "archive": "configuration default",
        "health": "configuration",
        "scratch": "configuration",
    }
    survival = {(row["dimension"], row["value"]): row for row in result["survival"]}
    scratch = _refs(store.versions("scratch"))
    # Losing AWS (both of its sites) loses exactly the scratch bucket, placed on AWS alone.
    assert _refs(survival["provider", "AWS"]["lost_versions"]) == scratch
    assert survival["provider", "AWS"]["readable"] is False
    for provider in ("OVHcloud", "Ville de Lyon"):
        assert survival["provider", provider]["readable"] is True
        assert survival["provider", provider]["degraded"] > 0
    # France holds 5 of archive's 6 shards and all of health's: only scratch survives it.
    lost_in_france = _refs(survival["country", "FR"]["lost_versions"])
    assert lost_in_france == everything - scratch
    assert survival["country", "US"]["readable"] is True
    assert _refs(survival["law", "us-cloud-act"]["lost_versions"]) == scratch
    assert survival["law", "eu"]["unreadable"] == len(everything - scratch)


def test_exposure_names_the_foreign_law_that_reaches_k_shards(store: Store) -> None:
    result = store.json("policy", "check", "--catalog-only")
    exposure = result["exposure"]
    laws = {row["law"]: row for row in exposure["laws"]}
    assert laws["eu"]["foreign"] is False and laws["us-cloud-act"]["foreign"] is True
    assert laws["us-cloud-act"]["providers"] == ["AWS"]
    assert laws["us-cloud-act"]["sites"] == ["aws-iad", "aws-par"]
    # scratch is 1+1 on AWS: one shard rebuilds it, and both are under the CLOUD Act;
    # archive (4+2) has 2 shards there, health none.
    assert _refs(laws["us-cloud-act"]["versions"]) == _refs(store.versions("scratch"))
    assert laws["us-cloud-act"]["most_shards_of_a_version"] == 2
    assert exposure["proof"] == {
        "statement": "no single foreign jurisdiction (any law but eu) holds k shards of any "
        "version",
        "holds": False,
        "failing_laws": ["us-cloud-act"],
    }
    providers = {row["provider"]: row for row in exposure["providers"]}
    assert providers["AWS"]["laws"] == ["eu", "us-cloud-act"]
    assert providers["AWS"]["countries"] == ["FR", "US"]
    assert providers["OVHcloud"]["shard_files"] > 0
    # Not a violation of any policy: the exit code says so, unless --strict.
    assert store.egide("policy", "check", "--catalog-only").exit_code == 0
    strict = store.egide("policy", "check", "--catalog-only", "--strict")
    assert strict.exit_code == 1
    assert "Not proven: no single foreign jurisdiction" in strict.stdout
    # Without scratch, the proof holds.
    assert store.json("policy", "check", "archive")["exposure"]["proof"]["holds"] is True


def test_deleted_and_moved_shards_are_reported_exactly(store: Store) -> None:
    plan = _version(store, "archive", "scans/plan.tif")
    scan = _version(store, "health", "scans/1.pdf")
    old_minutes = _version(store, "archive", "notes/minutes.txt", latest=False)
    store.shard_file(plan, 2).unlink()
    moved = store.shard_file(scan, 0)
    elsewhere = store.root / "data/sites/aws-par/shards" / moved.parent.name
    elsewhere.mkdir(exist_ok=True)
    shutil.move(moved, elsewhere / moved.name)
    store.shard_file(old_minutes, 5).unlink()  # a pack file of a noncurrent version
    expected = {
        ("archive", "scans/plan.tif", plan["version"], 2, plan["sites"][2]),
        ("health", "scans/1.pdf", scan["version"], 0, scan["sites"][0]),
        ("archive", "notes/minutes.txt", old_minutes["version"], 5, old_minutes["sites"][5]),
    }
    for deep in ((), ("--deep",)):
        result = store.json("policy", "check", *deep, code=1)
        found = {
            (p["bucket"], p["key"], p["version"], p["shard"], p["site"])
            for p in result["shard_problems"]
        }
        assert found == expected, deep
        assert all(p["problem"].startswith("missing: ") for p in result["shard_problems"])
        assert result["violations"] == []
        noncurrent = next(p for p in result["shard_problems"] if p["key"] == "notes/minutes.txt")
        assert noncurrent["latest"] is False
    text = store.egide("policy", "check").stdout
    assert "Shard problems (3)" in text


def test_deep_reads_every_block_and_catches_a_flipped_byte(store: Store) -> None:
    video = _version(store, "archive", "video/council.mp4")
    first_part_seq = video["parts"][0][1]
    first_part_id = video["parts"][0][6]  # a part's files are named by its own id (0018)
    name = f"{first_part_id}-0-1"
    part_file = store.root / "data/sites" / video["sites"][1] / "shards" / name[:2] / name
    _flip(part_file, part_file.stat().st_size // 2)
    record = _version(store, "health", "records/1.json")
    _flip(store.shard_file(record, 3), 8 + HEADER_SIZE + 3)  # in the pack segment's piece
    plan = _version(store, "archive", "scans/plan.tif")
    shutil.copy(store.shard_file(plan, 0), store.shard_file(plan, 1))  # right size, wrong shard
    assert store.egide("policy", "check").exit_code == 0  # every file is where it should be
    result = store.json("policy", "check", "--deep", code=1)
    problems = {(p["key"], p["shard"], p["part"]): p["problem"] for p in result["shard_problems"]}
    assert set(problems) == {
        ("video/council.mp4", 1, first_part_seq),
        ("records/1.json", 3, 0),
        ("scans/plan.tif", 1, 0),
    }
    assert problems["video/council.mp4", 1, first_part_seq].startswith(
        "checksum mismatch in 1 of 80 blocks"
    )
    assert problems["records/1.json", 3, 0] == "checksum mismatch in 1 of 1 blocks (0)"
    assert problems["scans/plan.tif", 1, 0] == "header says shard index 0, the catalog 1"


def test_deep_reads_the_completion_records_of_multipart_objects(store: Store) -> None:
    video = _version(store, "archive", "video/council.mp4")
    name = shard_name(video["version_id"], 0, 4)  # the completion record, part attempt 0
    record = store.root / "data/sites" / video["sites"][4] / "shards" / name[:2] / name
    _flip(record, record.stat().st_size - 30)  # in its footer: the parts the object keeps
    assert store.egide("policy", "check").exit_code == 0  # the file is where it should be
    result = store.json("policy", "check", "--deep", code=1)
    (problem,) = result["shard_problems"]
    assert (problem["key"], problem["shard"], problem["part"]) == ("video/council.mp4", 4, 0)
    assert problem["file"] == name
    assert problem["problem"] == "footer: shard footer corrupt"
    gone = shard_name(video["version_id"], 0, 1)
    (store.root / "data/sites" / video["sites"][1] / "shards" / gone[:2] / gone).unlink()
    listed = store.json("policy", "check", code=1)
    assert [(p["shard"], p["part"], p["problem"]) for p in listed["shard_problems"]] == [
        (1, 0, f"missing: no file {gone} on site {video['sites'][1]}")
    ]


def test_a_report_is_recorded_and_a_later_check_says_unchanged(store: Store) -> None:
    report = store.root / "proof.json"
    first = store.json("policy", "check", "--deep", "--report", str(report))
    data = report.read_bytes()
    digest = hashlib.sha256(data).hexdigest()
    assert first["report"]["sha256"] == digest
    assert first["comparison"]["previous"] is None
    # Canonical: what `sha256sum` of the file gives is what the catalog recorded.
    document = json.loads(data)
    assert json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False) == (
        data.decode()
    )
    assert document["summary"]["versions"] == 9
    content = {k: v for k, v in document.items() if k not in ("generated_at", "content_sha256")}
    canonical = json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    assert hashlib.sha256(canonical.encode()).hexdigest() == document["content_sha256"]
    recorded = store.sql("SELECT kind, scope, sha256, content_sha256, created FROM reports")
    assert [row[:4] for row in recorded] == [
        ("policy-check", "* files=read", digest, document["content_sha256"])
    ]
    # A second check of the same store: same content, whatever the time.
    again = store.egide("policy", "check", "--deep")
    assert again.exit_code == 0
    assert "Result unchanged since the report of" in again.stdout
    second = store.json("policy", "check", "--deep", "--report", str(store.root / "again.json"))
    assert second["comparison"]["changed"] is False
    assert second["comparison"]["previous"]["sha256"] == digest
    assert len(store.sql("SELECT 1 FROM reports")) == 2
    # Something changes: a shard is lost.
    _flip(store.shard_file(_version(store, "archive", "scans/plan.tif"), 4), HEADER_SIZE + 10)
    changed = store.json("policy", "check", "--deep", code=1)
    assert changed["comparison"]["changed"] is True
    # Another scope has its own history.
    other = store.json("policy", "check", "health", "--deep")
    assert other["comparison"]["previous"] is None


def test_versions_breaking_the_current_policy_are_listed_noncurrent_too(store: Store) -> None:
    policy = store.root / "three-two.toml"
    policy.write_text("k = 3\nm = 2\n")
    assert store.egide("policy", "set", "archive", str(policy)).exit_code == 0
    result = store.json("policy", "check", "--catalog-only", code=1)
    assert _refs(result["violations"]) == _refs(store.versions("archive"))
    assert {v["latest"] for v in result["violations"]} == {True, False}
    for violation in result["violations"]:
        assert violation["problems"][:2] == [
            "code 4+2 differs from the policy's 3+2",
            "6 sites for k+m = 3+2 = 5 shards",
        ]
    archive = next(b for b in result["buckets"] if b["name"] == "archive")
    assert (archive["source"], archive["violations"]) == ("catalog", 6)
    text = store.egide("policy", "check", "--catalog-only")
    assert text.exit_code == 1
    assert "Versions breaking their bucket's policy (6)" in text.stdout


def test_one_bucket_and_unknown_bucket(store: Store) -> None:
    result = store.json("policy", "check", "health")
    assert result["scope"] == {"buckets": ["health"], "files": "listed"}
    assert result["summary"]["versions"] == 2
    missing = store.egide("policy", "check", "nobody")
    assert missing.exit_code == 2 and "no bucket nobody" in missing.output
    both = store.egide("policy", "check", "--deep", "--catalog-only")
    assert both.exit_code == 2


def test_a_lost_site_is_a_site_problem(store: Store) -> None:
    shutil.rmtree(store.root / "data" / "sites" / "lyon-2")
    for deep in ((), ("--deep",)):
        result = store.json("policy", "check", *deep, code=1)
        assert [p["site"] for p in result["site_problems"]] == ["lyon-2"], deep
        assert result["shard_problems"] == []
