"""Measuring: run the real CLI as a subprocess, time it, read its resource usage; summarise runs.

Each run is ``python -m assetgen …`` in a fresh interpreter (interpreter start included, as a user sees
it), started by a small launcher (``_launch.py``) that takes the wall time around ``Popen`` …
``os.wait4`` and reads that one child's own resource usage (peak RSS, user and system CPU, blocks
written). A ``RUSAGE_CHILDREN`` delta cannot give a per-run peak, and a child started directly from this
large process would report this process's RSS as its own (Linux keeps the pre-``exec`` peak).
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["NO_NETWORK", "Row", "Run", "machine", "run_argv", "run_cli", "summarise"]

NO_NETWORK = "http://127.0.0.1:9"     # the discard port: an offline run that tried the network fails


@dataclass
class Run:
    """One finished ``assetgen`` process."""

    args: list[str]
    returncode: int
    wall: float                  # seconds, interpreter start included
    cpu: float                   # user + system seconds of the child
    max_rss_mb: float            # peak resident set size of the child, MiB
    written_mb: float            # bytes the child wrote to block devices (ru_oublock × 512), MB
    stdout: str
    stderr: str
    started: float               # time.time() just before the process was started

    def check(self) -> Run:
        if self.returncode != 0:
            raise RuntimeError(f"{' '.join(self.args)} exited {self.returncode}:\n"
                               f"{self.stdout[-2000:]}\n{self.stderr[-2000:]}")
        return self


def cli_env(extra: Mapping[str, str] | None = None, *, offline: bool = True) -> dict[str, str]:
    """The environment of a measured run: no key and an address nobody answers unless ``extra`` says."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ASSETGEN_")}
    env["ASSETGEN_BASE_URL"] = NO_NETWORK
    env.update(extra or {})
    if offline:
        env.pop("ASSETGEN_API_KEY", None)
    return env


_LAUNCHER = Path(__file__).with_name("_launch.py")


def run_cli(root: Path, *args: str, env: Mapping[str, str] | None = None, check: bool = True) -> Run:
    """``python -m assetgen -f assets.toml ARGS`` in ``root``, timed; output captured in temp files
    (not pipes: a large plan is written at the child's pace, without the parent reading it).

    The command is started by ``_launch.py``, which times it and reads its ``wait4`` usage: started
    from this (large) process directly, the child's peak RSS would include ours (see ``_launch``)."""
    return run_argv(root, [sys.executable, "-m", "assetgen", "-f", "assets.toml", *args], env=env, check=check,
                    shown=["assetgen", *args])


def run_argv(root: Path, argv: Sequence[str], *, env: Mapping[str, str] | None = None, check: bool = True,
             shown: list[str] | None = None) -> Run:
    """Any command (a peer's: ``ninja -n``, ``doit``) timed as ``run_cli`` times assetgen."""
    # Flush what earlier steps wrote (setup, rmtree of the last run, other benchmarks): otherwise the
    # command's own fsyncs wait for that writeback too. Measured: the throughput build took 19.2 s
    # after the rest of the suite and 18.2 s alone; synced first, it no longer depends on its neighbours.
    os.sync()
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err, \
            tempfile.TemporaryDirectory() as tmp:
        result_file = Path(tmp) / "usage.json"
        launcher = subprocess.run([sys.executable, str(_LAUNCHER), str(result_file), *argv], cwd=root,
                                  stdout=out, stderr=err, stdin=subprocess.DEVNULL,
                                  env=dict(env) if env is not None else cli_env(), check=False)
        out.seek(0)
        err.seek(0)
        stdout = out.read().decode("utf-8", "replace")
        stderr = err.read().decode("utf-8", "replace")
        if launcher.returncode != 0 or not result_file.exists():
            raise RuntimeError(f"the launcher failed ({launcher.returncode}):\n{stderr[-2000:]}")
        usage = json.loads(result_file.read_text(encoding="utf-8"))
    run = Run(args=shown if shown is not None else list(argv), returncode=usage["returncode"], wall=usage["wall"],
              cpu=usage["cpu"],
              max_rss_mb=usage["maxrss_kb"] / 1024.0, written_mb=usage["oublock"] * 512 / 1e6,
              stdout=stdout, stderr=stderr, started=usage["started"])
    return run.check() if check else run


@dataclass
class Row:
    """One line of the results table: a benchmark at one size, its samples and its goal."""

    benchmark: str
    size: str
    samples: list[float]                       # seconds (or the unit in ``unit``)
    goal: float | None = None                  # pass when median <= goal (or >= with ``higher_is_better``)
    unit: str = "s"
    higher_is_better: bool = False
    counters: dict[str, Any] = field(default_factory=dict)
    command: str = ""

    @property
    def median(self) -> float:
        return statistics.median(self.samples)

    @property
    def passed(self) -> bool | None:
        if self.goal is None:
            return None
        return self.median >= self.goal if self.higher_is_better else self.median <= self.goal

    def to_json(self) -> dict[str, Any]:
        return {"benchmark": self.benchmark, "size": self.size, "unit": self.unit,
                "median": self.median, "min": min(self.samples), "max": max(self.samples),
                "samples": self.samples, "goal": self.goal, "higher_is_better": self.higher_is_better,
                "passed": self.passed, "counters": self.counters, "command": self.command}


def _fmt(value: float, unit: str) -> str:
    if unit == "s":
        return f"{value:.3f} s"
    if unit == "MB":
        return f"{value:.0f} MB"
    return f"{value:,.1f} {unit}"


def summarise(rows: Sequence[Row]) -> str:
    """The results table: benchmark, size, median, min, max, goal, pass/fail, counters."""
    header = ("benchmark", "size", "median", "min", "max", "goal", "result", "counters")
    lines = []
    for row in rows:
        goal = "-" if row.goal is None else ("≥ " if row.higher_is_better else "≤ ") + _fmt(row.goal, row.unit)
        result = {None: "-", True: "pass", False: "FAIL"}[row.passed]
        counters = ", ".join(f"{k}={_counter(v)}" for k, v in row.counters.items())
        lines.append((row.benchmark, row.size, _fmt(row.median, row.unit), _fmt(min(row.samples), row.unit),
                      _fmt(max(row.samples), row.unit), goal, result, counters))
    widths = [max(len(str(r[i])) for r in [header, *lines]) for i in range(len(header) - 1)]
    out = []
    for r in [header, *lines]:
        out.append("  ".join(str(c).ljust(w) for c, w in zip(r[:-1], widths, strict=True)) + "  " + str(r[-1]))
        if r is header:
            out.append("  ".join("-" * w for w in widths) + "  " + "-" * 8)
    return "\n".join(out)


def _counter(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.3g}" if abs(value) < 100 else f"{value:,.0f}"
    return str(value)


def machine() -> dict[str, str]:
    """What the figures were measured on."""
    model = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        mem = next(line.split()[1] for line in Path("/proc/meminfo").read_text().splitlines()
                   if line.startswith("MemTotal"))
        memory = f"{int(mem) / 2**20:.0f} GiB"
    except (OSError, StopIteration, ValueError):
        memory = "unknown"
    return {"nproc": str(len(os.sched_getaffinity(0))), "cpu": model, "memory": memory,
            "python": f"{platform.python_implementation()} {platform.python_version()}",
            "platform": platform.platform()}
