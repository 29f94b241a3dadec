"""``assetgen build --offline``: placeholders at exact sizes, the lock, the cache, restores, hand edits,
fresh clones, budgets, the API-key check and one build at a time (with real processes)."""

from __future__ import annotations

import os
import re
import stat
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import filelock
import pytest
from click.testing import CliRunner
from helpers.images import make_image
from helpers.project import FLASH, MANIFEST, OUTPUTS, ProjectDir
from PIL import Image

from assetgen import catalog
from assetgen.cli import cli
from assetgen.state.lockfile import Lock
from assetgen.state.statcache import sha256_file

SIZES = {"hero": ("3:4", "0.5K"), "hero_walk": ("1:1", "0.5K"), "banner": ("16:9", "0.5K"),
         "icons": ("1:1", "0.5K")}
NOTHING = "Nothing to build: everything is up to date."


def all_outputs() -> list[str]:
    return [o for outs in OUTPUTS.values() for o in outs]


def lock_data(project: ProjectDir) -> dict[str, Any]:
    return tomllib.loads(project.lock.read_text(encoding="utf-8"))


def stamp(path: Path) -> tuple[int, bytes]:
    return path.stat().st_mtime_ns, path.read_bytes()


# -- a first build ----------------------------------------------------------------------------------

def test_build_writes_exact_jpegs_the_lock_and_the_cache(project: ProjectDir) -> None:
    keys = project.keys()
    result = project.ok("build", "--offline")
    assert "Building 4 of 4 targets." in result.output
    assert "Done: 4 built. Spent $0.00." in result.output
    for name in OUTPUTS:
        assert f"{name}: built (placeholder)" in result.output

    for name, outputs in OUTPUTS.items():
        ratio, resolution = SIZES[name]
        for out in outputs:
            with Image.open(project.root / out) as image:
                assert image.format == "JPEG"
                assert image.size == catalog.pixel_size(ratio, resolution), out
    assert catalog.pixel_size("3:4", "0.5K") == (448, 600)
    # The three images of one task differ from each other.
    assert len({(project.root / o).read_bytes() for o in OUTPUTS["icons"]}) == 3

    data = lock_data(project)
    assert data["version"] == 1
    assert list(data["targets"]) == sorted(OUTPUTS)
    for name, outputs in OUTPUTS.items():
        entry = data["targets"][name]
        assert entry["key"] == keys[name]
        assert entry["model"] == "gemini-3.1-flash-image-preview"
        assert entry["placeholder"] is True
        assert entry["cost"] == 0
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", entry["built_at"])
        assert [o["path"] for o in entry["outputs"]] == outputs          # relative, '/' separators
        for out in entry["outputs"]:
            file = project.root / out["path"]
            assert out["sha256"] == sha256_file(file)
            assert out["size"] == file.stat().st_size
    assert data["targets"]["hero_walk"]["spec"]["references"][0] == {"ref": "@hero", "digest": "key:" + keys["hero"]}

    # Every image is in the cache, by content.
    objects = project.objects()
    assert sorted(p.stem for p in objects) == sorted(sha256_file(project.root / o) for o in all_outputs())
    for obj in objects:
        assert sha256_file(obj) == obj.stem
    assert project.run("plan", "--offline", "--check").exit_code == 0


def test_second_build_is_a_no_op_that_leaves_the_lock_untouched(project: ProjectDir) -> None:
    project.ok("build", "--offline")
    before = project.snapshot(skip=project.STAT_CACHE)
    lock_before = stamp(project.lock)
    result = project.ok("build", "--offline")
    assert NOTHING in result.output
    assert "built" not in result.output
    assert stamp(project.lock) == lock_before
    assert project.snapshot(skip=project.STAT_CACHE) == before


def test_offline_provider_setting_builds_without_the_flag(project: ProjectDir) -> None:
    project.edit('out_dir = "out"', 'out_dir = "out"\nprovider = "offline"')
    result = project.ok("build")
    assert "Done: 4 built." in result.output
    assert lock_data(project)["targets"]["hero"]["placeholder"] is True


def test_build_of_one_target_builds_its_upstream_only(project: ProjectDir) -> None:
    result = project.ok("build", "--offline", "hero_walk")
    assert "Building 2 of 2 targets." in result.output
    assert sorted(lock_data(project)["targets"]) == ["hero", "hero_walk"]
    assert (project.root / "out" / "characters" / "hero.jpg").exists()
    assert not (project.root / "out" / "banner.jpg").exists()
    # The rest is still to build; what was built is left alone.
    lock_before = stamp(project.lock)
    assert project.ok("build", "--offline", "hero").output.count(NOTHING) == 1
    assert stamp(project.lock) == lock_before


