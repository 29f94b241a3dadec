"""``assetgen merge-lock``: git's merge driver for the lock, in real git repositories with two branches.

The lock is a sorted TOML file: two branches that rebuilt neighbouring targets change adjacent lines, which
git's line merge calls a conflict (or, worse, interleaves). The driver merges target by target instead.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from click.testing import CliRunner

from assetgen.cli import cli

pytestmark = pytest.mark.skipif(shutil.which("git") is None, reason="needs git")

MANIFEST = """\
[settings]
out_dir = "out"

[defaults]
model = "gemini-3.1-flash-image-preview"
resolution = "0.5K"

[targets.a]
prompt = "a red apple"

[targets.b]
prompt = "a blue boat"

[targets.c]
prompt = "a green cat"
"""


def git(repo: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.com", "GIT_COMMITTER_NAME": "t",
           "GIT_COMMITTER_EMAIL": "t@example.com", "GIT_CONFIG_GLOBAL": os.devnull, "GIT_CONFIG_NOSYSTEM": "1"}
    done = subprocess.run(["git", *args], cwd=repo, capture_output=True, text=True, env=env)
    if check:
        assert done.returncode == 0, done.stdout + done.stderr
    return done


def assetgen(repo: Path, *args: str) -> str:
    result = CliRunner().invoke(cli, ["-f", str(repo / "assets.toml"), *args], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.output


def edit_build_commit(repo: Path, old: str, new: str, message: str) -> None:
    manifest = repo / "assets.toml"
    manifest.write_text(manifest.read_text().replace(old, new))
    assetgen(repo, "build", "--offline")
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", message)


def keys(repo: Path) -> dict[str, str]:
    return {n: e["key"] for n, e in tomllib.loads((repo / "assets.lock").read_text())["targets"].items()}


@pytest.fixture
def repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A repository with the three targets built and committed on main, the driver enabled as documented."""
    repo = tmp_path / "repo"
    repo.mkdir()
    monkeypatch.chdir(repo)
    git(repo, "init", "-q", "-b", "main")
    said = CliRunner().invoke(cli, ["init"], catch_exceptions=False).output
    assert "merge driver" in said and 'git config merge.assetgen-lock.driver' in said   # in a clone: say how
    assert (repo / ".gitattributes").read_text().splitlines()[-1] == "assets.lock merge=assetgen-lock"
    (repo / "assets.toml").write_text(MANIFEST)
    assetgen(repo, "build", "--offline")
    # the README's line, with this interpreter for `assetgen` (the tests' sources on PYTHONPATH)
    git(repo, "config", "merge.assetgen-lock.driver", f"{sys.executable} -m assetgen merge-lock %O %A %B %P")
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "three targets")
    return repo


