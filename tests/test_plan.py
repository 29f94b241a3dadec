"""``assetgen plan``: the reasons it gives, the cost it computes from the price table, its JSON, its
``--check`` exit code, and that it writes nothing but the stat cache and needs no API key."""

from __future__ import annotations

import json

import pytest
from helpers.images import make_image
from helpers.project import FLASH, FLASH_OFFICIAL, OUTPUTS, PRO, PRO_OFFICIAL, ProjectDir

from assetgen import catalog


def built(project: ProjectDir) -> ProjectDir:
    project.ok("build", "--offline")
    return project


def reasons(item: dict) -> list[str]:
    return [r["text"] for r in item["reasons"]]


# -- costs ------------------------------------------------------------------------------------------

def test_new_targets_cost_the_price_table_times_n(project: ProjectDir) -> None:
    assert catalog.BY_ID["gemini-3.1-flash-image-preview"].price == FLASH
    plan = project.plan()
    items = {t["name"]: t for t in plan["targets"]}
    assert [t["name"] for t in plan["targets"]] == ["hero", "hero_walk", "banner", "icons"]
    for item in items.values():
        assert item["action"] == "generate"
        assert item["stale"] is True
        assert [r["kind"] for r in item["reasons"]] == ["new"]
        assert reasons(item) == ["new target"]
    assert items["hero"]["cost"] == pytest.approx(FLASH)
    assert items["icons"]["n"] == 3
    assert items["icons"]["cost"] == pytest.approx(3 * FLASH)
    assert items["icons"]["max_cost"] == pytest.approx(3 * FLASH)
    assert plan["total_cost"] == pytest.approx(6 * FLASH)
    assert plan["max_cost"] == pytest.approx(6 * FLASH)
    assert (plan["stale"], plan["up_to_date"], plan["to_generate"]) == (4, 0, 4)

    text = project.ok("plan").output
    assert "4 targets: 4 to build, 0 up to date" in text
    assert "icons" in text and "$0.0956" in text          # 3 × 0.031875 = 0.095625
    assert "Total: $0.19 for 6 images" in text            # 6 × 0.031875 = 0.19125


def test_prices_per_model_and_official_fallback_upper_bound(empty_project: ProjectDir) -> None:
    empty_project.write("""\
        [targets.pro]
        prompt = "p"
        model = "gemini-3-pro-image-preview"
        n = 2
        official_fallback = true

        [targets.pro_official]
        prompt = "p official"
        model = "gemini-3-pro-image-preview-official"

        [targets.flash]
        prompt = "f"
        official_fallback = true

        [targets.nano]
        prompt = "n"
        model = "gemini-2.5-flash-image-preview"
        n = 4
        """)
    plan = empty_project.plan()
    items = {t["name"]: t for t in plan["targets"]}
    assert items["pro"]["cost"] == pytest.approx(2 * PRO)
    assert items["pro"]["max_cost"] == pytest.approx(2 * PRO_OFFICIAL)
    assert items["pro_official"]["cost"] == pytest.approx(PRO_OFFICIAL)
    assert items["pro_official"]["max_cost"] == pytest.approx(PRO_OFFICIAL)
    assert items["flash"]["cost"] == pytest.approx(FLASH)
    assert items["flash"]["max_cost"] == pytest.approx(FLASH_OFFICIAL)
    assert items["nano"]["cost"] == pytest.approx(4 * 0.01328125)
    total = 2 * PRO + PRO_OFFICIAL + FLASH + 4 * 0.01328125
    bound = 2 * PRO_OFFICIAL + PRO_OFFICIAL + FLASH_OFFICIAL + 4 * 0.01328125
    assert plan["total_cost"] == pytest.approx(total, abs=1e-6)
    assert plan["max_cost"] == pytest.approx(bound, abs=1e-6)

    text = empty_project.ok("plan").output
    assert f"Total: ${total:.2f} for 8 images" in text
    assert f"(up to ${bound:.2f} if official_fallback switches to the official channel)" in text


