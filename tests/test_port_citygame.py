"""The port of a real project's AI-art manifest (issue 17, "Done when"): examples/citygame, from
github.com/hangovergames/assetgen-assets citygame/Assetgenfile (MIT). It loads, plans and builds
offline with the composition features (a style placed by prompt_template, output sets with {asset}
and {width}, matrix axes with per-value fields and a per-value output set), and every composed prompt
is the source tool's own record of what it sent, character for character."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

from helpers.project import ProjectDir
from PIL import Image

from assetgen.manifest.loader import load

ROOT = Path(__file__).resolve().parent.parent
PORT = ROOT / "examples" / "citygame" / "assets.toml"

# SHA-256 over "<file stem>\n<prompt>\n" for the 32 assets in stem order, where <prompt> is what the
# Assetgenfile tool recorded it sent (citygame/<stem>.md at hangovergames/assetgen-assets d4746ab).
SOURCE_PROMPTS_SHA256 = "04ed8fd03a32629f6013108fe4f191a65f3f07f9e4a02044de428da7f481e294"
# citygame/Assetgenfile at d4746ab: 38 non-blank, non-comment lines (5 directives, 1 PROMPT, 32 ASSET).
SOURCE_LINES = 38


def code_lines(path: Path) -> list[str]:
    return [line for line in path.read_text(encoding="utf-8").splitlines()
            if line.strip() and not line.lstrip().startswith("#")]


def test_port_composes_exactly_the_prompts_the_source_sent() -> None:
    manifest = load(PORT)
    assert len(manifest.targets) == 32
    digest = hashlib.sha256()
    for name in sorted(manifest.targets, key=lambda n: n.split(".", 1)[1]):
        digest.update(f"{name.split('.', 1)[1]}\n{manifest.targets[name].prompt}\n".encode())
    assert digest.hexdigest() == SOURCE_PROMPTS_SHA256


def test_port_plans_and_builds_offline_with_every_size(empty_project: ProjectDir) -> None:
    shutil.copy(PORT, empty_project.manifest)
    plan = empty_project.plan("--offline")
    assert plan["stale"] == 32 and plan["total_cost"] == 0
    some = ("road.road_straight_ns", "vehicle.car_taxi", "vehicle.van_delivery")   # all 32: 24 s on 2 cores
    empty_project.ok("build", "--offline", *some)
    out = empty_project.root / "assets" / "generated"
    sizes = {}
    for path in out.rglob("*.png"):
        with Image.open(path) as image:
            sizes[path.relative_to(out).as_posix()] = image.size
    assert len(sizes) == 6                                   # a 1024 px master and a game size each
    assert sizes["road_straight_ns.png"] == (1024, 1024)     # the source's own file name and size
    assert sizes["256/road_straight_ns.png"] == (256, 256)
    assert sizes["96/car_taxi.png"] == (96, 48)
    assert sizes["112/van_delivery.png"] == (112, 56)        # a per-value output set
    assert empty_project.plan("--offline", *some)["stale"] == 0


def test_port_line_count_against_its_source() -> None:
    # Not shorter, and not meant to be: the source is one line per asset and has no game sizes. What
    # holds: every ASSET line is one line here, and without the sizes the port adds (its output sets
    # and the `outputs =` lines choosing them) the port is the source plus 4 lines per kind of asset
    # (the target's table, its style, its prompt and its matrix table).
    lines = code_lines(PORT)
    table, added = "", 0
    for line in lines:
        if line.startswith("["):
            table = line
        added += table.startswith("[output_sets.") or line.startswith("outputs =")
    kinds = {target.base for target in load(PORT).targets.values()}
    assert sum(1 for line in lines if ".is = " in line or "= { is = " in line) == 32   # one per ASSET
    assert added > 0 and len(lines) - added <= SOURCE_LINES + 4 * len(kinds)
