"""`egide site list|show|add` over a store a real server wrote."""

from __future__ import annotations

import difflib
import shutil
import tomllib
from pathlib import Path

import pytest
from tests.cli.conftest import SITES, Store

from egide.coding.blocks import Layout
from egide.coding.shardfile import HEADER_SIZE
from egide.config import load_settings


def _expected_shards(store: Store) -> dict[str, int]:
    """Shard files per site, counted from the catalog's rows directly."""
    counts = {name: 0 for name, *_ in SITES}
    for version in store.versions():
        for site in version["sites"]:
            counts[site] += max(1, len(version["parts"]))
    return counts


def test_site_list_shows_profiles_health_and_holdings(store: Store) -> None:
    sites = {row["name"]: row for row in store.json("site", "list")["sites"]}
    assert list(sites) == [name for name, *_ in SITES]
    aws = sites["aws-par"]
    assert aws["kind"] == "local"
    assert aws["profile"]["provider"] == "AWS"
    assert aws["profile"]["country"] == "FR"
    assert aws["profile"]["laws"] == ["eu", "us-cloud-act"]
    assert aws["profile"]["storage_gb_month"] == 0.024
    assert sites["ovh-gra"]["profile"]["certifications"] == ["HDS"]
    assert sites["aws-iad"]["profile"]["laws"] == ["us-cloud-act"]
    for row in sites.values():
        assert row["probe"]["reachable"] is True, row
        assert row["probe"]["latency_ms"] > 0
    assert {name: row["held"]["shard_files"] for name, row in sites.items()} == (
        _expected_shards(store)
    )
    # The estimate is the block layout: a streamed 700 KiB object, 4+2, 64 KiB blocks.
    plan = next(v for v in store.versions("archive") if v["key"] == "scans/plan.tif")
    per_shard = HEADER_SIZE + Layout(4, 2, 65536, 700 * 1024).shard_data_size()
    assert sites[plan["sites"][0]]["held"]["bytes_by_bucket"]["archive"] >= per_shard


def test_exact_sizes_measure_the_files(store: Store) -> None:
    estimated = {row["name"]: row["held"] for row in store.json("site", "list")["sites"]}
    measured = {row["name"]: row["held"] for row in store.json("site", "list", "--exact")["sites"]}
    for name, held in measured.items():
        assert held["bytes_measured"] is True
        # What the estimate leaves out is one footer (a sealed manifest) per shard file.
        footers = held["bytes"] - estimated[name]["bytes"]
        assert 0 < footers < 2048 * held["shard_files"], (name, footers)


def test_a_lost_site_is_reported_unreachable(store: Store) -> None:
    shutil.rmtree(store.root / "data" / "sites" / "ovh-sbg")
    sites = {row["name"]: row for row in store.json("site", "list")["sites"]}
    assert sites["ovh-sbg"]["probe"]["reachable"] is False
    assert "ovh-sbg" in sites["ovh-sbg"]["probe"]["error"]
    assert sites["ovh-gra"]["probe"]["reachable"] is True
    text = store.egide("site", "list").stdout
    assert "ovh-sbg: site ovh-sbg:" in text


def test_site_show_counts_versions_and_shards(store: Store) -> None:
    row = store.json("site", "show", "aws-iad")
    versions = [v for v in store.versions() if "aws-iad" in v["sites"]]
    assert row["held"]["versions"] == len(versions)
    assert row["held"]["shard_files"] == _expected_shards(store)["aws-iad"]
    assert set(row["held"]["bytes_by_bucket"]) == {v["bucket"] for v in versions}
    assert row["profile"]["city"] == "Ashburn"
    text = store.egide("site", "show", "aws-iad").stdout
    assert "versions held" in text and "Ashburn" in text
    missing = store.egide("site", "show", "nowhere")
    assert missing.exit_code == 2
    assert "no site nowhere" in missing.output


