"""Where the time goes: cProfile of a command, grouped into the parts the issue names; import time.

``profile_in_process`` runs ``assetgen.cli.main`` under cProfile in this process (imports already
done, so the profile is the command's own work); ``profile_subprocess`` runs
``python -m cProfile -o FILE -m assetgen …`` (for builds that talk to the emulator in this process).

``breakdown`` turns a profile into the issue's groups. Each group is the cumulative time of named
entry points (a function, optionally reached from a given caller); groups nest where the code nests
(e.g. hashing happens inside plan), which the table says. Entry points that a refactor renamed show as
absent rather than failing the run.
"""

from __future__ import annotations

import contextlib
import cProfile
import io
import os
import pstats
import re
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = [
    "Group",
    "breakdown",
    "format_breakdown",
    "format_top",
    "import_time",
    "profile_in_process",
    "profile_subprocess",
    "top_cumulative",
]

# (group, [(file suffix, function name, caller file suffix or None, caller function or None)]);
# a caller file with no caller function means "called from anywhere in that file".
# A file suffix like "assetgen/state/lockfile.py"; "tomllib/_parser.py" for the standard library's TOML parser.
GROUPS: list[tuple[str, list[tuple[str, str, str | None, str | None]]]] = [
    ("manifest + keys: total (open_manifest)", [("assetgen/engine/snapshot.py", "open_manifest", None, None)]),
    ("  snapshot read (pickle)", [("assetgen/state/memos.py", "load", "assetgen/engine/snapshot.py", None)]),
    ("  cut into tables (split_runs)", [("assetgen/manifest/positions.py", "split_runs", None, None)]),
    ("  TOML parsing (changed tables)", [("tomllib/_parser.py", "loads", "assetgen/engine/snapshot.py", None),
                                         ("assetgen/state/fasttoml.py", "_loads_cleared", None, None)]),
    ("  TOML parsing (whole manifest)", [("tomllib/_parser.py", "loads", "assetgen/manifest/model.py", None)]),
    ("  validate + resolve (manifest.assemble)", [("assetgen/manifest/loader.py", "assemble", None, None)]),
    ("    pydantic validation", [("assetgen/manifest/schema.py", "validate_shape", None, None)]),
    ("    resolve (fields, refs, outputs)", [("assetgen/manifest/resolve.py", "resolve", None, None)]),
    ("    graph order", [("assetgen/manifest/loader.py", "_order", None, None)]),
    ("  keys (hash references, key_of)", [("assetgen/engine/keys.py", "compute_keys", None, None)]),
    ("lock reading: total (Lock.load)", [("assetgen/state/lockfile.py", "load", None, None)]),
    ("  lock memo read (pickle)", [("assetgen/state/memos.py", "load", "assetgen/state/lockfile.py", None)]),
    ("  changed entries (_entries_reusing)", [("assetgen/state/lockfile.py", "_entries_reusing", None, None)]),
    ("  TOML parsing (whole lock)", [("tomllib/_parser.py", "loads", "assetgen/state/lockfile.py", "_entries"),
                                     ("assetgen/state/fasttoml.py", "loads", "assetgen/state/lockfile.py",
                                      "_entries")]),
    ("stat cache load (stat.json)",
     [("assetgen/state/statcache.py", "__init__", "assetgen/state/store.py", "__init__")]),
    ("plan: total (make_plan)", [("assetgen/engine/plan.py", "make_plan", None, None)]),
    ("  hashing/stat cache (StatCache.sha256)",
     [("assetgen/state/statcache.py", "sha256", "assetgen/state/statcache.py", "probe")]),
    ("  cache index lookups (Index.lookup)", [("assetgen/state/index.py", "lookup", None, None)]),
    ("journal scan (Journal.pending)", [("assetgen/state/journal.py", "pending", None, None)]),
    ("render plan text", [("assetgen/cli/reporters.py", "render_plan", None, None)]),
    ("build: writing outputs", [("assetgen/engine/outputs.py", "write", None, None)]),
    ("  lock writing (Lock.save)", [("assetgen/state/lockfile.py", "save", None, None)]),
    ("    render lock (tomli_w)", [("assetgen/state/lockfile.py", "render", None, None)]),
    ("  fsync (atomic_write durable)", [("~", "<built-in method posix.fsync>", None, None)]),
    ("memos written for the next run (Memo.save)", [("assetgen/state/memos.py", "save", None, None)]),
    ("stat cache save (stat.json)", [("assetgen/state/statcache.py", "save", None, None)]),
    ("build lock / file lock", [("assetgen/engine/project.py", "acquire_build_lock", None, None)]),
    ("imports (inside the profile)", [("<frozen importlib._bootstrap>", "_find_and_load", None, None)]),
]


