"""Sprite sheets: the packer, the metadata engines read, and ``[sheets.NAME]`` in a build.

The TexturePacker reader below is written from the format's documentation (TexturePacker's "JSON
(Hash)" / "JSON (Array)" as Phaser's ``Textures.Parsers.JSONHash``/``JSONArray`` and PixiJS read them:
``frames`` by name or a list with ``filename``; each ``frame`` the rectangle in the sheet, swapped
w/h when ``rotated``; ``spriteSourceSize``/``sourceSize`` for trimmed frames; ``meta.size`` the sheet's
size and ``meta.image`` its file beside the JSON), not from our writer.
"""

from __future__ import annotations

import hashlib
import io
import json
import random
import re
import tomllib
from pathlib import Path

import pytest
from PIL import Image

from assetgen.images import sheets as packer
from helpers.online import emulator, run, write_manifest


# -- a reference reader of the TexturePacker JSON format ---------------------------------------------------

def read_texturepacker(text: str, folder: Path) -> tuple[Image.Image, dict[str, tuple[int, int, int, int]]]:
    """(the sheet image, frame name → (x, y, w, h) as displayed), as a Phaser/PixiJS loader reads them."""
    data = json.loads(text)
    assert "frames" in data, "missing 'frames'"
    meta = data["meta"]
    image = _open(folder / meta["image"])
    assert (meta["size"]["w"], meta["size"]["h"]) == image.size
    assert float(meta["scale"]) == 1.0
    raw = data["frames"]
    items = raw.items() if isinstance(raw, dict) else [(f["filename"], f) for f in raw]
    frames: dict[str, tuple[int, int, int, int]] = {}
    for name, src in items:
        x, y, w, h = (src["frame"][k] for k in ("x", "y", "w", "h"))
        if src["rotated"]:
            w, h = h, w
        if src["trimmed"]:
            assert src["spriteSourceSize"]["w"] == w
        else:
            assert src["sourceSize"] == {"w": w, "h": h}
            assert src["spriteSourceSize"] == {"x": 0, "y": 0, "w": w, "h": h}
        assert 0 <= x and 0 <= y and x + w <= image.width and y + h <= image.height
        frames[name] = (x, y, w, h)
    return image, frames


def _open(source: Path | bytes) -> Image.Image:
    """The decoded image (RGBA), its file closed."""
    with Image.open(io.BytesIO(source) if isinstance(source, bytes) else source) as opened:
        return opened.convert("RGBA")


def _png(w: int, h: int, seed: int) -> bytes:
    rng = random.Random(seed)
    image = Image.new("RGBA", (w, h))
    image.putdata([(rng.randrange(256), rng.randrange(256), rng.randrange(256), 255) for _ in range(w * h)])
    out = io.BytesIO()
    image.save(out, "PNG")
    return out.getvalue()


def _overlap(a: tuple[int, int, int, int], b: tuple[int, int, int, int], pad: int) -> bool:
    ax, ay, aw, ah = a
    bx, by, bw, bh = b
    return ax < bx + bw + pad and bx < ax + aw + pad and ay < by + bh + pad and by < ay + ah + pad


def test_packed_metadata_equals_the_rectangles_and_pixels_equal_the_members(tmp_path: Path) -> None:
    rng = random.Random(7)
    sizes = {f"f{i:02d}": (rng.randrange(4, 40), rng.randrange(4, 40)) for i in range(23)}
    images = {name: _png(w, h, i) for i, (name, (w, h)) in enumerate(sizes.items())}
    frames = [packer.Frame(name, w, h, group="walk" if name < "f10" else "") for name, (w, h) in sizes.items()]
    packing = packer.pack(frames, padding=2, max_size=512)
    rects = {p.frame.name: (p.x, p.y, p.frame.width, p.frame.height) for p in packing.placed}
    assert set(rects) == set(sizes)
    names = sorted(rects)
    for i, a in enumerate(names):                      # no overlap, padding kept
        for b in names[i + 1:]:
            assert not _overlap(rects[a], rects[b], 2), (a, b)
    (tmp_path / "sheet.png").write_bytes(packer.compose(packing, images))
    for writer in (packer.texturepacker_hash, packer.texturepacker_array):
        sheet, read = read_texturepacker(writer(packing, "sheet.png"), tmp_path)
        assert read == rects
    sheet = _open(tmp_path / "sheet.png")
    for name, (x, y, w, h) in rects.items():
        member = _open(images[name])
        assert sheet.crop((x, y, x + w, y + h)).tobytes() == member.tobytes(), name
    plain = json.loads(packer.plain_json(packing, "sheet.png"))
    assert {n: (r["x"], r["y"], r["w"], r["h"]) for n, r in plain["frames"].items()} == rects
    assert plain["groups"]["walk"] == [f"f{i:02d}" for i in range(10)]
    tres = packer.godot_sprite_frames(packing, "res://sheet.png")
    regions = [tuple(map(int, m)) for m in re.findall(r"region = Rect2\((\d+), (\d+), (\d+), (\d+)\)", tres)]
    assert sorted(regions) == sorted(rects.values())
    assert tres.startswith('[gd_resource type="SpriteFrames"') and 'name": &"walk"' in tres