def test_shared_key_costs_once_and_says_with_whom(empty_project: ProjectDir) -> None:
    empty_project.write("""\
        [defaults]
        resolution = "0.5K"

        [targets.coin]
        prompt = "A gold coin"
        n = 2

        [targets.coin_copy]
        prompt = "A gold coin"
        n = 2
        output = "shop/coin.jpg"

        [targets.gem]
        prompt = "A gem"
        """)
    plan = empty_project.plan()
    items = {t["name"]: t for t in plan["targets"]}
    assert items["coin"]["key"] == items["coin_copy"]["key"]
    assert items["coin"]["action"] == "generate"
    assert items["coin_copy"]["action"] == "share"
    assert items["coin_copy"]["shares_with"] == "coin"
    assert items["coin_copy"]["cost"] == 0
    assert plan["total_cost"] == pytest.approx(3 * FLASH)
    assert plan["to_generate"] == 2

    text = empty_project.ok("plan").output
    line = next(ln for ln in text.splitlines() if ln.strip().startswith("coin_copy"))
    assert "share" in line and "free" in line and "shares with coin: paid once" in line
    assert "Total: $0.0956 for 3 images" in text          # 3 × 0.031875 = 0.095625
    assert "1 target reuses images for free" in text


def test_offline_plan_costs_nothing(project: ProjectDir) -> None:
    plan = project.plan("--offline")
    assert plan["offline"] is True
    assert plan["total_cost"] == 0 and plan["max_cost"] == 0
    assert all(t["action"] == "generate" and t["cost"] == 0 for t in plan["targets"])
    assert "(offline: placeholders, no cost)" in project.ok("plan", "--offline").output


# -- reasons ----------------------------------------------------------------------------------------

def test_spec_change_names_the_fields(project: ProjectDir) -> None:
    built(project)
    project.edit('prompt = "A wide banner with a castle"\naspect_ratio = "16:9"',
                 'prompt = "A wide banner with two castles"\naspect_ratio = "21:9"\nseed = 5')
    project.edit('prompt = "Three round potion icons"', 'prompt = "Three round potion icons"\n'
                 'model = "gemini-3-pro-image-preview"\nresolution = "1K"')
    items = project.items()
    assert reasons(items["banner"]) == ["spec changed: prompt, seed, aspect_ratio"]
    assert items["banner"]["reasons"][0] == {"kind": "spec", "detail": "prompt, seed, aspect_ratio",
                                             "text": "spec changed: prompt, seed, aspect_ratio"}
    assert reasons(items["icons"]) == ["spec changed: model, resolution"]
    assert items["icons"]["cost"] == pytest.approx(3 * PRO)
    assert reasons(items["hero"]) == ["placeholder to be replaced"]      # unchanged spec, online
    assert project.items("--offline")["hero"]["action"] == "none"
    assert "spec changed: prompt, seed, aspect_ratio" in project.ok("plan").output


def test_reference_list_change_is_a_spec_change(project: ProjectDir) -> None:
    built(project)
    project.edit('references = ["@hero", "refs/palette.png"]', 'references = ["refs/palette.png", "@hero"]')
    assert reasons(project.items()["hero_walk"]) == ["spec changed: references"]


def test_reference_change_names_the_file(project: ProjectDir) -> None:
    built(project)
    make_image(project.root / "refs" / "palette.png", (10, 200, 10))
    items = project.items("--offline")
    assert reasons(items["hero_walk"]) == ["reference changed: refs/palette.png"]
    assert items["hero_walk"]["action"] == "generate"
    assert [n for n, i in items.items() if i["stale"]] == ["hero_walk"]
    assert "reference changed: refs/palette.png" in project.ok("plan", "--offline").output


