"""Benchmark 5, cache restore: N outputs built offline, all deleted, ``build --offline`` restores them.

Setup is the real command, ``assetgen build --offline`` of N new targets, timed and reported as an
extra row (a cold offline build: placeholder rendering, cache writes, and one lock rewrite per target).
Then ``runs`` times: delete every output, run ``assetgen build --offline --json`` (measured), count the
targets it reports ``restored`` and check every output is back with the hash the lock records.
Throughput is images per second and MB of output written per second.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import Any

from . import profiling
from .config import Config
from .measure import Row, cli_env, run_cli
from .workloads import make_project


def _outputs(root: Path) -> dict[str, tuple[str, int]]:
    """Every output the lock records: path → (sha256, size)."""
    data = tomllib.loads((root / "assets.lock").read_text(encoding="utf-8"))
    return {o["path"]: (o["sha256"], int(o["size"])) for t in data["targets"].values() for o in t["outputs"]}


def _delete(root: Path, outputs: dict[str, tuple[str, int]]) -> None:
    for path in outputs:
        (root / path).unlink()


def _verified(root: Path, outputs: dict[str, tuple[str, int]]) -> int:
    good = 0
    for path, (sha, size) in outputs.items():
        data = (root / path).read_bytes()
        good += len(data) == size and hashlib.sha256(data).hexdigest() == sha
    return good


def run(cfg: Config, work: Path, pool: Path, say: Callable[[str], None],
        profile: bool = True) -> tuple[list[Row], dict[str, Any]]:
    n = cfg.restore_targets
    env = cli_env()
    shutil.rmtree(work / f"restore-{n}", ignore_errors=True)          # the cold build must start cold
    wl = make_project(work / f"restore-{n}", n, seed=cfg.seed, refs_from=pool)
    say(f"restore {n}: setup, the real `assetgen build --offline` of {n} new targets…")
    cold = run_cli(wl.root, "build", "--offline", "--json", env=env)
    outputs = _outputs(wl.root)
    total_bytes = sum(size for _sha, size in outputs.values())
    walls, restored, verified, written = [], [], [], []
    for i in range(cfg.restore_runs):
        _delete(wl.root, outputs)
        result = run_cli(wl.root, "build", "--offline", "--json", env=env)
        statuses = [r["status"] for r in json.loads(result.stdout)["results"]]
        restored.append(statuses.count("restored"))
        verified.append(_verified(wl.root, outputs))
        walls.append(result.wall)
        written.append(result.written_mb)
        say(f"restore {n}: run {i + 1}/{cfg.restore_runs}: {result.wall:.2f} s")
    counters = {"restored": min(restored), "verified": min(verified), "outputs": len(outputs),
                "MB": total_bytes / 1e6, "disk_written_mb": max(written)}
    size = f"{n:,}"
    rows = [
        Row("restore images/s", size, [len(outputs) / w for w in walls], None, unit="img/s", higher_is_better=True,
            counters={**counters, "wall_s": sorted(walls)[len(walls) // 2]},
            command="rm outputs; assetgen -f assets.toml build --offline --json"),
        Row("restore MB/s", size, [total_bytes / 1e6 / w for w in walls], None, unit="MB/s", higher_is_better=True,
            counters={"MB": total_bytes / 1e6}, command="(same runs) output bytes written / wall time"),
        Row("cold offline build (setup)", size, [cold.wall], None,
            counters={"built": sum(1 for r in json.loads(cold.stdout)["results"] if r["status"] == "built"),
                      "cpu_s": cold.cpu, "rss_mb": cold.max_rss_mb, "disk_written_mb": cold.written_mb,
                      "lock_mb": (wl.root / "assets.lock").stat().st_size / 1e6},
            command="assetgen -f assets.toml build --offline --json  (fresh project, 1 run)"),
    ]
    notes: dict[str, Any] = {"cold_wall_s": cold.wall}
    if profile:
        say(f"restore {n}: profiling one more restore…")
        _delete(wl.root, outputs)
        stats, wall = profiling.profile_subprocess(wl.root, ["build", "--offline"], env=env)
        notes["profile_wall_s"] = wall
        notes["profile_groups"] = profiling.breakdown(stats)
        notes["profile_top"] = profiling.top_cumulative(stats, cfg.profile_top)
    return rows, notes