def test_shared_key_is_rendered_once_and_written_twice(empty_project: ProjectDir) -> None:
    empty_project.write("""\
        [defaults]
        resolution = "0.5K"

        [targets.coin]
        prompt = "A gold coin"

        [targets.coin_shop]
        prompt = "A gold coin"
        output = "shop/coin.jpg"
        """)
    result = empty_project.ok("build", "--offline")
    assert "coin_shop: shared (shares with coin: paid once)" in result.output
    root = empty_project.root / "assets" / "generated"
    assert (root / "coin.jpg").read_bytes() == (root / "shop" / "coin.jpg").read_bytes()
    assert len(empty_project.objects()) == 1
    data = lock_data(empty_project)["targets"]
    assert data["coin"]["key"] == data["coin_shop"]["key"]
    assert [o["path"] for o in data["coin_shop"]["outputs"]] == ["assets/generated/shop/coin.jpg"]


def test_numbered_outputs_follow_the_pattern(empty_project: ProjectDir) -> None:
    empty_project.write("""\
        [settings]
        out_dir = "sprites"

        [targets.walk]
        prompt = "Walk cycle frame"
        resolution = "0.5K"
        aspect_ratio = "9:16"
        n = 2
        output = "walk/frame_{i}.jpg"
        """)
    empty_project.ok("build", "--offline")
    for i in (1, 2):
        with Image.open(empty_project.root / "sprites" / "walk" / f"frame_{i}.jpg") as image:
            assert image.size == catalog.pixel_size("9:16", "0.5K") == (384, 688)


def test_prompt_change_rebuilds_that_target_and_its_downstream_only(project: ProjectDir) -> None:
    project.ok("build", "--offline")
    before = lock_data(project)["targets"]
    files = {o: stamp(project.root / o) for o in all_outputs()}
    project.edit('prompt = "A knight in silver armour, side view"', 'prompt = "A knight in bronze armour"')
    result = project.ok("build", "--offline")
    assert "Building 2 of 4 targets." in result.output
    after = lock_data(project)["targets"]
    assert after["banner"] == before["banner"] and after["icons"] == before["icons"]
    assert after["hero"]["key"] != before["hero"]["key"]
    assert after["hero_walk"]["key"] != before["hero_walk"]["key"]
    for out in OUTPUTS["banner"] + OUTPUTS["icons"]:
        assert stamp(project.root / out) == files[out]


# -- restores and hand edits ------------------------------------------------------------------------

def test_deleted_output_is_restored_from_the_cache(project: ProjectDir) -> None:
    project.ok("build", "--offline")
    objects = project.objects()
    lock_before = stamp(project.lock)
    originals = {o: (project.root / o).read_bytes() for o in ("out/banner.jpg", "out/icons-3.jpg")}
    for out in originals:
        (project.root / out).unlink()
    result = project.ok("build", "--offline")
    assert "banner: restored (from cache)" in result.output
    assert "icons: restored (from cache)" in result.output
    assert "Done: 2 restored." in result.output
    for out, data in originals.items():
        assert (project.root / out).read_bytes() == data
    assert project.objects() == objects              # nothing new was rendered
    assert stamp(project.lock) == lock_before        # the same images: the lock is unchanged


def test_deleted_output_is_restored_from_the_lock_when_the_index_is_gone(project: ProjectDir) -> None:
    project.ok("build", "--offline")
    shutil.rmtree(project.cache / "index")
    original = (project.root / "out" / "banner.jpg").read_bytes()
    (project.root / "out" / "banner.jpg").unlink()
    assert project.items("--offline")["banner"]["action"] == "restore"
    assert "banner: restored" in project.ok("build", "--offline").output
    assert (project.root / "out" / "banner.jpg").read_bytes() == original


def test_hand_modified_output_is_kept_reported_and_replaced_with_force(project: ProjectDir) -> None:
    project.ok("build", "--offline")
    banner = project.root / "out" / "banner.jpg"
    original = banner.read_bytes()
    objects = project.objects()
    make_image(banner, (0, 0, 0), size=(688, 384), fmt="JPEG")
    edited = banner.read_bytes()
    lock_before = stamp(project.lock)

    result = project.run("build", "--offline")
    assert result.exit_code == 1
    assert "banner: blocked" in result.output
    assert "out/banner.jpg was modified by hand" in result.output
    assert "--force" in result.output
    assert banner.read_bytes() == edited
    assert stamp(project.lock) == lock_before

    result = project.ok("build", "--offline", "--force")
    assert "banner: restored" in result.output
    assert banner.read_bytes() == original
    assert project.objects() == objects
    assert project.run("plan", "--offline", "--check").exit_code == 0


