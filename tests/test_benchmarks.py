"""The benchmark suite at smoke size: its workload generators are right and its counters are right.

Each benchmark runs end to end here, with the real CLI in subprocesses and the gateway emulator, at a
small size. These tests check what the benchmarks count — targets, stale targets, submissions, HTTP
requests per target, restored images — and never how long anything took: timing on a shared 2-core
machine is for ``python -m benchmarks`` to report, not for a test to assert.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from PIL import Image

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:          # `pytest` run directly (`python -m pytest` has the repo on the path)
    sys.path.insert(0, str(REPO))

from assetgen.commands.build import BuildOptions, build, make_provider
from assetgen.engine.events import QuietReporter
from assetgen.engine.project import Project
from assetgen.manifest import loader as manifest_mod
from benchmarks import noop, one_change, peers, restore, scale, throughput, watch_latency
from benchmarks.config import Config
from benchmarks.emulation import env_for, per_task, poll_bound, start_emulator
from benchmarks.measure import Row, cli_env, run_cli, summarise
from benchmarks.prepare import build_in_process, verify_up_to_date
from benchmarks.workloads import (
    REF_SHARE,
    edit_prompt,
    make_project,
    make_reference_images,
)

pytestmark = pytest.mark.slow          # real processes, signals or watches (see CONTRIBUTING.md)


@pytest.fixture
def pool(tmp_path: Path) -> Path:
    folder = tmp_path / "pool"
    make_reference_images(folder, 24, seed=1)
    return folder


def small(**overrides: object) -> Config:
    """The quick configuration, smaller still: one run per figure."""
    values: dict[str, object] = {"repeat": 1, "noop_sizes": (40,), "one_change_size": 30, "one_change_edits": 1,
                                 "throughput_targets": 12, "throughput_jobs": 32, "throughput_runs": 1,
                                 "watch_targets": 8, "watch_edits": 2, "restore_targets": 20, "restore_runs": 1}
    values.update(overrides)
    return Config.quick_config(**values)


# -- the workload generator ---------------------------------------------------------------------------

def test_the_generator_writes_a_valid_manifest_with_the_promised_mix(tmp_path: Path, pool: Path) -> None:
    wl = make_project(tmp_path / "p", 200, seed=3, refs_from=pool)
    data = tomllib.loads(wl.manifest.read_text(encoding="utf-8"))
    targets = data["targets"]
    assert list(targets) == wl.names and len(targets) == 200
    assert data["defaults"]["resolution"] == "0.5K"

    # Every prompt distinct (so every key is), and their lengths vary.
    prompts = [t["prompt"] for t in targets.values()]
    assert len(set(prompts)) == 200
    lengths = [len(p.split()) for p in prompts]
    assert min(lengths) < 20 < max(lengths)

    # A quarter carry a reference file, each one a real PNG in refs/.
    with_file = {n: [r for r in t.get("references", []) if not r.startswith("@")] for n, t in targets.items()}
    with_file = {n: refs for n, refs in with_file.items() if refs}
    assert len(with_file) == int(200 * REF_SHARE) == len(wl.references)
    for refs in with_file.values():
        assert len(refs) == 1 and refs[0] in wl.ref_files
        with Image.open(wl.root / refs[0]) as img:
            assert img.format == "PNG"
    assert len(wl.ref_files) > 10

    # Chains of depth 2..4: each link edits the one before it.
    assert wl.chains and all(2 <= len(chain) <= 4 for chain in wl.chains)
    for chain in wl.chains:
        assert "@" not in " ".join(targets[chain[0]].get("references", []))
        for up, down in itertools.pairwise(chain):
            assert targets[down]["references"] == [f"@{up}"]
            assert targets[down]["action"] == "edit"
    at_refs = sum(1 for t in targets.values() for r in t.get("references", []) if r.startswith("@"))
    assert at_refs == sum(len(c) - 1 for c in wl.chains)

    # assetgen itself accepts it, with the chains in dependency order.
    loaded = manifest_mod.load(wl.manifest)
    assert len(loaded.targets) == 200
    order = list(loaded.targets)
    for chain in wl.chains:
        assert [order.index(n) for n in chain] == sorted(order.index(n) for n in chain)


def test_the_generator_is_deterministic_per_seed(tmp_path: Path, pool: Path) -> None:
    a = make_project(tmp_path / "a", 60, seed=5, refs_from=pool).manifest.read_text(encoding="utf-8")
    b = make_project(tmp_path / "b", 60, seed=5, refs_from=pool).manifest.read_text(encoding="utf-8")
    c = make_project(tmp_path / "c", 60, seed=6, refs_from=pool).manifest.read_text(encoding="utf-8")
    assert a == b != c
    first = sorted(p.read_bytes() for p in make_reference_images(tmp_path / "r1", 5, seed=2))
    again = sorted(p.read_bytes() for p in make_reference_images(tmp_path / "r2", 5, seed=2))
    assert first == again and len(set(first)) == 5


def test_edit_prompt_changes_exactly_one_target(tmp_path: Path, pool: Path) -> None:
    wl = make_project(tmp_path / "p", 30, refs_from=pool)
    build_in_process(wl.manifest, offline=True)
    assert verify_up_to_date(wl.manifest, offline=True) == 30
    victim = wl.plain()[0]
    edit_prompt(wl, victim, "now in autumn")
    project = Project.open(wl.manifest)
    try:
        stale = [i.name for i in project.plan(offline=True).stale]
    finally:
        project.close()
    assert stale == [victim]


# -- each benchmark end to end ------------------------------------------------------------------------

def test_noop_plans_and_builds_nothing_and_profiles_the_plan(tmp_path: Path, pool: Path) -> None:
    rows, notes = noop.run(small(), tmp_path, pool, lambda _m: None)
    by_name = {r.benchmark: r for r in rows}
    assert set(by_name) == {"noop plan", "noop build", "noop peak RSS", "fresh-clone plan --check",
                            "peer: ninja -n", "peer: doit"}
    assert by_name["noop plan"].counters["targets"] == 40
    # The peers ran on the same graph, up to date, in the same rounds; every figure is given against them.
    for row in ("noop plan", "noop build", "fresh-clone plan --check"):
        ninja_median = by_name["peer: ninja -n"].median
        assert by_name[row].counters["x_ninja"] == pytest.approx(by_name[row].median / ninja_median)
        assert by_name[row].counters["x_doit"] > 0
    assert (tmp_path / "noop-40" / "build.ninja").exists() and (tmp_path / "noop-40" / "dodo.py").exists()
    dry = subprocess.run([peers.ninja_binary() or "ninja", "-n"], cwd=tmp_path / "noop-40", capture_output=True,
                         text=True, check=True)
    assert "no work to do" in dry.stdout                     # the peer's no-op is a no-op too
    assert by_name["noop plan"].counters["stale"] == 0
    assert by_name["noop build"].counters["nothing_to_build"] is True
    assert all(r.median > 0 for r in rows) and by_name["noop peak RSS"].unit == "MB"
    # The profile is grouped into the parts. Which entry points exist is up to assetgen's code
    # (it changes), so only the grouping itself is checked, and that the plan's time lands somewhere.
    groups = {g.name.strip(): g for g in notes["profile_groups"]}
    assert {"TOML parsing (whole manifest)", "pydantic validation", "lock reading: total (Lock.load)",
            "hashing/stat cache (StatCache.sha256)", "plan: total (make_plan)"} <= set(groups)
    assert any(g.seconds for g in groups.values())
    assert notes["profile_top"] and notes["imports"]["total_s"] > 0
    assert notes["phases"] and notes["memory"]["peak_mb"] > 0


def test_one_change_submits_one_task_for_the_one_edited_target(tmp_path: Path, pool: Path) -> None:
    rows, _notes = one_change.run(small(), tmp_path, pool, lambda _m: None, profile=False)
    build_row = next(r for r in rows if r.benchmark == "one change build")
    assert build_row.counters["stale_per_plan"] == 1
    assert build_row.counters["submits_per_build"] == 1
    # Latency 0: one submit, at least one poll, one download.
    assert build_row.counters["requests_per_task"] >= 3
    overhead = next(r for r in rows if r.benchmark == "one change overhead")
    assert overhead.samples[0] == pytest.approx(build_row.samples[0] - build_row.counters["task_s"], abs=1e-6)


def test_throughput_counts_one_submit_and_one_download_per_target(tmp_path: Path, pool: Path) -> None:
    cfg = small()
    rows, notes = throughput.run(cfg, tmp_path, pool, lambda _m: None, profile=False)
    wall, requests, polls, cpu = rows
    assert wall.counters["built"] == 12
    assert wall.counters["ideal_s"] == pytest.approx(1 * 0.2 + 0.05)
    assert requests.counters["submits_max"] == 1 and requests.counters["downloads_max"] == 1
    assert requests.median == 1 + polls.median + 1            # the worst target: submit + its polls + download
    assert requests.counters["poll_bound"] == poll_bound(0.2, 0.05) == 5
    assert sum(notes["poll_histogram"].values()) == 12 and min(notes["poll_histogram"]) >= 1
    # The poll that saw a task completed came after it completed (the emulator's clock decides both).
    assert wall.counters["detect_delay_mean"] >= 0 and wall.counters["task_span_mean"] >= 0.2
    assert cpu.median > 0


def test_the_throughput_curve_builds_once_per_latency_and_jobs(tmp_path: Path, pool: Path) -> None:
    cfg = small(throughput_curve=True, curve_latencies=(0.1,), curve_jobs=(4, 8))
    rows, notes = throughput.run(cfg, tmp_path, pool, lambda _m: None, profile=False)
    curve = [r for r in rows if r.benchmark == "throughput curve"]
    assert [r.size for r in curve] == ["12 @ 0.1s j4", "12 @ 0.1s j8"]
    assert notes["curve"][(0.1, 4)][1] == pytest.approx(3 * 0.1 + 0.05)      # the ideal: 3 waves of 4
    assert all(r.counters["ratio"] >= 1.0 for r in curve)
    assert "latency" in "\n".join(throughput.format_curve(notes["curve"]))


def test_scale_times_every_command_with_memory_and_growth(tmp_path: Path, pool: Path) -> None:
    cfg = small(scale_sizes=(20, 40))
    rows, notes = scale.run(cfg, tmp_path, pool, lambda _m: None)
    assert {r.benchmark for r in rows} == {f"scale: {name}" for name in scale.COMMANDS} | {"scale: gallery, first run"}
    assert {r.size for r in rows} == {"20", "40"}
    assert all(r.counters["rss_mb"] > 0 for r in rows)
    assert set(notes["growth"]) == set(scale.COMMANDS) and all(len(v) == 1 for v in notes["growth"].values())
    assert "Growth" in scale.format_growth(notes)[0]


def test_the_emulator_sees_every_request_the_client_counts(tmp_path: Path, pool: Path) -> None:
    """``GatewayClient.requests_made`` and the emulator's records agree, per target and in total."""
    wl = make_project(tmp_path / "p", 10, refs_from=pool, chain_share=0.0)
    emu = start_emulator(latency=0.1)
    try:
        project = Project.open(wl.manifest)
        provider = make_provider(project, offline=False, env=env_for(emu, poll=0.05))
        try:
            report = asyncio.run(build(project, BuildOptions(jobs=32), reporter=QuietReporter(), provider=provider))
        finally:
            project.close()
        tasks = per_task(emu)
    finally:
        emu.stop()
    assert report.exit_code == 0 and len(report.results) == 10
    assert sorted(t.prompt for t in tasks) == sorted(wl.prompts.values())
    assert provider.client.requests_made == len(emu.requests) == sum(t.total for t in tasks)  # type: ignore[attr-defined]
    assert all(t.downloads == 1 and t.polls >= 1 for t in tasks)


