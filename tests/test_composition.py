"""Issue 17, items 1–5: styles compose (lists, ``extends``), ``prompt_template``/``style_joiner``,
``[output_sets.NAME]``, matrix axes with per-value fields and ``{choose:NAME}``, ``n > 1`` with outputs.

Resolved through ``loader.parse`` (pass 1–3, no subprocess). Keys of existing manifests are proven
unchanged by ``test_keys_golden``; here the new features' precedence, order and errors, field by field.
"""

from __future__ import annotations

import hashlib
import re
import time
from pathlib import Path

import pytest
from helpers.core import merged_toml_blocks
from helpers.project import ProjectDir

from assetgen.errors import ManifestError
from assetgen.manifest.loader import parse
from assetgen.manifest.model import Manifest
from assetgen.manifest.resolve import compose_prompt

HEAD = """\
[settings]
out_dir = "out"

[defaults]
model = "gemini-3.1-flash-image-preview"
resolution = "0.5K"
"""


def load(tmp_path: Path, body: str, profile: str | None = None, head: str = HEAD) -> Manifest:
    (tmp_path / "refs").mkdir(exist_ok=True)
    for name in ("d", "t", "a", "b", "c", "v", "r", "p"):
        (tmp_path / "refs" / f"{name}.png").write_bytes(b"\x89PNG\r\n\x1a\n" + name.encode())
    return parse(head + body, tmp_path / "assets.toml", shown="assets.toml", profile=profile)


def problems(tmp_path: Path, body: str) -> list[tuple[str | None, str | None, int | None, str]]:
    with pytest.raises(ManifestError) as caught:
        load(tmp_path, body)
    return [(p.target, p.field, p.line, p.message) for p in caught.value.problems]


def line_of(body: str, marker: str = "# HERE") -> int:
    lines = (HEAD + body).splitlines()
    return next(number for number, text in enumerate(lines, 1) if marker in text)


# -- 1. precedence: defaults < styles in order < target < value fields < row override < profile ------------

LAYERS = ("defaults", "style_a", "style_b", "target", "value", "row", "profile")


def layered(field: str, values: dict[str, str], top: str) -> str:
    """A manifest where every layer up to ``top`` sets ``field`` (TOML ``values[layer]``)."""
    on = set(LAYERS[:LAYERS.index(top) + 1])

    def line(layer: str) -> str:
        return f"{field} = {values[layer]}\n" if layer in on else ""
    return (f"{line('defaults')}\n[styles.a]\n{line('style_a')}\n[styles.b]\n{line('style_b')}\n"
            f"[profiles.p]\n{line('profile')}\n"
            f'[targets.t]\nprompt = "x {{kind}}"\nstyle = ["a", "b"]\n{line("target")}'
            f'[targets.t.matrix.kind.big]\n{line("value")}\n[targets.t.matrix.kind.small]\n'
            f'[targets.t.rows."big"]\n{line("row")}\n')


FIELDS = {
    "seed": {"defaults": "1", "style_a": "2", "style_b": "3", "target": "4", "value": "5", "row": "6",
             "profile": "7"},
    "aspect_ratio": {"defaults": '"1:1"', "style_a": '"2:3"', "style_b": '"3:2"', "target": '"3:4"',
                     "value": '"4:3"', "row": '"16:9"', "profile": '"9:16"'},
    "google_search": {"defaults": "true", "style_a": "false", "style_b": "true", "target": "false",
                      "value": "true", "row": "false", "profile": "true"},
    "resolution": {"defaults": '"0.5K"', "style_a": '"1K"', "style_b": '"2K"', "target": '"4K"',
                   "value": '"1K"', "row": '"2K"', "profile": '"0.5K"'},
}


