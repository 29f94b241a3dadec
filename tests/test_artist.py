"""The artist in the loop (issue 16): adopting retouches, removed targets, selection, review.

Offline builds (placeholders) where nothing is paid; the gateway emulator over real HTTP where the
claim is about what is paid (``emulator.submissions``).
"""

from __future__ import annotations

import tomllib
from collections.abc import Iterator

import pytest
from helpers.images import jpeg_bytes
from helpers.online import emulator, env_for
from helpers.project import ProjectDir

from assetgen.testing.emulator import GatewayEmulator


@pytest.fixture
def gateway() -> Iterator[GatewayEmulator]:
    with emulator() as emu:
        yield emu


def lock_of(p: ProjectDir) -> dict:
    return tomllib.loads(p.lock.read_text(encoding="utf-8"))["targets"]


def retouch(p: ProjectDir, rel: str, color: tuple[int, int, int] = (10, 200, 10)) -> bytes:
    data = jpeg_bytes(color, size=(16, 16))
    (p.root / rel).write_bytes(data)
    return data


# -- 1. adopt -----------------------------------------------------------------------------------------

def test_adopt_keeps_a_retouch_through_a_spec_change_and_pays_nothing(project: ProjectDir,
                                                                      gateway: GatewayEmulator) -> None:
    env = env_for(gateway)
    project.ok("build", env=env)
    paid = len(gateway.submissions)
    generated = lock_of(project)["hero"]["outputs"][0]["sha256"]
    walk_key = project.keys()["hero_walk"]

    # Today's behaviour: a retouch blocks every build until --force destroys it.
    retouch(project, "out/characters/hero.jpg")
    blocked = project.run("build", env=env)
    assert blocked.exit_code == 1 and "modified by hand" in blocked.output

    done = project.ok("adopt", "hero")
    assert "Adopted hero" in done.output and "1 retouched" in done.output
    entry = lock_of(project)["hero"]["outputs"][0]
    assert entry["generated"] == generated and entry["sha256"] != generated
    plan = project.ok("plan", "--all").output
    assert any("hero" in line and "up to date" in line and "(retouched)" in line for line in plan.splitlines())
    assert project.items()["hero"]["retouched"] is True
    # hero_walk receives the retouched bytes: its key changes (and it is rebuilt, once).
    assert project.keys()["hero_walk"] != walk_key
    project.ok("build", env=env)
    assert len(gateway.submissions) == paid + 1
    paid = len(gateway.submissions)
    retouched = (project.root / "out/characters/hero.jpg").read_bytes()

    # The spec changes: blocked with both ways out, nothing submitted, the retouch untouched.
    project.edit("A knight in silver armour, side view", "A knight in golden armour, side view")
    result = project.run("build", env=env)
    assert result.exit_code == 1, result.output
    assert "retouched; spec changed" in result.output
    assert "assetgen build --force hero" in result.output and "assetgen adopt hero" in result.output
    assert len(gateway.submissions) == paid
    assert (project.root / "out/characters/hero.jpg").read_bytes() == retouched
    assert project.run("plan", "--check").exit_code == 1

    # Adopt again: kept for the new spec, up to date, still nothing paid.
    assert "for the new spec" in project.ok("adopt", "hero").output
    assert project.items()["hero"]["action"] == "none"
    project.ok("build", env=env)
    assert len(gateway.submissions) == paid
    assert project.run("plan", "--check").exit_code == 0


def test_force_regenerates_a_retouched_target_and_the_retouch_stays_in_the_cache(
        project: ProjectDir, gateway: GatewayEmulator) -> None:
    env = env_for(gateway)
    project.ok("build", "hero", env=env)
    data = retouch(project, "out/characters/hero.jpg")
    project.ok("adopt", "hero")
    project.edit("A knight in silver armour, side view", "A knight in golden armour, side view")
    paid = len(gateway.submissions)
    project.ok("build", "hero", "--force", env=env)
    assert len(gateway.submissions) == paid + 1
    assert (project.root / "out/characters/hero.jpg").read_bytes() != data
    assert "generated" not in lock_of(project)["hero"]["outputs"][0]
    assert any(p.read_bytes() == data for p in project.objects())


def test_adopt_all_modified_and_errors(project: ProjectDir) -> None:
    assert project.run("adopt", "hero").exit_code == 2          # never built: nothing to adopt from
    project.ok("build", "--offline")
    assert "nothing to adopt" in project.ok("adopt", "--all-modified").output
    retouch(project, "out/banner.jpg")
    out = project.ok("adopt", "--all-modified").output
    assert "Adopted banner" in out and "hero" not in out
    assert project.run("adopt").exit_code == 2
    (project.root / "out/banner.jpg").unlink()
    missing = project.run("adopt", "banner")
    assert missing.exit_code == 2 and "out/banner.jpg is missing" in missing.output
    # A retouched output that disappears is not silently replaced by the generated image.
    item = project.items("--offline")["banner"]
    assert item["action"] == "blocked"