def test_watch_latency_measures_each_edit_and_submits_once_per_edit(tmp_path: Path, pool: Path) -> None:
    rows, notes = watch_latency.run(small(), tmp_path, pool, lambda _m: None)
    offline, online = rows
    assert len(offline.samples) == len(online.samples) == 2
    assert notes["online"]["submits"] == [1, 1]
    assert notes["settle"] == 0.4 and online.counters["settle"] == 0.4
    # Causality, not speed: the submission comes after the save and before the output is written.
    for submitted, written in zip(notes["online"]["to_submit"], notes["online"]["to_output"], strict=True):
        assert 0 < submitted <= written
    assert all(s > 0 for s in notes["offline"]["to_output"])
    assert notes["offline"]["exit"] == 0 and notes["online"]["exit"] == 0


def test_restore_restores_every_output_with_its_locked_hash(tmp_path: Path, pool: Path) -> None:
    rows, notes = restore.run(small(), tmp_path, pool, lambda _m: None)
    images, mbs, cold = rows
    assert images.counters["restored"] == images.counters["verified"] == images.counters["outputs"] == 20
    assert cold.counters["built"] == 20
    assert images.median > 0 and mbs.median > 0
    groups = {g.name.strip(): g for g in notes["profile_groups"]}
    assert groups["build: writing outputs"].seconds is not None


