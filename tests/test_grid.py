"""Grid generation: ``grid = [cols, rows]`` is one image sliced into cells ``<target>.r<row>c<col>``."""

from __future__ import annotations

import io
import json
import random
import tomllib
from pathlib import Path

import pytest
from PIL import Image

from assetgen.images.derive import Cell, Derivation, derive
from assetgen.images.grid import GUTTER_TOLERANCE, cell_box, crop_cell, gutter_lines, layout_sentence
from helpers.online import emulator, run, write_manifest


def _noise(w: int, h: int, seed: int) -> Image.Image:
    """A cell's picture: noise, so no line of it is one colour and a crop off by one pixel shows."""
    rng = random.Random(seed)
    image = Image.new("RGB", (w, h))
    image.putdata([(rng.randrange(40, 200), rng.randrange(40, 200), rng.randrange(40, 200)) for _ in range(w * h)])
    return image


def _grid(cols: int, rows: int, cell: tuple[int, int], gutter: int, border: int,
          background: tuple[int, int, int] = (255, 255, 255)) -> tuple[Image.Image, dict[tuple[int, int], Image.Image]]:
    """A grid image with ``gutter`` pixels between cells and ``border`` around them, and each cell's picture."""
    w, h = cell
    image = Image.new("RGB", (2 * border + cols * w + (cols - 1) * gutter,
                              2 * border + rows * h + (rows - 1) * gutter), background)
    cells = {}
    for r in range(1, rows + 1):
        for c in range(1, cols + 1):
            picture = _noise(w, h, r * 100 + c)
            image.paste(picture, (border + (c - 1) * (w + gutter), border + (r - 1) * (h + gutter)))
            cells[(r, c)] = picture
    return image, cells


@pytest.mark.parametrize(("cols", "rows", "cell", "gutter", "border"), [
    (4, 4, (30, 30), 6, 4),           # gutters and a border
    (3, 2, (41, 27), 9, 0),           # gutters, no border, odd sizes
    (4, 3, (25, 25), 1, 1),           # one-pixel gutters
    (4, 4, (32, 32), 0, 0),           # no gutters: the equal division
    (3, 3, (33, 31), 0, 0),
])
def test_slicing_is_exact_to_the_pixel(cols: int, rows: int, cell: tuple[int, int], gutter: int, border: int) -> None:
    image, cells = _grid(cols, rows, cell, gutter, border, background=(250, 250, 248))
    for (r, c), picture in cells.items():
        sliced = crop_cell(image, cols, rows, c, r)
        assert sliced.size == picture.size, (r, c, cell_box(image, cols, rows, c, r))
        assert sliced.tobytes() == picture.tobytes(), (r, c)


def test_a_fixed_trim_cuts_that_many_pixels_from_every_equal_cell() -> None:
    image, _cells = _grid(4, 2, (40, 40), 0, 0)
    assert cell_box(image, 4, 2, 2, 1, trim=5) == (45, 5, 75, 35)
    assert crop_cell(image, 4, 2, 4, 2, trim=0).size == (40, 40)


def test_a_cell_derivation_cuts_the_cell_first_then_resizes() -> None:
    image, cells = _grid(2, 2, (20, 20), 4, 2)
    source = io.BytesIO()
    image.save(source, "PNG")
    out = derive(source.getvalue(), Derivation(format="png", cell=Cell(2, 2, col=2, row=1)))
    with Image.open(io.BytesIO(out)) as opened:
        assert opened.convert("RGB").tobytes() == cells[(1, 2)].tobytes()
    small = derive(source.getvalue(), Derivation(format="png", resize=(10, 10), cell=Cell(2, 2, col=1, row=2)))
    with Image.open(io.BytesIO(small)) as opened:
        assert opened.size == (10, 10)
    # The cell is part of the derivation key; outputs without one keep their keys.
    assert "cell" not in Derivation(format="png").fields()
    assert Derivation(format="png", cell=Cell(2, 2, 1, 1)).fields()["cell"] == {
        "cols": 2, "rows": 2, "col": 1, "row": 1, "trim": "auto"}


