"""Benchmark 1, no-op at scale: everything up to date, ``assetgen plan`` and ``assetgen build``.

For each size: generate a project, build it offline once (setup, ``prepare.build_in_process``), check
that the library plans nothing stale, then time ``plan --offline`` and ``build --offline`` as
subprocesses (``repeat`` runs each, interpreter start included) with their peak RSS and the bytes
they wrote (a no-op should write nothing). The project was
built offline, so ``--offline`` is what makes it "up to date" (an online plan would replace the
placeholders). Then: cost per 1,000 targets at each size (is it linear?), a cProfile of ``plan`` at the
largest size grouped into the issue's parts, and the import time of ``assetgen.cli``.
"""

from __future__ import annotations

import re
import shutil
import statistics
from collections.abc import Callable
from pathlib import Path
from typing import Any

from . import profiling
from .config import FRESH_GOALS, NOOP_MEMORY_MB, Config
from .measure import Row, Run, cli_env, run_argv, run_cli
from .peers import prepare_peers
from .prepare import build_in_process, verify_up_to_date
from .workloads import make_project

PLAN = ("plan", "--offline")
BUILD = ("build", "--offline")
FRESH = ("plan", "--check", "--offline")
_HEAD = re.compile(r"(\d+) targets?: (\d+) to build, (\d+) up to date")


def prepare(cfg: Config, work: Path, size: int, pool: Path) -> tuple[Path, float]:
    wl = make_project(work / f"noop-{size}", size, seed=cfg.seed, refs_from=pool)
    _, seconds = build_in_process(wl.manifest, offline=True, jobs=cfg.setup_jobs)
    verify_up_to_date(wl.manifest, offline=True)
    return wl.root, seconds