def test_upstream_change_is_named(project: ProjectDir) -> None:
    built(project)
    project.edit('prompt = "A knight in silver armour, side view"', 'prompt = "A knight in gold armour, side view"')
    items = project.items("--offline")
    assert reasons(items["hero"]) == ["spec changed: prompt"]
    assert reasons(items["hero_walk"]) == ["upstream changed: @hero"]
    assert items["hero_walk"]["action"] == "generate"
    assert not items["banner"]["stale"] and not items["icons"]["stale"]
    plan = project.plan()                                  # online: the paid plan for the same change
    assert {t["name"]: t["cost"] for t in plan["targets"] if t["stale"]} == \
        {"hero": pytest.approx(FLASH), "hero_walk": pytest.approx(FLASH),
         "banner": pytest.approx(FLASH), "icons": pytest.approx(3 * FLASH)}   # placeholders too


def test_missing_output_is_restored_from_cache_for_free(project: ProjectDir) -> None:
    built(project)
    (project.root / "out" / "banner.jpg").unlink()
    (project.root / "out" / "icons-2.jpg").unlink()
    plan = project.plan("--offline")
    items = {t["name"]: t for t in plan["targets"]}
    assert items["banner"]["action"] == "restore"
    assert reasons(items["banner"]) == ["output missing: out/banner.jpg"]
    assert items["icons"]["action"] == "restore"
    assert reasons(items["icons"]) == ["output missing: out/icons-2.jpg"]
    assert items["banner"]["cost"] == 0 and items["icons"]["cost"] == 0
    assert plan["total_cost"] == 0 and plan["to_generate"] == 0 and plan["stale"] == 2
    text = project.ok("plan", "--offline").output
    line = next(ln for ln in text.splitlines() if ln.strip().startswith("banner"))
    assert "restore" in line and "free" in line and "output missing: out/banner.jpg" in line
    assert "(images in cache)" in line


def test_hand_modified_output_is_blocked(project: ProjectDir) -> None:
    built(project)
    make_image(project.root / "out" / "banner.jpg", (0, 0, 0), size=(688, 384), fmt="JPEG")
    items = project.items("--offline")
    assert items["banner"]["action"] == "blocked"
    assert reasons(items["banner"]) == ["modified by hand: out/banner.jpg"]
    assert items["banner"]["cost"] == 0
    text = project.ok("plan", "--offline").output
    assert "modified by hand: out/banner.jpg (not overwritten without --force)" in text
    assert project.run("plan", "--offline", "--check").exit_code == 1


def test_foreign_file_at_a_new_output_is_not_overwritten(project: ProjectDir) -> None:
    """A file that exists where a never-built target would write is not assetgen's to replace."""
    make_image(project.root / "out" / "banner.jpg", (0, 0, 0), fmt="JPEG")
    items = project.items()
    assert items["banner"]["action"] == "blocked"
    assert reasons(items["banner"]) == ["new target", "modified by hand: out/banner.jpg"]


def test_placeholders_are_stale_online_and_up_to_date_offline(project: ProjectDir) -> None:
    built(project)
    online = project.plan()
    assert online["offline"] is False
    for item in online["targets"]:
        assert item["action"] == "generate"
        assert reasons(item) == ["placeholder to be replaced"]
    assert online["total_cost"] == pytest.approx(6 * FLASH)
    offline = project.plan("--offline")
    assert all(t["action"] == "none" and not t["stale"] for t in offline["targets"])
    assert offline["up_to_date"] == 4 and offline["stale"] == 0
    assert "placeholder to be replaced" in project.ok("plan").output
    assert "Everything is up to date. Nothing to build." in project.ok("plan", "--offline").output

    assert project.run("plan", "--check").exit_code == 1
    assert project.run("plan", "--offline", "--check").exit_code == 0


def test_provider_offline_in_settings_makes_plan_offline(project: ProjectDir) -> None:
    project.edit('out_dir = "out"', 'out_dir = "out"\nprovider = "offline"')
    built(project)
    assert project.plan()["offline"] is True
    assert project.run("plan", "--check").exit_code == 0


# -- output formats and exit codes ------------------------------------------------------------------

