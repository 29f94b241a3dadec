"""Issue 17 item 7, migration help: ``assetgen fmt`` puts a manifest in one documented normal form
(comments kept, idempotent, ``--check`` like black's, keys never change), and ``assetgen lint``
suggests the styles and output sets that would say a repeated thing once (suggestions only)."""

from __future__ import annotations

import json
import shutil
import textwrap
from pathlib import Path

import pytest
from helpers.project import MANIFEST, ProjectDir

from assetgen.commands.fmt import format_text
from assetgen.commands.lint import lint_data
from assetgen.engine.project import Project

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = sorted(ROOT.glob("examples/*/assets.toml"))

MESSY = '''\
# A messy manifest: every rule of the normal form has something to do here.


[settings]
  out_dir='out'      # indented, literal string
jobs=2# no space before this comment
'budget' = 1.5



[defaults]
resolution = "0.5K"
tags = [ 'ui' ,"icons" ]
[styles.flat]
prompt = 'flat colours, "quoted" words stay literal'
resize = [ 64,64 ]

# the hero leads
[targets."hero"]
prompt = """
A knight   \\n with trailing spaces kept inside the prompt:   
line two"""   
key_out = {color="#ffffff",tolerance=12}
outputs = [
  { output = "hero.png" },   # the full size
  {output='hero@64.png',resize=[64,64]},
]
[targets.hero.rows]
'''

NORMAL = '''\
# A messy manifest: every rule of the normal form has something to do here.

[settings]
out_dir = "out"      # indented, literal string
jobs = 2  # no space before this comment
budget = 1.5

[defaults]
resolution = "0.5K"
tags = ["ui", "icons"]

[styles.flat]
prompt = 'flat colours, "quoted" words stay literal'
resize = [64, 64]

# the hero leads
[targets.hero]
prompt = """
A knight   \\n with trailing spaces kept inside the prompt:   
line two"""
key_out = { color = "#ffffff", tolerance = 12 }
outputs = [
  { output = "hero.png" },   # the full size
  { output = "hero@64.png", resize = [64, 64] },
]

[targets.hero.rows]
'''


def keys_of(path: Path) -> dict[str, str]:
    project = Project.open(path)
    try:
        return {name: keyed.key for name, keyed in project.keyed.items()}
    finally:
        project.close()


# -- fmt ---------------------------------------------------------------------------------------------

def test_fmt_gives_the_documented_normal_form() -> None:
    assert format_text(MESSY) == NORMAL


def test_fmt_is_idempotent_and_keeps_every_comment() -> None:
    once = format_text(MESSY)
    assert format_text(once) == once
    comments = [line.split("#", 1)[1] for line in MESSY.splitlines() if "# " in line and "#ffffff" not in line]
    assert comments and all(c in once for c in comments)


def test_fmt_keeps_multiline_strings_byte_for_byte() -> None:
    # Trailing spaces and blank lines inside a prompt are the prompt: never touched.
    text = 'x = """\nline   \n\n\n\nend  \n"""\n'
    assert format_text(text) == text


@pytest.mark.parametrize("manifest", [*EXAMPLES, ROOT / "assets.toml"], ids=lambda p: p.parent.name or "root")
def test_fmt_never_changes_keys_of_the_examples(manifest: Path, tmp_path: Path) -> None:
    folder = tmp_path / "copy"
    skip = shutil.ignore_patterns(".assetgen", "*.lock", "assets", "public", "out")
    if manifest.parent == ROOT:             # the repository's own manifest uses the examples' references
        folder.mkdir()
        shutil.copytree(ROOT / "examples", folder / "examples", ignore=skip)
        shutil.copy(manifest, folder)
    else:
        shutil.copytree(manifest.parent, folder, ignore=skip)
    copy = folder / manifest.name
    before = keys_of(copy)
    # A hostile layout of the same data: indented keys, no spaces, extra blank lines.
    messy = "\n\n".join("  " + line.replace(" = ", "=") if " = " in line and not line.startswith("#") else line
                        for line in copy.read_text(encoding="utf-8").split("\n"))
    for text in (copy.read_text(encoding="utf-8"), messy):
        copy.write_text(format_text(text), encoding="utf-8")
        assert keys_of(copy) == before


def test_fmt_never_changes_keys_of_the_test_manifest(project: ProjectDir) -> None:
    before = project.keys()
    project.write(MANIFEST.replace(" = ", "=").replace("\n[", "\n\n\n  ["))
    project.ok("fmt")
    assert project.keys() == before
    assert project.manifest.read_text() == format_text(MANIFEST)


@pytest.mark.parametrize("manifest", EXAMPLES, ids=lambda p: p.parent.name)
def test_bundled_examples_are_in_the_normal_form(manifest: Path) -> None:
    text = manifest.read_text(encoding="utf-8")
    assert format_text(text) == text, f"run `assetgen fmt {manifest.relative_to(ROOT)}`"