@pytest.mark.parametrize("top", LAYERS)
@pytest.mark.parametrize("field", list(FIELDS))
def test_the_most_specific_layer_sets_each_field(tmp_path: Path, field: str, top: str) -> None:
    values = FIELDS[field]
    head = HEAD.replace('resolution = "0.5K"\n', "")
    manifest = load(tmp_path, layered(field, values, top), profile="p" if top == "profile" else None, head=head)
    got = getattr(manifest.targets["t.big"], field)
    expected = values[top].strip('"')
    assert str(got).lower() == expected.lower()
    # The other row has no value table or row override: the layer under them decides.
    below = [layer for layer in LAYERS[:LAYERS.index(top) + 1] if layer not in ("value", "row")][-1]
    assert str(getattr(manifest.targets["t.small"], field)).lower() == values[below].strip('"').lower()


@pytest.mark.parametrize(("body", "expected"), [
    # defaults' references unless the target has its own; styles' follow, in style order.
    ('[styles.a]\nreferences = ["refs/a.png"]\n[styles.b]\nreferences = ["refs/b.png"]\n'
     '[targets.t]\nprompt = "x"\nstyle = ["a", "b"]\n', ["refs/d.png", "refs/a.png", "refs/b.png"]),
    ('[styles.a]\nreferences = ["refs/a.png"]\n[styles.b]\nreferences = ["refs/b.png"]\n'
     '[targets.t]\nprompt = "x"\nstyle = ["b", "a"]\nreferences = ["refs/t.png"]\n',
     ["refs/t.png", "refs/b.png", "refs/a.png"]),
    # extends: the parent's before the child's, each style once.
    ('[styles.a]\nreferences = ["refs/a.png"]\n[styles.c]\nreferences = ["refs/c.png"]\n'
     '[styles.b]\nextends = ["c", "a"]\nreferences = ["refs/b.png"]\n'
     '[targets.t]\nprompt = "x"\nstyle = ["a", "b"]\nreferences = []\n', ["refs/a.png", "refs/c.png", "refs/b.png"]),
    # A value's references replace the target's own; styles' still follow.
    ('[styles.a]\nreferences = ["refs/a.png"]\n[targets.t]\nprompt = "x {k}"\nstyle = "a"\n'
     'references = ["refs/t.png"]\n[targets.t.matrix.k.one]\nreferences = ["refs/v.png"]\n',
     ["refs/v.png", "refs/a.png"]),
    # A row override's replace the value's.
    ('[styles.a]\nreferences = ["refs/a.png"]\n[targets.t]\nprompt = "x {k}"\nstyle = "a"\n'
     '[targets.t.matrix.k.one]\nreferences = ["refs/v.png"]\n[targets.t.rows."one"]\nreferences = ["refs/r.png"]\n',
     ["refs/r.png", "refs/a.png"]),
])
def test_references_order(tmp_path: Path, body: str, expected: list[str]) -> None:
    head = HEAD + 'references = ["refs/d.png"]\n'
    manifest = load(tmp_path, body, head=head)
    target, = manifest.targets.values()
    assert [r.raw for r in target.references] == expected


def test_a_profiles_references_replace_every_layers(tmp_path: Path) -> None:
    body = ('[styles.a]\nreferences = ["refs/a.png"]\n[profiles.p]\nreferences = ["refs/p.png"]\n'
            '[targets.t]\nprompt = "x"\nstyle = "a"\nreferences = ["refs/t.png"]\n')
    assert [r.raw for r in load(tmp_path, body, profile="p").targets["t"].references] == ["refs/p.png"]


def test_tags_add_up_over_styles_and_openai_merges_key_by_key(tmp_path: Path) -> None:
    body = ('[styles.a]\ntags = ["a"]\nopenai = { quality = "low" }\n'
            '[styles.b]\ntags = ["b"]\nopenai = { background = "opaque" }\n'
            '[targets.t]\nprompt = "x"\nstyle = ["a", "b"]\ntags = ["t"]\nprovider = "openai"\n'
            'model = "gpt-image-1-mini"\nresolution = "1K"\n')
    target = load(tmp_path, body).targets["t"]
    assert target.tags == ("a", "b", "t")
    assert dict(target.openai).items() >= {"quality": "low", "background": "opaque"}.items()


# -- 2. the prompt's shape ------------------------------------------------------------------------------

