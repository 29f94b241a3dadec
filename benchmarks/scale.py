"""Benchmark 6, scale (``--only scale``; not in the default run): every everyday command from 1,000 to
100,000 targets, its time and peak memory, and how each grows.

For each size of ``scale_sizes`` (default 1,000, 10,000, 100,000; ``--scale-sizes``): the no-op
benchmark's project (built offline once, as setup; with ``--keep`` a second run reuses it; the setup of
100,000 targets draws tiny placeholders, ``prepare.cheap_placeholders``: ~1 KB outputs, so a fresh clone
hashes less than with the ~35 KB ones of smaller sizes), then, in interleaved rounds:

* ``plan --offline`` warm, and fresh-clone ``plan --check --offline`` (``.assetgen/`` removed first);
* ``build --offline`` with nothing to do;
* one prompt edited, ``build --offline`` (one placeholder rendered: the rest is overhead);
* ``gc --dry-run`` and ``gallery`` (the static HTML gallery of every target; its first run, which makes
  every thumbnail, is timed once on its own).

Each row carries its peak RSS; the growth exponent between consecutive sizes is
log(t₂/t₁) / log(n₂/n₁): 1.0 is linear, more is worse than linear (what the issue asks to find).
"""

from __future__ import annotations

import math
import shutil
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .config import Config
from .measure import Row, Run, cli_env, run_cli
from .noop import prepare
from .prepare import cheap_placeholders
from .workloads import Workload, edit_prompt

COMMANDS: dict[str, tuple[str, ...]] = {
    "plan warm": ("plan", "--offline"),
    "plan fresh clone": ("plan", "--check", "--offline"),
    "build no-op": ("build", "--offline"),
    "build one edit": ("build", "--offline"),
    "gc --dry-run": ("gc", "--dry-run", "--wait", "0"),
    "gallery": ("gallery",),
}
GOALS = {("plan warm", 100_000): 2.5, ("plan fresh clone", 100_000): 10.0, ("plan fresh clone", 10_000): 1.0,
         ("plan warm", 10_000): 0.25}
MEMORY_GOAL_MB = {100_000: 600.0}
CHEAP_FROM = 50_000         # from this size the setup's placeholders are tiny (``prepare.cheap_placeholders``)


def run(cfg: Config, work: Path, pool: Path, say: Callable[[str], None]) -> tuple[list[Row], dict[str, Any]]:
    env = cli_env()
    rows: list[Row] = []
    medians: dict[str, dict[int, float]] = {name: {} for name in COMMANDS}
    for size in cfg.scale_sizes:
        say(f"scale {size}: setting up (offline build, in-process; reused with --keep)…")
        root = _project(cfg, work, size, pool)
        wl = Workload(root=root, size=size, names=[], prompts={})
        victim, prompt = _victim(root)
        wl.prompts[victim] = prompt
        runs: dict[str, list[Run]] = {name: [] for name in COMMANDS}
        say(f"scale {size}: the gallery's first run (it makes every thumbnail)…")
        first_gallery = run_cli(root, *COMMANDS["gallery"], env=env)
        token = f"{time.time_ns():x}"
        for r in range(cfg.repeat):
            runs["plan warm"].append(run_cli(root, *COMMANDS["plan warm"], env=env))
            runs["build no-op"].append(run_cli(root, *COMMANDS["build no-op"], env=env))
            edit_prompt(wl, victim, f"scaled {r} ({token})")
            runs["build one edit"].append(run_cli(root, *COMMANDS["build one edit"], env=env))
            runs["gc --dry-run"].append(run_cli(root, *COMMANDS["gc --dry-run"], env=env))
            runs["gallery"].append(run_cli(root, *COMMANDS["gallery"], env=env))
            # A fresh clone: no .assetgen/ (set aside, and put back: the thumbnails stay made).
            kept = root / ".assetgen-kept"
            shutil.rmtree(kept, ignore_errors=True)
            (root / ".assetgen").rename(kept)
            try:
                runs["plan fresh clone"].append(run_cli(root, *COMMANDS["plan fresh clone"], env=env))
            finally:
                shutil.rmtree(root / ".assetgen", ignore_errors=True)
                kept.rename(root / ".assetgen")
        for name, got in runs.items():
            row = Row(f"scale: {name}", f"{size:,}", [x.wall for x in got], GOALS.get((name, size)),
                      counters={"rss_mb": max(x.max_rss_mb for x in got),
                                "cpu_s": statistics.median(x.cpu for x in got),
                                "rss_goal_mb": MEMORY_GOAL_MB.get(size, "-")},
                      command=f"assetgen -f assets.toml {' '.join(COMMANDS[name])}")
            medians[name][size] = row.median
            rows.append(row)
        rows.append(Row("scale: gallery, first run", f"{size:,}", [first_gallery.wall], None,
                        counters={"rss_mb": first_gallery.max_rss_mb, "cpu_s": first_gallery.cpu},
                        command="assetgen -f assets.toml gallery (thumbnails made; later runs reuse them)"))
        say(f"scale {size}: " + ", ".join(f"{n} {medians[n][size]:.2f} s" for n in COMMANDS))
    return rows, {"growth": growth(medians)}


def growth(medians: dict[str, dict[int, float]]) -> dict[str, list[tuple[int, int, float]]]:
    """Per command, (smaller size, larger size, exponent) for consecutive sizes: 1.0 is linear."""
    out: dict[str, list[tuple[int, int, float]]] = {}
    for name, by_size in medians.items():
        sizes = sorted(by_size)
        out[name] = [(a, b, math.log(by_size[b] / by_size[a]) / math.log(b / a))
                     for a, b in zip(sizes, sizes[1:], strict=False) if by_size[a] > 0 and by_size[b] > 0]
    return out


def format_growth(notes: dict[str, Any]) -> list[str]:
    lines = ["Growth (exponent of time against targets between sizes; 1.0 = linear):"]
    for name, steps in notes["growth"].items():
        lines.append(f"  {name:18} " + "   ".join(f"{a:,}→{b:,}: {e:.2f}" for a, b, e in steps))
    return lines


def _project(cfg: Config, work: Path, size: int, pool: Path) -> Path:
    root = work / f"noop-{size}"
    if (root / "assets.lock").exists():
        return root                     # built by the no-op benchmark or an earlier --keep run
    if size >= CHEAP_FROM:
        with cheap_placeholders():
            built, _seconds = prepare(cfg, work, size, pool)
    else:
        built, _seconds = prepare(cfg, work, size, pool)
    return built


def _victim(root: Path) -> tuple[str, str]:
    """A plain target (no reference, in no chain) and its prompt, read from the manifest."""
    import tomllib

    targets = tomllib.loads((root / "assets.toml").read_text(encoding="utf-8"))["targets"]
    for name, table in targets.items():
        if not table.get("references") and not name.startswith("chain"):
            return name, table["prompt"]
    raise RuntimeError(f"no plain target in {root}")
