"""The smaller commands: ``models``, ``explain``, ``gc``, ``init``, and ``python -m assetgen``."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import tomllib
from typing import Any

import pytest
from helpers.project import OUTPUTS, ProjectDir

from assetgen import catalog
from assetgen.engine.events import money
from assetgen.manifest.starter import STARTER_MANIFEST

PRICES = {
    "gemini-3-pro-image-preview-official": 0.1139,
    "gemini-3-pro-image-preview": 0.0425,
    "gemini-3.1-flash-image-preview-official": 0.05695,
    "gemini-3.1-flash-image-preview": 0.031875,
    "gemini-2.5-flash-image-preview-official": 0.03315,
    "gemini-2.5-flash-image-preview": 0.01328125,
}


# -- models -----------------------------------------------------------------------------------------

def test_models_lists_every_id_with_its_exact_price(empty_project: ProjectDir) -> None:
    assert {m.id: m.price for m in catalog.MODELS} == PRICES
    text = empty_project.ok("models").output        # needs no manifest
    rows = {line.split()[0]: line for line in text.splitlines()
            if line.startswith("gemini-") and " ratios: " not in line and " gateway " in line}
    assert set(rows) == set(PRICES)
    for model_id, price in PRICES.items():
        row = rows[model_id]
        model = catalog.BY_ID[model_id]
        assert money(price) in row.split(), f"{model_id} should show its price {price} as plan does: {row!r}"
        assert model.tier in row and model.series in row
        assert ", ".join(model.resolutions) in row
    assert "0.5K" in rows["gemini-3.1-flash-image-preview"] and "0.5K" not in rows["gemini-3-pro-image-preview"]
    assert "search_grounded" in rows["gemini-3.1-flash-image-preview"]
    assert " $0.0133 " in rows["gemini-2.5-flash-image-preview"] and "0.01328125" not in text   # rounded, as plan
    assert "gemini-3.1-flash-image ratios: 1:1" in text and "1:8, 8:1" in text
    assert "switching tier does not change a key" in text


def test_models_json(empty_project: ProjectDir) -> None:
    models = [m for m in json.loads(empty_project.ok("models", "--json").stdout) if m["provider"] == "gateway"]
    assert {m["id"]: m["price"] for m in models} == PRICES
    by_id = {m["id"]: m for m in models}
    assert by_id["gemini-3.1-flash-image-preview"]["search"] is True
    assert by_id["gemini-3-pro-image-preview"]["search"] is False
    assert by_id["gemini-2.5-flash-image-preview"]["resolutions"] == ["1K"]
    assert by_id["gemini-3-pro-image-preview"]["family"] == by_id["gemini-3-pro-image-preview-official"]["family"]


# -- explain ----------------------------------------------------------------------------------------

def test_explain_shows_the_key_its_inputs_and_the_lock(project: ProjectDir) -> None:
    keys = project.keys()
    text = project.ok("explain", "hero_walk").output
    assert text.splitlines()[0] == "hero_walk"
    assert f"key        {keys['hero_walk']}" in text
    assert "status     generate: new target" in text
    assert "gemini-3.1-flash-image-preview (Nano Banana 2, standard; key uses family gemini-3.1-flash-image)" in text
    assert "size       1:1 at 0.5K = 512x512 px, n=1, seed=-1" in text
    assert "action     edit" in text
    assert "prompt     The same knight, mid-stride walking pose" in text
    assert re.search(r"reference  @hero → key:" + keys["hero"][:19], text)
    assert re.search(r"reference  refs/palette.png → sha256:[0-9a-f]{16}", text)
    assert "output     out/hero_walk.jpg" in text
    assert "lock       not built yet" in text

    project.ok("build", "--offline")
    text = project.ok("explain", "hero_walk").output
    assert "status     generate: placeholder to be replaced" in text
    assert re.search(rf"lock       key {keys['hero_walk'][:16]}… model gemini-3.1-flash-image-preview, cost free, "
                     r"built \d{4}-\d\d-\d\dT[\d:]+Z \(placeholder\)", text), text

    project.edit('prompt = "A knight in silver armour, side view"', 'prompt = "A knight in gold"')
    text = project.ok("explain", "hero_walk").output
    assert "status     generate: upstream changed: @hero" in text
    assert keys["hero_walk"] not in text.splitlines()[1]
    assert "status     generate: spec changed: prompt" in project.ok("explain", "hero").output


def test_explain_size_of_n_and_flags(empty_project: ProjectDir) -> None:
    empty_project.write("""\
        [targets.map]
        prompt = "A world map"
        aspect_ratio = "21:9"
        resolution = "2K"
        n = 2
        seed = 42
        google_search = true
        official_fallback = true
        """)
    text = empty_project.ok("explain", "map").output
    assert "21:9 at 2K = 3168x1344 px, n=2, seed=42" in text
    assert "google_search true" in text and "official_fallback true" in text
    assert "output     assets/generated/map-1.jpg" in text and "output     assets/generated/map-2.jpg" in text


# -- gc ---------------------------------------------------------------------------------------------

def test_gc_removes_what_the_lock_no_longer_references(project: ProjectDir) -> None:
    project.ok("build", "--offline")
    old_banner = (project.root / "out" / "banner.jpg").read_bytes()
    project.edit('prompt = "A wide banner with a castle"', 'prompt = "A wide banner with a windmill"')
    project.ok("build", "--offline")
    referenced = {o["sha256"] for e in locked_targets(project).values() for o in e["outputs"]}
    objects = {p.stem for p in project.objects()}
    assert len(referenced) == 6 and len(objects) == 7
    (unreferenced,) = objects - referenced

    dry = project.ok("gc", "--dry-run", "--grace", "0").output
    assert "Would remove 1 cached images" in dry
    assert {p.stem for p in project.objects()} == objects

    result = project.ok("gc", "--grace", "0")
    assert "Removed 1 cached images" in result.output
    assert "kept 6 referenced by the lock" in result.output
    assert {p.stem for p in project.objects()} == referenced
    assert not (project.cache / "objects" / unreferenced[:2] / f"{unreferenced}.jpg").exists()
    # Every output is untouched and still restorable from the cache.
    assert project.run("plan", "--offline", "--check").exit_code == 0
    (project.root / "out" / "banner.jpg").unlink()
    assert project.items("--offline")["banner"]["action"] == "restore"
    # The old banner's cache entry went with its image: going back renders it again.
    project.edit('prompt = "A wide banner with a windmill"', 'prompt = "A wide banner with a castle"')
    assert project.items("--offline")["banner"]["action"] == "generate"
    project.ok("build", "--offline")
    assert (project.root / "out" / "banner.jpg").read_bytes() == old_banner

    again = project.ok("gc", "--grace", "0").output
    assert "Removed 1 cached images" in again        # the windmill banner, now unreferenced
    assert project.ok("gc", "--grace", "0").output.startswith("Removed 0 cached images")


def locked_targets(project: ProjectDir) -> dict[str, Any]:
    return tomllib.loads(project.lock.read_text(encoding="utf-8"))["targets"]


def test_gc_without_a_cache_is_harmless(project: ProjectDir) -> None:
    result = project.ok("gc", "--grace", "0")
    assert "Removed 0 cached images" in result.output


# -- init -------------------------------------------------------------------------------------------

def test_init_writes_a_manifest_that_plans_and_builds_cleanly(empty_project: ProjectDir) -> None:
    result = empty_project.ok("init")
    assert "Wrote assets.toml" in result.output
    assert empty_project.manifest.read_text(encoding="utf-8") == STARTER_MANIFEST
    assert ".assetgen/" in (empty_project.root / ".gitignore").read_text().splitlines()
    plan = empty_project.plan()
    assert [t["name"] for t in plan["targets"]] == ["hero"]
    assert plan["targets"][0]["outputs"] == ["assets/generated/characters/hero.jpg"]
    assert plan["total_cost"] > 0
    assert empty_project.ok("build", "--offline").exit_code == 0
    assert (empty_project.root / "assets" / "generated" / "characters" / "hero.jpg").exists()


def test_init_outside_a_git_work_tree_does_not_ask_for_git_config(empty_project: ProjectDir,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(empty_project.root.parent))   # whatever holds tmp
    result = empty_project.ok("init")
    assert "Wrote assets.toml" in result.output and ".gitattributes" in result.output
    assert "git config" not in result.output, result.output


def test_init_refuses_to_overwrite(empty_project: ProjectDir) -> None:
    empty_project.write('[targets.mine]\nprompt = "Mine"\n')
    mine = empty_project.manifest.read_bytes()
    result = empty_project.run("init")
    assert result.exit_code == 2
    assert "already exists" in result.output and "--force" in result.output
    assert empty_project.manifest.read_bytes() == mine
    assert empty_project.ok("init", "--force").exit_code == 0
    assert empty_project.manifest.read_text(encoding="utf-8") == STARTER_MANIFEST


def test_init_keeps_an_existing_gitignore_and_adds_the_entry_once(empty_project: ProjectDir) -> None:
    gitignore = empty_project.root / ".gitignore"
    gitignore.write_text("node_modules/\n*.log")               # no final newline
    empty_project.ok("init")
    lines = gitignore.read_text().splitlines()
    assert lines[:2] == ["node_modules/", "*.log"]
    assert lines.count(".assetgen/") == 1
    empty_project.ok("init", "--force")
    assert gitignore.read_text().splitlines().count(".assetgen/") == 1


def test_init_does_not_duplicate_an_existing_ignore_entry(empty_project: ProjectDir) -> None:
    gitignore = empty_project.root / ".gitignore"
    gitignore.write_text("/.assetgen\n")
    empty_project.ok("init")
    assert gitignore.read_text() == "/.assetgen\n"


# -- the command itself -----------------------------------------------------------------------------

@pytest.mark.slow
def test_python_dash_m_assetgen_help(empty_project: ProjectDir) -> None:
    proc = subprocess.run([sys.executable, "-m", "assetgen", "--help"], capture_output=True, text=True,
                          timeout=60, cwd=empty_project.root)
    assert proc.returncode == 0, proc.stderr
    assert "Usage:" in proc.stdout and "-f, --file PATH" in proc.stdout
    for command in ("plan", "build", "models", "explain", "gc", "init"):
        assert re.search(rf"^\s+{command}\s", proc.stdout, flags=re.MULTILINE), command
    assert proc.stderr == ""
    version = subprocess.run([sys.executable, "-m", "assetgen", "--version"], capture_output=True, text=True,
                             timeout=60)
    assert version.returncode == 0 and version.stdout.strip() == "assetgen, version 0.1.0"


def test_usage_errors_exit_2(project: ProjectDir) -> None:
    assert project.run("frobnicate").exit_code == 2
    assert project.run("build", "--jobs", "0").exit_code == 2
    assert project.run("plan", "--format", "yaml").exit_code == 2
    assert project.run("explain").exit_code == 2


def test_outputs_fixture_matches_the_plan(project: ProjectDir) -> None:
    assert {n: t["outputs"] for n, t in project.items().items()} == OUTPUTS