@pytest.mark.parametrize(("styles", "extra", "expected"), [
    ('style = "a"', "", "A knight\n\nink lines"),                                  # today's composition
    ('style = ["a", "b"]', "", "A knight\n\nink lines\n\npastel colours"),          # default joiner
    ('style = ["b", "a"]', 'style_joiner = ", "', "A knight\n\npastel colours, ink lines"),
    ('style = ["a", "b"]', 'prompt_template = "{style}, {prompt}"\nstyle_joiner = ", "',
     "ink lines, pastel colours, A knight"),
    ('style = "c"', "", "A knight\n\nink lines\n\nwhite background"),           # extends: the parent first
    ("", 'prompt_template = "{style}, {prompt}"', "A knight"),                 # no style: no stray separator
    ("", 'prompt_template = "{prompt}. Game art"', "A knight. Game art"),
])
def test_prompt_template_and_joiner(tmp_path: Path, styles: str, extra: str, expected: str) -> None:
    body = ('[styles.a]\nprompt = " ink lines "\n[styles.b]\nprompt = "pastel colours"\n'
            '[styles.c]\nextends = "a"\nprompt = "white background"\n'
            f'[targets.t]\nprompt = "A knight"\n{styles}\n{extra}\n')
    assert load(tmp_path, body).targets["t"].prompt == expected


def test_the_default_template_is_todays_composition() -> None:
    for prompt, style in [("A knight", "pastel"), ("  A {x} ", " ink "), ("A", None), ("A", ""), ("A", "   ")]:
        old = prompt.replace("{x}", "v").strip()
        if style:
            old = f"{old}\n\n{style.strip()}"
        assert compose_prompt(prompt, style, {"x": "v"}) == old


@pytest.mark.parametrize(("where", "expected"), [
    ("settings", "S: x"), ("defaults", "D: x"), ("style", "Y: x"), ("target", "T: x"), ("profile", "P: x"),
])
def test_prompt_template_precedence(tmp_path: Path, where: str, expected: str) -> None:
    order = ["settings", "defaults", "style", "target", "profile"]
    on = order[:order.index(where) + 1]

    def t(layer: str, letter: str) -> str:
        return f'prompt_template = "{letter}: {{prompt}}"\n' if layer in on else ""
    head = HEAD.replace('out_dir = "out"\n', 'out_dir = "out"\n' + t("settings", "S")) + t("defaults", "D")
    body = (f"[styles.y]\n{t('style', 'Y')}[profiles.p]\n{t('profile', 'P')}"
            f'[targets.t]\nprompt = "x"\nstyle = "y"\n{t("target", "T")}')
    target = load(tmp_path, body, profile="p" if where == "profile" else None, head=head).targets["t"]
    assert target.prompt == expected


# -- 3. output sets -------------------------------------------------------------------------------------

SETS = """
[output_sets.icons]
outputs = [
  { output = "icons/{name}.png" },
  { output = "icons/{width}/{name}.png", resize = [256, 256] },
  { output = "icons/{item}-{width}x{height}.webp", resize = [64, 32] },
]
[output_sets.full]
outputs = [{ output = "full/{name}-{width}x{height}.png" }]
"""


def test_an_output_set_in_a_matrix_fills_name_axes_and_sizes(tmp_path: Path) -> None:
    body = SETS + ('[targets.icon]\nprompt = "A {item}"\nmatrix = { item = ["sword", "shield"] }\n'
                   'outputs = "icons"\n[targets.hero]\nprompt = "A hero"\naspect_ratio = "3:4"\noutputs = "full"\n')
    manifest = load(tmp_path, body)
    assert manifest.targets["icon.sword"].output_paths == (
        "out/icons/icon.sword.png", "out/icons/256/icon.sword.png", "out/icons/sword-64x32.webp")
    assert [o.derivation.resize for o in manifest.targets["icon.shield"].outputs] == [None, (256, 256), (64, 32)]
    width, height = manifest.targets["hero"].size            # no resize: the generated image's size
    assert manifest.targets["hero"].output_paths == (f"out/full/hero-{width}x{height}.png",)