def test_hand_modified_stale_target_is_not_rebuilt(project: ProjectDir) -> None:
    project.ok("build", "--offline")
    banner = project.root / "out" / "banner.jpg"
    make_image(banner, (0, 0, 0), fmt="JPEG")
    edited = banner.read_bytes()
    project.edit('prompt = "A wide banner with a castle"', 'prompt = "A wide banner with a tower"')
    objects = project.objects()
    result = project.run("build", "--offline")
    assert result.exit_code == 1
    assert "banner: blocked" in result.output
    assert banner.read_bytes() == edited
    assert project.objects() == objects                          # nothing was rendered for it
    assert project.ok("build", "--offline", "--force").exit_code == 0
    assert banner.read_bytes() != edited
    assert len(project.objects()) == len(objects) + 1


def test_blocked_upstream_does_not_stop_a_downstream_restore(project: ProjectDir) -> None:
    """hero is hand-edited (blocked) and hero_walk's output is deleted. Neither key changed, so the
    plan restores hero_walk from the cache; the build must do what the plan says."""
    project.ok("build", "--offline")
    walk = project.root / "out" / "hero_walk.jpg"
    original = walk.read_bytes()
    make_image(project.root / "out" / "characters" / "hero.jpg", (0, 0, 0), fmt="JPEG")
    walk.unlink()
    assert project.items("--offline")["hero_walk"]["action"] == "restore"
    result = project.run("build", "--offline")
    assert result.exit_code == 1                        # hero is blocked
    assert "hero: blocked" in result.output
    assert "hero_walk: restored" in result.output, result.output
    assert walk.read_bytes() == original


# -- the lock in git --------------------------------------------------------------------------------

def test_fresh_clone_with_lock_and_images_is_up_to_date(project: ProjectDir, tmp_path: Path) -> None:
    project.ok("build", "--offline")
    clone = tmp_path / "clone"
    shutil.copytree(project.root, clone, ignore=shutil.ignore_patterns(".assetgen"))
    assert not (clone / ".assetgen").exists()
    runner = CliRunner()
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(clone)
        check = runner.invoke(cli, ["-f", "assets.toml", "plan", "--offline", "--check"])
        assert check.exit_code == 0, check.output
        assert "4 targets: 0 to build, 4 up to date" in check.output
        lock_before = stamp(clone / "assets.lock")
        build = runner.invoke(cli, ["-f", "assets.toml", "build", "--offline"])
        assert build.exit_code == 0 and NOTHING in build.output
        assert stamp(clone / "assets.lock") == lock_before
        assert not (clone / ".assetgen" / "objects").exists()
        # Online, the clone still knows these are placeholders to be replaced.
        assert runner.invoke(cli, ["-f", "assets.toml", "plan", "--check"]).exit_code == 1


def test_lock_is_sorted_and_stable_across_independent_builds(tmp_path: Path) -> None:
    locks = []
    for name, jobs in (("a", "1"), ("b", "8")):             # different concurrency, same lock
        root = tmp_path / name
        make_image(root / "refs" / "palette.png", (200, 40, 40))
        (root / "assets.toml").write_text(MANIFEST, encoding="utf-8")
        with pytest.MonkeyPatch.context() as mp:
            mp.chdir(root)
            result = CliRunner().invoke(cli, ["-f", "assets.toml", "build", "--offline", "--jobs", jobs])
            assert result.exit_code == 0, result.output
        locks.append((root / "assets.lock").read_bytes())

    def without_times(raw: bytes) -> str:
        return re.sub(r'(?m)^built_at = ".*"$', 'built_at = "…"', raw.decode("utf-8"))

    assert without_times(locks[0]) == without_times(locks[1])
    text = locks[0].decode("utf-8")
    assert text.startswith("# assets.lock: written by assetgen.")
    assert str(tmp_path) not in text                           # nothing machine-specific
    assert "\\" not in text

    # Sorted at every level (TOML puts a table's plain values before its sub-tables), and re-rendering
    # what was read gives the same bytes: the canonical form.
    def check_sorted(value: Any) -> None:
        if isinstance(value, dict):
            def is_table(v: Any) -> bool:
                return isinstance(v, dict) or (isinstance(v, list) and bool(v) and all(isinstance(i, dict) for i in v))
            plain = [k for k, v in value.items() if not is_table(v)]
            tables = [k for k, v in value.items() if is_table(v)]
            assert list(value) == sorted(plain) + sorted(tables)
            for item in value.values():
                check_sorted(item)
        elif isinstance(value, list):
            for item in value:
                check_sorted(item)
    check_sorted(tomllib.loads(text))
    assert Lock.load(tmp_path / "a" / "assets.lock").render() == locks[0]


