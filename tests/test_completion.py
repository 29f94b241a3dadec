"""Shell completion: the scripts click writes for bash, zsh and fish, and what a Tab press offers.

Completions are asked the way the shells ask them (click's completion classes, and the
``_ASSETGEN_COMPLETE`` environment variable the scripts set), from a real manifest in a folder.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
from click.shell_completion import ShellComplete
from click.testing import CliRunner

from assetgen.cli import cli

MANIFEST = textwrap.dedent("""\
    [settings]
    out_dir = "out"

    [defaults]
    model = "gemini-3.1-flash-image-preview"
    tags = ["game"]

    [profiles.draft]
    resolution = "0.5K"

    [profiles.openai]
    model = "gpt-image-1-mini"

    [targets.hero]
    prompt = "a hero"
    tags = ["characters"]

    [targets.icon]
    prompt = "an icon of a {item}"
    matrix = { item = ["sword", "shield"] }
    tags = ["ui"]

    [targets.banner]
    prompt = "a banner"
    """)


@pytest.fixture
def folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    (tmp_path / "assets.toml").write_text(MANIFEST, encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    return tmp_path


def complete(args: list[str], incomplete: str) -> list[str]:
    return [item.value for item in ShellComplete(cli, {}, "assetgen", "_ASSETGEN_COMPLETE")
            .get_completions(args, incomplete)]


@pytest.mark.parametrize("shell, marker", [("bash", "complete -o nosort -F _assetgen_completion assetgen"),
                                           ("zsh", "#compdef assetgen"),
                                           ("fish", "complete --no-files --command assetgen")])
def test_completion_prints_each_shells_script(shell: str, marker: str) -> None:
    result = CliRunner().invoke(cli, ["completion", shell])
    assert result.exit_code == 0, result.output
    assert marker in result.output
    assert "_ASSETGEN_COMPLETE" in result.output


def test_completion_rejects_other_shells() -> None:
    result = CliRunner().invoke(cli, ["completion", "tcsh"])
    assert result.exit_code == 2
    assert "'tcsh' is not one of 'bash', 'zsh', 'fish'" in result.output


def test_commands_and_options_complete(folder: Path) -> None:
    assert {"build", "plan", "completion", "merge-lock"} <= set(complete([], ""))
    assert complete([], "pl") == ["plan"]
    assert {"--offline", "--tag", "--profile", "--json", "--color", "--verbose"} <= set(complete(["plan"], "--"))


def test_target_names_complete_with_matrix_names_and_rows(folder: Path) -> None:
    assert complete(["build"], "") == ["hero", "icon", "icon.sword", "icon.shield", "banner"]
    assert complete(["build"], "ic") == ["icon", "icon.sword", "icon.shield"]
    assert complete(["plan", "hero"], "icon.s") == ["icon.sword", "icon.shield"]      # after another target
    assert complete(["explain"], "b") == ["banner"]
    assert complete(["history"], "h") == ["hero"]                                      # a single TARGET too


def test_a_glob_completes_to_the_names_it_matches(folder: Path) -> None:
    assert complete(["build"], "icon.*") == ["icon.sword", "icon.shield"]
    assert complete(["build"], "*e*") == ["hero", "icon.shield", "banner"]


def test_tags_profiles_and_models_complete(folder: Path) -> None:
    assert complete(["build", "--tag"], "") == ["characters", "game", "ui"]
    assert complete(["plan", "--tag"], "c") == ["characters"]
    assert complete(["build", "--profile"], "") == ["draft", "openai"]
    assert complete(["models"], "gpt-image-1") == ["gpt-image-1.5", "gpt-image-1", "gpt-image-1-mini"]


def test_the_manifest_named_with_f_on_either_side_is_the_one_completed(folder: Path) -> None:
    other = folder / "sub" / "other.toml"
    other.parent.mkdir()
    other.write_text('[targets.logo]\nprompt = "a logo"\n[profiles.tiny]\nresolution = "0.5K"\n', encoding="utf-8")
    assert complete(["-f", str(other), "build"], "") == ["logo"]
    assert complete(["build", "-f", str(other)], "") == ["logo"]
    assert complete(["plan", "-f", str(other), "--profile"], "") == ["tiny"]


def test_found_upward_from_a_subfolder(folder: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (folder / "art" / "deep").mkdir(parents=True)
    monkeypatch.chdir(folder / "art" / "deep")
    assert complete(["build"], "he") == ["hero"]


def test_a_broken_manifest_still_offers_the_names_it_spells(folder: Path) -> None:
    (folder / "assets.toml").write_text(MANIFEST.replace('prompt = "a banner"', 'prompt = 42\nsize = "huge"'),
                                        encoding="utf-8")
    assert complete(["build"], "") == ["hero", "icon", "banner"]     # from the TOML: matrix rows not expanded
    assert complete(["build", "--tag"], "") == ["characters", "game", "ui"]


def test_completion_never_fails_loudly(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)                                   # no manifest anywhere up
    assert complete(["build"], "") == []
    (tmp_path / "assets.toml").write_text("[targets.\nnot toml", encoding="utf-8")
    assert complete(["build"], "") == []
    assert complete(["build", "--profile"], "") == []
    # as the shell asks: the script sets the variable and reads stdout; nothing on stderr, exit 0
    result = CliRunner().invoke(cli, [], prog_name="assetgen", env={
        "_ASSETGEN_COMPLETE": "bash_complete", "COMP_WORDS": "assetgen build ", "COMP_CWORD": "2"})
    assert result.exit_code == 0 and result.output.strip() == ""


def test_the_shells_protocol_returns_target_names(folder: Path) -> None:
    result = CliRunner().invoke(cli, [], prog_name="assetgen", env={
        "_ASSETGEN_COMPLETE": "bash_complete", "COMP_WORDS": "assetgen build icon.", "COMP_CWORD": "2"})
    assert result.exit_code == 0
    assert result.output.splitlines() == ["plain,icon.sword", "plain,icon.shield"]
    result = CliRunner().invoke(cli, [], prog_name="assetgen", env={
        "_ASSETGEN_COMPLETE": "fish_complete", "COMP_WORDS": "assetgen plan --tag ", "COMP_CWORD": "ui"})
    assert result.exit_code == 0 and "plain,ui" in result.output