SMALL_SETS = '[output_sets.icons]\noutputs = [{ output = "icons/{name}.png" }, ' \
    '{ output = "icons/{width}/{name}.png", resize = [256, 256] }]\n'


@pytest.mark.parametrize(("layer", "profile"), [("defaults", None), ("style", None), ("profile", "p")])
def test_defaults_a_style_or_a_profile_name_the_output_set(tmp_path: Path, layer: str, profile: str | None) -> None:
    uses = 'outputs = "icons"\n'
    head = HEAD + (uses if layer == "defaults" else "")
    body = (SMALL_SETS + "[styles.s]\n" + (uses if layer == "style" else "")
            + "[profiles.p]\n" + (uses if layer == "profile" else "")
            + '[targets.sword]\nprompt = "A sword"\nstyle = "s"\n'
            + '[targets.own]\nprompt = "own output"\nstyle = "s"\noutput = "own.png"\n')
    manifest = load(tmp_path, body, profile=profile, head=head)
    folder = "out/p" if profile else "out"
    assert manifest.targets["sword"].output_paths == (f"{folder}/icons/sword.png", f"{folder}/icons/256/sword.png")
    # A target's own output beats inherited sets; a profile's set beats everything.
    assert manifest.targets["own"].output_paths == (
        (f"{folder}/icons/own.png", f"{folder}/icons/256/own.png") if profile else ("out/own.png",))


# -- 4. matrix value tables and {choose:…} ---------------------------------------------------------------

CROSSED = """
[targets.icon]
prompt = "{subject.clause}, {rendering.how}, {choose:composition}"
output = "icons/{subject}/{rendering}.png"

[targets.icon.choices]
composition = ["centred", "three-quarter view", "close-up"]

[targets.icon.matrix.subject.robot]
clause = "a small robot"
seed = 11

[targets.icon.matrix.subject.cat]
clause = "a sleeping cat"
aspect_ratio = "3:4"

[targets.icon.matrix.rendering.ink]
how = "ink lines"

[targets.icon.matrix.rendering.oil]
how = "oil paint"
colours = ["red", "ochre"]
"""


def expected_choice(row: str) -> str:
    items = ["centred", "three-quarter view", "close-up"]
    return items[int.from_bytes(hashlib.sha256(row.encode()).digest()[:8], "big") % len(items)]


def test_value_fields_fill_placeholders_and_override_target_fields(tmp_path: Path) -> None:
    manifest = load(tmp_path, CROSSED)
    assert manifest.groups["icon"] == ["icon.robot.ink", "icon.robot.oil", "icon.cat.ink", "icon.cat.oil"]
    robot = manifest.targets["icon.robot.oil"]
    assert robot.prompt == f"a small robot, oil paint, {expected_choice('icon.robot.oil')}"
    assert (robot.seed, robot.aspect_ratio) == (11, "1:1")
    cat = manifest.targets["icon.cat.ink"]
    assert (cat.seed, cat.aspect_ratio) == (-1, "3:4")
    assert cat.output_paths == ("out/icons/cat/ink.png",)


def test_choose_is_the_sha256_of_the_row_name_modulo_the_list(tmp_path: Path) -> None:
    body = ('[targets.t]\nprompt = "{choose:c}"\nmatrix = { n = ' + str([str(i) for i in range(40)]).replace("'", '"')
            + ' }\n[targets.t.choices]\nc = ["a", "b", "c", "d", "e"]\n[targets.plain]\nprompt = "{choose:c}"\n'
            '[targets.plain.choices]\nc = ["a", "b", "c"]\n')
    first = load(tmp_path, body)
    for name, target in first.targets.items():
        items = ["a", "b", "c"] if name == "plain" else ["a", "b", "c", "d", "e"]
        index = int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big") % len(items)
        assert target.prompt == items[index]
    assert len({t.prompt for t in first.targets.values()}) == 5          # spread over the list
    assert {n: t.prompt for n, t in load(tmp_path, body).targets.items()} == \
        {n: t.prompt for n, t in first.targets.items()}
    assert "plain" not in first.groups


