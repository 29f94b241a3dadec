"""Authoring at scale, end to end through the CLI: matrix targets, styles, profiles, candidates.

Offline builds (placeholders) where nothing is paid; the gateway emulator over real HTTP where the
claim is about what is paid (``emulator.submissions`` lists the accepted, i.e. paid, submissions).
Post-processing (resize, format, key_out, several outputs) is in ``test_derive.py``.
"""

from __future__ import annotations

import io
import re
import textwrap
import tomllib
from collections.abc import Iterator

import pytest
from PIL import Image

from assetgen.images.derive import Derivation, derive
from assetgen.testing.emulator import GatewayEmulator
from assetgen.state.store import Store

from helpers.images import make_image
from helpers.project import FLASH, PRO, ProjectDir
from helpers.online import emulator, env_for

HEAD = """\
[settings]
out_dir = "out"

[defaults]
model = "gemini-3.1-flash-image-preview"
resolution = "0.5K"
"""

ICONS = HEAD + """
[styles.pastel]
prompt = "flat pastel colours"
references = ["refs/palette.png"]

[targets.icon]
style = "pastel"
prompt = "A {item} icon made of {tier}"
matrix = { item = ["sword", "shield"], tier = ["wood", "iron"] }
references = ["refs/{item}.png"]

[targets.gem]
prompt = "A {colour} gem"
matrix = { colour = ["red", "blue"], size = [16, 32] }
output = "gems/{colour}@{size}.png"

[targets.hero]
action = "edit"
prompt = "A knight holding the sword"
references = ["@icon.sword.wood"]
"""

ROWS = ["icon.sword.wood", "icon.sword.iron", "icon.shield.wood", "icon.shield.iron"]


@pytest.fixture
def gateway() -> Iterator[GatewayEmulator]:
    with emulator() as emu:
        yield emu


@pytest.fixture
def icons(empty_project: ProjectDir) -> ProjectDir:
    make_image(empty_project.root / "refs" / "sword.png", (90, 90, 90))
    make_image(empty_project.root / "refs" / "shield.png", (20, 90, 20))
    empty_project.write(ICONS)
    return empty_project


def lock_of(p: ProjectDir, lock: str = "assets.lock") -> dict:
    return tomllib.loads((p.root / lock).read_text(encoding="utf-8"))["targets"]


def line_of(text: str, marker: str = "# HERE") -> int:
    lines = [n for n, line in enumerate(text.splitlines(), start=1) if marker in line]
    assert len(lines) == 1, f"marker {marker!r} must occur once"
    return lines[0]


def cached_images(p: ProjectDir, key: str) -> list[bytes]:
    """The generated images of ``key`` in the local cache, in order (the candidates)."""
    store = Store(p.cache)
    entry = store.index.lookup(key, placeholder_ok=True)
    assert entry is not None, f"nothing cached for {key}"
    images = [store.read_image(i) for i in entry.images]
    found = [i for i in images if i is not None]
    assert len(found) == len(images), f"some images of {key} are missing from the cache"
    return found


# -- matrix -----------------------------------------------------------------------------------------