def test_the_cells_of_one_grid_image_are_decoded_and_sliced_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each cell is a target of its own, derived in a call of its own: the grid image must not be
    decoded and searched for gutters once per cell (a 4×4 grid at 2K took 6–9 s that way)."""
    from assetgen.images import derive as derive_module

    image, cells = _grid(4, 4, (20, 18), 3, 2)
    source = io.BytesIO()
    image.save(source, "PNG")
    decodes = []
    real = derive_module._decode
    monkeypatch.setattr(derive_module, "_decode", lambda data: decodes.append(1) or real(data))
    for (r, c), picture in cells.items():
        out = derive(source.getvalue(), Derivation(format="png", cell=Cell(4, 4, col=c, row=r)))
        with Image.open(io.BytesIO(out)) as opened:
            assert opened.convert("RGB").tobytes() == picture.tobytes(), (r, c)
    assert len(decodes) == 1
    # Taken cells leave the memo: the same cell again is sliced afresh, and still exact.
    again = derive(source.getvalue(), Derivation(format="png", cell=Cell(4, 4, col=2, row=3)))
    with Image.open(io.BytesIO(again)) as opened:
        assert opened.convert("RGB").tobytes() == cells[(3, 2)].tobytes()
    assert len(decodes) == 2


@pytest.mark.parametrize("size", [(1, 1), (7, 5), (33, 64), (65, 17)])
def test_gutter_lines_are_max_minus_min_of_each_line_on_rgb(size: tuple[int, int]) -> None:
    rng = random.Random(size[0] * 97 + size[1])
    w, h = size
    image = Image.new("RGBA", (w, h))
    # Few colours close together, so some lines are within the tolerance and some are not; alpha varies
    # and is ignored (a gutter is judged on its colour).
    image.putdata([(200 + rng.randrange(0, 8) * rng.randrange(0, 3), 200, 190 + rng.randrange(0, 14),
                    rng.randrange(256)) for _ in range(w * h)])
    rgb = image.convert("RGB")
    columns = [max(max(ch) - min(ch) for ch in zip(*(rgb.getpixel((x, y)) for y in range(h)), strict=True))
               <= GUTTER_TOLERANCE for x in range(w)]
    rows = [max(max(ch) - min(ch) for ch in zip(*(rgb.getpixel((x, y)) for x in range(w)), strict=True))
            <= GUTTER_TOLERANCE for y in range(h)]
    assert gutter_lines(image, 0) == columns and gutter_lines(rgb, 0) == columns
    assert gutter_lines(image, 1) == rows and gutter_lines(image.convert("L"), 1) == [
        max(ch) - min(ch) <= GUTTER_TOLERANCE for ch in (
            [image.convert("L").getpixel((x, y)) for x in range(w)] for y in range(h))]


GRID = """\
[targets.icons]
prompt = "a fantasy item icon, flat colours"
grid = [4, 4]
outputs = [
  { output = "icons/r{row}c{col}.png" },
  { output = "icons/small/{name}.png", resize = [16, 16] },
]