def test_list_fields_join_and_plain_axes_mix_with_tables(tmp_path: Path) -> None:
    body = ('[targets.icon]\nprompt = "{subject.clause} in {subject.colours}, {rendering}"\n'
            '[targets.icon.matrix]\nrendering = ["ink", "oil"]\n'
            '[targets.icon.matrix.subject.robot]\nclause = "a robot"\ncolours = ["teal", "red"]\n')
    manifest = load(tmp_path, body)
    assert manifest.targets["icon.oil.robot"].prompt == "a robot in teal, red, oil"
    assert list(manifest.targets) == ["icon.ink.robot", "icon.oil.robot"]


def test_row_override_beats_value_fields_and_value_prompt_beats_target(tmp_path: Path) -> None:
    body = CROSSED + ('\n[targets.icon.rows."robot.ink"]\nseed = 99\n'
                      '[targets.icon.matrix.subject.dog]\nclause = "a dog"\n'
                      'prompt = "A dog drawn with {rendering.how}"\n')
    manifest = load(tmp_path, body)
    assert manifest.targets["icon.robot.ink"].seed == 99
    assert manifest.targets["icon.robot.oil"].seed == 11
    assert manifest.targets["icon.dog.oil"].prompt == "A dog drawn with oil paint"


# -- 5. n > 1 with outputs ------------------------------------------------------------------------------

def test_n_with_an_output_set_writes_every_image(tmp_path: Path) -> None:
    body = ('[output_sets.v]\noutputs = [{ output = "{name}-{i}.png" }, { output = "small/{name}-{i}.png", '
            'resize = [32, 32] }]\n[targets.coin]\nprompt = "A coin"\nn = 3\noutputs = "v"\n'
            '[targets.pick]\nprompt = "A gem"\ncandidates = 3\npick = 2\noutputs = "v"\n')
    manifest = load(tmp_path, body)
    coin = manifest.targets["coin"]
    assert [(o.path, o.source) for o in coin.outputs] == [
        ("out/coin-1.png", 0), ("out/coin-2.png", 1), ("out/coin-3.png", 2),
        ("out/small/coin-1.png", 0), ("out/small/coin-2.png", 1), ("out/small/coin-3.png", 2)]
    assert coin.n == 3 and coin.unit_price * coin.n == pytest.approx(3 * coin.unit_price)
    gem = manifest.targets["pick"]                        # candidates: only the picked one is written
    assert [(o.path, o.source, o.derivation.pick) for o in gem.outputs] == [
        ("out/pick-1.png", 1, 2), ("out/small/pick-1.png", 1, 2)]


def test_n_images_are_priced_and_planned_per_image(empty_project: ProjectDir) -> None:
    empty_project.write(HEAD + '[output_sets.v]\noutputs = [{ output = "{name}-{i}.png" }]\n'
                        '[targets.coin]\nprompt = "A coin"\nn = 3\noutputs = "v"\n'
                        '[targets.one]\nprompt = "A coin"\n')
    items = empty_project.items()
    assert items["coin"]["cost"] == pytest.approx(3 * items["one"]["cost"])
    assert len(items["coin"]["outputs"]) == 3


# -- errors, with lines ---------------------------------------------------------------------------------