def test_packing_is_deterministic_and_power_of_two() -> None:
    frames = [packer.Frame(f"a{i}", 10 + i, 30 - i) for i in range(9)]
    one = packer.pack(frames, padding=1, power_of_two=True)
    two = packer.pack(list(reversed(frames)), padding=1, power_of_two=True)
    assert one == two
    assert one.width & (one.width - 1) == 0 and one.height & (one.height - 1) == 0
    assert max(one.width, one.height) <= 128      # squarish, not one long strip


def test_frames_that_do_not_fit_max_size_are_refused() -> None:
    with pytest.raises(packer.TooBig, match="do not fit in 64×64"):
        packer.pack([packer.Frame(f"x{i}", 40, 40) for i in range(4)], max_size=64)


# -- [sheets.NAME] in a project ----------------------------------------------------------------------

SHEET = """\
[targets.icon]
prompt = "A {item} icon"
matrix = { item = ["sword", "shield", "bow"] }
outputs = [
  { output = "icons/{item}.png", resize = [40, 40] },
  { output = "icons/{item}@16.png", resize = [16, 16] },
]

[sheets.icons]
members = ["icon"]
output = "sheets/icons.png"
member_output = 0
padding = 2
metadata = ["texturepacker-hash", "texturepacker-array", "godot", "json"]
"""


def _frames_on_disk(root: Path) -> dict[str, tuple[int, int, int, int]]:
    image, frames = read_texturepacker((root / "out/sheets/icons.json").read_text(), root / "out/sheets")
    for name, (x, y, w, h) in frames.items():
        member = _open(root / f"out/icons/{name.split('.')[1]}.png")
        assert image.crop((x, y, x + w, y + h)).tobytes() == member.tobytes(), name
    return frames


def test_a_sheet_is_built_recorded_and_rebuilt_when_a_member_changes_with_no_submission(tmp_path: Path) -> None:
    manifest = write_manifest(tmp_path, SHEET)
    with emulator() as gateway:
        first = run(manifest, gateway, "build")
        assert first.exit_code == 0, first.output
        assert "Sheets made: icons" in first.output
        assert len(gateway.submissions) == 3
        frames = _frames_on_disk(tmp_path)
        assert set(frames) == {"icon.sword", "icon.shield", "icon.bow"}
        assert {(w, h) for _x, _y, w, h in frames.values()} == {(40, 40)}
        lock = tomllib.loads((tmp_path / "assets.lock").read_text())
        assert {o["path"] for o in lock["sheets"]["icons"]["outputs"]} == {
            "out/sheets/icons.png", "out/sheets/icons.json", "out/sheets/icons.array.json",
            "out/sheets/icons.tres", "out/sheets/icons.frames.json"}
        assert "up to date" in run(manifest, gateway, "plan").output
        assert run(manifest, gateway, "plan", "--check").exit_code == 0

        # A member's output changes (a free re-derivation): the sheet is stale, then remade.
        manifest.write_text(manifest.read_text().replace("resize = [40, 40]", "resize = [24, 24]"))
        plan = run(manifest, gateway, "plan")
        assert "sheet icons" in plan.output and "stale" in plan.output, plan.output
        second = run(manifest, gateway, "build")
        assert second.exit_code == 0, second.output
        assert "Sheets made: icons" in second.output
        assert len(gateway.submissions) == 3                    # nothing submitted
        assert {(w, h) for _x, _y, w, h in _frames_on_disk(tmp_path).values()} == {(24, 24)}

        # Only the sheet changed (member_output): no target is stale, the build remakes the sheet.
        manifest.write_text(manifest.read_text().replace("member_output = 0", 'member_output = "@16.png"'))
        third = run(manifest, gateway, "build")
        assert "Sheets made: icons" in third.output and len(gateway.submissions) == 3
        data = json.loads((tmp_path / "out/sheets/icons.json").read_text())
        assert {f["frame"]["w"] for f in data["frames"].values()} == {16}

        # A deleted sheet file is remade; a removed sheet leaves its files to prune.
        (tmp_path / "out/sheets/icons.tres").unlink()
        assert "icons.tres missing" in run(manifest, gateway, "plan").output
        assert "Sheets made: icons" in run(manifest, gateway, "build").output
        manifest.write_text(manifest.read_text().split("[sheets.icons]")[0])
        assert run(manifest, gateway, "build").exit_code == 0
        assert "sheets" not in tomllib.loads((tmp_path / "assets.lock").read_text())
        pruned = run(manifest, gateway, "prune")
        assert pruned.exit_code == 0, pruned.output
        assert not (tmp_path / "out/sheets/icons.png").exists()