def test_matrix_rows_are_named_in_axis_order_and_substituted_everywhere(icons: ProjectDir) -> None:
    items = icons.items()
    assert [n for n in items if n.startswith("icon.")] == ROWS
    assert [n for n in items if n.startswith("gem.")] == ["gem.red.16", "gem.red.32", "gem.blue.16", "gem.blue.32"]
    assert items["icon.shield.iron"]["outputs"] == ["out/icon.shield.iron.jpg"]      # default <row>.jpg
    assert items["gem.blue.32"]["outputs"] == ["out/gems/blue@32.png"]
    keys = {n: items[n]["key"] for n in ROWS}
    assert len(set(keys.values())) == 4                                               # each row its own key

    icons.ok("build", "--offline")
    lock = lock_of(icons)
    spec = lock["icon.shield.iron"]["spec"]
    assert spec["prompt"] == "A shield icon made of iron\n\nflat pastel colours"
    # {item} substituted in the target's references; the style's reference follows the target's own.
    assert [r["ref"] for r in spec["references"]] == ["refs/shield.png", "refs/palette.png"]
    assert [r["ref"] for r in lock["icon.sword.wood"]["spec"]["references"]] == ["refs/sword.png", "refs/palette.png"]
    for row in ROWS:
        assert lock[row]["key"] == keys[row]
        assert (icons.root / "out" / f"{row}.jpg").is_file()
    with Image.open(icons.root / "out" / "gems" / "red@16.png") as image:
        assert image.format == "PNG"
    # @icon.sword.wood is an ordinary reference to one row: hero's key takes that row's key.
    assert lock["hero"]["spec"]["references"] == [{"ref": "@icon.sword.wood",
                                                   "digest": "key:" + keys["icon.sword.wood"]}]

    explained = icons.ok("explain", "icon.sword.wood").output
    assert "prompt     A sword icon made of wood\n             \n             flat pastel colours\n" in explained
    assert "style      pastel" in explained

    # Editing the matrix's prompt changes every row, and hero sees its upstream change.
    icons.edit('prompt = "A {item} icon made of {tier}"', 'prompt = "A shiny {item} icon made of {tier}"')
    after = icons.items("--offline")
    assert all(after[r]["key"] != keys[r] and after[r]["stale"] for r in ROWS)
    assert [r["text"] for r in after["hero"]["reasons"]] == ["upstream changed: @icon.sword.wood"]
    assert not after["gem.red.16"]["stale"]


def test_naming_a_matrix_target_selects_all_its_rows(icons: ProjectDir) -> None:
    assert [t["name"] for t in icons.plan("icon")["targets"]] == ROWS
    icons.ok("build", "--offline", "icon")
    assert sorted(lock_of(icons)) == sorted(ROWS)
    assert not (icons.root / "out" / "hero.jpg").exists()
    # A row is a target of its own on the command line too.
    assert [t["name"] for t in icons.plan("icon.shield.wood")["targets"]] == ["icon.shield.wood"]


def test_plan_groups_forty_rows_into_one_line_and_all_lists_them(empty_project: ProjectDir) -> None:
    items = ["sword", "shield", "bow", "axe", "staff", "wand", "ring", "helm"]
    tiers = ["wood", "iron", "gold", "crystal", "bone"]
    empty_project.write(HEAD + f"""
        [targets.icon]
        prompt = "A {{item}} made of {{tier}}"
        matrix = {{ item = {items!r}, tier = {tiers!r} }}

        [targets.hero]
        prompt = "A knight"
        """.replace("'", '"'))
    grouped = empty_project.ok("plan").output
    assert grouped.startswith("41 targets: 41 to build")
    assert re.search(r"^  icon \(40 of 40 rows\) +generate +\$1\.275 +new target$", grouped, re.M), grouped
    assert "icon." not in grouped
    assert re.search(r"^  hero +generate", grouped, re.M)
    listed = empty_project.ok("plan", "--all").output
    rows = re.findall(r"^  (icon\.\S+) +generate", listed, re.M)
    assert rows == [f"icon.{i}.{t}" for i in items for t in tiers]


