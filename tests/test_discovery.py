"""Which manifest a command uses: the nearest ``assets.toml`` upward, ``-f`` on either side, ``ASSETGEN_FILE``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from helpers.project import OUTPUTS, ProjectDir

from assetgen.cli import cli


def invoke(*args: str, env: dict[str, str] | None = None) -> Result:
    """``assetgen ARGS`` from the working folder, without the ``-f`` that ``ProjectDir.run`` adds."""
    result = CliRunner().invoke(cli, list(args), env=env, catch_exceptions=True)
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    return result


def nested(project: ProjectDir, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = project.root / "art" / "sprites"
    folder.mkdir(parents=True)
    monkeypatch.chdir(folder)
    return folder


def test_a_nested_folder_finds_the_manifest_above(project: ProjectDir, monkeypatch: pytest.MonkeyPatch) -> None:
    nested(project, monkeypatch)
    result = invoke("plan", "--json")
    assert result.exit_code == 0, result.output
    assert {i["name"] for i in json.loads(result.stdout)["targets"]} == set(OUTPUTS)
    assert invoke("build", "--offline").exit_code == 0
    for outputs in OUTPUTS.values():        # written beside the manifest, not in the working folder
        assert all((project.root / out).is_file() for out in outputs)
    assert not (project.root / "art" / "sprites" / "out").exists()


def test_file_option_after_the_subcommand(project: ProjectDir, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(project.root.parent)
    result = invoke("plan", "-f", "proj/assets.toml", "--json")
    assert result.exit_code == 0, result.output
    assert {i["name"] for i in json.loads(result.stdout)["targets"]} == set(OUTPUTS)
    # The one after the command is the nearer: it wins over the one before.
    assert invoke("-f", "missing.toml", "plan", "--file", "proj/assets.toml").exit_code == 0
    missing = invoke("plan", "-f", "missing.toml")
    assert missing.exit_code == 2 and "missing.toml: 1 problem" in missing.output


def test_env_var_names_the_manifest_and_f_beats_it(project: ProjectDir, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(project.root.parent)
    result = invoke("plan", "--json", env={"ASSETGEN_FILE": "proj/assets.toml"})
    assert result.exit_code == 0, result.output
    assert {i["name"] for i in json.loads(result.stdout)["targets"]} == set(OUTPUTS)
    for args in (["-f", "other.toml", "plan"], ["plan", "-f", "other.toml"]):
        beaten = invoke(*args, env={"ASSETGEN_FILE": "proj/assets.toml"})
        assert beaten.exit_code == 2 and "other.toml: 1 problem" in beaten.output
    # The variable also beats the search (a nearer assets.toml is not used).
    nested(project, monkeypatch)
    (project.root / "art" / "assets.toml").write_text("not [ toml", encoding="utf-8")
    assert invoke("plan", env={"ASSETGEN_FILE": str(project.manifest)}).exit_code == 0


def test_messages_name_the_nearest_manifest_and_only_builds_say_nothing_was_built(
        project: ProjectDir, monkeypatch: pytest.MonkeyPatch) -> None:
    nested(project, monkeypatch)
    project.write('[targets.a]\nprompt = "x"\nmodel = "no-such-model"\n', name="art/assets.toml")
    plan = invoke("plan")
    assert plan.exit_code == 2
    assert plan.output.startswith("Error: ../assets.toml: 1 problem in the manifest; no plan was made")
    assert "../assets.toml:3: target 'a', field 'model'" in plan.output       # the nearer one, not the project's
    assert "nothing was built" not in plan.output
    explain = invoke("explain", "a")
    assert explain.exit_code == 2 and "nothing was built" not in explain.output and "../assets.toml" in explain.output
    build = invoke("build", "--offline")
    assert build.exit_code == 2 and "../assets.toml: 1 problem in the manifest; nothing was built" in build.output


def test_not_found_says_where_it_looked(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = tmp_path / "nowhere" / "deep"
    folder.mkdir(parents=True)
    if any((p / "assets.toml").exists() or (p / ".assetgen").exists() for p in folder.parents):
        pytest.skip("an assets.toml or .assetgen/ above the test folder")     # this machine's, not ours
    monkeypatch.chdir(folder)
    result = invoke("plan")
    assert result.exit_code == 2
    assert result.output.strip() == (
        f"Error: no assets.toml found in {folder.resolve()} or any folder above it; run `assetgen init` to write "
        f"a starter manifest here, or pass -f PATH (or set ASSETGEN_FILE)")
    assert "nothing was built" not in result.output


def test_the_search_stops_at_another_manifests_cache(project: ProjectDir, monkeypatch: pytest.MonkeyPatch) -> None:
    """A folder with its own .assetgen/ (manifests of other names) is a different project: not the one above."""
    other = project.root / "tools"
    (other / ".assetgen").mkdir(parents=True)
    (other / "ui.toml").write_text('[targets.a]\nprompt = "x"\n', encoding="utf-8")
    (other / "src").mkdir()
    monkeypatch.chdir(other / "src")
    result = invoke("plan")
    assert result.exit_code == 2
    assert f"stopped at {other.resolve()}: its .assetgen/ belongs to manifests of other names" in result.output
    assert invoke("-f", "../ui.toml", "plan").exit_code == 0


def test_init_writes_here_even_below_a_manifest(project: ProjectDir, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = nested(project, monkeypatch)
    before = project.manifest.read_bytes()
    assert invoke("init").exit_code == 0
    assert (folder / "assets.toml").is_file() and project.manifest.read_bytes() == before