ERRORS = [
    ("cycle", '[styles.a]\nextends = "b"  # HERE\n[styles.b]\nextends = "a"\n[targets.t]\nprompt = "x"\nstyle = "a"\n',
     (None, "extends", "styles extend each other in a cycle: a -> b -> a")),
    ("unknown-style-in-list", '[styles.a]\n[targets.t]\nprompt = "x"\nstyle = ["a", "pastl"]  # HERE\n',
     ("t", "style", "unknown style 'pastl'")),
    ("unknown-extends", '[styles.a]\nextends = ["nope"]  # HERE\n[targets.t]\nprompt = "x"\nstyle = "a"\n',
     (None, "extends", "[styles.a] extends unknown style 'nope'")),
    ("unknown-output-set", SETS + '[targets.t]\nprompt = "x"\noutputs = "icon"  # HERE\n',
     ("t", "outputs", "unknown output set 'icon' (did you mean 'icons'?); output sets: icons, full")),
    ("unknown-output-set-in-style",
     SETS + '[styles.s]\noutputs = "nope"  # HERE\n[targets.t]\nprompt = "x"\nstyle = "s"\n',
     ("t", "outputs", "unknown output set 'nope'")),
    ("missing-i", '[output_sets.v]\noutputs = [{ output = "{name}.png" }]\n[targets.t]\nprompt = "x"\nn = 2\n'
     'outputs = "v"  # HERE\n', ("t", "outputs", "n = 2 writes 2 images through each output, so each path needs {i}")),
    ("missing-i-own", '[targets.t]\nprompt = "x"\nn = 2\noutputs = [{ output = "a.png" }]  # HERE\n',
     ("t", "outputs", "'a.png', e.g. 'a-{i}.png'")),
    ("bad-choose", '[targets.t]\nprompt = "{choose:pose}"  # HERE\n[targets.t.choices]\nposes = ["a"]\n',
     ("t", "prompt", "{choose:pose}: no list 'pose' in this target's choices (did you mean 'poses'?); lists: poses")),
    ("bare-choose", '[targets.t]\nprompt = "{choose}"  # HERE\n', ("t", "prompt", "{choose} needs a list's name")),
    ("unknown-axis-field", CROSSED.replace("{rendering.how}", "{rendering.hue}").replace(
        "{choose:composition}\"\n", "{choose:composition}\"  # HERE\n"),
     ("icon", "prompt", "unknown placeholder {rendering.hue}; values of axis 'rendering' have: colours, how")),
    ("field-on-some-values", CROSSED.replace("{rendering.how}", "{rendering.colours}").replace(
        "{choose:composition}\"\n", "{choose:composition}\"  # HERE\n"),
     ("icon", "prompt", "{rendering.colours}: value(s) ink of axis 'rendering' have no field 'colours'")),
    ("field-of-plain-axis", '[targets.t]\nprompt = "{k.x}"  # HERE\nmatrix = { k = ["a"] }\n',
     ("t", "prompt", "the values of axis 'k' are plain; write them as tables")),
    ("bad-template", '[targets.t]\nprompt = "x"\nprompt_template = "{style} {item}"  # HERE\n',
     ("t", "prompt_template", "may use {prompt} (required) and {style} only")),
    ("value-field-type", '[targets.t]\nprompt = "{k}"\n[targets.t.matrix.k.a]\nx = { y = 1 }  # HERE\n',
     ("t", "matrix", "matrix.k.a: field 'x' is dict")),
]


@pytest.mark.parametrize(("body", "expected"), [e[1:] for e in ERRORS], ids=[e[0] for e in ERRORS])
def test_errors_name_target_field_and_line(tmp_path: Path, body: str, expected: tuple[str | None, str, str]) -> None:
    target, field, says = expected
    found = problems(tmp_path, body)
    matching = [p for p in found if says in p[3]]
    assert matching, found
    got_target, got_field, got_line, _message = matching[0]
    assert (got_target, got_field) == (target, field)
    assert got_line == line_of(body), found


def test_a_template_typo_is_reported_once_per_table_that_sets_it(tmp_path: Path) -> None:
    body = ('prompt_template = "{style}, {promt}"  # HERE\n'
            '[styles.s]\nprompt = "ink"\nprompt_template = "{stlye} {prompt}"  # STYLE\n'
            + "".join(f'[targets.t{i}]\nprompt = "x"\n' for i in range(8))
            + '[targets.u1]\nprompt = "y"\nstyle = "s"\n[targets.u2]\nprompt = "z"\nstyle = "s"\n')
    found = problems(tmp_path, body)
    assert found == [
        (None, "prompt_template", line_of(body), "[defaults] '{style}, {promt}': unknown placeholder {promt} "
         "(did you mean {prompt}?); a template may use {prompt} (required) and {style} only; matrix values go "
         "into the prompt itself"),
        (None, "prompt_template", line_of(body, "# STYLE"), "[styles.s] '{stlye} {prompt}': unknown placeholder "
         "{stlye} (did you mean {style}?); a template may use {prompt} (required) and {style} only; matrix "
         "values go into the prompt itself")]


