"""manifest.resolve (through ``loader.parse``): field precedence defaults < style < target < profile,
prompt composition, references order, and matrix expansion."""

from __future__ import annotations

from pathlib import Path

import pytest

from assetgen.errors import ManifestError
from assetgen.manifest.loader import parse
from assetgen.manifest.model import Manifest

HEAD = """\
[settings]
out_dir = "out"

[defaults]
model = "gemini-3.1-flash-image-preview"
resolution = "0.5K"
aspect_ratio = "1:1"
seed = 1
"""


def load(tmp_path: Path, body: str, profile: str | None = None) -> Manifest:
    for name in ("a.png", "b.png", "c.png"):
        (tmp_path / "refs").mkdir(exist_ok=True)
        (tmp_path / "refs" / name).write_bytes(b"\x89PNG\r\n\x1a\n" + name.encode())
    return parse(HEAD + body, tmp_path / "assets.toml", shown="assets.toml", profile=profile)


STYLED = """\
[styles.pastel]
prompt = "flat pastel colours"
aspect_ratio = "3:4"
seed = 2
references = ["refs/b.png"]

[profiles.draft]
seed = 4

[targets.hero]
prompt = "A knight"
style = "pastel"
seed = 3
references = ["refs/a.png"]

[targets.plain]
prompt = "A plain picture"
"""


def test_builtin_defaults_fill_what_nothing_sets(tmp_path: Path) -> None:
    plain = load(tmp_path, STYLED).targets["plain"]
    assert (plain.action, plain.n, plain.google_search, plain.official_fallback) == ("generate", 1, False, False)
    assert (plain.aspect_ratio, plain.resolution, plain.seed) == ("1:1", "0.5K", 1)     # [defaults]


def test_style_overrides_defaults_and_the_target_overrides_the_style(tmp_path: Path) -> None:
    hero = load(tmp_path, STYLED).targets["hero"]
    assert hero.aspect_ratio == "3:4"               # style over defaults
    assert hero.seed == 3                           # target over style
    assert hero.resolution == "0.5K"                # defaults where neither sets it
    assert hero.style == "pastel" and hero.style_digest


def test_the_profile_overrides_everything_and_moves_outputs(tmp_path: Path) -> None:
    manifest = load(tmp_path, STYLED, profile="draft")
    assert manifest.targets["hero"].seed == 4 and manifest.targets["plain"].seed == 4
    assert manifest.targets["hero"].output_paths == ("out/draft/hero.jpg",)
    assert load(tmp_path, STYLED).targets["hero"].output_paths == ("out/hero.jpg",)


def test_the_prompt_is_the_targets_then_a_blank_line_then_the_styles(tmp_path: Path) -> None:
    manifest = load(tmp_path, STYLED)
    assert manifest.targets["hero"].prompt == "A knight\n\nflat pastel colours"
    assert manifest.targets["plain"].prompt == "A plain picture"


def test_a_styles_references_follow_the_targets_own(tmp_path: Path) -> None:
    hero = load(tmp_path, STYLED).targets["hero"]
    assert [r.raw for r in hero.references] == ["refs/a.png", "refs/b.png"]
    assert [r.kind for r in hero.references] == ["file", "file"]


def test_a_profiles_references_replace_them_all(tmp_path: Path) -> None:
    body = STYLED.replace("[profiles.draft]\nseed = 4", '[profiles.draft]\nreferences = ["refs/c.png"]')
    assert [r.raw for r in load(tmp_path, body, profile="draft").targets["hero"].references] == ["refs/c.png"]


def test_an_unknown_profile_is_an_error_naming_the_known_ones(tmp_path: Path) -> None:
    with pytest.raises(ManifestError, match="unknown profile 'final'.*draft"):
        load(tmp_path, STYLED, profile="final")


def test_an_error_from_a_default_names_where_it_was_set(tmp_path: Path) -> None:
    body = '[styles.big]\nresolution = "0.5K"\n\n[targets.t]\nprompt = "x"\nstyle = "big"\n' \
           'model = "gemini-3-pro-image-preview"\n'
    with pytest.raises(ManifestError) as caught:
        load(tmp_path, body)
    problem, = caught.value.problems
    assert (problem.target, problem.field) == ("t", "resolution")
    assert "set in [styles.big]" in problem.message and problem.line == 10


MATRIX = """\
[targets.icon]
prompt = "A {item} icon made of {tier}"
matrix = { item = ["sword", "shield"], tier = ["wood", "iron"] }
output = "icons/{item}-{tier}.png"
references = ["refs/{item}.png"]

[targets.user]
prompt = "uses one row"
references = ["@icon.shield.iron"]
"""


def test_a_matrix_expands_to_one_target_per_row_in_axis_order(tmp_path: Path) -> None:
    (tmp_path / "refs").mkdir()
    for item in ("sword", "shield"):
        (tmp_path / "refs" / f"{item}.png").write_bytes(b"\x89PNG\r\n\x1a\n" + item.encode())
    manifest = load(tmp_path, MATRIX)
    rows = ["icon.sword.wood", "icon.sword.iron", "icon.shield.wood", "icon.shield.iron"]
    assert manifest.groups == {"icon": rows}
    assert list(manifest.targets)[:4] == rows
    row = manifest.targets["icon.shield.iron"]
    assert row.prompt == "A shield icon made of iron"
    assert row.output_paths == ("out/icons/shield-iron.png",)
    assert [r.value for r in row.references] == ["refs/shield.png"]
    assert row.base == "icon"
    assert manifest.targets["user"].upstream == ("icon.shield.iron",)
    assert manifest.expand(["icon", "user"]) == rows + ["user"]
    assert manifest.select(["user"]) == ["icon.shield.iron", "user"]


def test_a_matrix_value_in_an_output_must_be_one_path_component(tmp_path: Path) -> None:
    body = MATRIX.replace('"shield"]', '"../shield"]').replace('references = ["refs/{item}.png"]\n', "")
    body = body.replace("@icon.shield.iron", "@icon.sword.iron")
    with pytest.raises(ManifestError, match="matrix|'..'|component|/"):
        load(tmp_path, body)


def test_targets_come_out_in_dependency_order(tmp_path: Path) -> None:
    body = '[targets.down]\nprompt = "d"\nreferences = ["@up"]\n\n[targets.up]\nprompt = "u"\n'
    assert list(load(tmp_path, body).targets) == ["up", "down"]


def test_a_dependency_cycle_is_named(tmp_path: Path) -> None:
    body = '[targets.a]\nprompt = "a"\nreferences = ["@b"]\n\n[targets.b]\nprompt = "b"\nreferences = ["@a"]\n'
    with pytest.raises(ManifestError, match=r"dependency cycle: @a -> @b -> @a"):
        load(tmp_path, body)