MATRIX_ERRORS = [
    ("unknown-placeholder", """
        [targets.icon]
        prompt = "A {item} in {colour}"  # HERE
        matrix = { item = ["sword"] }
        """, "prompt", ("unknown placeholder {colour}", "matrix axes: item")),
    ("unknown-placeholder-in-output", """
        [targets.icon]
        prompt = "A {item}"
        matrix = { item = ["sword"] }
        output = "icons/{tier}.jpg"  # HERE
        """, "output", ("unknown placeholder {tier}",)),
    ("unknown-placeholder-in-references", """
        [targets.icon]
        prompt = "A {item}"
        matrix = { item = ["sword"] }
        references = ["refs/{tier}.png"]  # HERE
        """, "references", ("unknown placeholder {tier}",)),
    ("empty-axis", """
        [targets.icon]
        prompt = "A {item}"
        matrix = { item = [], tier = ["wood"] }  # HERE
        """, "matrix", ("axis item has no values",)),
    ("no-axes", """
        [targets.icon]
        prompt = "A sword"
        matrix = {}  # HERE
        """, "matrix", ("at least one axis",)),
    ("row-name-collision", """
        [targets.icon]
        prompt = "A {item}"
        matrix = { item = ["big sword", "big-sword"] }  # HERE
        """, "matrix", ("both named 'icon.big-sword'",)),
    ("unclosed-brace", """
        [targets.icon]
        prompt = "A {item"  # HERE
        matrix = { item = ["sword"] }
        """, "prompt", ("expected '}'", "{{ and }}")),
    ("stray-closing-brace", """
        [targets.icon]
        prompt = "A {item} }"  # HERE
        matrix = { item = ["sword"] }
        """, "prompt", ("Single '}'", "{{ and }}")),
    ("conversion-in-placeholder", """
        [targets.icon]
        prompt = "A {item!r}"  # HERE
        matrix = { item = ["sword"] }
        """, "prompt", ("bare axis name",)),
    ("unknown-placeholder-in-style", """
        [styles.pastel]
        prompt = "in {colour} tones"

        [targets.icon]
        prompt = "A {item}"
        style = "pastel"  # HERE
        matrix = { item = ["sword"] }
        """, "style", ("[styles.pastel] unknown placeholder {colour}",)),
    ("placeholder-in-plain-target", """
        [targets.icon]
        prompt = "A {item}"  # HERE
        """, "prompt", ("unknown placeholder {item}", "this target has no matrix")),
]


@pytest.mark.parametrize("body, fieldname, says", [c[1:] for c in MATRIX_ERRORS], ids=[c[0] for c in MATRIX_ERRORS])
def test_matrix_errors_name_target_field_and_line(empty_project: ProjectDir, body: str, fieldname: str,
                                                   says: tuple[str, ...]) -> None:
    text = HEAD + textwrap.dedent(body)
    empty_project.write(text)
    result = empty_project.run("build", "--offline")
    assert result.exit_code == 2, result.output
    problem = next((line for line in result.output.splitlines() if "target 'icon'" in line), "")
    assert problem.strip().startswith(f"assets.toml:{line_of(text)}: target 'icon', field '{fieldname}'"), result.output
    for fragment in says:
        assert fragment in problem, result.output
    assert "Traceback" not in result.output
    assert not (empty_project.root / "out").exists() and not empty_project.lock.exists()


# -- styles -----------------------------------------------------------------------------------------

def test_field_precedence_is_defaults_then_style_then_target_then_profile(empty_project: ProjectDir) -> None:
    empty_project.write("""\
        [settings]
        out_dir = "out"

        [defaults]
        model = "gemini-3.1-flash-image-preview"
        aspect_ratio = "1:1"
        resolution = "1K"

        [styles.poster]
        model = "gemini-3-pro-image-preview"
        aspect_ratio = "3:4"
        resolution = "2K"

        [profiles.draft]
        model = "gemini-3.1-flash-image-preview"
        resolution = "0.5K"

        [targets.styled]
        prompt = "A castle"
        style = "poster"

        [targets.own]
        prompt = "A tower"
        style = "poster"
        resolution = "1K"
        aspect_ratio = "16:9"

        [targets.plain]
        prompt = "A wall"
        """)

    def effective(*args: str) -> dict[str, tuple[str, ...]]:
        """(model, ratio, resolution) of each target, as `explain` shows them."""
        found = {}
        for name in ("styled", "own", "plain"):
            out = empty_project.ok("explain", name, *args).output
            fields = re.search(r"^  model +(\S+) .*\n  size +(\S+) at (\S+) =", out, re.M)
            assert fields is not None, out
            found[name] = fields.groups()
        return found

    pro, flash = "gemini-3-pro-image-preview", "gemini-3.1-flash-image-preview"
    assert effective() == {"styled": (pro, "3:4", "2K"), "own": (pro, "16:9", "1K"), "plain": (flash, "1:1", "1K")}
    assert effective("--profile", "draft") == {
        "styled": (flash, "3:4", "0.5K"), "own": (flash, "16:9", "0.5K"), "plain": (flash, "1:1", "0.5K")}
    # What it costs follows the effective model.
    costs = {t["name"]: t["cost"] for t in empty_project.plan()["targets"]}
    assert costs == {"styled": pytest.approx(PRO), "own": pytest.approx(PRO), "plain": pytest.approx(FLASH)}