def test_two_branches_rebuilding_different_targets_merge_cleanly(repo: Path) -> None:
    # Each branch changes a target and adds one. Both new entries sort after `c`, at the end of the lock:
    # git's line merge calls that a conflict (both added lines at the same place); target by target it is not.
    git(repo, "checkout", "-qb", "feature")
    edit_build_commit(repo, "a red apple", "a red apple on a table", "apple")
    edit_build_commit(repo, "[targets.a]", '[targets.d]\nprompt = "a yellow duck"\n\n[targets.a]', "duck")
    theirs = keys(repo)
    git(repo, "checkout", "-q", "main")
    edit_build_commit(repo, "a blue boat", "a blue boat at sea", "boat")
    edit_build_commit(repo, 'a green cat"', 'a green cat"\n\n[targets.e]\nprompt = "an orange eel"', "eel")
    ours = keys(repo)

    done = git(repo, "merge", "-q", "--no-edit", "feature", check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    merged = keys(repo)
    assert merged == {"a": theirs["a"], "b": ours["b"], "c": ours["c"], "d": theirs["d"], "e": ours["e"]}
    # the merged lock is what a build would write: nothing is stale, and a build rewrites nothing
    lock = (repo / "assets.lock").read_bytes()
    assert "Everything is up to date" in assetgen(repo, "plan", "--offline")
    assetgen(repo, "build", "--offline")
    assert (repo / "assets.lock").read_bytes() == lock
    assert git(repo, "status", "--porcelain").stdout == ""


def test_the_same_target_changed_differently_is_a_conflict_git_shows(repo: Path) -> None:
    git(repo, "checkout", "-qb", "feature")
    edit_build_commit(repo, "a red apple", "a red apple, sliced", "apple sliced")
    edit_build_commit(repo, "a green cat", "a green cat asleep", "cat")
    git(repo, "checkout", "-q", "main")
    (repo / "assets.toml").write_text(MANIFEST.replace("a red apple", "a red apple, whole"))
    assetgen(repo, "build", "--offline")
    git(repo, "add", "assets.lock", "out")
    git(repo, "commit", "-qm", "apple whole (manifest left uncommitted: only the lock is merged here)")
    git(repo, "checkout", "-q", "--", "assets.toml")

    done = git(repo, "merge", "--no-edit", "feature", check=False)
    assert done.returncode != 0
    assert "CONFLICT (content): Merge conflict in assets.lock" in done.stdout
    assert "assets.lock: 1 target built differently on both branches: a." in done.stdout + done.stderr
    assert "UU assets.lock" in git(repo, "status", "--porcelain").stdout
    text = (repo / "assets.lock").read_text()
    assert text.count("<<<<<<< ours") == 1 and text.count(">>>>>>> theirs") == 1
    block = text[text.index("<<<<<<< ours"):text.index(">>>>>>> theirs")]
    assert "[targets.a]" in block and "[targets.c]" not in block      # only the target both changed
    # outside the markers the rest is merged: their cat, our (untouched) boat
    resolved = text[:text.index("<<<<<<< ours")] + text[text.index(">>>>>>> theirs") + len(">>>>>>> theirs\n"):]
    entries = tomllib.loads(resolved)["targets"]
    assert set(entries) == {"b", "c"}
    assert git(repo, "show", "feature:assets.lock").stdout.count(entries["c"]["key"]) == 1


def test_a_target_removed_on_one_side_and_unchanged_on_the_other_is_removed(tmp_path: Path) -> None:
    runner = CliRunner()
    folder = tmp_path / "p"
    folder.mkdir()
    (folder / "assets.toml").write_text(MANIFEST)
    assetgen(folder, "build", "--offline")
    base = folder / "base.lock"
    shutil.copy(folder / "assets.lock", base)
    ours = folder / "ours.lock"
    theirs = folder / "theirs.lock"
    shutil.copy(base, ours)
    lines = base.read_text()
    theirs.write_text(lines[:lines.index("[targets.b]")] + lines[lines.index("[targets.c]"):])   # b removed
    result = runner.invoke(cli, ["merge-lock", str(base), str(ours), str(theirs), "assets.lock"])
    assert result.exit_code == 0, result.output
    assert ours.read_text() == theirs.read_text()
    again = runner.invoke(cli, ["merge-lock", "-v", str(base), str(ours), str(theirs), "assets.lock"])
    assert "assets.lock: merged 2 targets; 0 from their side." in again.output     # not "2 target(s)"
    # no common ancestor (git passes an empty file): identical additions merge, different ones conflict
    empty = folder / "empty.lock"
    empty.write_text("")
    assert runner.invoke(cli, ["merge-lock", str(empty), str(ours), str(theirs)]).exit_code == 0


def test_conflict_help_counts_targets_in_words() -> None:
    from assetgen.commands.merge_lock import MergeResult, conflict_help

    assert conflict_help(MergeResult(conflicts=["a"]), "x.lock")[0] == \
        "x.lock: 1 target built differently on both branches: a."
    assert conflict_help(MergeResult(conflicts=["a", "b"]), "x.lock")[0].startswith("x.lock: 2 targets built")


def test_a_lock_that_does_not_parse_is_an_error_that_names_it(tmp_path: Path) -> None:
    base, ours, theirs = (tmp_path / n for n in ("base", "ours", "theirs"))
    base.write_text("")
    ours.write_text("version = 1\n[targets.a\n")
    theirs.write_text("")
    result = CliRunner().invoke(cli, ["merge-lock", str(base), str(ours), str(theirs), "art/assets.lock"])
    assert result.exit_code == 2
    assert "Error:" in result.output and "art/assets.lock" in result.output
    assert ours.read_text() == "version = 1\n[targets.a\n"                  # left as it was for git
