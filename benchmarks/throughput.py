"""Benchmark 3, throughput: N stale targets, emulator latency L, ``--jobs J``, poll interval P.

Submits go one at a time (a kill loses at most one task id), so each submit's answer time adds up:
``throughput_submit_latency`` makes the emulator take that long to answer each submit, to measure it.

Each run is a fresh project (same seed, so the same prompts) and a fresh emulator, built once with
``assetgen build --jobs J`` as a subprocess. The ideal wall time is ⌈N/J⌉ × L + P (waves of J tasks,
plus one poll interval to notice the last one finished). From the emulator's records, per task:
submits, polls and downloads; the bound on polls is ⌈L/P⌉ + 1. The assetgen process's own CPU time
(user + system, from ``wait4``) is reported per 100 targets.

The workload has no ``@`` chains (a chain serialises its links, which the ideal does not allow for)
but keeps a quarter of its targets with a reference file, uploaded as a data URL with each submit.
"""

from __future__ import annotations

import math
import shutil
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from assetgen.testing.emulator import Faults

from . import profiling
from .config import THROUGHPUT_FACTOR, Config
from .emulation import env_for, per_task, poll_bound, start_emulator, submits_per_prompt
from .measure import Row, run_cli
from .workloads import make_project


def ideal(cfg: Config) -> float:
    return math.ceil(cfg.throughput_targets / cfg.throughput_jobs) * cfg.throughput_latency + cfg.throughput_poll


def run(cfg: Config, work: Path, pool: Path, say: Callable[[str], None],
        profile: bool = True) -> tuple[list[Row], dict[str, Any]]:
    n, jobs, latency, poll = (cfg.throughput_targets, cfg.throughput_jobs, cfg.throughput_latency,
                              cfg.throughput_poll)
    bound = poll_bound(latency, poll)
    walls, cpus, per_target, max_polls, mean_polls, written = [], [], [], [], [], []
    submits_max, downloads_max, built, poll_hist = [], [], [], {}
    detect, spans = [], []
    for i in range(cfg.throughput_runs):
        root = work / f"throughput-{n}-run{i}"
        shutil.rmtree(root, ignore_errors=True)
        wl = make_project(root, n, seed=cfg.seed, refs_from=pool, chain_share=0.0)
        emu = start_emulator(latency=latency, faults=Faults(submit_timeout=cfg.throughput_submit_latency))
        try:
            say(f"throughput {n}: run {i + 1}/{cfg.throughput_runs} (latency {latency:g} s, --jobs {jobs})…")
            since = time.time()
            result = run_cli(wl.root, "build", "--jobs", str(jobs), "--json", env=env_for(emu, poll=poll))
            tasks = per_task(emu, since)
            submits = submits_per_prompt(emu, since)
        finally:
            emu.stop()
        walls.append(result.wall)
        cpus.append(result.cpu)
        written.append(result.written_mb)
        built.append(_count_built(result.stdout))
        per_target.append(max((t.total for t in tasks), default=0))
        max_polls.append(max((t.polls for t in tasks), default=0))
        mean_polls.append(statistics.fmean(t.polls for t in tasks) if tasks else 0.0)
        submits_max.append(max(submits.values(), default=0))
        downloads_max.append(max((t.downloads for t in tasks), default=0))
        for t in tasks:
            poll_hist[t.polls] = poll_hist.get(t.polls, 0) + 1
            # How late the client noticed: the completing poll's time minus the moment it completed.
            detect.append(t.last_poll - (t.submitted + latency))
            spans.append(t.span)
        if len(tasks) != n or set(submits) != set(wl.prompts.values()):
            raise RuntimeError(f"throughput run {i}: {len(tasks)} tasks for {n} targets")
    best = ideal(cfg)
    size = f"{n} @ {latency:g}s j{jobs}" + (f" submit {cfg.throughput_submit_latency * 1000:g}ms"
                                             if cfg.throughput_submit_latency else "")
    waves = math.ceil(n / jobs)
    counters = {"ideal_s": best, "ratio": statistics.median(walls) / best, "built": min(built),
                "cpu_per_100": statistics.median(cpus) / n * 100,
                "task_span_mean": statistics.fmean(spans), "detect_delay_mean": statistics.fmean(detect),
                "waves": waves, "disk_written_mb": statistics.median(written)}
    rows = [
        Row("throughput wall", size, walls, THROUGHPUT_FACTOR * best, counters=counters,
            command=f"assetgen -f assets.toml build --jobs {jobs} --json  (ASSETGEN_POLL_INTERVAL={poll:g})"),
        Row("throughput requests/target", size, [float(v) for v in per_target], float(1 + bound + 1),
            unit="req", counters={"submits_max": max(submits_max), "polls_max": max(max_polls),
                                  "polls_mean": statistics.fmean(mean_polls), "poll_bound": bound,
                                  "downloads_max": max(downloads_max)},
            command="max over targets of emulator requests (submit + polls + downloads)"),
        Row("throughput polls/task", size, [float(v) for v in max_polls], float(bound), unit="polls",
            counters={"mean": statistics.fmean(mean_polls),
                      "histogram": " ".join(f"{k}:{v}" for k, v in sorted(poll_hist.items()))},
            command="max over tasks of GET /v1/tasks/{id} (emulator records)"),
        Row("throughput CPU/100 targets", size, [c / n * 100 for c in cpus], None, unit="cpu-s",
            counters={"cpu_s_total": statistics.median(cpus)}, command="user+sys of the assetgen process (wait4)"),
    ]
    notes: dict[str, Any] = {"ideal_s": best, "poll_bound": bound, "poll_histogram": poll_hist,
                             "task_span_mean": statistics.fmean(spans), "detect_delay_mean": statistics.fmean(detect),
                             "detect_delay_p90": sorted(detect)[int(0.9 * (len(detect) - 1))], "waves": waves}
    if cfg.throughput_curve:
        notes["curve"] = curve(cfg, work, pool, say)
        rows += [Row("throughput curve", f"{n} @ {lat:g}s j{j}", [wall], None,
                     counters={"ideal_s": best_, "ratio": wall / best_})
                 for (lat, j), (wall, best_) in notes["curve"].items()]
    if profile:
        say(f"throughput {n}: profiling one more run (cProfile)…")
        root = work / f"throughput-{n}-profile"
        shutil.rmtree(root, ignore_errors=True)
        wl = make_project(root, n, seed=cfg.seed, refs_from=pool, chain_share=0.0)
        emu = start_emulator(latency=latency)
        try:
            stats, wall = profiling.profile_subprocess(wl.root, ["build", "--jobs", str(jobs)],
                                                       env=env_for(emu, poll=poll))
        finally:
            emu.stop()
        notes["profile_wall_s"] = wall
        notes["profile_groups"] = profiling.breakdown(stats)
        notes["profile_top"] = profiling.top_cumulative(stats, cfg.profile_top)
    return rows, notes