STYLED = HEAD + """
[styles.pastel]
prompt = "flat pastel colours"   # the house style

[styles.noir]
prompt = "black and white, high contrast"

[targets.castle]
prompt = "A castle"
style = "pastel"

[targets.tower]
prompt = "A tower"
style = "pastel"

[targets.alley]
prompt = "An alley"
style = "noir"

[targets.wall]
prompt = "A wall"
"""


def test_editing_a_style_rebuilds_exactly_its_users(empty_project: ProjectDir, gateway: GatewayEmulator) -> None:
    p = empty_project
    p.write(STYLED)
    env = env_for(gateway)
    p.ok("build", env=env)
    assert sorted(s["prompt"] for s in gateway.submissions) == [
        "A castle\n\nflat pastel colours", "A tower\n\nflat pastel colours", "A wall",
        "An alley\n\nblack and white, high contrast"]

    p.edit('prompt = "flat pastel colours"', 'prompt = "soft pastel colours"')
    plan = p.items()
    assert {n for n, t in plan.items() if t["stale"]} == {"castle", "tower"}
    assert [r["text"] for r in plan["castle"]["reasons"]] == ["style pastel changed"]
    text = p.ok("plan").output
    assert re.search(r"^  castle +generate .*style pastel changed$", text, re.M), text

    p.ok("build", env=env)
    assert sorted(s["prompt"] for s in gateway.submissions[4:]) == [
        "A castle\n\nsoft pastel colours", "A tower\n\nsoft pastel colours"]
    assert "Nothing to build" in p.ok("build", env=env).output
    assert len(gateway.submissions) == 6


def test_unknown_style_is_an_error_with_did_you_mean(empty_project: ProjectDir) -> None:
    text = STYLED.replace('style = "noir"', 'style = "nior"  # HERE')
    empty_project.write(text)
    result = empty_project.run("plan")
    assert result.exit_code == 2
    assert f"assets.toml:{line_of(text)}: target 'alley', field 'style': unknown style 'nior' " \
           f"(did you mean 'noir'?)" in result.output
    assert "styles: pastel, noir" in result.output


# -- profiles ---------------------------------------------------------------------------------------

PROFILED = """\
[settings]
out_dir = "out"

[defaults]
model = "gemini-3.1-flash-image-preview"
resolution = "1K"

[profiles.draft]
resolution = "0.5K"

[profiles.sketch]
resolution = "0.5K"
out_dir = "sketches"

[targets.hero]
prompt = "A knight"
output = "characters/hero.jpg"

[targets.banner]
prompt = "A banner"
aspect_ratio = "16:9"
resolution = "0.5K"
"""