@dataclass
class Group:
    name: str
    seconds: float | None          # None: no such entry point in this profile
    share: float | None            # of the profile's total


def _matches(func: tuple[str, int, str], suffix: str, name: str | None) -> bool:
    filename, _line, funcname = func
    return (name is None or funcname == name) and (filename == suffix or filename.endswith(suffix))


def _total(stats: pstats.Stats) -> float:
    return max((v[3] for v in stats.stats.values()), default=0.0)   # type: ignore[attr-defined]


def breakdown(stats: pstats.Stats, wall: float | None = None) -> list[Group]:
    """Cumulative seconds of each group's entry points (a recursive entry point counts once)."""
    total = wall or _total(stats)
    table: dict[Any, Any] = stats.stats  # type: ignore[attr-defined]
    out = []
    for group, entries in GROUPS:
        seconds = 0.0
        found = False
        for suffix, name, caller_suffix, caller_name in entries:
            for func, (_cc, _nc, _tt, ct, callers) in table.items():
                if not _matches(func, suffix, name):
                    continue
                if caller_suffix is None:
                    seconds += ct
                    found = True
                else:
                    for caller, edge in callers.items():
                        if _matches(caller, caller_suffix, caller_name):
                            seconds += edge[3]
                            found = True
        out.append(Group(group, seconds if found else None, seconds / total if found and total else None))
    return out


def top_cumulative(stats: pstats.Stats, limit: int = 15, *,
                   skip_wrappers: bool = True) -> list[tuple[str, int, float, float]]:
    """(function, calls, own seconds, cumulative seconds) by cumulative time, without the CLI's
    wrappers (click, asyncio's loop, the profiler's own entry) that every call goes through."""
    table: dict[Any, Any] = stats.stats  # type: ignore[attr-defined]
    rows = []
    for (filename, line, funcname), (_cc, nc, tt, ct, _callers) in table.items():
        where = _short(filename)
        if skip_wrappers and (funcname in ("<module>", "exec", "<built-in method builtins.exec>", "run", "_run")
                              or "click/" in filename or "asyncio/" in filename
                              or (filename.endswith("assetgen/cli/main.py") and funcname in ("main", "invoke"))
                              or funcname.startswith("<method 'run' of")):
            continue
        rows.append((f"{where}:{line}({funcname})", nc, tt, ct))
    rows.sort(key=lambda r: r[3], reverse=True)
    return rows[:limit]


def _short(filename: str) -> str:
    if "/assetgen/" in filename:
        return "assetgen/" + filename.rsplit("/assetgen/", 1)[1]
    if "/site-packages/" in filename:
        return filename.split("/site-packages/", 1)[1]
    return re.sub(r".*/lib/python3\.\d+/", "", filename)


