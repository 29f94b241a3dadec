"""Providers side by side: how a target's provider is chosen, keys across channels of one family,
`assetgen models`, and a build that uses the gateway and Google's API at once."""

from __future__ import annotations

import json

import pytest
from helpers.project import ProjectDir as Project
from helpers.online import API_KEY, emulator

from assetgen import catalog
from assetgen.testing.gemini_emulator import GeminiEmulator

BASE = """\
[settings]
out_dir = "out"
{settings}

[defaults]
resolution = "1K"

[targets.hero]
model = "{model}"
prompt = "A knight"
{target}
"""
# The key of BASE's hero as the code before providers computed it (main at a433ed8).
KEY_BEFORE = "4583143649bc2cac1941db8fd98b8bde532196ca17d5aed1e669b7dbdbddfeed"


def keyed(project: Project, settings: str = "", target: str = "",
          model: str = "gemini-3-pro-image-preview") -> dict[str, object]:
    project.write(BASE.format(settings=settings, target=target, model=model))
    return project.items()["hero"]


def test_switching_channel_of_one_family_rebuilds_nothing(project: Project) -> None:
    gateway = keyed(project)
    direct = keyed(project, target='provider = "gemini"')
    by_settings = keyed(project, settings='provider = "gemini"')
    official = keyed(project, model="gemini-3-pro-image-preview-official")
    assert gateway["provider"] == "gateway" and direct["provider"] == "gemini" == by_settings["provider"]
    assert gateway["key"] == direct["key"] == by_settings["key"] == official["key"]
    assert gateway["cost"] == pytest.approx(0.0425) and direct["cost"] == pytest.approx(0.134)


def test_a_built_target_stays_up_to_date_when_its_channel_changes(project: Project) -> None:
    project.write(BASE.format(settings="", target="", model="gemini-3-pro-image-preview"))
    project.ok("build", "--offline")
    project.write(BASE.format(settings="", target='provider = "gemini"', model="gemini-3-pro-image-preview"))
    item = project.items("--offline")["hero"]
    assert item["provider"] == "gemini" and item["action"] == "none" and not item["stale"]


def test_another_vendors_model_is_another_family(project: Project) -> None:
    gateway = keyed(project)
    other = keyed(project, model="gpt-image-1.5")
    assert other["provider"] == "openai" and other["key"] != gateway["key"]


def test_existing_manifests_keep_their_keys(project: Project) -> None:
    # A gateway target's canonical spec has no provider and no openai field: its key is the key of before.
    assert keyed(project)["key"] == KEY_BEFORE


def test_provider_implied_by_a_model_only_one_sells_and_conflicts_are_errors(project: Project) -> None:
    assert keyed(project, model="gemini-2.5-flash-image")["provider"] == "gemini"
    project.write(BASE.format(settings="", target='provider = "gemini"', model="gpt-image-1"))
    result = project.run("plan")
    assert result.exit_code == 2
    assert "provider 'gemini' does not sell 'gpt-image-1' (it is sold by openai)" in result.output
    project.write(BASE.format(settings="", target='provider = "offline"', model="gpt-image-1"))
    result = project.run("plan")
    assert result.exit_code == 2 and "'offline' is a build mode" in result.output


def test_provider_default_model_when_none_is_set(project: Project) -> None:
    project.write('[settings]\nprovider = "openai"\n\n[targets.a]\nprompt = "x"\n')
    item = project.items()["a"]
    assert item["provider"] == "openai" and item["model"] == catalog.DEFAULT_MODELS["openai"]


def test_models_lists_every_provider_with_prices_and_crash_cost(project: Project) -> None:
    out = project.ok("models").output
    for model_id in ("gemini-3-pro-image-preview-official", "gpt-image-1.5", "gpt-image-1-mini", "gpt-image-1",
                     "gemini-2.5-flash-image"):
        assert model_id in out
    assert "sync: interrupted calls may be paid" in out and "at most one task id" in out
    assert "2026-12-02" in out                          # the date prices were read
    data = json.loads(project.ok("models", "--json").output)
    openai = next(m for m in data if m["id"] == "gpt-image-1.5")
    assert openai["provider"] == "openai" and openai["price_source"].startswith("https://")
    assert openai["auth"] == ["OPENAI_API_KEY"] and openai["submission"] == "sync call"


def test_one_build_uses_the_gateway_and_google_at_once(project: Project) -> None:
    text = """\
        [settings]
        out_dir = "out"

        [defaults]
        resolution = "1K"

        [targets.a]
        model = "gemini-2.5-flash-image-preview"
        prompt = "through the gateway"

        [targets.b]
        model = "gemini-2.5-flash-image"
        prompt = "straight from Google"
        """
    project.write(text)
    with emulator() as gateway, GeminiEmulator(api_key="g-key") as google:
        env = {"ASSETGEN_API_KEY": API_KEY, "ASSETGEN_BASE_URL": gateway.base_url, "ASSETGEN_POLL_INTERVAL": "0.05",
               "GEMINI_API_KEY": "g-key", "GEMINI_BASE_URL": google.base_url}
        result = project.ok("build", env=env)
        assert len(gateway.submissions) == 1 and len(google.billed) == 1, result.output
        assert "imageSize" not in json.dumps(google.requests[0].body)     # 2.5 Flash Image has one size
        assert (project.root / "out" / "a.jpg").exists() and (project.root / "out" / "b.jpg").exists()
        project.ok("build", env=env)
        assert len(google.billed) == 1 and len(gateway.submissions) == 1          # up to date: nothing paid


def test_the_bundled_example_builds_with_only_a_google_key(empty_project: Project) -> None:
    """The README's path for a Google key: one line in [settings], GEMINI_API_KEY, build."""
    import shutil
    from pathlib import Path

    repo = Path(__file__).parent.parent
    text = (repo / "assets.toml").read_text(encoding="utf-8")
    text = text.replace("[settings]", '[settings]\nprovider = "gemini"', 1)
    for folder in ("examples",):
        if (repo / folder).is_dir():
            shutil.copytree(repo / folder, empty_project.root / folder, dirs_exist_ok=True)
    empty_project.write(text)
    with GeminiEmulator(api_key="g-key") as google:
        result = empty_project.run("build", env={"GEMINI_API_KEY": "g-key", "GEMINI_BASE_URL": google.base_url})
        assert result.exit_code == 0, result.output
        assert google.billed and "Traceback" not in result.output


def test_the_bundled_example_builds_with_only_an_openai_key(empty_project: Project) -> None:
    """The README's path for an OpenAI key: OPENAI_API_KEY, `build --profile openai` (the bundled profile)."""
    import shutil
    from pathlib import Path

    from assetgen.testing.openai_emulator import OpenAIEmulator

    repo = Path(__file__).parent.parent
    shutil.copytree(repo / "examples", empty_project.root / "examples", dirs_exist_ok=True)
    empty_project.write((repo / "assets.toml").read_text(encoding="utf-8"))
    with OpenAIEmulator(api_key="sk-only") as openai:
        env = {"OPENAI_API_KEY": "sk-only", "OPENAI_BASE_URL": openai.base_url}
        result = empty_project.run("build", "--profile", "openai", env=env)
        assert result.exit_code == 0 and "Traceback" not in result.output, result.output
        assert openai.count("/v1/images/generations") and openai.count("/v1/images/edits") == 1
        out = empty_project.root / "assets" / "generated" / "openai"
        assert (out / "characters" / "hero_walk.jpg").exists() and (out / "ui" / "title.jpg").exists()