def test_draft_profile_builds_aside_and_leaves_finals_untouched(empty_project: ProjectDir) -> None:
    p = empty_project
    p.write(PROFILED)
    p.ok("build", "--offline")
    finals = p.snapshot(skip=(".assetgen/stat.json", ".assetgen/build.lock"))
    finals = {k: v for k, v in finals.items() if not k.startswith(".assetgen/")}

    final_keys, draft_keys = p.keys(), {t["name"]: t["key"] for t in p.plan("--profile", "draft")["targets"]}
    assert draft_keys["hero"] != final_keys["hero"]            # its resolution differs
    assert draft_keys["banner"] == final_keys["banner"]        # already 0.5K: the same image

    result = p.ok("build", "--profile", "draft", "--offline")
    assert (p.root / "out" / "draft" / "characters" / "hero.jpg").is_file()
    assert (p.root / "out" / "draft" / "banner.jpg").is_file()
    with Image.open(p.root / "out" / "draft" / "characters" / "hero.jpg") as image:
        assert image.size == (512, 512)
    drafts = lock_of(p, ".assetgen/profiles/draft.lock")
    assert drafts["hero"]["key"] == draft_keys["hero"]
    assert drafts["hero"]["outputs"][0]["path"] == "out/draft/characters/hero.jpg"
    assert "banner: restored" in result.output                 # same key as the final: from the cache
    after = {k: v for k, v in p.snapshot().items() if not k.startswith((".assetgen/", "out/draft/"))}
    assert after == finals                                      # assets.lock and finals byte for byte, same mtimes

    assert "Nothing to build" in p.ok("build", "--offline").output
    assert "Nothing to build" in p.ok("build", "--profile", "draft", "--offline").output

    # A profile with its own out_dir writes there (and has a lock of its own).
    p.ok("build", "--profile", "sketch", "--offline")
    assert (p.root / "sketches" / "characters" / "hero.jpg").is_file()
    assert (p.cache / "profiles" / "sketch.lock").is_file()
    assert p.snapshot()["assets.lock"] == finals["assets.lock"]


def test_unknown_profile_is_a_usage_error(empty_project: ProjectDir) -> None:
    empty_project.write(PROFILED)
    for command in (("plan",), ("build", "--offline"), ("explain", "hero")):
        result = empty_project.run(*command, "--profile", "darft")
        assert result.exit_code == 2, result.output
        assert "unknown profile 'darft' (did you mean 'draft'?)" in result.output
        assert "profiles: draft, sketch" in result.output
    assert not (empty_project.root / "out").exists()


# -- candidates, pick, reroll -------------------------------------------------------------------------

CANDIDATES = HEAD + """
# The hero: four takes, one is used.
[targets.hero]
prompt = "A knight in silver armour"   # keep this comment
candidates = 4

# The banner is unrelated.
[targets.banner]
prompt = "A banner"
aspect_ratio = "16:9"
"""


def test_candidates_are_one_task_and_pick_rewrites_from_the_cache(empty_project: ProjectDir,
                                                                   gateway: GatewayEmulator) -> None:
    p = empty_project
    p.write(CANDIDATES)
    env = env_for(gateway)
    p.ok("build", env=env)
    hero = [s for s in gateway.submissions if s["prompt"].startswith("A knight")]
    assert len(hero) == 1 and hero[0]["n"] == 4 and len(gateway.submissions) == 2
    key = lock_of(p)["hero"]["key"]
    takes = cached_images(p, key)
    assert len(takes) == 4 and len(set(takes)) == 4
    output = p.root / "out" / "hero.jpg"
    assert output.read_bytes() == takes[0]                       # default pick = 1

    before = p.manifest.read_text(encoding="utf-8")
    result = p.ok("pick", "hero", "3", env=env)
    assert "Set pick = 3 for hero" in result.output
    assert "Wrote out/hero.jpg from the cached candidates (free)" in result.output
    assert len(gateway.submissions) == 2                         # nothing new was paid for
    assert output.read_bytes() == takes[2]
    assert output.read_bytes() == derive(takes[2], Derivation())
    after = p.manifest.read_text(encoding="utf-8")
    lines = after.splitlines()
    added = lines.index("pick = 3")
    assert lines[added - 1] == "candidates = 4"                  # in hero's table, after its last key
    assert lines[:added] + lines[added + 1:] == before.splitlines() and after.endswith("\n")
    entry = lock_of(p)["hero"]
    assert entry["key"] == key
    assert re.fullmatch(r"[0-9a-f]{64}", entry["outputs"][0]["derivation"])   # the pick is a derivation
    assert "Nothing to build" in p.ok("build", env=env).output

    # Changing the pick by hand is a derivation change: plan says so, costs nothing, build pays nothing.
    p.edit("pick = 3", "pick = 2   # the second take")
    plan = p.items()["hero"]
    assert plan["action"] == "restore" and plan["cost"] == 0
    assert [r["text"] for r in plan["reasons"]] == ["output settings changed: out/hero.jpg"]
    p.ok("build", env=env)
    assert output.read_bytes() == takes[1] and len(gateway.submissions) == 2

    # `pick` again replaces the value in place and keeps its comment.
    before = p.manifest.read_text(encoding="utf-8")
    p.ok("pick", "hero", "4", env=env)
    assert p.manifest.read_text(encoding="utf-8") == before.replace("pick = 2   #", "pick = 4   #")
    assert output.read_bytes() == takes[3] and len(gateway.submissions) == 2

    sheet = p.ok("candidates", "hero").output.strip()
    with Image.open(sheet) as image:
        assert image.format == "PNG" and image.width > 3 * image.height       # four takes side by side
    assert sheet.endswith(".png")