def profile_in_process(argv: Sequence[str], *, cwd: Path, env: Mapping[str, str] | None = None
                       ) -> tuple[pstats.Stats, float]:
    """Profile ``assetgen ARGV`` run by ``assetgen.cli.main`` here (stdout discarded). Returns the
    stats and the wall seconds of the profiled run."""
    from assetgen.cli import main

    profiler = cProfile.Profile()
    saved_argv, saved_cwd, saved_env = sys.argv, os.getcwd(), dict(os.environ)
    sys.argv = ["assetgen", *argv]
    os.chdir(cwd)
    if env is not None:
        os.environ.clear()
        os.environ.update(env)
    sink = io.StringIO()
    started = time.perf_counter()
    try:
        with contextlib.redirect_stdout(sink), contextlib.redirect_stderr(sink):
            profiler.enable()
            try:
                main()
            except SystemExit:
                pass
            finally:
                profiler.disable()
    finally:
        wall = time.perf_counter() - started
        sys.argv = saved_argv
        os.chdir(saved_cwd)
        if env is not None:
            os.environ.clear()
            os.environ.update(saved_env)
    return pstats.Stats(profiler, stream=io.StringIO()), wall


def profile_subprocess(root: Path, args: Sequence[str], *, env: Mapping[str, str]) -> tuple[pstats.Stats, float]:
    """``python -m cProfile -o FILE -m assetgen -f assets.toml ARGS`` in ``root``; stats and wall time."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "run.prof"
        started = time.perf_counter()
        subprocess.run([sys.executable, "-m", "cProfile", "-o", str(out), "-m", "assetgen", "-f", "assets.toml",
                        *args], cwd=root, env=dict(env), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                       check=False)
        wall = time.perf_counter() - started
        return pstats.Stats(str(out), stream=io.StringIO()), wall


_IMPORT_LINE = re.compile(r"import time:\s+(\d+)\s+\|\s+(\d+)\s+\|(\s*)(\S+)")


def import_time(module: str = "assetgen.cli", *, repeat: int = 5) -> dict[str, Any]:
    """``python -X importtime -c "import MODULE"`` summarised: the total, and the self time of every
    imported module added up by top-level package (additive: the packages sum to the total; an
    assetgen module's self time includes building its pydantic models); plus the median wall time of
    ``python -c "import MODULE"`` against a bare ``python -c pass``."""
    proc = subprocess.run([sys.executable, "-X", "importtime", "-c", f"import {module}"],
                          capture_output=True, text=True, check=True)
    by_package: dict[str, int] = {}
    total = 0
    for line in proc.stderr.splitlines():
        match = _IMPORT_LINE.match(line)
        if not match:
            continue
        own, cumulative, indent, name = int(match.group(1)), int(match.group(2)), len(match.group(3)), match.group(4)
        if indent == 1:                               # an import made by `import MODULE` itself
            total += cumulative
        top = name.split(".")[0]
        by_package[top] = by_package.get(top, 0) + own
    walls: dict[str, list[float]] = {"bare": [], "import": []}
    for _ in range(repeat):
        for kind, code in (("bare", "pass"), ("import", f"import {module}")):
            t0 = time.perf_counter()
            subprocess.run([sys.executable, "-c", code], check=True)
            walls[kind].append(time.perf_counter() - t0)
    packages = sorted(((name, us / 1e6) for name, us in by_package.items()), key=lambda kv: -kv[1])
    return {"total_s": total / 1e6, "packages": packages[:12],
            "bare_wall_s": statistics.median(walls["bare"]),
            "import_wall_s": statistics.median(walls["import"])}


def format_breakdown(groups: list[Group], total: float) -> str:
    lines = [f"  {'group':<44} {'seconds':>8} {'share':>7}"]
    for g in groups:
        if g.seconds is None:
            lines.append(f"  {g.name:<44} {'absent':>8}")
        else:
            lines.append(f"  {g.name:<44} {g.seconds:8.3f} {100 * (g.share or 0):6.1f}%")
    lines.append(f"  {'(profiled wall time)':<44} {total:8.3f}")
    return "\n".join(lines)


def format_top(rows: list[tuple[str, int, float, float]], total: float) -> str:
    lines = [f"  {'cumulative':>10} {'share':>6} {'own':>8} {'calls':>9}  function"]
    for name, calls, own, cum in rows:
        lines.append(f"  {cum:10.3f} {100 * cum / total if total else 0:5.1f}% {own:8.3f} {calls:9d}  {name}")
    return "\n".join(lines)


def phase_timings(manifest: Path, *, repeat: int = 3, offline: bool = True) -> list[tuple[str, float]]:
    """Each phase of a no-op ``plan``, timed alone with ``perf_counter`` (no profiler, so no profiler
    overhead; median of ``repeat``), through the library as ``assetgen plan`` calls it. A phase the
    library no longer has shows as NaN rather than failing the run."""
    import tomllib

    from assetgen.cli.reporters import render_plan
    from assetgen.engine.project import LOCK_NAME, Project
    from assetgen.manifest import loader as manifest_mod
    from assetgen.state import fasttoml
    from assetgen.state.lockfile import Lock
    from assetgen.state.store import Store

    root = manifest.parent
    lock_path = root / LOCK_NAME

    def project() -> Project:
        return Project.open(manifest)

    phases: list[tuple[str, Any]] = [
        ("read + tomllib.loads(assets.toml)", lambda: tomllib.loads(manifest.read_text(encoding="utf-8"))),
        ("manifest.load, no memo (TOML + pydantic + resolve + order)", lambda: manifest_mod.load(manifest)),
        ("read + fasttoml.loads(assets.toml) (rtoml where safe: a fresh clone's parser)",
         lambda: fasttoml.loads(manifest.read_text(encoding="utf-8"))),
        ("read + tomllib.loads(assets.lock)", lambda: tomllib.loads(lock_path.read_text(encoding="utf-8"))),
        ("read + fasttoml.loads(assets.lock)", lambda: fasttoml.loads(lock_path.read_text(encoding="utf-8"))),
        ("Lock.load, no memo (TOML + LockEntry objects)", lambda: Lock.load(lock_path)),
        ("Store() (stat.json load)", lambda: Store(root / ".assetgen")),
        ("Project.open (snapshot + lock memo + store + keys, as the CLI opens them)", project),
    ]
    out: list[tuple[str, float]] = []
    for name, fn in phases:
        out.append((name, _median_time(fn, repeat)))
    try:
        opened = project()
        out.append(("keys from scratch (compute_keys; Project.open reuses the snapshot's)",
                    _median_time(lambda: (setattr(opened, "_keyed", None), opened.keyed), repeat)))
        plan_holder: list[Any] = []
        out.append(("Project.plan (make_plan, stat cache for outputs)",
                    _median_time(lambda: plan_holder.append(opened.plan(offline=offline)), repeat)))
        out.append(("render_plan (text)", _median_time(lambda: render_plan(plan_holder[-1]), repeat)))
        out.append(("Lock.render (what one finished target's Lock.save renders)",
                    _median_time(opened.lock.render, repeat)))
        opened.close()
    except Exception as exc:  # noqa: BLE001 - the library changed under us: report, do not fail the run
        out.append((f"(later phases failed: {type(exc).__name__}: {exc})", float("nan")))
    return out


def _median_time(fn: Any, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        try:
            fn()
        except Exception:  # noqa: BLE001
            return float("nan")
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def memory_by_file(manifest: Path, limit: int = 10) -> dict[str, Any]:
    """Python allocations live after ``Project.open`` + plan (manifest, lock and stat cache loaded), by
    source file, with tracemalloc; and tracemalloc's peak over the whole plan."""
    import tracemalloc

    from assetgen.engine.project import Project

    tracemalloc.start()
    try:
        project = Project.open(manifest)
        plan = project.plan(offline=True)
        snapshot = tracemalloc.take_snapshot()
        _current, peak = tracemalloc.get_traced_memory()
        project.close()
        del plan, project
    finally:
        tracemalloc.stop()
    stats = snapshot.statistics("filename")
    total = sum(s.size for s in stats)
    return {"peak_mb": peak / 2**20, "live_mb": total / 2**20,
            "by_file": [(_short(s.traceback[0].filename), s.size / 2**20) for s in stats[:limit]]}


def format_phases(phases: list[tuple[str, float]]) -> str:
    return "\n".join(f"  {seconds:8.3f} s  {name}" for name, seconds in phases)
