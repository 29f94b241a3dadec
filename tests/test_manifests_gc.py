"""Several manifests in one folder, and ``gc``: one lock per manifest, one shared cache, nothing paid
for is ever collected while anything could want it (issue 12, items 2 and 3)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
import tomllib
from pathlib import Path

import filelock
import pytest
from click.testing import Result
from helpers.project import ProjectDir

from assetgen.cli import cli
from helpers.online import emulator, env_for, run, start_build, targets, write_manifest

HEAD = """\
[settings]
out_dir = "out"
jobs = 4

[defaults]
model = "gemini-3.1-flash-image-preview"
resolution = "0.5K"

[profiles.draft]
resolution = "1K"
"""


def write_named(root: Path, name: str, body: str) -> Path:
    path = root / name
    path.write_text(HEAD + "\n" + textwrap.dedent(body), encoding="utf-8")
    return path


def locked(lock: Path) -> dict[str, dict]:
    return tomllib.loads(lock.read_text(encoding="utf-8"))["targets"]


def objects(root: Path) -> set[str]:
    return {p.stem for p in (root / ".assetgen" / "objects").glob("*/*.jpg")}


def shas(lock: Path) -> set[str]:
    return {o["sha256"] for entry in locked(lock).values() for o in entry["outputs"]}


def invoke(p: ProjectDir, manifest: str, *args: str) -> Result:
    """``assetgen -f MANIFEST ARGS`` in the project folder; crashes are test failures."""
    result = p.runner.invoke(cli, ["-f", manifest, *args], catch_exceptions=True)
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise AssertionError(f"assetgen {' '.join(args)} crashed: {result.exception!r}\n{result.output}")
    return result


def ok(p: ProjectDir, manifest: str, *args: str) -> str:
    result = invoke(p, manifest, *args)
    assert result.exit_code == 0, f"exit {result.exit_code}:\n{result.output}"
    return result.output


# -- one lock per manifest, one cache ---------------------------------------------------------------

def test_two_manifests_built_alternately_never_submit_twice_and_gc_from_either_keeps_both(tmp_path: Path) -> None:
    with emulator(latency=0.05) as emu:
        icons = write_named(tmp_path, "icons.toml", targets("sword", "shield"))
        banners = write_named(tmp_path, "banners.toml", targets("castle", "sea"))
        for round_ in range(5):
            for manifest in (icons, banners):
                result = run(manifest, emu, "build")
                assert result.exit_code == 0, result.output
                if round_:
                    assert "Nothing to build" in result.output, result.output
        assert sorted(s["prompt"] for s in emu.submissions) == [
            "a picture of castle", "a picture of sea", "a picture of shield", "a picture of sword"]
        assert set(locked(tmp_path / "icons.lock")) == {"sword", "shield"}
        assert set(locked(tmp_path / "banners.lock")) == {"castle", "sea"}
        assert not (tmp_path / "assets.lock").exists()
        registry = sorted(p.name for p in (tmp_path / ".assetgen" / "manifests").iterdir())
        assert registry == ["banners.toml.json", "icons.toml.json"]

        everything = objects(tmp_path)
        assert len(everything) == 4
        for manifest in (icons, banners):
            result = run(manifest, emu, "gc", "--grace", "0")
            assert result.exit_code == 0, result.output
            assert "Removed 0 cached images" in result.output
            assert "referenced by the locks of banners.toml, icons.toml" in result.output
        assert objects(tmp_path) == everything

        # gc from banners.toml still collects what icons.toml no longer references.
        icons.write_text(icons.read_text().replace("a picture of sword", "a picture of a sabre"))
        assert run(icons, emu, "build").exit_code == 0
        (old_sword,) = everything - shas(tmp_path / "icons.lock") - shas(tmp_path / "banners.lock")
        result = run(banners, emu, "gc", "--grace", "0")
        assert "Removed 1 cached images" in result.output, result.output
        assert objects(tmp_path) == everything - {old_sword} | shas(tmp_path / "icons.lock")

        # An output of the other manifest, deleted after gc, comes back from the cache for free.
        castle = (tmp_path / "out" / "castle.jpg").read_bytes()
        (tmp_path / "out" / "castle.jpg").unlink()
        paid = len(emu.submissions)
        result = run(banners, emu, "build")
        assert result.exit_code == 0 and "castle: restored" in result.output, result.output
        assert len(emu.submissions) == paid
        assert (tmp_path / "out" / "castle.jpg").read_bytes() == castle
        assert "Nothing to build" in run(icons, emu, "build").output


def test_each_manifest_has_its_own_lock_and_profile_locks(empty_project: ProjectDir) -> None:
    p = empty_project
    write_named(p.root, "icons.toml", targets("sword"))
    write_named(p.root, "assets.toml", targets("hero"))
    for manifest in ("icons.toml", "assets.toml"):
        ok(p, manifest, "build", "--offline")
        ok(p, manifest, "build", "--offline", "--profile", "draft")
    assert set(locked(p.root / "icons.lock")) == {"sword"}
    assert set(locked(p.root / "assets.lock")) == {"hero"}             # assets.toml keeps assets.lock
    assert set(locked(p.cache / "profiles" / "icons" / "draft.lock")) == {"sword"}
    assert set(locked(p.cache / "profiles" / "draft.lock")) == {"hero"}   # where it always was
    assert "Nothing to build" in ok(p, "icons.toml", "build", "--offline", "--profile", "draft")
    assert "Nothing to build" in ok(p, "assets.toml", "build", "--offline", "--profile", "draft")
    everything = objects(p.root)
    assert len(everything) == 4
    assert "Removed 0 cached images" in ok(p, "assets.toml", "gc", "--grace", "0")
    assert objects(p.root) == everything                                 # icons.toml's drafts too


def test_a_manifest_from_before_the_registry_is_kept(empty_project: ProjectDir) -> None:
    """A cache made by an older assetgen has no registry: assets.lock beside assets.toml still counts."""
    p = empty_project
    write_named(p.root, "assets.toml", targets("hero"))
    write_named(p.root, "icons.toml", targets("sword"))
    ok(p, "assets.toml", "build", "--offline")
    ok(p, "icons.toml", "build", "--offline")
    for entry in (p.cache / "manifests").iterdir():
        entry.unlink()
    before = objects(p.root)
    assert "referenced by the locks of assets.toml, icons.toml" in ok(p, "icons.toml", "gc", "--grace", "0")
    assert objects(p.root) == before


def test_a_vanished_manifest_is_reported_and_kept_until_forgotten(empty_project: ProjectDir) -> None:
    p = empty_project
    write_named(p.root, "icons.toml", targets("sword"))
    write_named(p.root, "banners.toml", targets("castle"))
    ok(p, "icons.toml", "build", "--offline")
    ok(p, "banners.toml", "build", "--offline", "--profile", "draft")
    ok(p, "banners.toml", "build", "--offline")
    banner_images = objects(p.root) - shas(p.root / "icons.lock")
    assert len(banner_images) == 2                                       # final and draft

    (p.root / "banners.toml").unlink()                                    # its lock is still there
    out = ok(p, "icons.toml", "gc", "--grace", "0")
    assert "banners.toml used this cache and is gone; kept what its locks reference" in out
    assert "--forget-missing" in out
    assert banner_images <= objects(p.root)

    # Without its lock its images cannot be told apart: nothing at all is removed.
    (p.root / "banners.lock").unlink()
    (p.root / "icons.toml").write_text((p.root / "icons.toml").read_text().replace("of sword", "of a sabre"))
    ok(p, "icons.toml", "build", "--offline")
    before = objects(p.root)
    out = ok(p, "icons.toml", "gc", "--grace", "0")
    assert "banners.toml used this cache and is gone" in out and "nothing was removed" in out
    assert "Removed 0 cached images" in out
    assert objects(p.root) == before
    assert "Would forget banners.toml" in ok(p, "icons.toml", "gc", "--grace", "0", "--forget-missing",
                                             "--dry-run")
    assert objects(p.root) == before

    out = ok(p, "icons.toml", "gc", "--grace", "0", "--forget-missing")
    assert "Forgot banners.toml" in out
    assert objects(p.root) == shas(p.root / "icons.lock")                # the draft, the final, the old sword
    assert "Removed 3 cached images" in out
    assert not (p.cache / "profiles" / "banners").exists()
    assert "banners.toml" not in ok(p, "icons.toml", "gc", "--grace", "0")


# -- gc never takes what a build could want -----------------------------------------------------------

def _one_unreferenced(project: ProjectDir) -> str:
    project.ok("build", "--offline")
    project.edit('prompt = "A wide banner with a castle"', 'prompt = "A wide banner with a windmill"')
    project.ok("build", "--offline")
    (unreferenced,) = objects(project.root) - shas(project.lock)
    return unreferenced


def test_gc_holds_the_build_lock(project: ProjectDir) -> None:
    unreferenced = _one_unreferenced(project)
    with filelock.FileLock(str(project.cache / "build.lock")):
        result = project.run("gc", "--grace", "0", "--wait", "0")
        assert result.exit_code == 1
        assert "Error: another assetgen build, watch or gc" in result.output and "--wait" in result.output
        assert unreferenced in objects(project.root)
        assert "Would remove 1 cached images" in project.ok("gc", "--grace", "0", "--dry-run").output
    assert "Removed 1 cached images" in project.ok("gc", "--grace", "0", "--wait", "0").output
    assert unreferenced not in objects(project.root)


def test_gc_keeps_objects_younger_than_the_grace_period(project: ProjectDir) -> None:
    """A process without the build lock (a `pull`) may be writing an object it has not indexed yet."""
    unreferenced = _one_unreferenced(project)
    out = project.ok("gc").output
    assert "Removed 0 cached images" in out and "kept 1 unreferenced younger than --grace" in out
    path = project.cache / "objects" / unreferenced[:2] / f"{unreferenced}.jpg"
    then = time.time() - 700
    os.utime(path, (then, then))
    assert "Removed 1 cached images" in project.ok("gc").output


def test_gc_keeps_whatever_the_journal_names(project: ProjectDir) -> None:
    project.ok("build", "--offline")
    old_key = project.keys()["banner"]
    unreferenced = _one_unreferenced(project)
    journal = project.cache / "journal"
    journal.mkdir(exist_ok=True)
    # Any journal version: a key (its index entry is live) or a bare SHA-256 anywhere in the file.
    (journal / f"{old_key}.json").write_text(json.dumps(
        {"version": 2, "key": old_key, "submissions": [{"state": "completed", "images": None}]}))
    assert "Removed 0 cached images" in project.ok("gc", "--grace", "0").output
    assert unreferenced in objects(project.root)
    assert (project.cache / "index" / "placeholder" / f"{old_key}.json").is_file()   # its entry is live
    (journal / f"{old_key}.json").write_text(json.dumps({"version": 9, "note": [[{"x": unreferenced}]]}))
    assert "Removed 0 cached images" in project.ok("gc", "--grace", "0").output
    (journal / f"{old_key}.json").unlink()
    assert "Removed 1 cached images" in project.ok("gc", "--grace", "0").output


@pytest.mark.slow
def test_gc_looping_during_a_build_never_fails_a_target(tmp_path: Path) -> None:
    names = [f"t{i}" for i in range(12)]
    with emulator(latency=0.3) as emu:
        manifest = write_manifest(tmp_path, targets(*names))
        build = start_build(manifest, emu, "--keep-going", "--jobs", "3")
        env = {**os.environ, **env_for(emu)}
        gcs = []
        try:
            while build.poll() is None:
                gcs.append(subprocess.run(
                    [sys.executable, "-m", "assetgen", "-f", str(manifest), "gc", "--grace", "0", "--wait", "60"],
                    env=env, capture_output=True, text=True, timeout=120, check=False))
            out, _ = build.communicate(timeout=60)
        finally:
            if build.poll() is None:
                build.kill()
                build.communicate()
        assert build.returncode == 0, out
        assert "failed" not in out and "vanished" not in out, out
        assert gcs and all(g.returncode == 0 for g in gcs), [g.stdout + g.stderr for g in gcs]
        assert len(emu.submissions) == 12
        assert objects(tmp_path) == shas(tmp_path / "assets.lock") and len(objects(tmp_path)) == 12
        again = run(manifest, emu, "build")
        assert "Nothing to build" in again.output and len(emu.submissions) == 12


@pytest.mark.slow
def test_builds_of_two_manifests_sharing_a_cache_take_turns_and_both_register(empty_project: ProjectDir) -> None:
    p = empty_project
    write_named(p.root, "icons.toml", targets("sword", "shield"))
    write_named(p.root, "banners.toml", targets("castle"))
    p.cache.mkdir()
    held = filelock.FileLock(str(p.cache / "build.lock"))
    held.acquire()
    try:
        procs = [subprocess.Popen([sys.executable, "-m", "assetgen", "-f", name, "build", "--offline"], cwd=p.root,
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                 for name in ("icons.toml", "banners.toml")]
        p.procs.extend(procs)
        for proc in procs:                     # one build lock for the cache: both wait for it
            assert proc.stderr is not None and "waiting" in proc.stderr.readline()
    finally:
        held.release()
    results = [proc.communicate(timeout=60) for proc in procs]
    assert [proc.returncode for proc in procs] == [0, 0], results
    assert set(locked(p.root / "icons.lock")) == {"sword", "shield"}
    assert set(locked(p.root / "banners.lock")) == {"castle"}
    assert sorted(e.name for e in (p.cache / "manifests").iterdir()) == ["banners.toml.json", "icons.toml.json"]