def test_pick_with_post_processing_is_a_derivation_of_the_candidate(empty_project: ProjectDir,
                                                                     gateway: GatewayEmulator) -> None:
    p = empty_project
    p.write(HEAD + """
        [targets.hero]
        prompt = "A knight"
        candidates = 3
        resize = [40, 40]
        format = "png"
        """)
    env = env_for(gateway)
    p.ok("build", env=env)
    takes = cached_images(p, lock_of(p)["hero"]["key"])
    p.ok("pick", "hero", "3", env=env)
    assert len(gateway.submissions) == 1
    data = (p.root / "out" / "hero.png").read_bytes()
    assert data == derive(takes[2], Derivation(format="png", resize=(40, 40)))
    out = lock_of(p)["hero"]["outputs"][0]
    assert out["source"] != out["sha256"]
    assert out["source"] == Store(p.cache).put_image(takes[2]).sha256


def test_pick_out_of_range_and_candidates_with_n_are_errors(empty_project: ProjectDir) -> None:
    p = empty_project
    p.write(CANDIDATES)
    p.ok("build", "--offline")
    before = p.manifest.read_text(encoding="utf-8")
    for choice in ("5", "0"):
        result = p.run("pick", "hero", choice)
        assert result.exit_code == 2, result.output
        assert "has 4 candidates: pick one of 1 … 4" in result.output
    result = p.run("pick", "banner", "1")
    assert result.exit_code == 2 and "no candidates" in result.output
    assert p.manifest.read_text(encoding="utf-8") == before

    text = before.replace("candidates = 4", "candidates = 4\npick = 9  # HERE")
    p.write(text)
    result = p.run("plan")
    assert result.exit_code == 2
    assert f"assets.toml:{line_of(text)}: target 'hero', field 'pick': pick = 9 but there are only 4 " \
           f"candidates" in result.output

    text = before.replace("candidates = 4", "candidates = 4  # HERE\nn = 2")
    p.write(text)
    result = p.run("build", "--offline")
    assert result.exit_code == 2
    assert f"assets.toml:{line_of(text)}: target 'hero', field 'candidates': `candidates` and `n` cannot " \
           f"both be set" in result.output


def test_reroll_writes_a_seed_says_the_cost_and_the_next_build_pays_once(empty_project: ProjectDir,
                                                                          gateway: GatewayEmulator) -> None:
    p = empty_project
    p.write(CANDIDATES)
    env = env_for(gateway)
    p.ok("build", env=env)
    assert len(gateway.submissions) == 2
    first = (p.root / "out" / "hero.jpg").read_bytes()

    before = p.manifest.read_text(encoding="utf-8")
    result = p.ok("reroll", "hero", env=env)
    after = p.manifest.read_text(encoding="utf-8")
    seed = tomllib.loads(after)["targets"]["hero"]["seed"]
    assert 0 <= seed <= 2**31 - 1
    lines = after.splitlines()
    assert lines[:lines.index(f"seed = {seed}")] + lines[lines.index(f"seed = {seed}") + 1:] == before.splitlines()
    assert f"Set seed = {seed} for hero" in result.output
    assert "will generate 4 new images for $0.13" in result.output      # 4 x $0.031875
    assert len(gateway.submissions) == 2                                  # reroll itself pays nothing

    plan = p.items()
    assert [r["text"] for r in plan["hero"]["reasons"]] == ["spec changed: seed"]
    assert plan["hero"]["cost"] == pytest.approx(4 * FLASH) and not plan["banner"]["stale"]
    p.ok("build", env=env)
    assert len(gateway.submissions) == 3                                  # exactly once more
    assert gateway.submissions[-1]["seed"] == seed and gateway.submissions[-1]["n"] == 4
    assert (p.root / "out" / "hero.jpg").read_bytes() != first
    assert "Nothing to build" in p.ok("build", env=env).output
    assert len(gateway.submissions) == 3

    # A second reroll replaces the seed in place with a different one.
    p.ok("reroll", "hero", env=env)
    again = tomllib.loads(p.manifest.read_text(encoding="utf-8"))["targets"]["hero"]["seed"]
    assert again != seed
    assert p.manifest.read_text(encoding="utf-8") == after.replace(f"seed = {seed}", f"seed = {again}")