def test_inits_starter_manifest_passes_fmt_check(empty_project: ProjectDir) -> None:
    empty_project.ok("init")
    result = empty_project.run("fmt", "--check")
    assert result.exit_code == 0, result.output
    assert "1 file already formatted" in result.output


def readme_toml_blocks() -> list[tuple[int, str]]:
    """(line, text) of every ```toml block of the README."""
    import re

    text = (ROOT / "README.md").read_text(encoding="utf-8")
    return [(text[:m.start()].count("\n") + 2, m.group(1))
            for m in re.finditer(r"^```toml\n(.*?)^```", text, re.DOTALL | re.MULTILINE)]


# Blocks that are deliberately partial and cannot parse alone (none today: every block of the README is
# a TOML document by itself, so each one is checked as a document). Add one here, by its first line's
# text, only with the reason it cannot parse.
PARTIAL: dict[str, str] = {}


README_BLOCKS = readme_toml_blocks()


@pytest.mark.parametrize(("line", "block"), README_BLOCKS, ids=[f"README.md:{line}" for line, _b in README_BLOCKS])
def test_readme_toml_blocks_are_in_the_normal_form(line: int, block: str) -> None:
    import tomllib

    if block.splitlines()[0] in PARTIAL:
        with pytest.raises(tomllib.TOMLDecodeError):
            tomllib.loads(block)           # still partial: otherwise check it like the others
        return
    tomllib.loads(block)                   # a block that stops parsing must be listed in PARTIAL
    assert format_text(block) == block, f"README.md:{line}: the block is not in `assetgen fmt`'s normal form"


def test_fmt_check_exits_1_and_writes_nothing_then_fmt_writes(empty_project: ProjectDir) -> None:
    path = empty_project.write(MESSY)
    result = empty_project.run("fmt", "--check")
    assert result.exit_code == 1
    assert "would reformat assets.toml" in result.output
    assert path.read_text() == MESSY

    diff = empty_project.run("fmt", "--diff")
    assert diff.exit_code == 0 and "-  out_dir='out'" in diff.output and "+out_dir = \"out\"" in diff.output
    assert path.read_text() == MESSY

    done = empty_project.ok("fmt")
    assert "reformatted assets.toml" in done.output
    assert path.read_text() == NORMAL
    again = empty_project.ok("fmt", "--check")
    assert "1 file already formatted" in again.output


def test_fmt_takes_paths(empty_project: ProjectDir) -> None:
    other = empty_project.root / "icons.toml"
    other.write_text("a=1\n")
    empty_project.ok("fmt", "icons.toml")
    assert other.read_text() == "a = 1\n"


def test_fmt_of_broken_toml_is_an_error_with_its_line(empty_project: ProjectDir) -> None:
    empty_project.write("[settings]\njobs = = 2\n")
    result = empty_project.run("fmt")
    assert result.exit_code == 2
    assert "assets.toml:2" in result.output and "not valid TOML" in result.output
    assert "Traceback" not in result.output


# -- lint --------------------------------------------------------------------------------------------

ICONS = """\
[defaults]
resolution = "1K"

[targets.gem]
prompt = "A gem"

""" + "\n".join(f"""\
[targets.icon_{name}]
prompt = "high-res square game icon, single central symbol, {what}, plain dark background"
model = "gemini-3-pro-image-preview"
aspect_ratio = "1:1"
outputs = [
  {{ output = "icons/icon_{name}_1024.png", resize = [1024, 1024] }},
  {{ output = "icons/icon_{name}_64.png", resize = [64, 64] }},
]
""" for name, what in (("money", "coins"), ("compute", "a chip"), ("doom", "a red curve")))


def lint_json(project: ProjectDir) -> list[dict]:
    result = project.run("lint", "--json")
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)["suggestions"]


def test_lint_suggests_a_style_for_repeated_fields(empty_project: ProjectDir) -> None:
    path = empty_project.write(ICONS)
    found = {s["kind"]: s for s in lint_json(empty_project)}
    icons = ["icon_money", "icon_compute", "icon_doom"]
    # Not every target sets them (gem does not): a style, not [defaults]; merged with the prompt fragment.
    style = found["prompt"]
    assert style["targets"] == icons
    assert style["fields"]["model"] == "gemini-3-pro-image-preview" and style["fields"]["aspect_ratio"] == "1:1"
    assert "[styles.icon]" in style["toml"] and 'model = "gemini-3-pro-image-preview"' in style["toml"]
    assert path.read_text() == ICONS                            # suggestions only


def test_lint_prompt_fragment_composes_back_to_each_prompt(empty_project: ProjectDir) -> None:
    empty_project.write(ICONS)
    style = next(s for s in lint_json(empty_project) if s["kind"] == "prompt")
    fields = style["fields"]
    assert fields["prompt"] == "high-res square game icon, single central symbol"
    assert fields["prompt_template"] == "{style}, {prompt}"
    for name, rest in fields["prompts"].items():
        original = ICONS.split(f"[targets.{name}]\nprompt = \"")[1].split('"')[0]
        assert fields["prompt_template"].format(style=fields["prompt"], prompt=rest) == original