def test_site_add_appends_a_validated_entry(store: Store) -> None:
    before = store.config.read_text()
    result = store.egide(
        "site", "add", "scw-par", "--provider", "Scaleway", "--city", "Paris",
        "--certification", "HDS", "--storage-gb-month", "0.012",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    # One block inserted after the last site; every other line (comments too) as it was.
    after = store.config.read_text().splitlines()
    changes = difflib.SequenceMatcher(None, before.splitlines(), after).get_opcodes()
    assert [op for op, *_ in changes] == ["equal", "insert", "equal"]
    (_, _, _, start, end) = changes[1]
    assert after[start : end - 1] == [
        "[[sites]]", 'name = "scw-par"', 'path = "data/sites/scw-par"', 'provider = "Scaleway"',
        'city = "Paris"', 'certifications = ["HDS"]', "storage_gb_month = 0.012",
    ]  # fmt: skip
    assert after[end] == "[[policies]]  # the default"
    settings = load_settings(store.config)
    added = settings.site_profiles()[-1]
    assert (added.name, added.provider, added.country, added.laws) == (
        "scw-par", "Scaleway", "FR", ("eu",)
    )  # fmt: skip
    assert added.certifications == ("HDS",) and added.storage_gb_month == 0.012
    assert "restart `egide serve`" in result.stdout
    # The new site is a site like the others for every command.
    assert "scw-par" in {row["name"] for row in store.json("site", "list", "--no-probe")["sites"]}


def test_site_add_refuses_what_the_library_refuses(store: Store) -> None:
    before = store.config.read_text()
    result = store.egide("site", "add", "scw-par", "--city", "Pariss")
    assert result.exit_code == 2
    assert "refused:" in result.output and "unknown city 'Pariss'" in result.output
    assert "Paris" in result.output  # the close name
    result = store.egide("site", "add", "lyon-1")
    assert result.exit_code == 2 and "already configured" in result.output
    result = store.egide("site", "add", "far", "--country", "FR", "--city", "Ashburn")
    assert result.exit_code == 2 and "city Ashburn is in US, not FR" in result.output
    result = store.egide("site", "add", "cheap", "--storage-gb-month", "-1")
    assert result.exit_code == 2 and "storage_gb_month" in result.output
    assert store.config.read_text() == before


def test_site_add_to_a_file_without_sites_keeps_the_default_ones(tmp_path: Path) -> None:
    config = tmp_path / "egide.toml"
    config.write_text('data_dir = "data"\n')
    store = Store(tmp_path)
    result = store.egide("site", "add", "nas", "--path", "/mnt/nas/egide", "--city", "Lyon")
    assert result.exit_code == 0, result.output
    assert "six default sites were written out" in result.stdout
    sites = load_settings(config).resolved_sites()
    assert [site.name for site in sites] == [f"local-{i}" for i in range(1, 7)] + ["nas"]
    assert [getattr(site, "path", None) for site in sites[:1]] == [tmp_path / "data/sites/local-1"]


def _written_paths(config: Path) -> dict[str, str]:
    return {site["name"]: site["path"] for site in tomllib.loads(config.read_text())["sites"]}


def test_site_add_writes_paths_read_from_the_file_s_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The default site goes under data_dir, a --path is taken from the working directory;
    both are written so that the file, read from its folder, points at the same place."""
    config = tmp_path / "conf" / "egide.toml"
    config.parent.mkdir()
    config.write_text('data_dir = "data"\n')
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    store = Store(config.parent)
    assert store.egide("site", "add", "nas", "--city", "Lyon").exit_code == 0
    assert store.egide("site", "add", "usb", "--path", "usb/egide").exit_code == 0
    written = _written_paths(config)
    assert written["local-1"] == "data/sites/local-1"
    assert written["nas"] == "data/sites/nas"
    assert written["usb"] == str(work / "usb" / "egide")  # outside the folder: absolute
    paths = {site.name: getattr(site, "path", None) for site in load_settings(config).sites}
    assert paths["local-1"] == config.parent / "data" / "sites" / "local-1"
    assert paths["nas"] == config.parent / "data" / "sites" / "nas"
    assert paths["usb"] == work / "usb" / "egide"


def test_help_texts_keep_their_toml_table_names() -> None:
    """Square brackets in help texts are TOML tables, not rich markup to be swallowed."""
    from typer.testing import CliRunner

    from egide.cli.main import app

    shown = {
        ("site", "add"): "[[sites]]",
        ("policy", "set"): "[[policies]]",
        ("repair",): "[maintenance] rate_bytes_per_second",
        ("gc",): "[maintenance] gc_grace_hours",
    }
    for command, text in shown.items():
        result = CliRunner().invoke(app, [*command, "--help"], env={"COLUMNS": "250"})
        assert result.exit_code == 0, result.output
        assert text in " ".join(result.output.split()), (command, result.output)