def test_damaged_lock_is_a_clear_error(project: ProjectDir) -> None:
    project.ok("build", "--offline")
    project.lock.write_text("<<<<<<< HEAD\nversion = 1\n=======\n>>>>>>> other\n")
    result = project.run("plan")
    assert result.exit_code == 2
    assert "assets.lock is damaged" in result.output and "conflict" in result.output
    project.lock.write_text("version = 99\n")
    result = project.run("plan")
    assert result.exit_code == 2
    assert "format version 99" in result.output


# -- money and keys ---------------------------------------------------------------------------------

ONLINE_ENV = {"ASSETGEN_API_KEY": "sk-dummy-not-a-real-key", "ASSETGEN_BASE_URL": "http://127.0.0.1:9"}


def test_budget_in_settings_refuses_an_online_build_before_any_request(project: ProjectDir) -> None:
    project.edit('out_dir = "out"', 'out_dir = "out"\nbudget = 0.10')       # estimate: 6 × 0.031875
    result = project.run("build", env=ONLINE_ENV)
    assert result.exit_code == 1
    assert "budget" in result.output
    assert f"${6 * FLASH:.4f}" in result.output and "over the budget of $0.10" in result.output
    assert "nothing was submitted" in result.output
    assert "sk-dummy" not in result.output
    assert not project.lock.exists()
    assert not (project.root / "out").exists()
    assert not (project.cache / "objects").exists()
    assert not list(project.cache.glob("journal/*"))


def test_budget_option_overrides_and_offline_costs_nothing(project: ProjectDir) -> None:
    result = project.run("build", "--budget", "0.19", env=ONLINE_ENV)
    assert result.exit_code == 1 and "over the budget of $0.19" in result.output
    assert not project.lock.exists()
    # Placeholders are free: any budget, even 0, lets them through.
    assert project.ok("build", "--offline", "--budget", "0").exit_code == 0


def test_budget_counts_official_fallback_at_the_official_price(empty_project: ProjectDir) -> None:
    empty_project.write("""\
        [targets.hero]
        prompt = "A knight"
        official_fallback = true
        """)
    # 0.031875 fits in 0.05, but the upper bound 0.05695 does not.
    result = empty_project.run("build", "--budget", "0.05", env=ONLINE_ENV)
    assert result.exit_code == 1
    assert "$0.0570" in result.output and "official_fallback" in result.output


def test_online_build_without_api_key_exits_2_before_any_work(project: ProjectDir) -> None:
    result = project.run("build")
    assert result.exit_code == 2
    assert "ASSETGEN_API_KEY" in result.output
    assert "--offline" in result.output
    assert "Traceback" not in result.output
    assert not project.lock.exists() and not (project.root / "out").exists()
    assert not project.cache.exists()
    blank = project.run("build", env={"ASSETGEN_API_KEY": "   "})
    assert blank.exit_code == 2 and "ASSETGEN_API_KEY" in blank.output


# -- one build at a time ----------------------------------------------------------------------------

SIX = """\
[settings]
out_dir = "out"
provider = "offline"

[defaults]
resolution = "1K"
"""
SIX += "".join(f'\n[targets.t{i}]\nprompt = "Target number {i}"\nn = {1 + i % 2}\n' for i in range(6))
SIX_IMAGES = sum(1 + i % 2 for i in range(6))


def _built_lines(text: str) -> list[str]:
    return re.findall(r"^(t\d): built", text, flags=re.MULTILINE)


def _check_six(project: ProjectDir) -> None:
    data = lock_data(project)["targets"]
    assert sorted(data) == [f"t{i}" for i in range(6)]
    for entry in data.values():
        for out in entry["outputs"]:
            assert sha256_file(project.root / out["path"]) == out["sha256"]
            with Image.open(project.root / out["path"]) as image:
                assert image.size == (1024, 1024)
    assert len(project.objects()) == SIX_IMAGES
    assert project.run("plan", "--check").exit_code == 0