def test_a_mistyped_output_set_placeholder_points_at_the_sets_row(tmp_path: Path) -> None:
    body = ('[output_sets.icon_sizes]\noutputs = [\n  { output = "icons/{name}.png" },\n'
            '  { output = "icons/{widht}/{name}.png", resize = [256, 256] },  # HERE\n]\n\n'
            '[targets.a]\nprompt = "x"\noutputs = "icon_sizes"\n[targets.b]\nprompt = "y"\noutputs = "icon_sizes"\n')
    found = problems(tmp_path, body)
    assert found == [("a", "outputs", line_of(body), "[output_sets.icon_sizes] unknown placeholder {widht} "
                      "(did you mean {width}?); an output path may use {name}, {width}, {height}, {i}; "
                      "matrix axes: none (this target has no matrix)")]


def test_a_wrong_type_in_a_matrix_value_field_is_one_error_at_its_line(tmp_path: Path) -> None:
    body = CROSSED.replace('seed = 11', 'seed = "eleven"  # HERE')
    assert "# HERE" in body
    found = problems(tmp_path, body)
    assert found == [("icon", "matrix", line_of(body), "matrix.subject.robot: field 'seed' should be a valid "
                      "integer (got 'eleven')")]


def test_a_cycle_is_exit_2_on_the_command_line(empty_project: ProjectDir) -> None:
    empty_project.write(HEAD + '[styles.a]\nextends = "a"\n[targets.t]\nprompt = "x"\nstyle = "a"\n')
    result = empty_project.run("plan")
    assert result.exit_code == 2
    assert re.search(r"assets\.toml:\d+: field 'extends': \[styles\.a\] styles extend each other in a cycle: a -> a",
                     result.output), result.output


# -- keys: composed spellings of the same targets keep their keys ------------------------------------------

def test_a_composed_manifest_keeps_the_keys_of_the_one_it_replaces(empty_project: ProjectDir) -> None:
    old = HEAD + ('[styles.s]\nprompt = "ink"\nseed = 3\n'
                  '[targets.a]\nprompt = "A robot"\nstyle = "s"\noutputs = [{ output = "a.png" }, '
                  '{ output = "small/a.png", resize = [64, 64] }]\n'
                  '[targets.b]\nprompt = "A cat"\nstyle = "s"\naspect_ratio = "3:4"\noutputs = [{ output = "b.png" }, '
                  '{ output = "small/b.png", resize = [64, 64] }]\n')
    new = HEAD + ('outputs = "two"\n[output_sets.two]\noutputs = [{ output = "{name}.png" }, '
                  '{ output = "small/{name}.png", resize = [64, 64] }]\n'
                  '[styles.base]\nseed = 3\n[styles.s]\nextends = "base"\nprompt = "ink"\n'
                  '[targets.a]\nprompt = "A robot"\nstyle = "s"\n'
                  '[targets.b]\nprompt = "A cat"\nstyle = "s"\naspect_ratio = "3:4"\n')
    empty_project.write(old)
    before = {n: (i["key"], i["outputs"]) for n, i in empty_project.items().items()}
    empty_project.write(new)
    assert {n: (i["key"], i["outputs"]) for n, i in empty_project.items().items()} == before


# -- scale: a crossed three-axis matrix plans quickly (figure printed; no timing assertion) ----------------