def test_pick_and_reroll_apply_to_a_whole_matrix_table(icons: ProjectDir) -> None:
    icons.edit('references = ["refs/{item}.png"]', 'references = ["refs/{item}.png"]\ncandidates = 2')
    icons.ok("build", "--offline", "icon")
    icons.ok("pick", "icon", "2")
    for row in ROWS:
        key = lock_of(icons)[row]["key"]
        assert (icons.root / "out" / f"{row}.jpg").read_bytes() == cached_images(icons, key)[1]
    sheet = icons.ok("candidates", "icon.shield.iron").output.strip()
    with Image.open(sheet) as image:
        assert image.format == "PNG"
    with Image.open(io.BytesIO((icons.root / "out" / "icon.sword.wood.jpg").read_bytes())) as image:
        assert image.format == "JPEG"


# -- matrix rows: per-row overrides -------------------------------------------------------------------

ROW_OVERRIDES = HEAD + """
[profiles.draft]
resolution = "1K"

[targets.icon]
prompt = "A {item} icon made of {tier}"
matrix = { item = ["sword", "shield"], tier = ["wood", "iron"] }
seed = 3
aspect_ratio = "4:3"

[targets.icon.rows."sword.iron"]   # the iron sword needs more care
seed = 7
prompt = "A gleaming {item} of {tier}"
resolution = "2K"
"""


def test_a_row_override_sits_between_target_and_profile(empty_project: ProjectDir) -> None:
    p = empty_project
    p.write(ROW_OVERRIDES)

    def shown(name: str, *args: str) -> tuple[str, ...]:
        out = p.ok("explain", name, *args).output
        found = re.search(r"^  size +(\S+) at (\S+) = .*seed=(-?\d+)\n(?:.*\n)*?  prompt +(.*)$", out, re.M)
        assert found is not None, out
        return found.groups()

    assert shown("icon.sword.iron") == ("4:3", "2K", "7", "A gleaming sword of iron")
    assert shown("icon.sword.wood") == ("4:3", "0.5K", "3", "A sword icon made of wood")   # untouched
    assert shown("icon.sword.iron", "--profile", "draft") == ("4:3", "1K", "7", "A gleaming sword of iron")
    # A bad value in a row table is reported at its line, saying where it was set.
    text = ROW_OVERRIDES.replace('resolution = "2K"', 'resolution = "9K"  # HERE')
    p.write(text)
    result = p.run("plan")
    assert result.exit_code == 2
    assert f"assets.toml:{line_of(text)}: target 'icon.sword.iron', field 'resolution'" in result.output
    assert '(set in [targets.icon.rows."sword.iron"])' in result.output


@pytest.mark.parametrize(("edit", "expected"), [
    ('[targets.icon.rows."sword.gold"]  # HERE',
     ('rows."sword.gold" is not a row of this matrix (did you mean \'sword.wood\'?); rows: "sword.wood", '
      '"sword.iron", "shield.wood", "shield.iron"',)),
    ('[targets.icon.rows."sword.iron"]\nsed = 1  # HERE', ("unknown field 'sed' (did you mean 'seed'?)",)),
])
def test_unknown_rows_and_row_fields_are_errors_with_lines(empty_project: ProjectDir, edit: str,
                                                          expected: tuple[str, ...]) -> None:
    text = ROW_OVERRIDES.replace('[targets.icon.rows."sword.iron"]   # the iron sword needs more care', edit)
    empty_project.write(text)
    result = empty_project.run("plan")
    assert result.exit_code == 2, result.output
    assert f"assets.toml:{line_of(text)}: target 'icon', field 'rows'" in result.output
    for part in expected:
        assert part in result.output