# -- the runner -----------------------------------------------------------------------------------------

def test_the_runner_prints_the_table_and_writes_json(tmp_path: Path) -> None:
    out = tmp_path / "results.json"
    proc = subprocess.run([sys.executable, "benchmarks/run.py", "--quick", "--only", "restore", "--json", str(out)],
                          cwd=REPO, capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr
    assert "benchmark" in proc.stdout and "restore images/s" in proc.stdout
    assert "machine: " in proc.stdout and "CPython" in proc.stdout
    data = json.loads(out.read_text(encoding="utf-8"))
    assert {r["benchmark"] for r in data["rows"]} == {"restore images/s", "restore MB/s", "cold offline build (setup)"}
    assert data["rows"][0]["counters"]["restored"] == 50


def test_the_table_reports_goals_as_pass_or_fail() -> None:
    rows = [Row("fast", "1", [0.1, 0.3, 0.2], 0.25), Row("slow", "1", [2.0], 1.0),
            Row("rate", "1", [5.0], 10.0, unit="img/s", higher_is_better=True), Row("info", "1", [1.0])]
    assert [r.passed for r in rows] == [True, False, False, None]
    table = summarise(rows)
    assert "pass" in table and "FAIL" in table
    assert "0.200 s" in table          # the median of 0.1, 0.3, 0.2


def test_peak_rss_is_the_commands_own_not_the_runners(tmp_path: Path, pool: Path) -> None:
    """Linux counts a process's pre-exec image in its peak RSS: started straight from a big runner, a
    small command would report the runner's size. The launcher keeps the figure the command's own."""
    wl = make_project(tmp_path / "p", 5, refs_from=pool)
    ballast = bytearray(300 * 2**20)
    for i in range(0, len(ballast), 4096):
        ballast[i] = 1                      # resident, not just reserved
    run = run_cli(wl.root, "plan", "--offline", env=cli_env())
    assert 10 < run.max_rss_mb < 250 and run.cpu > 0 and run.wall > 0
    assert "5 targets" in run.stdout
    del ballast