[targets.hero]
action = "edit"
prompt = "hold this item"
references = ["@icons.r2c3"]
"""


def test_a_4x4_grid_is_one_submission_sliced_into_16_cells(tmp_path: Path) -> None:
    manifest = write_manifest(tmp_path, GRID)
    with emulator() as gateway:
        plan = run(manifest, gateway, "plan")
        assert "icons (4×4 grid, 16 cells)  generate     $0.0319  new target ($0.002 per cell)" in plan.output, \
            plan.output
        result = run(manifest, gateway, "build")
        assert result.exit_code == 0, result.output
        grids = [s for s in gateway.submissions if s["prompt"].startswith("A grid")]
        assert len(grids) == 1 and len(gateway.submissions) == 2       # the grid, then the edit
        assert grids[0]["prompt"] == f"{layout_sentence(4, 4)} a fantasy item icon, flat colours"
        lock = tomllib.loads((tmp_path / "assets.lock").read_text())["targets"]
        sources = {o["source"] for r in range(1, 5) for c in range(1, 5) for o in lock[f"icons.r{r}c{c}"]["outputs"]}
        assert len(sources) == 1 and len({lock[f"icons.r{r}c1"]["key"] for r in range(1, 5)}) == 1
        source = list((tmp_path / ".assetgen/objects").rglob(f"{sources.pop()}*"))
        with Image.open(source[0]) as opened:
            whole = opened.convert("RGBA")
        for r in range(1, 5):
            for c in range(1, 5):
                with Image.open(tmp_path / f"out/icons/r{r}c{c}.png") as cell:
                    assert cell.convert("RGBA").tobytes() == crop_cell(whole, 4, 4, c, r).tobytes()
                assert _size(tmp_path / f"out/icons/small/icons.r{r}c{c}.png") == (16, 16)
        again = run(manifest, gateway, "build", "icons.r2c3")
        assert "Nothing to build" in again.output and len(gateway.submissions) == 2


def test_a_grid_reads_as_one_generation_in_plan_build_and_savings(tmp_path: Path) -> None:
    """Cells of one grid are one generation: one plan line and one build line, not 15 "shared" targets,
    and no "saved" as if each cell would have cost a generation. Another grid with the same key does
    share it, and says so as any other target does (its savings counted once)."""
    twin = GRID.split("[targets.hero]")[0].replace("[targets.icons]", "[targets.twins]").replace(
        '"icons/', '"twins/')
    manifest = write_manifest(tmp_path, GRID.split("[targets.hero]")[0])
    with emulator() as gateway:
        plan = run(manifest, gateway, "plan")
        assert plan.output.count("\n  ") == 1 and "share" not in plan.output, plan.output
        assert "Total: $0.0319 for 1 image\n" in plan.output, plan.output
        items = {t["name"]: t for t in json.loads(run(manifest, gateway, "plan", "--json").output)["targets"]}
        assert len(items) == 16                                         # one item per cell, as before
        assert items["icons.r1c1"]["grid"] == {"target": "icons", "cols": 4, "rows": 4, "cells": 16,
                                               "label": "icons (4×4 grid, 16 cells)", "paid_by": "icons.r1c1",
                                               "cost_per_cell": 0.001992}
        assert items["icons.r4c4"]["grid"]["paid_by"] == "icons.r1c1" and items["icons.r4c4"]["action"] == "share"

        build = run(manifest, gateway, "build")
        assert build.exit_code == 0, build.output
        lines = [line for line in build.output.splitlines() if line.startswith("icons")]
        assert all(line.startswith("icons (4×4 grid, 16 cells): ") for line in lines), build.output
        assert [line for line in lines if ": built" in line][0].endswith(") $0.0319") and \
            sum(": built" in line for line in lines) == 1, build.output
        assert "shared" not in build.output and "by reusing images" not in build.output, build.output
        assert "saved $0.00;" in build.output
        assert "Done: 1 built (a grid counts once: 16 cells of 1 grid). Spent $0.0319." in build.output

        # Restored from the cache: one line, and the grid's price saved once.
        (tmp_path / "assets.lock").unlink()
        restored = run(manifest, gateway, "build", "--json")
        assert json.loads(restored.stdout)["saved"] == 0.031875, restored.output      # one image, not 16

        (tmp_path / "two").mkdir()
        manifest = write_manifest(tmp_path / "two", GRID.split("[targets.hero]")[0] + "\n" + twin)
        plan = run(manifest, gateway, "plan")
        assert "twins (4×4 grid, 16 cells)  share           free  new target (shares with icons.r1c1: paid once)" \
            in plan.output, plan.output
        build = run(manifest, gateway, "build")
        assert "twins (4×4 grid, 16 cells): shared (shares with icons.r1c1: paid once)" in build.output, build.output
        assert "saved $0.0319 by reusing images" in build.output and len(gateway.submissions) == 2


def _size(path: Path) -> tuple[int, int]:
    with Image.open(path) as opened:
        return opened.size


def test_the_offline_placeholder_draws_the_grid_so_slicing_shows(tmp_path: Path) -> None:
    manifest = write_manifest(tmp_path, GRID)
    with emulator() as gateway:
        result = run(manifest, gateway, "build", "--offline")
        assert result.exit_code == 0, result.output
        assert gateway.submissions == []
    # 512 px / 4 = 128 px cells, each drawn inside an 8 px white gutter: the slices lose the gutters.
    for r, c in ((1, 1), (2, 3), (4, 4)):
        w, h = _size(tmp_path / f"out/icons/r{r}c{c}.png")
        assert 108 <= w <= 116 and 108 <= h <= 116, (r, c, w, h)
        with Image.open(tmp_path / f"out/icons/r{r}c{c}.png") as cell:
            corner = cell.convert("RGB").getpixel((w // 2, 3))
        assert corner != (255, 255, 255)           # the cell's own placeholder, not the gutter


@pytest.mark.parametrize(("extra", "field", "message"), [
    ('matrix = { item = ["a", "b"] }', "grid", "a target is a grid or a matrix, never both"),
    ("grid_trim = 4", "grid_trim", None),
    ("n = 2", "n", "a grid is one image"),
    ('[targets.icons.rows."r1c1"]\nseed = 3', "rows", "cannot override"),
])
def test_grid_errors_name_the_field_and_line(tmp_path: Path, extra: str, field: str, message: str | None) -> None:
    body = GRID.split("[targets.hero]")[0]
    grid = "grid = [4, 4]\n"
    body = body + extra + "\n" if extra.startswith("[") else body.replace(grid, f"{grid}{extra}\n")
    if field == "grid_trim":
        body = body.replace("grid = [4, 4]\n", "")
        message = "grid_trim applies to a grid target"
    manifest = write_manifest(tmp_path, body)
    with emulator() as gateway:
        result = run(manifest, gateway, "plan")
    assert result.exit_code == 2, result.output
    assert f"target 'icons', field '{field}'" in result.output and message in result.output, result.output
    assert "assets.toml:" in result.output


@pytest.mark.parametrize("override", ['[targets.icons.rows."r1c1"]\nseed = 3', '[targets.icons]\nrows.r1c1.seed = 3'])
def test_a_grid_rows_override_is_reported_at_its_own_line(tmp_path: Path, override: str) -> None:
    body = GRID.split("[targets.hero]")[0] + "\n# an override a grid cannot take\n"
    if override.startswith("[targets.icons]\n"):        # a dotted key in the target's own table
        body = body.replace('prompt = "a fantasy', override.split("\n")[1] + '\nprompt = "a fantasy')
    else:
        body += override + "\n"
    manifest = write_manifest(tmp_path, body)
    lines = manifest.read_text().splitlines()
    line = next(i for i, text in enumerate(lines, start=1) if "r1c1" in text and "{" not in text)
    with emulator() as gateway:
        result = run(manifest, gateway, "plan")
    assert result.exit_code == 2, result.output
    assert f"assets.toml:{line}: target 'icons', field 'rows': a grid's cells share one generation" in result.output, \
        result.output


def test_a_grid_prompt_may_not_vary_by_cell_and_outputs_know_only_row_col_name(tmp_path: Path) -> None:
    manifest = write_manifest(tmp_path, GRID.replace("a fantasy item icon", "icon {row}").split("[targets.hero]")[0])
    with emulator() as gateway:
        result = run(manifest, gateway, "plan")
        assert result.exit_code == 2 and "a grid's cells share one prompt" in result.output, result.output
        manifest = write_manifest(tmp_path, GRID.replace("r{row}c{col}", "{item}").split("[targets.hero]")[0])
        result = run(manifest, gateway, "plan")
        assert result.exit_code == 2 and "unknown placeholder {item}" in result.output, result.output
        manifest = write_manifest(tmp_path, GRID.replace("grid = [4, 4]", "grid = [1, 1]"))
        result = run(manifest, gateway, "plan")
        assert result.exit_code == 2 and "is one cell" in result.output, result.output