def run(cfg: Config, work: Path, pool: Path, say: Callable[[str], None]) -> tuple[list[Row], dict[str, Any]]:
    rows: list[Row] = []
    notes: dict[str, Any] = {"setup_s": {}, "per_1k_ms": {}}
    env = cli_env()
    largest: Path | None = None
    for size in cfg.noop_sizes:
        say(f"no-op {size}: setting up (offline build, in-process)…")
        root, setup_s = prepare(cfg, work, size, pool)
        notes["setup_s"][size] = setup_s
        largest = root
        peers = prepare_peers(root, root / "assets.toml", jobs=cfg.setup_jobs) if cfg.peers else None
        if peers is not None and peers.missing:
            notes["peers_missing"] = peers.missing
        # Interleaved rounds (each command once per round), so a change in the machine's speed during
        # the run weighs on every figure alike and the ratios to the peers stay fair.
        peer_runs: dict[str, list[Run]] = {label: [] for label in (peers.commands if peers else {})}
        plans, builds, fresh = [], [], []
        for _ in range(cfg.repeat):
            for label, argv in (peers.commands.items() if peers else ()):
                peer_runs[label].append(run_argv(root, argv, env=env, shown=[label]))
            plans.append(run_cli(root, *PLAN, env=env))
            builds.append(run_cli(root, *BUILD, env=env))
            # A fresh clone: the manifest, the lock and the outputs, no .assetgen/ at all (CI's case).
            shutil.rmtree(root / ".assetgen", ignore_errors=True)
            fresh.append(run_cli(root, *FRESH, env=env))
            run_cli(root, *PLAN, env=env)                 # leave the memos as the warm runs find them
        head = _HEAD.search(plans[0].stdout)
        counted = {"targets": int(head.group(1)), "stale": int(head.group(2))} if head else {}
        nothing = "Nothing to build" in builds[0].stdout
        goal = cfg.noop_goal(size)
        plan_row = Row("noop plan", f"{size:,}", [r.wall for r in plans], goal,
                       counters={**counted, "cpu_s": _median([r.cpu for r in plans]),
                                 "ms_per_1k": 0.0, "rss_mb": max(r.max_rss_mb for r in plans),
                                 "disk_written_mb": max(r.written_mb for r in plans)},
                       command=f"assetgen -f assets.toml {' '.join(PLAN)}")
        build_row = Row("noop build", f"{size:,}", [r.wall for r in builds], goal,
                        counters={"nothing_to_build": nothing, "cpu_s": _median([r.cpu for r in builds]),
                                  "ms_per_1k": 0.0, "rss_mb": max(r.max_rss_mb for r in builds),
                                  "disk_written_mb": max(r.written_mb for r in builds)},
                        command=f"assetgen -f assets.toml {' '.join(BUILD)}")
        for row in (plan_row, build_row):
            row.counters["ms_per_1k"] = 1000.0 * row.median / size * 1000.0
        mem = Row("noop peak RSS", f"{size:,}", [r.max_rss_mb for r in plans + builds], NOOP_MEMORY_MB, unit="MB",
                  counters={"plan_mb": max(r.max_rss_mb for r in plans),
                            "build_mb": max(r.max_rss_mb for r in builds)},
                  command="peak RSS of the plan and build runs above (os.wait4)")
        cold_row = Row("fresh-clone plan --check", f"{size:,}", [r.wall for r in fresh],
                       FRESH_GOALS.get(size), counters={"rss_mb": max(r.max_rss_mb for r in fresh),
                                                        "cpu_s": _median([r.cpu for r in fresh])},
                       command=f"rm -r .assetgen; assetgen -f assets.toml {' '.join(FRESH)}")
        peer_rows = [Row(f"peer: {label}", f"{size:,}", [r.wall for r in runs], None,
                         counters={"rss_mb": max(r.max_rss_mb for r in runs)}, command=" ".join(
                             peers.commands[label][-3:] if peers else ()))
                     for label, runs in peer_runs.items()]
        for row in (plan_row, build_row, cold_row):
            row.counters.update(ratios(row.median, peer_rows))
        rows += [*peer_rows, plan_row, build_row, mem, cold_row]
        notes["per_1k_ms"][size] = {"plan": plan_row.counters["ms_per_1k"],
                                    "build": build_row.counters["ms_per_1k"]}
        say(f"no-op {size}: plan {plan_row.median:.3f} s, build {build_row.median:.3f} s")
    notes["linearity"] = _linearity(rows)
    if largest is not None:
        say(f"no-op: profiling `plan --offline` at {cfg.noop_sizes[-1]:,} targets…")
        stats, wall = profiling.profile_in_process(["-f", "assets.toml", *PLAN], cwd=largest, env=env)
        notes["profile_size"] = cfg.noop_sizes[-1]
        notes["profile_wall_s"] = wall
        notes["profile_groups"] = profiling.breakdown(stats, wall)
        notes["profile_top"] = profiling.top_cumulative(stats, cfg.profile_top)
        notes["phases"] = profiling.phase_timings(largest / "assets.toml", repeat=3)
        notes["memory"] = profiling.memory_by_file(largest / "assets.toml")
        stats_b, wall_b = profiling.profile_in_process(["-f", "assets.toml", *BUILD], cwd=largest, env=env)
        notes["build_profile_wall_s"] = wall_b
        notes["build_profile_groups"] = profiling.breakdown(stats_b, wall_b)
        notes["build_profile_top"] = profiling.top_cumulative(stats_b, cfg.profile_top)
    notes["imports"] = profiling.import_time(repeat=3 if cfg.quick else 5)
    return rows, notes


def ratios(median: float, peer_rows: list[Row]) -> dict[str, float]:
    """``x_<peer>``: this figure as a multiple of each peer's median in the same rounds."""
    return {f"x_{row.benchmark.removeprefix('peer: ').split()[0]}": median / row.median
            for row in peer_rows if row.median > 0}


def _median(values: list[float]) -> float:
    return statistics.median(values)


def _linearity(rows: list[Row]) -> dict[str, Any]:
    """Least-squares fit of median seconds against targets, per command: fixed cost + cost per 1k."""
    out: dict[str, Any] = {}
    for bench in ("noop plan", "noop build"):
        points = [(int(r.size.replace(",", "")), r.median) for r in rows if r.benchmark == bench]
        if len(points) < 2:
            continue
        n = len(points)
        mx = sum(x for x, _ in points) / n
        my = sum(y for _, y in points) / n
        sxx = sum((x - mx) ** 2 for x, _ in points)
        slope = sum((x - mx) * (y - my) for x, y in points) / sxx if sxx else 0.0
        intercept = my - slope * mx
        ss_tot = sum((y - my) ** 2 for _, y in points)
        ss_res = sum((y - (intercept + slope * x)) ** 2 for x, y in points)
        out[bench] = {"fixed_s": intercept, "per_1k_s": slope * 1000,
                      "r2": 1 - ss_res / ss_tot if ss_tot else 1.0}
    return out