def test_lint_suggests_an_output_set_with_name_placeholders(empty_project: ProjectDir) -> None:
    empty_project.write(ICONS)
    sets = [s for s in lint_json(empty_project) if s["kind"] == "output_set"]
    assert len(sets) == 1
    rows = sets[0]["fields"]["outputs"]
    assert rows == [{"output": "icons/{name}_1024.png", "resize": [1024, 1024]},
                    {"output": "icons/{name}_64.png", "resize": [64, 64]}]
    assert sets[0]["name"] == "icon_sizes" and sets[0]["per_target"] == 'outputs = "icon_sizes"'
    assert "[output_sets.icon_sizes]" in sets[0]["toml"] and '"icons/{name}_64.png"' in sets[0]["toml"]
    for name in sets[0]["targets"]:                     # {name} gives every target's own rows back
        own = [dict(r, output=r["output"].replace("{name}", name)) for r in rows]
        assert own[1]["output"] == f"icons/{name}_64.png"


def test_lint_text_names_the_targets_and_prints_the_toml(empty_project: ProjectDir) -> None:
    empty_project.write(ICONS)
    result = empty_project.ok("lint")
    assert "suggestions (nothing was changed" in result.output
    assert "an output set 'icon_sizes' for 3 targets" in result.output
    assert "icon_money, icon_compute, icon_doom" in result.output
    assert '     [output_sets.icon_sizes]' in result.output
    assert 'then in each of those targets: outputs = "icon_sizes"' in result.output


def test_lint_suggests_defaults_when_every_target_repeats_a_field() -> None:
    data = {"targets": {n: {"prompt": f"p {n}", "aspect_ratio": "3:4"} for n in ("a", "b", "c", "d")}}
    (only,) = lint_data(data)
    assert only.kind == "defaults" and only.fields == {"aspect_ratio": "3:4"} and "[defaults]" in only.toml


def test_lint_never_moves_references_when_defaults_has_some() -> None:
    # A target's references replace the defaults'; a style's follow them: moving would change keys.
    targets = {n: {"prompt": f"p {n}", "references": ["refs/a.png"], "resize": [64, 64]} for n in "abcdef"}
    targets["g"] = {"prompt": "g"}
    with_defaults = lint_data({"defaults": {"references": ["refs/d.png"]}, "targets": targets})
    assert all("references" not in s.fields for s in with_defaults)
    assert lint_data({"targets": targets})[0].fields == {"references": ["refs/a.png"], "resize": [64, 64]}


def test_lint_with_nothing_repeated_says_so(project: ProjectDir) -> None:
    result = project.ok("lint")
    assert "nothing repeats enough" in result.output
    assert lint_json(project) == []


def test_lint_lists_a_suggested_style_after_a_targets_own() -> None:
    targets = {n: {"prompt": f"p {n}", "style": "flat", "resize": [64, 64]} for n in ("a", "b", "c", "d")}
    targets["e"] = {"prompt": "e"}
    (only,) = lint_data({"styles": {"flat": {"prompt": "flat"}}, "targets": targets})
    assert only.kind == "style" and only.name == "shared"
    assert 'style = ["flat", "shared"]' in only.per_target


def test_lint_text_is_a_suggestion_only(empty_project: ProjectDir) -> None:
    path = empty_project.write(textwrap.dedent(ICONS))
    before = path.read_bytes()
    assert empty_project.run("lint").exit_code == 0
    assert path.read_bytes() == before


def test_fmt_keeps_dotted_keys_dotted() -> None:
    # `x.is = …` inside a table (matrix values written one per line) stays a dotted key, not a new header.
    text = '[targets.t.matrix.asset]\nx.is = "1"\n  y.is="2"\n'
    assert format_text(text) == '[targets.t.matrix.asset]\nx.is = "1"\ny.is = "2"\n'


def test_lint_suggestions_applied_change_no_key_or_output(empty_project: ProjectDir) -> None:
    empty_project.write(ICONS)
    before = empty_project.items()
    found = lint_json(empty_project)
    style = next(s for s in found if s["kind"] == "prompt")
    output_set = next(s for s in found if s["kind"] == "output_set")
    applied = ['[defaults]\nresolution = "1K"\n', style["toml"], output_set["toml"],
               '[targets.gem]\nprompt = "A gem"\n']
    for name, rest in style["fields"]["prompts"].items():
        applied.append(f'[targets.{name}]\nstyle = "{style["name"]}"\nprompt = "{rest}"\n'
                       f'outputs = "{output_set["name"]}"\n')
    empty_project.write("\n".join(applied))
    after = empty_project.items()
    assert {n: (i["key"], i["outputs"]) for n, i in after.items()} == \
        {n: (i["key"], i["outputs"]) for n, i in before.items()}
    assert len(empty_project.manifest.read_text().splitlines()) <= len(ICONS.splitlines())   # 3 targets: even