def test_rows_on_a_target_without_a_matrix_are_an_error(empty_project: ProjectDir) -> None:
    text = HEAD + """
[targets.logo]
prompt = "A logo"

[targets.logo.rows."big"]  # HERE
seed = 1
"""
    empty_project.write(text)
    result = empty_project.run("plan")
    assert result.exit_code == 2
    assert f"assets.toml:{line_of(text)}: target 'logo', field 'rows': rows.\"big\": only a matrix target " \
           f"has rows" in result.output


ROW_TABLE = HEAD + """
# The icons: one table, four rows.
[targets.icon]
prompt = "A {item} icon made of {tier}"   # keep this comment
matrix = { item = ["sword", "shield"], tier = ["wood", "iron"] }
candidates = 2

# The banner is unrelated.
[targets.banner]
prompt = "A banner"
"""


def test_pick_and_reroll_of_one_row_write_its_override_and_rebuild_only_it(empty_project: ProjectDir,
                                                                           gateway: GatewayEmulator) -> None:
    p = empty_project
    p.write(ROW_TABLE)
    env = env_for(gateway)
    p.ok("build", env=env)
    assert len(gateway.submissions) == 5
    rows = ["icon.sword.wood", "icon.sword.iron", "icon.shield.wood", "icon.shield.iron"]
    before = {row: (p.root / "out" / f"{row}.jpg").read_bytes() for row in rows}
    takes = cached_images(p, lock_of(p)["icon.sword.iron"]["key"])

    result = p.ok("pick", "icon.sword.iron", "2", env=env)
    assert "Set pick = 2 for icon.sword.iron" in result.output
    assert (p.root / "out" / "icon.sword.iron.jpg").read_bytes() == takes[1]
    assert all((p.root / "out" / f"{r}.jpg").read_bytes() == before[r] for r in rows if r != "icon.sword.iron")
    result = p.ok("reroll", "icon.sword.iron", env=env)
    assert len(gateway.submissions) == 5                                  # editing pays nothing
    seed = tomllib.loads(p.manifest.read_text(encoding="utf-8"))["targets"]["icon"]["rows"]["sword.iron"]["seed"]
    assert f"Set seed = {seed} for icon.sword.iron" in result.output
    # Comments kept; the row's table goes right after the target's keys, before the next table's comment.
    assert p.manifest.read_text(encoding="utf-8") == ROW_TABLE.replace(
        "candidates = 2\n", f'candidates = 2\n\n[targets.icon.rows."sword.iron"]\npick = 2\nseed = {seed}\n')

    plan = p.items()
    assert [n for n, item in plan.items() if item["stale"]] == ["icon.sword.iron"]
    p.ok("build", env=env)
    assert len(gateway.submissions) == 6                                  # exactly one task: the row
    assert gateway.submissions[-1]["seed"] == seed and "sword icon made of iron" in gateway.submissions[-1]["prompt"]
    assert all((p.root / "out" / f"{r}.jpg").read_bytes() == before[r] for r in rows if r != "icon.sword.iron")
    assert "Nothing to build" in p.ok("build", env=env).output

    # A second row gets a table of its own; the whole table still takes `pick` for every row.
    p.ok("reroll", "icon.shield.wood", env=env)
    data = tomllib.loads(p.manifest.read_text(encoding="utf-8"))["targets"]["icon"]
    assert set(data["rows"]) == {"sword.iron", "shield.wood"} and "seed" not in data
    assert p.manifest.read_text(encoding="utf-8").index("shield.wood") < \
        p.manifest.read_text(encoding="utf-8").index("# The banner is unrelated.")