def curve(cfg: Config, work: Path, pool: Path,
          say: Callable[[str], None]) -> dict[tuple[float, int], tuple[float, float]]:
    """One build per (latency, jobs) of ``curve_latencies`` × ``curve_jobs``: (wall, ideal) each."""
    n, poll = cfg.throughput_targets, cfg.throughput_poll
    out: dict[tuple[float, int], tuple[float, float]] = {}
    for latency in cfg.curve_latencies:
        for jobs in cfg.curve_jobs:
            root = work / f"throughput-curve-{n}"
            shutil.rmtree(root, ignore_errors=True)
            wl = make_project(root, n, seed=cfg.seed, refs_from=pool, chain_share=0.0)
            emu = start_emulator(latency=latency, faults=Faults(submit_timeout=cfg.throughput_submit_latency))
            try:
                say(f"throughput curve: latency {latency:g} s, --jobs {jobs}…")
                result = run_cli(wl.root, "build", "--jobs", str(jobs), env=env_for(emu, poll=poll))
            finally:
                emu.stop()
            out[(latency, jobs)] = (result.wall, math.ceil(n / jobs) * latency + poll)
    return out


def format_curve(points: dict[tuple[float, int], tuple[float, float]]) -> list[str]:
    latencies = sorted({lat for lat, _j in points})
    jobs = sorted({j for _lat, j in points})
    lines = ["Throughput curve: wall / ideal (⌈N/jobs⌉ × latency + poll), one run each:",
             "  latency \\ jobs " + "".join(f"{j:>16}" for j in jobs)]
    for lat in latencies:
        cells = []
        for j in jobs:
            wall, best = points[(lat, j)]
            cells.append(f"{wall:6.2f} s {wall / best:5.2f}×")
        lines.append(f"  {lat:>13g} s" + "".join(f"{c:>16}" for c in cells))
    return lines


def _count_built(stdout: str) -> int:
    import json

    try:
        return sum(1 for r in json.loads(stdout)["results"] if r["status"] == "built")
    except (ValueError, KeyError, TypeError):
        return -1
