"""Regression tests for the findings of this round's security and money review."""

from __future__ import annotations

import tomllib
from typing import Any

import pytest

from assetgen.state import fasttoml


def _outcome(loads: Any, text: str) -> tuple[str, Any]:
    try:
        return "ok", repr(loads(text))
    except tomllib.TOMLDecodeError as exc:
        return "error", str(exc)


@pytest.mark.parametrize("text", [
    # TOML 1.1 (rtoml) lets an inline table span lines; TOML 1.0 (tomllib) refuses. The scan that sends
    # such text to tomllib missed a `}` hidden in a comment or in a multi-line string on the opening line.
    'a = { # }\nb = 1 }\n',
    'a = { b = 1, # }\nc = 2 }\n',
    'a = {b = 1 # }\n}\n',
    'x = [\n{ # }\n}]\n',
    'x = [ """\n}""", {\n c = 1 } ]\n',
    "x = [ '''\n}''', { c = 1,\n d = 2 } ]\n",
    '[settings]\nlimits = { total = 5.0, # }\n  day = 1.0 }\n',
])
def test_fast_toml_refuses_multiline_inline_tables_as_tomllib_does(text: str) -> None:
    assert _outcome(fasttoml.loads, text) == _outcome(tomllib.loads, text)
    assert fasttoml.may_differ(text)


# -- a crafted lock (merged from a branch by `merge-lock`) names files outside the project ---------------

def _offline_project(root: Any) -> Any:
    from click.testing import CliRunner

    from assetgen.cli import cli

    root.mkdir()
    (root / "assets.toml").write_text('[settings]\nout_dir = "out"\n\n[targets.a]\nprompt = "A"\n', encoding="utf-8")

    def run(*args: str) -> Any:
        return CliRunner().invoke(cli, ["-f", str(root / "assets.toml"), *args], catch_exceptions=False)
    assert run("build", "--offline").exit_code == 0
    return run


@pytest.mark.parametrize("force", [False, True])
def test_prune_never_deletes_a_file_outside_the_project_named_by_a_crafted_lock(tmp_path: Any, force: bool) -> None:
    import hashlib

    run = _offline_project(tmp_path / "proj")
    victim = tmp_path / "victim.txt"
    victim.write_bytes(b"precious\n")
    inside = tmp_path / "proj" / "out" / "a.jpg"
    sha = hashlib.sha256(victim.read_bytes()).hexdigest()
    lock = tmp_path / "proj" / "assets.lock"
    lock.write_text(lock.read_text(encoding="utf-8") + (
        f'\n[targets.zz]\nkey = "{"a" * 64}"\nmodel = "gemini-3.1-flash-image-preview"\nspec = {{}}\n'
        f'outputs = [{{path = "../victim.txt", sha256 = "{sha}", size = 9}},'
        f' {{path = "{victim}", sha256 = "{sha}", size = 9}}]\n'), encoding="utf-8")
    result = run("prune", *(["--force"] if force else []))
    assert result.exit_code == 0, result.output
    assert victim.read_bytes() == b"precious\n"
    assert inside.exists()
    assert "victim" not in result.output


def test_merge_lock_keeps_the_sprite_sheet_records(tmp_path: Any) -> None:
    """``merge-lock`` rewrote the lock from its target entries alone: every ``[sheets.NAME]`` record was lost."""
    import shutil

    from assetgen.commands.merge_lock import merge_locks
    from assetgen.state.lockfile import Lock

    run = _offline_project(tmp_path / "proj")
    assert run("plan", "--offline").exit_code == 0
    lock_path = tmp_path / "proj" / "assets.lock"
    lock = Lock.load(lock_path)
    lock.sheets["icons"] = {"key": "b" * 64, "members": 1, "size": [8, 8],
                            "outputs": [{"path": "out/icons.png", "sha256": "c" * 64, "size": 3}]}
    lock.save()
    base, ours, theirs = (tmp_path / n for n in ("base.lock", "ours.lock", "theirs.lock"))
    for copy in (base, ours, theirs):
        shutil.copy(lock_path, copy)
    result = merge_locks(base, ours, theirs)
    assert not result.conflicts
    assert Lock.load(ours).sheets == lock.sheets