# -- 2. removed targets ---------------------------------------------------------------------------------

BANNER = """
[targets.banner]
prompt = "A wide banner with a castle"
aspect_ratio = "16:9"
"""


def test_removed_targets_are_listed_dropped_by_build_and_pruned(project: ProjectDir) -> None:
    project.ok("build", "--offline")
    project.edit(BANNER, "")
    plan = project.plan("--offline")
    assert plan["orphans"] == [{"target": "banner", "path": "out/banner.jpg", "state": "locked"}]
    assert "banner" not in {t["name"] for t in plan["targets"]}
    text = project.ok("plan", "--offline").output
    assert "Removed from the manifest" in text and "banner: out/banner.jpg" in text
    assert project.run("plan", "--check", "--offline").exit_code == 0     # listed, not stale

    # Nothing to build, and still the lock forgets the removed target.
    project.ok("build", "--offline")
    assert "banner" not in lock_of(project)
    assert project.plan("--offline")["orphans"][0]["path"] == "out/banner.jpg"   # prune can still find it

    dry = project.ok("prune", "--dry-run").output
    assert "Would delete out/banner.jpg" in dry and (project.root / "out/banner.jpg").exists()
    objects = project.objects()
    project.ok("prune")
    assert not (project.root / "out/banner.jpg").exists()
    assert project.objects() == objects and objects              # images stay in the cache until gc
    assert project.plan("--offline")["orphans"] == []
    assert "nothing to prune" in project.ok("prune").output


def test_prune_never_deletes_a_modified_file_without_force(project: ProjectDir) -> None:
    project.ok("build", "--offline")
    project.edit(BANNER, "")
    data = retouch(project, "out/banner.jpg")
    assert project.plan("--offline")["orphans"][0]["state"] == "modified"
    out = project.ok("prune").output
    assert "Kept out/banner.jpg" in out and "--force" in out
    assert (project.root / "out/banner.jpg").read_bytes() == data
    project.ok("build", "--offline")                    # the lock forgets it; the file is still known
    project.ok("prune")
    assert (project.root / "out/banner.jpg").read_bytes() == data
    project.ok("prune", "--force")
    assert not (project.root / "out/banner.jpg").exists()


# -- 3. selection, and the project's own fields -------------------------------------------------------------

SELECT = """\
[settings]
out_dir = "out"

[defaults]
model = "gemini-3.1-flash-image-preview"
resolution = "0.5K"
tags = ["game"]

[styles.flat]
prompt = "flat colours"
tags = ["flat"]

[targets.icon]
prompt = "A {item} icon"
matrix = { item = ["sword", "shield"] }
style = "flat"
tags = ["ui"]
notes = "keep the outlines thick"

[targets.boss_intro]
prompt = "A dragon boss"
tags = ["boss"]

[targets.final_boss]
action = "edit"
prompt = "The dragon, angrier"
references = ["@boss_intro"]

[targets.title]
prompt = "A title card"

[targets.title.meta]
display_name = "Title"
status = "draft"
"""


def test_glob_and_tag_selection(empty_project: ProjectDir) -> None:
    p = empty_project
    p.write(SELECT)

    def names(*args: str) -> list[str]:
        return [t["name"] for t in p.plan("--offline", *args)["targets"]]

    assert names("icon.*") == ["icon.sword", "icon.shield"]
    assert names("*boss*") == ["boss_intro", "final_boss"]
    assert names("final_boss") == ["boss_intro", "final_boss"]      # what it depends on comes too
    assert names("--tag", "ui") == ["icon.sword", "icon.shield"]
    assert names("--tag", "flat", "--tag", "boss", "title") == ["icon.sword", "icon.shield", "boss_intro", "title"]
    bad = p.run("plan", "--tag", "bos")
    assert bad.exit_code == 2 and "no target has tag 'bos'" in bad.output and "boss" in bad.output
    none = p.run("plan", "nothing*")
    assert none.exit_code == 2 and "no target matches the pattern 'nothing*'" in none.output

    p.ok("build", "--offline", "icon.*")
    actions = {t["name"]: t["action"] for t in p.plan("--offline")["targets"]}
    assert actions == {"icon.sword": "none", "icon.shield": "none", "boss_intro": "generate",
                       "final_boss": "generate", "title": "generate"}
    explained = p.ok("explain", "--tag", "boss").output
    assert "boss_intro" in explained and "final_boss" not in explained
    assert p.ok("gallery", "title").exit_code == 0