def test_json_structure(project: ProjectDir) -> None:
    plan = project.plan()
    assert set(plan) == {"offline", "targets", "stale", "up_to_date", "to_generate", "total_cost", "max_cost",
                         "orphans", "money"}
    assert set(plan["money"]) == {"estimate", "budget", "refused", "limits"}
    item = plan["targets"][0]
    assert set(item) == {"name", "key", "action", "stale", "reasons", "model", "provider", "n", "cost", "max_cost",
                         "shares_with", "sharing", "outputs", "base", "retouched", "tags", "notes", "meta", "review"}
    assert item["model"] == "gemini-3.1-flash-image-preview"
    assert {t["name"]: t["outputs"] for t in plan["targets"]} == OUTPUTS
    assert all(set(r) == {"kind", "detail", "text"} for t in plan["targets"] for r in t["reasons"])
    # --format json is the same document
    assert json.loads(project.ok("plan", "--format", "json").stdout) == plan


def test_markdown_table(project: ProjectDir) -> None:
    built(project)
    project.edit('prompt = "A wide banner with a castle"', 'prompt = "A wide banner"')
    text = project.ok("plan", "--offline", "--format", "markdown").output
    assert "| target | action | cost | why |" in text
    assert "| `banner` | generate | free | spec changed: prompt |" in text
    assert "hero_walk" not in text


def test_check_exit_codes(project: ProjectDir) -> None:
    result = project.run("plan", "--check")
    assert result.exit_code == 1
    assert "4 to build" in result.output              # the plan is still printed
    built(project)
    assert project.run("plan", "--check", "--offline").exit_code == 0
    assert project.run("plan", "--check", "--offline", "--json").exit_code == 0
    (project.root / "out" / "hero_walk.jpg").unlink()
    assert project.run("plan", "--check", "--offline").exit_code == 1
    # Selecting a target checks it and what it depends on, nothing else.
    assert project.run("plan", "--check", "--offline", "banner").exit_code == 0
    assert project.run("plan", "--check", "--offline", "hero_walk").exit_code == 1


def test_selection_includes_upstream(project: ProjectDir) -> None:
    plan = project.plan("hero_walk")
    assert [t["name"] for t in plan["targets"]] == ["hero", "hero_walk"]
    assert plan["total_cost"] == pytest.approx(2 * FLASH)


def test_plan_writes_nothing_but_the_stat_cache(project: ProjectDir) -> None:
    before = project.snapshot()
    for args in (("plan",), ("plan", "--json"), ("plan", "--format", "markdown"), ("plan", "--check"),
                 ("plan", "--offline"), ("build", "--dry-run"), ("explain", "hero_walk")):
        project.run(*args)
    after = project.snapshot()
    written = set(after) - set(before)
    assert ".assetgen/stat.json" in written
    assert all(p == ".assetgen/stat.json" or p.startswith(".assetgen/stat-parsed/") for p in written)
    assert {k: v for k, v in after.items() if k in before} == before
    assert sorted(p.name for p in project.cache.iterdir()) in (["stat.json"], ["stat-parsed", "stat.json"])

    built(project)
    # Stale for every reason at once; plan still writes nothing but the stat cache.
    project.edit('prompt = "A wide banner with a castle"', 'prompt = "A banner"')
    (project.root / "out" / "icons-1.jpg").unlink()
    make_image(project.root / "out" / "characters" / "hero.jpg", fmt="JPEG")
    make_image(project.root / "refs" / "palette.png", (1, 2, 3))
    before = project.snapshot(skip=project.STAT_CACHE)
    for args in (("plan",), ("plan", "--offline", "--json"), ("plan", "--check")):
        project.run(*args)
    assert project.snapshot(skip=project.STAT_CACHE) == before


def test_plan_needs_no_api_key_and_says_nothing_about_one(project: ProjectDir) -> None:
    result = project.ok("plan")
    assert "ASSETGEN_API_KEY" not in result.output
    assert "Error" not in result.output