@pytest.mark.slow
def test_two_builds_at_once_never_render_twice(empty_project: ProjectDir) -> None:
    empty_project.write(SIX)
    procs = [empty_project.spawn("build") for _ in range(2)]
    results = [p.communicate(timeout=60) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], results
    built = _built_lines(results[0][0]) + _built_lines(results[1][0])
    assert sorted(built) == [f"t{i}" for i in range(6)], results        # each target once, in all
    assert any(NOTHING in out for out, _ in results), results
    _check_six(empty_project)


@pytest.mark.slow
def test_second_build_waits_for_the_first(empty_project: ProjectDir) -> None:
    """Deterministic overlap: both processes start while the build lock is held, so both must wait;
    on release one builds everything and the other, having waited, finds nothing to do."""
    empty_project.write(SIX)
    empty_project.cache.mkdir()
    held = filelock.FileLock(str(empty_project.cache / "build.lock"))
    held.acquire()
    try:
        procs = [empty_project.spawn("build") for _ in range(2)]
        for proc in procs:
            assert proc.stderr is not None
            line = proc.stderr.readline()
            assert "Another build, watch or gc using this cache (.assetgen/" in line and "waiting" in line, line
    finally:
        held.release()
    results = [p.communicate(timeout=60) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], results
    outs = [out for out, _ in results]
    assert sorted(_built_lines(outs[0]) + _built_lines(outs[1])) == [f"t{i}" for i in range(6)]
    assert sorted(NOTHING in out for out in outs) == [False, True], outs
    _check_six(empty_project)


def test_wait_zero_with_the_lock_held_fails_clearly(project: ProjectDir) -> None:
    project.cache.mkdir()
    with filelock.FileLock(str(project.cache / "build.lock")):
        result = project.run("build", "--offline", "--wait", "0")
        assert result.exit_code == 1
        assert "Error: another assetgen build" in result.output
        assert "still running" in result.output and "--wait" in result.output
        assert not project.lock.exists() and not (project.root / "out").exists()
        # plan does not take the build lock: it works while a build runs.
        assert project.run("plan").exit_code == 0
    assert project.ok("build", "--offline", "--wait", "0").exit_code == 0


@pytest.mark.slow
def test_python_dash_m_build_in_a_real_process(project: ProjectDir) -> None:
    proc = subprocess.run([sys.executable, "-m", "assetgen", "-f", "assets.toml", "build", "--offline"],
                          cwd=project.root, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert "Done: 4 built." in proc.stdout
    with Image.open(project.root / "out" / "banner.jpg") as image:
        assert image.size == catalog.pixel_size("16:9", "0.5K")
    assert proc.stderr == ""


def test_outputs_and_lock_get_ordinary_file_permissions(project: ProjectDir) -> None:
    """Committed images and the lock are ordinary files: readable by the group and others as the umask
    allows (a web server reading out_dir, a teammate on a shared machine), not private temp files."""
    old = os.umask(0o022)
    try:
        project.ok("build", "--offline")
    finally:
        os.umask(old)
    modes = {p: stat.S_IMODE((project.root / p).stat().st_mode) for p in ["assets.lock", *all_outputs()]}
    assert modes == {p: 0o644 for p in modes}


def test_a_rebuild_after_loading_a_lock_records_the_new_entry(project: ProjectDir) -> None:
    """The lock reuses the text of unchanged entries when it saves; a changed entry must be re-rendered
    (a stale chunk would make the next build see its own output as modified by hand)."""
    project.ok("build", "--offline")
    project.edit("A knight in silver armour", "A knight in golden armour")
    project.ok("build", "--offline")
    project.edit("A knight in golden armour", "A knight in silver armour")
    result = project.run("build", "--offline")
    assert result.exit_code == 0, result.output
    assert "restored" in result.output and "blocked" not in result.output
    again = project.run("plan", "--offline", "--check")
    assert again.exit_code == 0, again.output


def test_outputs_missing_from_the_lock_are_restored_from_the_cache_not_rebuilt(project: ProjectDir) -> None:
    """What a crash between two lock writes leaves: outputs on disk and images in the cache, but no
    lock entry. The next build records them for free instead of calling them hand-edited."""
    project.ok("build", "--offline")
    objects = sorted((project.root / ".assetgen" / "objects").rglob("*.jpg"))
    (project.root / "assets.lock").unlink()
    result = project.run("build", "--offline")
    assert result.exit_code == 0, result.output
    assert "blocked" not in result.output and "built" not in result.output
    assert sorted((project.root / ".assetgen" / "objects").rglob("*.jpg")) == objects
    assert project.run("plan", "--offline", "--check").exit_code == 0