def test_offline_build_makes_the_sheet(tmp_path: Path) -> None:
    manifest = write_manifest(tmp_path, SHEET)
    with emulator() as gateway:
        result = run(manifest, gateway, "build", "--offline")
        assert result.exit_code == 0, result.output
        assert "Sheets made: icons" in result.output
        _frames_on_disk(tmp_path)
        assert gateway.submissions == []


@pytest.mark.parametrize(("sheet", "field", "message"), [
    ('members = ["icon.axe"]\noutput = "s.png"', "members",
     "[sheets.bad] member 'icon.axe' is not a target"),
    ('members = ["icon"]\noutput = "icons/sword.png"', "output",
     "[sheets.bad] writes 'out/icons/sword.png', which target 'icon.sword' also writes"),
    ('members = ["icon"]\noutput = "s.png"\nmetadata = ["spine"]', "metadata",
     "unknown metadata format 'spine'"),
    ('members = ["icon"]\noutput = "s.jpg"', "output", "'s.jpg' must be a .png path"),
    ('tags = ["nope"]\noutput = "s.png"', "tags", "no target has tag 'nope'"),
    ('members = ["icon"]\noutput = "s.png"\nmember_output = 3', "member_output", "has only 2 output(s)"),
    ('members = ["icon"]\noutput = "s.png"\npading = 2', "pading",
     "unknown field 'pading' (did you mean 'padding'?)"),
])
def test_bad_sheet_tables_are_errors_with_lines(tmp_path: Path, sheet: str, field: str, message: str) -> None:
    body = SHEET.split("[sheets.icons]")[0] + "[sheets.bad]\n" + sheet + "\n"
    manifest = write_manifest(tmp_path, body)
    lines = manifest.read_text().splitlines()
    line = next(i for i, text in enumerate(lines, start=1) if text.startswith(f"{field} ="))
    with emulator() as gateway:
        result = run(manifest, gateway, "build", "--offline")
        assert result.exit_code == 2, result.output
        assert f"assets.toml:{line}: field '{field}'" in result.output and message in result.output, result.output
        assert not (tmp_path / "out").exists()


def test_an_unknown_member_lists_grid_and_matrix_names_once(tmp_path: Path) -> None:
    body = (SHEET.split("[sheets.icons]")[0] + '[targets.potions]\nprompt = "a potion"\ngrid = [4, 4]\n'
            'output = "potions/{name}.png"\n\n[targets.hero]\nprompt = "a hero"\n\n'
            '[sheets.bad]\nmembers = ["potion"]\noutput = "s.png"\n')
    manifest = write_manifest(tmp_path, body)
    with emulator() as gateway:
        result = run(manifest, gateway, "plan")
    assert result.exit_code == 2, result.output
    assert ("member 'potion' is not a target (did you mean 'potions'?) and matches none (names, matrix or grid "
            "names, globs like 'icon.*'); known targets: icon (matrix, 3 rows), potions (grid, 16 cells), hero\n"
            ) in result.output, result.output
    assert ".r1c1" not in result.output and "icon.sword" not in result.output


def test_two_sheets_may_not_write_the_same_file(tmp_path: Path) -> None:
    body = SHEET + '\n[sheets.again]\nmembers = ["icon.*"]\noutput = "sheets/icons.png"\n'
    manifest = write_manifest(tmp_path, body)
    with emulator() as gateway:
        result = run(manifest, gateway, "plan")
        assert result.exit_code == 2
        assert "[sheets.again] writes 'out/sheets/icons.png', which sheet 'icons' also writes" in result.output


