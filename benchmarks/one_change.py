"""Benchmark 2, one change in a big manifest: N targets up to date, one prompt edited.

Setup: the project is built online against the emulator (real images, so an online plan has nothing
to replace), in-process. Then, ``edits`` times: append a few words to one plain target's prompt, time
``assetgen plan`` and ``assetgen build`` (online, emulator latency 0, ``ASSETGEN_POLL_INTERVAL=0.05``).
The build's overhead is its wall time minus the one task's own time as the emulator saw it (submit
to the last download). Counters check that exactly one target was stale and one task submitted.
"""

from __future__ import annotations

import re
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from . import profiling
from .config import ONE_CHANGE_OVERHEAD, Config
from .emulation import env_for, per_task, start_emulator, submits_per_prompt
from .measure import Row, run_cli
from .prepare import build_in_process, verify_up_to_date
from .workloads import edit_prompt, make_project

POLL = 0.05
_HEAD = re.compile(r"(\d+) targets?: (\d+) to build, (\d+) up to date")


def run(cfg: Config, work: Path, pool: Path, say: Callable[[str], None],
        profile: bool = True) -> tuple[list[Row], dict[str, Any]]:
    size = cfg.one_change_size
    emu = start_emulator(latency=0.0)
    notes: dict[str, Any] = {}
    try:
        env = env_for(emu, poll=POLL)
        say(f"one change {size}: setting up (online build against the emulator, in-process)…")
        wl = make_project(work / f"one-change-{size}", size, seed=cfg.seed, refs_from=pool)
        _, notes["setup_s"] = build_in_process(wl.manifest, offline=False, jobs=cfg.online_setup_jobs, env=env)
        verify_up_to_date(wl.manifest, offline=False)
        victim = wl.plain()[len(wl.plain()) // 2]
        plans, builds, overheads, spans = [], [], [], []
        stale_counts, submit_counts, requests, written = [], [], [], []
        # A prompt no earlier run used: with --keep, the local cache would otherwise restore it free.
        token = f"{time.time_ns():x}"
        for i in range(cfg.one_change_edits):
            prompt = edit_prompt(wl, victim, f"variant {i + 1} with a red scarf ({token})")
            plan = run_cli(wl.root, "plan", env=env)
            head = _HEAD.search(plan.stdout)
            stale_counts.append(int(head.group(2)) if head else -1)
            since = time.time()
            build = run_cli(wl.root, "build", env=env)
            tasks = per_task(emu, since)
            submits = submits_per_prompt(emu, since)
            submit_counts.append(sum(submits.values()))
            mine = [t for t in tasks if t.prompt == prompt]
            span = mine[0].span if mine else float("nan")
            requests.append(mine[0].total if mine else 0)
            written.append(build.written_mb)
            plans.append(plan.wall)
            builds.append(build.wall)
            spans.append(span)
            overheads.append(build.wall - span)
        counters = {"stale_per_plan": max(stale_counts), "submits_per_build": max(submit_counts),
                    "requests_per_task": max(requests), "task_s": _med(spans),
                    "disk_written_mb": _med(written)}
        rows = [
            Row("one change plan", f"{size:,}", plans, None, counters={"stale": max(stale_counts)},
                command="assetgen -f assets.toml plan"),
            Row("one change build", f"{size:,}", builds, None, counters=counters,
                command="assetgen -f assets.toml build  (ASSETGEN_POLL_INTERVAL=0.05, emulator latency 0)"),
            Row("one change overhead", f"{size:,}", overheads, ONE_CHANGE_OVERHEAD,
                counters={"task_s": _med(spans)}, command="build wall time − the task's own time (emulator)"),
        ]
        notes["victim"] = victim
        if profile:
            say(f"one change {size}: profiling one more edit's build…")
            edit_prompt(wl, victim, f"profiled variant ({token})")
            stats, wall = profiling.profile_subprocess(wl.root, ["build"], env=env)
            notes["profile_wall_s"] = wall
            notes["profile_groups"] = profiling.breakdown(stats)
            notes["profile_top"] = profiling.top_cumulative(stats, cfg.profile_top)
        return rows, notes
    finally:
        emu.stop()


def _med(values: list[float]) -> float:
    return statistics.median(values)