def crossed(subjects: int, renderings: int, palettes: int) -> str:
    parts = ['[targets.art]\nprompt = "{subject.clause}, {rendering.how}, {palette.colours}, {choose:c}"\n'
             'outputs = "sizes"\n[targets.art.choices]\nc = ["centred", "close-up", "wide"]\n']
    parts += [f'[targets.art.matrix.subject.s{i}]\nclause = "subject {i}"\n' for i in range(subjects)]
    parts += [f'[targets.art.matrix.rendering.r{i}]\nhow = "rendering {i}"\nseed = {i}\n' for i in range(renderings)]
    parts += [f'[targets.art.matrix.palette.p{i}]\ncolours = ["c{i}", "d{i}"]\n' for i in range(palettes)]
    return ('[output_sets.sizes]\noutputs = [{ output = "{subject}/{rendering}-{palette}.png" }, '
            '{ output = "{subject}/{width}/{rendering}-{palette}.png", resize = [128, 128] }]\n' + "".join(parts))


def test_a_crossed_three_axis_matrix_of_hundreds_of_rows_plans(empty_project: ProjectDir) -> None:
    empty_project.write(HEAD + crossed(12, 6, 5))
    started = time.perf_counter()
    items = empty_project.items()
    took = time.perf_counter() - started
    assert len(items) == 360 and len({i["key"] for i in items.values()}) == 360
    print(f"\n360-row crossed matrix (12 × 6 × 5, 720 outputs): plan --json in {took * 1000:.0f} ms")


# -- explain: where each piece of the prompt came from ------------------------------------------------------

def test_explain_shows_the_composed_prompt_and_its_sources(empty_project: ProjectDir) -> None:
    empty_project.write(HEAD + 'prompt_template = "{style}, {prompt}"\nstyle_joiner = ", "\n'
                        '[styles.base]\nprompt = "isometric game icon"\n[styles.ink]\nextends = "base"\n'
                        'prompt = "ink lines"\n' + CROSSED.replace('output = "icons/{subject}/{rendering}.png"',
                                                                    'output = "icons/{subject}/{rendering}.png"\n'
                                                                    'style = "ink"'))
    out = empty_project.ok("explain", "icon.robot.ink").output
    choice = expected_choice("icon.robot.ink")
    assert f"  prompt     isometric game icon, ink lines, a small robot, ink lines, {choice}\n" in out
    assert ('  from       {prompt} from [targets.icon] prompt: "{subject.clause}, {rendering.how}, '
            '{choose:composition}"\n') in out
    for line in ['{style} from [styles.base] prompt: "isometric game icon"',
                 '{style} from [styles.ink] prompt: "ink lines"',
                 'prompt_template from [defaults]: "{style}, {prompt}"',
                 f'{{choose:composition}} = "{choice}"  ([targets.icon.choices] composition)',
                 '{subject.clause} = "a small robot"  ([targets.icon.matrix.subject.robot] clause)',
                 '{rendering.how} = "ink lines"  ([targets.icon.matrix.rendering.ink] how)']:
        assert f"             {line}\n" in out, out


# -- the README's composition snippets are a working manifest ---------------------------------------------

def test_the_readmes_composition_snippets_resolve_as_described(tmp_path: Path) -> None:
    from assetgen.manifest.loader import assemble
    from assetgen.manifest.positions import LineIndex

    text = (Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8")
    section = text.split("### Composition:", 1)[1].split("\n## ", 1)[0]
    data = merged_toml_blocks(section, {"settings": {"out_dir": "out"}})
    (tmp_path / "refs").mkdir()
    (tmp_path / "refs" / "palette.png").write_bytes(b"\x89PNG\r\n\x1a\n")
    manifest = assemble(data, LineIndex(""), tmp_path / "assets.toml", "README", None)
    shield = manifest.targets["shield"]
    assert shield.prompt == ("isometric game icon, soft light, ink outlines, at night, deep blue shadows, "
                             "A round wooden shield")
    assert shield.output_paths == ("out/icons/shield.png", "out/icons/256/shield.png", "out/icons/64/shield.png")
    assert len(manifest.groups["card"]) == 6 and manifest.targets["card.robot.ink"].seed == 11
    assert manifest.targets["card.cat.oil"].prompt.startswith("a sleeping cat, thick oil paint, ")
    assert len(manifest.targets["coin"].outputs) == 6