def test_a_sheet_too_big_for_max_size_is_a_manifest_error_before_anything_is_paid(tmp_path: Path) -> None:
    manifest = write_manifest(tmp_path, SHEET.replace("padding = 2", "padding = 2\nmax_size = 64"))
    line = manifest.read_text().splitlines().index("max_size = 64") + 1
    with emulator() as gateway:
        for command in ("plan", "build"):
            result = run(manifest, gateway, command)
            assert result.exit_code == 2, result.output
            assert (f"assets.toml:{line}: field 'max_size': [sheets.icons] cannot hold its frames: 3 frames of "
                    f"40×40 px, 2 px apart need at least 90×90, more than max_size = 64; raise max_size or reduce "
                    f"frames") in result.output, result.output
        assert gateway.submissions == []
        assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(("body", "max_size", "need"), [
    # No resize: the model's size (1:1 at 0.5K is 512 px; a served image may be 5 % smaller).
    ('[targets.icon]\nprompt = "an icon"\noutput = "icon.png"\n', 400, "487×487"),
    # Grid cells: 487 / 4 ≥ 121 px, less at most a quarter of a cell on each side (auto trim): 61 px.
    ('[targets.icon]\nprompt = "an icon"\ngrid = [4, 4]\noutput = "icon/{name}.png"\n', 200, "244×244"),
    ('[targets.icon]\nprompt = "an icon"\ngrid = [4, 4]\ngrid_trim = 4\noutput = "icon/{name}.png"\n', 400, "452×452"),
])
def test_frame_sizes_known_before_building_are_checked_at_load(tmp_path: Path, body: str, max_size: int,
                                                                need: str) -> None:
    manifest = write_manifest(tmp_path, body + f'\n[sheets.icons]\nmembers = ["icon"]\noutput = "s.png"\n'
                                              f'max_size = {max_size}\n')
    with emulator() as gateway:
        result = run(manifest, gateway, "plan")
    assert result.exit_code == 2, result.output
    assert f"need at least {need}, more than max_size = {max_size}" in result.output, result.output


def test_a_sheet_that_does_not_fit_after_the_build_is_a_sheet_error_not_a_manifest_one(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Auto-trimmed grid cells may be as small as half a cell, so the load lets this sheet through; the
    placeholder's cells are about 112 px (8 px gutters), which do not fit: the generation is kept, the sheet
    is reported with its line, and nothing claims that nothing was built."""
    manifest = write_manifest(tmp_path, '[targets.icon]\nprompt = "an icon"\ngrid = [4, 4]\n'
                                        'output = "icon/{name}.png"\n\n[sheets.icons]\nmembers = ["icon"]\n'
                                        'output = "s.png"\nmax_size = 300\n')
    line = manifest.read_text().splitlines().index("max_size = 300") + 1
    monkeypatch.chdir(tmp_path)
    with emulator() as gateway:
        assert run(manifest, gateway, "plan").exit_code == 0
        result = run(manifest, gateway, "build", "--offline")
    assert result.exit_code == 1, result.output
    assert "nothing was built" not in result.output and "problem in the manifest" not in result.output
    assert re.search(rf"Error: sheet 'icons' not made: 16 frames of (up to )?1\d\d×1\d\d px need at least \d+×\d+, "
                     rf"more than max_size = 300 \(assets.toml:{line}\); raise max_size", result.output), result.output
    lock = tomllib.loads((tmp_path / "assets.lock").read_text())
    assert len(lock["targets"]) == 16 and "sheets" not in lock
    assert (tmp_path / "out/icon/icon.r4c4.png").exists() and not (tmp_path / "out/s.png").exists()


def test_too_big_says_what_would_fit() -> None:
    with pytest.raises(packer.TooBig) as caught:
        packer.pack([packer.Frame(f"x{i}", 40, 40) for i in range(4)], max_size=64)
    assert caught.value.need == 80 and "they need at least 80×80" in str(caught.value)
    assert "px²" not in str(caught.value)
    packer.pack([packer.Frame(f"x{i}", 40, 40) for i in range(4)], max_size=80)


@pytest.mark.slow          # a real `assetgen watch` process
def test_watch_remakes_a_sheet_when_a_member_is_rebuilt(tmp_path: Path) -> None:
    import os
    import signal
    import subprocess
    import sys

    from helpers.online import env_for, wait_for

    manifest = write_manifest(tmp_path, SHEET)
    log = tmp_path.parent / f"{tmp_path.name}-watch.log"
    with emulator(latency=0.05) as gateway, open(log, "w") as out:
        proc = subprocess.Popen([sys.executable, "-m", "assetgen", "-f", str(manifest), "watch", "--settle", "0.2"],
                                env={**os.environ, **env_for(gateway)}, stdout=out, stderr=subprocess.STDOUT,
                                text=True)
        try:
            wait_for(lambda: "Sheets made: icons" in log.read_text())
            manifest.write_text(manifest.read_text().replace('"A {item} icon"', '"A shiny {item} icon"'))
            wait_for(lambda: log.read_text().count("Sheets made: icons") == 2 and len(gateway.submissions) == 6)
            lock = tomllib.loads((tmp_path / "assets.lock").read_text())
            png = next(o for o in lock["sheets"]["icons"]["outputs"] if o["path"].endswith(".png"))
            assert png["sha256"] == hashlib.sha256((tmp_path / "out/sheets/icons.png").read_bytes()).hexdigest()
        finally:
            proc.send_signal(signal.SIGINT)
            proc.wait(timeout=15)
