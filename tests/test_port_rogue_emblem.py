"""The port of a real game's image pipeline (issue 17, "Done when": shorter than its source):
examples/rogue-emblem, from github.com/virtu333/rogue-emblem tools/imagen-pipeline/manifest.json, run
there by generate.js (the prompt; 4 variants in raw/{category}/{asset}_v{n}.png) and process.js (the
first variant, background removed, resized to the category's targetSize, in
processed/{category}/{asset}.png). The source has no licence, so the port's prompts are its own: what
is checked is the source's structure, its prompt join and its files, against the port's prompts."""

from __future__ import annotations

import hashlib
import shutil
import tomllib
from pathlib import Path

from helpers.project import FLASH, ProjectDir
from PIL import Image

from assetgen.engine.keys import compute_keys
from assetgen.manifest.loader import load

ROOT = Path(__file__).resolve().parent.parent
PORT = ROOT / "examples" / "rogue-emblem" / "assets.toml"

# tools/imagen-pipeline/manifest.json at virtu333/rogue-emblem 127e0125593d117f36856281cff02ec35fa4f513:
# 93 lines, none blank (JSON has no comments), counted from the file as stored at that commit.
SOURCE_LINES = 93
# Its structure, category by category (prompts left out): targetSize, aspectRatio, removeBg,
# sampleCount, and the asset names in order.
SOURCE = {
    "map_sprites": (32, "1:1", True, 4, ("wyvern_rider", "wyvern_lord", "enemy_wyvern_rider")),
    "portraits": (128, "1:1", False, 4, ("generic_wyvern_rider", "generic_wyvern_lord")),
    "weapon_arts_fx": (64, "1:1", True, 4, ("weapon_art_sunder_arc", "weapon_art_piercing_thrust",
                                            "weapon_art_guard_break")),
    "terrain_tiles": (32, "1:1", False, 4, ("swamp", "bog", "forest_swamp", "acidic_swamp", "acidic_bog")),
}
OUT = "output"   # the source's tools/imagen-pipeline/output/ (raw/ and processed/ under it)


def code_lines(path: Path) -> int:
    return sum(1 for line in path.read_text(encoding="utf-8").splitlines()
               if line.strip() and not line.lstrip().startswith("#"))


def source_join(global_style: str, style_prefix: str, prompt: str) -> str:
    """generate.js's buildPrompt: [globalStyle, stylePrefix, prompt].filter(Boolean).join('\\n\\n')."""
    return "\n\n".join(part for part in (global_style, style_prefix, prompt) if part)


def test_every_prompt_is_the_sources_join_of_the_ports_texts() -> None:
    manifest = load(PORT)
    raw = tomllib.loads(PORT.read_text(encoding="utf-8"))
    global_style = raw["styles"]["snes"]["prompt"]                  # the source's globalStyle
    assert len(manifest.targets) == 2 * sum(len(spec[4]) for spec in SOURCE.values())
    for category, (_size, _ratio, _remove_bg, _samples, assets) in SOURCE.items():
        style = raw["styles"][category]                             # its stylePrefix
        assert style["extends"] == "snes"
        assert tuple(raw["targets"][category]["matrix"]["asset"]) == assets
        for asset in assets:
            prompt = raw["targets"][category]["matrix"]["asset"][asset]["is"]
            expected = source_join(global_style, style["prompt"], prompt)
            for stage in ("raw", "processed"):
                assert manifest.targets[f"{category}.{stage}.{asset}"].prompt == expected


def test_outputs_are_exactly_the_sources_files_from_one_generation_per_asset() -> None:
    manifest = load(PORT)
    keys = {name: k.key for name, k in compute_keys(
        manifest, lambda p: hashlib.sha256(p.read_bytes()).hexdigest()).items()}
    every: set[str] = set()
    for category, (size, ratio, remove_bg, samples, assets) in SOURCE.items():
        for asset in assets:
            raw = manifest.targets[f"{category}.raw.{asset}"]
            processed = manifest.targets[f"{category}.processed.{asset}"]
            assert (raw.n, raw.candidates, raw.aspect_ratio) == (samples, False, ratio)
            assert [(o.path, o.source) for o in raw.outputs] == [
                (f"{OUT}/raw/{category}/{asset}_v{v}.png", v - 1) for v in range(1, samples + 1)]
            assert all(o.derivation.resize is None for o in raw.outputs)       # as generated
            # process.js: the first variant (pickRawFile prefers v1), resized, background removed.
            assert (processed.n, processed.candidates, processed.pick) == (samples, True, 1)
            (out,) = processed.outputs
            assert (out.path, out.source) == (f"{OUT}/processed/{category}/{asset}.png", 0)
            assert out.derivation.resize == (size, size) and out.derivation.fit == "contain"
            assert (out.derivation.key_out is not None) == remove_bg
            assert keys[raw.name] == keys[processed.name]              # one generation, paid once
            every.update(o.path for o in (*raw.outputs, *processed.outputs))
    assert every == {o.path for t in manifest.targets.values() for o in t.outputs}   # nothing else


def test_the_port_is_shorter_than_its_source() -> None:
    assert code_lines(PORT) < SOURCE_LINES
    assert f"{SOURCE_LINES} non-blank lines; {code_lines(PORT)} here" in PORT.read_text(encoding="utf-8")


def test_port_plans_one_payment_per_asset_and_builds_offline(empty_project: ProjectDir) -> None:
    shutil.copy(PORT, empty_project.manifest)
    plan = empty_project.plan()
    assets = sum(len(spec[4]) for spec in SOURCE.values())
    assert plan["stale"] == 2 * assets and plan["to_generate"] == assets
    assert round(plan["total_cost"], 6) == round(assets * 4 * FLASH, 6)     # 4 samples, once per asset
    some = ("weapon_arts_fx.raw.weapon_art_guard_break", "weapon_arts_fx.processed.weapon_art_guard_break")
    result = empty_project.ok("build", "--offline", "-y", *some)     # all 26 rows: ~13 s on 2 cores
    assert "shares with weapon_arts_fx.raw.weapon_art_guard_break: paid once" in result.output
    sizes = {}
    for path in (empty_project.root / OUT).rglob("*.png"):
        with Image.open(path) as image:
            sizes[path.relative_to(empty_project.root / OUT).as_posix()] = image.size
    assert sizes == {**{f"raw/weapon_arts_fx/weapon_art_guard_break_v{v}.png": (1024, 1024) for v in range(1, 5)},
                     "processed/weapon_arts_fx/weapon_art_guard_break.png": (64, 64)}
    assert empty_project.plan("--offline", *some)["stale"] == 0
