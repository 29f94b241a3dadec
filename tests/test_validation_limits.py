"""Bad input never costs money or ends in a traceback: limits, self-references, local damage, paths
outside the project, stale temporary files (issue 12 items 5 and 7, issue 14 items 6, 10, 11 and 12,
issue 13 item 4).

Every case runs the real CLI in-process on a real project folder; "nothing was paid" is shown with
offline builds (nothing written) and, where it matters, the emulator's submission count.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from helpers.images import make_image
from helpers.project import ProjectDir

from assetgen.state.atomic import atomic_write, sweep_stale_temps, temp_name
from assetgen.state.store import CachedImage, IndexEntry, Store

HEAD = """\
[settings]
out_dir = "out"

[defaults]
resolution = "0.5K"
"""


def write(project: ProjectDir, body: str, head: str = HEAD) -> None:
    project.write(head + textwrap.dedent(body))


def fails(project: ProjectDir, *args: str, code: int = 2) -> str:
    result = project.run(*args)
    assert result.exit_code == code, f"exit {result.exit_code}:\n{result.output}"
    assert "Traceback" not in result.output
    return result.output


def written(project: ProjectDir) -> list[str]:
    out = project.root / "out"
    return sorted(p.relative_to(project.root).as_posix() for p in out.rglob("*")) if out.exists() else []


# -- 12.5: a target may not reference its own outputs ----------------------------------------------------

def test_a_target_referencing_its_own_output_is_refused_before_paying(empty_project: ProjectDir) -> None:
    p = empty_project
    write(p, """
        [targets.ref]
        prompt = "A reference sheet"
        output = "ref.png"
        """)
    p.ok("build", "--offline")
    # Observed: the output then became the target's own reference; every build changed the key and paid.
    p.edit('output = "ref.png"', 'output = "ref.png"\naction = "edit"\nreferences = ["out/ref.png"]')
    before = p.snapshot(skip=p.STAT_CACHE)
    for command in (("plan",), ("build", "--offline")):
        out = fails(p, *command)
        assert "target 'ref'" in out and "field 'references'" in out
        assert "'out/ref.png'" in out and "own output 'out/ref.png'" in out and "'@NAME'" in out
    assert p.snapshot(skip=p.STAT_CACHE) == before


def test_a_reference_to_a_downstream_output_is_refused_and_spelling_does_not_hide_it(empty_project: ProjectDir) -> None:
    p = empty_project
    write(p, """
        [targets.base]
        prompt = "A base"
        references = ["refs/palette.png"]

        [targets.pose]
        action = "edit"
        prompt = "A pose"
        references = ["@base"]
        output = "poses/pose.png"
        """)
    p.ok("build", "--offline")
    p.edit('references = ["refs/palette.png"]', 'references = ["./out/poses/../poses/pose.png"]')
    out = fails(p, "plan")
    assert "target 'base'" in out and "'./out/poses/../poses/pose.png'" in out
    assert "output 'out/poses/pose.png' of target 'pose'" in out and "@pose -> @base" in out and "'@pose'" in out


def test_a_reference_through_a_symlink_to_its_own_output_is_refused(empty_project: ProjectDir) -> None:
    p = empty_project
    write(p, """
        [targets.ref]
        prompt = "A reference sheet"
        output = "ref.png"
        """)
    p.ok("build", "--offline")
    os.symlink(p.root / "out" / "ref.png", p.root / "refs" / "sheet.png")
    p.edit('output = "ref.png"', 'output = "ref.png"\nreferences = ["refs/sheet.png"]')
    out = fails(p, "build", "--offline")
    assert "reference 'refs/sheet.png' is this target's own output 'out/ref.png'" in out


def test_a_reference_to_an_independent_targets_output_is_allowed(empty_project: ProjectDir) -> None:
    p = empty_project
    write(p, """
        [targets.a]
        prompt = "A"
        output = "a.png"

        [targets.b]
        prompt = "B"
        references = ["out/a.png"]
        """)
    make_image(p.root / "out" / "a.png")
    p.ok("plan")


def test_a_self_reference_gives_the_same_error_from_a_remembered_load(empty_project: ProjectDir) -> None:
    p = empty_project
    write(p, """
        [targets.a]
        prompt = "A"
        output = "a.png"

        [targets.b]
        prompt = "B"
        """)
    p.ok("build", "--offline")
    p.ok("plan")                 # remembered: the next load is incremental (only [targets.a] changed)
    p.edit('output = "a.png"', 'output = "a.png"\nreferences = ["out/a.png"]')
    remembered = fails(p, "plan")
    shutil.rmtree(p.cache / "stat-parsed")
    assert fails(p, "plan") == remembered
    assert "own output" in remembered


# -- 12.7: matrix values become file names -------------------------------------------------------------

def test_long_matrix_values_in_an_output_name_are_refused_with_axis_and_value(empty_project: ProjectDir) -> None:
    p = empty_project
    clause = "a weathered bronze shield with " + "intricate knotwork and " * 12 + "a dragon"
    assert len(clause) > 255
    write(p, f"""
        [targets.shield]
        prompt = "{{look}}"
        matrix = {{ look = ["plain", "{clause}"] }}
        output = "shields/{{look}}.png"
        """)
    out = fails(p, "build", "--offline")
    assert "target 'shield'" in out and "field 'matrix'" in out and "axis 'look'" in out
    assert repr(clause[:60]) in out and f"is {len(clause)} bytes long" in out and "at most 255" in out
    assert written(p) == []


def test_the_default_output_from_long_values_is_checked_too(empty_project: ProjectDir) -> None:
    p = empty_project
    clause = "x" * 300
    write(p, f"""
        [targets.t]
        prompt = "{{look}}"
        matrix = {{ look = ["{clause}"] }}
        """)
    out = fails(p, "plan")      # the row's name, t.xxx…, would become its output t.xxx….jpg
    assert "target 't'" in out and "axis 'look'" in out and "'xxxxxxxx" in out and "at most 255" in out


@pytest.mark.parametrize("value, says", [("ui/icons", "path separator"), ("..", "not a file name"),
                                         ("a\\u0000b", "NUL")])
def test_matrix_values_are_one_path_component(empty_project: ProjectDir, value: str, says: str) -> None:
    p = empty_project
    write(p, f"""
        [targets.icon]
        prompt = "An icon"
        matrix = {{ item = ["sword", "{value}"] }}
        output = "{{item}}/icon.png"
        """)
    out = fails(p, "plan")
    assert "axis 'item'" in out and says in out and '"{item}/name.png"' in out


def test_matrix_rows_are_counted_before_anything_is_expanded(empty_project: ProjectDir) -> None:
    p = empty_project
    values = ", ".join(f'"v{i}"' for i in range(101))
    write(p, f"""
        [targets.big]
        prompt = "{{a}} {{b}}"
        matrix = {{ a = [{values}], b = [{values}] }}
        output = "{{a}}-{{b}}.png"
        """)
    out = fails(p, "plan")
    assert "10,201 rows (101 × 101)" in out and "at most 10,000" in out and "target 'big'" in out


# -- 14.6: bounds ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("section, line, field, says", [
    ("target", "n = 9", "n", "less than or equal to 8"),
    ("target", "candidates = 4000", "candidates", "less than or equal to 8"),
    ("settings", "poll_interval = inf", "poll_interval", "finite"),
    ("settings", "poll_interval = nan", "poll_interval", "finite"),
    ("settings", "poll_interval = 0.001", "poll_interval", "greater than or equal to 0.05"),
    ("settings", "task_timeout = inf", "task_timeout", "finite"),
    ("settings", "task_timeout = 1e9", "task_timeout", "less than or equal to 86400"),
    ("settings", "jobs = 100000", "jobs", "less than or equal to 256"),
    ("settings", "budget = nan", "budget", "finite"),
])
def test_bounds_are_checked_at_validation(empty_project: ProjectDir, section: str, line: str, field: str,
                                          says: str) -> None:
    p = empty_project
    head = HEAD.replace('out_dir = "out"', f'out_dir = "out"\n{line}') if section == "settings" else HEAD
    write(p, f"""
        [targets.t]
        prompt = "x"
        {line if section == "target" else ""}
        """, head=head)
    out = fails(p, "build", "--offline")
    assert f"field '{field}'" in out and says in out
    assert written(p) == []


def test_the_catalogue_states_the_bound_per_model(empty_project: ProjectDir) -> None:
    result = empty_project.ok("models", "--json")
    assert {m["max_images"] for m in json.loads(result.stdout)} == {8}


# -- 14.6 / 14.10: FIFOs, folders, damage ----------------------------------------------------------------

def test_a_fifo_reference_or_manifest_is_an_error_not_a_blocked_read(empty_project: ProjectDir) -> None:
    p = empty_project
    os.mkfifo(p.root / "refs" / "pipe.png")
    write(p, """
        [targets.t]
        prompt = "x"
        references = ["refs/pipe.png"]
        """)
    assert "'refs/pipe.png' is a FIFO (named pipe), not an image file" in fails(p, "plan")
    os.mkfifo(p.root / "fifo.toml")
    out = p.run("-f", "fifo.toml", "plan")     # (-f given twice: the last wins)
    assert out.exit_code == 2 and "fifo.toml: 1 problem" in out.output and "is a FIFO" in out.output
    (p.root / "folder.toml").mkdir()
    out = p.run("-f", "folder.toml", "plan")
    assert out.exit_code == 2 and "is a folder, not a manifest file" in out.output


@pytest.mark.parametrize("where", ["output-folder", "output-fifo", "lock", "build-lock", "cache"])
def test_local_damage_is_a_clear_error_naming_the_path(empty_project: ProjectDir, where: str) -> None:
    p = empty_project
    write(p, """
        [targets.a]
        prompt = "x"
        """)
    p.ok("build", "--offline")
    path = {"output-folder": p.root / "out" / "a.jpg", "output-fifo": p.root / "out" / "a.jpg",
            "lock": p.lock, "build-lock": p.cache / "build.lock", "cache": p.cache}[where]
    if path.is_dir():
        shutil.move(str(path), str(p.root / "moved"))
    else:
        path.unlink(missing_ok=True)
    if where == "output-fifo":
        os.mkfifo(path)
    elif where == "cache":
        path.write_text("not a folder")
    else:
        path.mkdir()
    command = ("plan",) if where != "build-lock" else ("build", "--offline")
    out = fails(p, *command)
    assert f"Error: {path} should be" in out
    kind = "a FIFO (named pipe)" if where == "output-fifo" else "a file" if where == "cache" else "a folder"
    assert f"it is {kind}" in out


def test_an_empty_lock_says_empty(project: ProjectDir) -> None:
    project.lock.write_text("")
    out = fails(project, "plan")
    assert "assets.lock is empty" in out and "None" not in out


def test_a_utf8_bom_manifest_parses(project: ProjectDir) -> None:
    project.manifest.write_bytes(b"\xef\xbb\xbf" + project.manifest.read_bytes())
    project.ok("build", "--offline")
    project.ok("plan")


def test_nul_in_an_output_path_and_in_out_dir(empty_project: ProjectDir) -> None:
    p = empty_project
    write(p, """
        [targets.a]
        prompt = "x"
        output = "a\\u0000b.png"
        """)
    assert "contains a NUL character" in fails(p, "build", "--offline")
    write(p, """
        [targets.a]
        prompt = "x"
        """, head=HEAD.replace('"out"', '"o\\u0000ut"'))
    out = fails(p, "plan")
    assert "field 'out_dir'" in out and "NUL" in out


def test_a_huge_target_name_is_refused_briefly(empty_project: ProjectDir) -> None:
    p = empty_project
    write(p, f"""
        [targets.{"n" * 100_000}]
        prompt = "x"
        """)
    out = fails(p, "build", "--offline")
    assert "at most 128 characters; this one has 100000" in out
    assert len(out) < 2_000


def test_a_5000_level_output_path_is_refused(empty_project: ProjectDir) -> None:
    p = empty_project
    write(p, f"""
        [targets.a]
        prompt = "x"
        output = "{"d/" * 5000}a.png"
        """)
    out = fails(p, "build", "--offline")
    assert "5,002 levels" in out and "this platform allows" in out
    assert written(p) == []


@pytest.mark.parametrize("nested", ["array", "inline", "table"])
def test_toml_nested_500_deep_is_a_manifest_error(empty_project: ProjectDir, nested: str) -> None:
    p = empty_project
    deep = {"array": "x = " + "[" * 500 + "]" * 500,
            "inline": "x = " + "{a = " * 500 + "1" + "}" * 500,
            "table": "[cache.remote_options." + ".".join(["a"] * 500) + "]"}[nested]
    p.write(HEAD + "\n[targets.a]\nprompt = \"x\"\n\n" + deep + "\n")
    out = fails(p, "plan")
    assert "nested" in out and "1 problem" in out


def test_index_entry_with_a_bad_sha256_never_touches_a_file_outside_the_cache(project: ProjectDir) -> None:
    project.ok("build", "--offline")
    victim = project.root.parent / "victim.txt"
    victim.write_text("precious")
    # A crafted entry: its "sha256" climbs out of objects/ to the victim file.
    for path in (project.cache / "index").rglob("*.json"):
        data = json.loads(path.read_text())
        if "images" in data:
            data["images"][0]["sha256"] = "../../../../victim.txt#"
            path.write_text(json.dumps(data))
    for output in (project.root / "out").rglob("*.jpg"):
        output.unlink()
    project.ok("build", "--offline")
    project.ok("gc")
    assert victim.read_text() == "precious"
    store = Store(project.cache)
    assert all(all(len(i.sha256) == 64 for i in e.images) for e in store.index.entries())
    with pytest.raises(ValueError):
        CachedImage("../x", 1)
    with pytest.raises(ValueError):
        IndexEntry.from_json(json.dumps({"version": 1, "key": "k", "images": [{"sha256": "/etc/passwd", "size": 1}],
                                         "model": "m", "task_id": None, "cost": 0, "placeholder": False,
                                         "built_at": ""}))


def test_a_remote_entry_with_a_bad_sha256_is_ignored(tmp_path: Path) -> None:
    from assetgen.remote.cache import RemoteCache

    warnings: list[str] = []
    remote = RemoteCache((tmp_path / "remote").as_uri(), warn=warnings.append)
    key = "a" * 64
    (tmp_path / "remote" / "keys").mkdir(parents=True)
    (tmp_path / "remote" / "keys" / f"{key}.json").write_text(json.dumps(
        {"version": 1, "key": key, "images": [{"sha256": "../../victim", "size": 1}], "model": "m",
         "task_id": None, "cost": 0, "placeholder": False, "built_at": ""}))
    assert remote.get_entry(key) is None and remote.fetch(key) is None
    assert any("damaged" in w for w in warnings)


def test_a_lock_entry_with_a_bad_sha256_is_reported(project: ProjectDir) -> None:
    project.ok("build", "--offline")
    text = project.lock.read_text()
    first = re.search(r'sha256 = "([0-9a-f]{64})"', text).group(1)    # any locked hash will do
    project.lock.write_text(text.replace(first, "../../../victim", 1))
    out = fails(project, "plan")
    assert "assets.lock is damaged" in out and "is not 64 hex digits" in out


# -- 14.11: paths stay inside the project unless the manifest says otherwise -------------------------------

@pytest.mark.parametrize("out_dir", ["../sibling/assets", "/tmp/assetgen-abs-out"])
def test_out_dir_outside_the_folder_needs_allow_outside(empty_project: ProjectDir, out_dir: str) -> None:
    p = empty_project
    body = """
        [targets.a]
        prompt = "x"
        """
    write(p, body, head=HEAD.replace('"out"', f'"{out_dir}"'))
    out = fails(p, "build", "--offline")
    assert "field 'out_dir'" in out and "allow_outside = true" in out
    if out_dir.startswith("/"):
        return           # (not written outside the test's folder)
    write(p, body, head=HEAD.replace('"out"', f'"{out_dir}"\nallow_outside = true'))
    p.ok("build", "--offline")
    assert (p.root.parent / "sibling" / "assets" / "a.jpg").exists()


def test_a_profile_out_dir_outside_the_folder_needs_allow_outside(empty_project: ProjectDir) -> None:
    p = empty_project
    write(p, """
        [profiles.draft]
        out_dir = "../drafts"

        [targets.a]
        prompt = "x"
        """)
    out = fails(p, "plan", "--profile", "draft")
    assert "[profiles.draft]" in out and "allow_outside" in out


def test_a_reference_outside_the_folder_needs_allow_outside(empty_project: ProjectDir) -> None:
    p = empty_project
    outside = make_image(p.root.parent / "elsewhere" / "ref.png")
    write(p, """
        [targets.a]
        prompt = "x"
        references = ["../elsewhere/ref.png"]
        """)
    out = fails(p, "plan")
    assert "is outside the project folder" in out and "uploaded" in out and "allow_outside" in out
    os.symlink(outside, p.root / "refs" / "link.png")       # a link inside that leads outside: the same
    p.edit('"../elsewhere/ref.png"', '"refs/link.png"')
    assert "is outside the project folder" in fails(p, "plan")
    p.edit('out_dir = "out"', 'out_dir = "out"\nallow_outside = true')
    p.ok("plan")


def test_a_symlinked_output_folder_is_checked_against_the_same_rule(empty_project: ProjectDir) -> None:
    p = empty_project
    target = p.root.parent / "linked-away"
    target.mkdir()
    (p.root / "out").mkdir()
    os.symlink(target, p.root / "out" / "icons")
    write(p, """
        [targets.a]
        prompt = "x"
        output = "icons/a.png"
        """)
    out = fails(p, "build", "--offline")
    assert "leads outside the manifest's folder" in out and str(target) in out
    assert list(target.iterdir()) == []
    p.manifest.write_text(p.manifest.read_text().replace('out_dir = "out"', 'out_dir = "out"\nallow_outside = true'))
    p.ok("build", "--offline")
    assert (target / "a.png").exists()


# -- 14.12: temporary files --------------------------------------------------------------------------------

def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


@pytest.mark.slow
def test_stale_temporaries_are_removed_by_the_next_command_that_writes_there(project: ProjectDir) -> None:
    project.ok("build", "--offline")
    dead, alive = _dead_pid(), os.getppid()
    out = project.root / "out"
    stale = [out / f".banner.jpg.assetgen-{dead}-0a1b2c3d.tmp", project.root / f".assets.lock.assetgen-{dead}-ff.tmp"]
    kept = [out / f".icons-1.jpg.assetgen-{alive}-0a1b2c3d.tmp",    # a live process's: never touched
            out / ".banner.jpg.12345.tmp"]                            # not a name of ours: never touched
    for path in stale + kept:
        path.write_bytes(b"half")
    (out / "banner.jpg").unlink()
    project.edit('prompt = "A wide banner with a castle"', 'prompt = "A wider banner with a castle"')
    project.ok("build", "--offline")
    assert [p.exists() for p in stale] == [False, False]
    assert all(p.exists() for p in kept)


@pytest.mark.slow
def test_a_killed_write_leaves_a_recognisable_temporary_that_is_swept(tmp_path: Path) -> None:
    # A real process killed in the middle of atomic_write (between creating the temp file and the rename).
    script = textwrap.dedent(f"""
        import os, signal
        from pathlib import Path
        import assetgen.state.atomic as f
        real = os.replace
        def die(src, dst):
            os.kill(os.getpid(), signal.SIGKILL)
        f.os.replace = die
        f.atomic_write(Path({str(tmp_path / "out" / "a.jpg")!r}), b"data")
        """)
    proc = subprocess.run([sys.executable, "-c", script], check=False, env={**os.environ})
    assert proc.returncode == -9
    left = [p.name for p in (tmp_path / "out").iterdir()]
    assert len(left) == 1 and left[0].startswith(".a.jpg.assetgen-") and left[0].endswith(".tmp")
    atomic_write(tmp_path / "out" / "b.jpg", b"data")
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["b.jpg"]
    assert sweep_stale_temps(tmp_path / "out") == 0            # once per folder per process
    assert len(temp_name("x" * 255).encode()) <= 255


# -- 13.4: documented gateway limits are warnings ----------------------------------------------------------

def test_documented_gateway_limits_are_warnings_in_plan_and_build(empty_project: ProjectDir) -> None:
    p = empty_project
    big = p.root / "refs" / "big.png"
    big.write_bytes(b"\x89PNG\r\n\x1a\n")
    os.truncate(big, 11 * 1024 * 1024)
    many = ", ".join(['"refs/palette.png"'] * 15)
    long_prompt = "a castle on a hill " * 60
    write(p, f"""
        [targets.wordy]
        prompt = "{long_prompt}"

        [targets.heavy]
        action = "edit"
        prompt = "x"
        references = ["refs/big.png"]

        [targets.crowded]
        action = "edit"
        prompt = "x"
        references = [{many}]

        [targets.fine]
        prompt = "x"
        """)
    for command in (("plan",), ("build", "--offline")):
        out = p.ok(*command).output
        assert (f"Warning: target 'wordy': its prompt has {len(long_prompt.strip()):,} characters "
                f"(documented maximum 1,000)") in out
        assert "target 'heavy': reference 'refs/big.png' is 11.0 MB (documented maximum 10 MB each)" in out
        assert "target 'crowded': it has 15 references (documented maximum 14)" in out
        assert "target 'fine'" not in out
    explained = p.ok("explain", "wordy").output
    assert f"length     {len(long_prompt.strip()):,} characters" in explained
    assert "over the documented limit" in explained
    assert "length     1 characters" in p.ok("explain", "fine").output


@pytest.mark.slow
def test_a_build_with_nothing_to_do_still_sweeps_the_output_folders(project: ProjectDir) -> None:
    project.ok("build", "--offline")
    stale = project.root / "out" / "characters" / f".hero.jpg.assetgen-{_dead_pid()}-00.tmp"
    stale.write_bytes(b"half")
    result = project.ok("build", "--offline")
    assert "Nothing to build" in result.output or "up to date" in result.output
    assert not stale.exists()


def test_a_file_where_an_output_folder_should_be_is_named(empty_project: ProjectDir) -> None:
    p = empty_project
    write(p, """
        [targets.a]
        prompt = "x"
        output = "sub/a.jpg"
        """)
    (p.root / "out").mkdir()
    (p.root / "out" / "sub").write_text("a file")
    out = fails(p, "build", "--offline")
    assert f"goes into 'out/sub', but {p.root / 'out' / 'sub'} is a file, not a folder" in out
    # Written by a command that did not validate (a remembered manifest): the write names it too.
    from assetgen.errors import StateError
    with pytest.raises(StateError, match="should be a folder \\(to hold a.jpg\\), but it is a file"):
        atomic_write(p.root / "out" / "sub" / "a.jpg", b"x")