def test_own_fields_stay_out_of_the_key_and_are_shown(empty_project: ProjectDir) -> None:
    p = empty_project
    p.write(SELECT)
    keys = p.keys()
    items = p.items()
    assert items["icon.sword"]["tags"] == ["game", "flat", "ui"]
    assert items["icon.sword"]["notes"] == "keep the outlines thick"
    assert items["title"]["meta"] == {"display_name": "Title", "status": "draft"}
    p.edit('tags = ["ui"]', 'tags = ["ui", "weapons"]')
    p.edit('notes = "keep the outlines thick"', 'notes = "thin outlines"')
    p.edit('status = "draft"', 'status = "approved"\nowner = "ana"')
    p.edit('tags = ["flat"]', 'tags = ["flat", "pastel"]\nnotes = "style notes"')
    assert p.keys() == keys
    explained = p.ok("explain", "title", "icon.sword").output
    assert 'status = "approved"' in explained and 'owner = "ana"' in explained
    assert "weapons" in explained and "thin outlines" in explained
    p.edit('notes = "thin outlines"', 'notes = 3')
    wrong = p.run("plan")
    assert wrong.exit_code == 2 and "notes" in wrong.output


# -- 4. review and approval ---------------------------------------------------------------------------------

def review_of(p: ProjectDir, name: str, *args: str) -> dict:
    return p.items(*args)[name]["review"]


def test_approval_is_bound_to_the_outputs_and_lapses_on_each_change(project: ProjectDir,
                                                                    gateway: GatewayEmulator) -> None:
    env = env_for(gateway)
    project.ok("build", env=env)
    assert review_of(project, "hero")["state"] == "unreviewed"
    assert project.run("plan", "--check").exit_code == 0
    gate = project.run("plan", "--check", "--approved")
    assert gate.exit_code == 1 and "hero: needs review" in gate.output

    out = project.ok("approve", "*", env={"GIT_CONFIG_GLOBAL": "/dev/null", "GIT_CONFIG_SYSTEM": "/dev/null"}).output
    assert "Approved hero" in out
    review = review_of(project, "hero")
    assert review["state"] == "approved" and "@" in review["by"] and review["at"].endswith("Z")
    assert lock_of(project)["hero"]["review"]["outputs"] == {
        "out/characters/hero.jpg": lock_of(project)["hero"]["outputs"][0]["sha256"]}
    assert project.run("plan", "--check", "--approved").exit_code == 0
    assert "approved" in project.ok("plan").output

    # A retouch (adopted): lapses.
    retouch(project, "out/banner.jpg")
    assert project.run("approve", "banner").exit_code == 2         # not what is on disk: adopt first
    project.ok("adopt", "banner")
    assert review_of(project, "banner")["state"] == "lapsed"
    plan = project.ok("plan").output
    assert any("banner" in line and "needs review" in line for line in plan.splitlines())
    assert project.run("plan", "--check", "--approved").exit_code == 1

    # A new generation: lapses (the verdict is carried, and no longer matches).
    project.edit("Three round potion icons", "Three square potion icons")
    assert project.run("approve", "icons").exit_code == 2          # stale: build it first
    project.ok("build", env=env)
    assert review_of(project, "icons")["state"] == "lapsed"
    assert review_of(project, "hero")["state"] == "approved"       # untouched targets keep theirs

    # Rejected with a note; unapprove withdraws it.
    project.ok("reject", "icons", "--note", "too dark")
    review = review_of(project, "icons")
    assert review["state"] == "rejected" and review["note"] == "too dark"
    gate = project.run("plan", "--check", "--approved")
    assert gate.exit_code == 1 and "too dark" in gate.output
    project.ok("unapprove", "icons")
    assert review_of(project, "icons")["state"] == "unreviewed"
    assert project.run("reject", "icons").exit_code == 2           # --note is required


def test_approval_lapses_on_a_new_pick(empty_project: ProjectDir) -> None:
    p = empty_project
    p.write("""\
        [settings]
        out_dir = "out"
        provider = "offline"

        [defaults]
        model = "gemini-3.1-flash-image-preview"
        resolution = "0.5K"

        [targets.logo]
        prompt = "A logo"
        candidates = 3
        """)
    p.ok("build")
    assert p.run("approve", "logo").exit_code == 2                # placeholders are not art to approve
    p.edit('provider = "offline"', 'provider = "gateway"')
    # Approve what the lock holds by writing a real-looking verdict through the library (no gateway
    # here): the lapse on a new pick is what is under test.
    from dataclasses import replace

    from assetgen.engine.project import Project
    from assetgen.state.verdicts import Verdict

    project = Project.open(p.manifest)
    entry = project.lock.entries["logo"]
    project.lock.entries["logo"] = replace(entry, review=Verdict(
        "approved", tuple((o.path, o.sha256) for o in entry.outputs), by="a@b", at="now"))
    project.lock.save()
    project.close()
    assert review_of(p, "logo", "--offline")["state"] == "approved"
    p.ok("pick", "logo", "2")
    assert review_of(p, "logo", "--offline")["state"] == "lapsed"
