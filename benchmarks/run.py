"""Run every benchmark and print the results table, the machine, and where the time goes.

    python -m benchmarks                 # the full suite (about 15-25 minutes on 2 cores)
    python -m benchmarks --quick         # smoke sizes (well under a minute)
    python -m benchmarks --only noop,restore --repeat 3 --json results.json
    python benchmarks/run.py --quick     # the same, without -m

Workloads are generated into a temporary folder (``--keep DIR`` to keep them) from ``--seed``.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

if __package__ in (None, ""):                 # `python benchmarks/run.py`: make `benchmarks` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks import images, noop, one_change, profiling, restore, scale, throughput, watch_latency
from benchmarks.config import BENCHMARKS, DEFAULT_BENCHMARKS, Config
from benchmarks.measure import Row, machine, summarise
from benchmarks.workloads import make_reference_images

POOL_SIZE = 300        # reference PNGs shared by every workload


def _load() -> str:
    try:
        return Path("/proc/loadavg").read_text().split()[0]
    except OSError:
        return "?"


def code_fingerprint() -> str:
    """Which assetgen was measured: a hash of its sources and the newest source's modification time
    (other work changes the code between runs; a figure belongs to one state of it)."""
    import hashlib

    import assetgen

    files = sorted(Path(assetgen.__file__).parent.rglob("*.py"))
    digest = hashlib.sha256(b"".join(p.read_bytes() for p in files)).hexdigest()[:12]
    newest = max(p.stat().st_mtime for p in files)
    return f"assetgen sources sha256 {digest} ({len(files)} files, newest modified " \
           f"{time.strftime('%Y-%m-%d %H:%M:%S', time.localtime(newest))})"


def calibrate() -> str:
    """A fixed pure-Python workload timed here and now: shared machines change speed from hour to hour
    (measured: the same no-op `plan` 0.15 s one hour, 0.25 s the next), so figures from two runs are
    only comparable together with this one."""
    import subprocess

    code = ("import time\nt = time.perf_counter()\ns = 0\nfor i in range(10_000_000): s += i\n"
            "print(time.perf_counter() - t)")
    runs = sorted(float(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                                       check=True).stdout) for _ in range(3))
    return f"machine speed: a 10-million-step Python loop takes {runs[1]:.2f} s (median of 3)"


def compile_bytecode() -> str:
    """Compile assetgen's modules to ``__pycache__`` first, as installing a package does.

    An editable install in an environment with PYTHONDONTWRITEBYTECODE set (this kind of machine has
    it) would otherwise compile every module from source on every command: about 50 ms that no user
    of an installed assetgen pays."""
    import compileall

    import assetgen

    folder = Path(assetgen.__file__).parent
    ok = compileall.compile_dir(str(folder), quiet=1)
    return f"assetgen's modules compiled to __pycache__ before measuring ({'ok' if ok else 'FAILED'})"


def run_all(cfg: Config, work: Path, say: Any = print) -> tuple[list[Row], dict[str, Any]]:
    """Run the selected benchmarks in ``work``; return the table rows and each benchmark's notes."""
    pool = work / "refs-pool"
    make_reference_images(pool, POOL_SIZE, seed=cfg.seed)
    selected = cfg.only or DEFAULT_BENCHMARKS
    unknown = set(selected) - set(BENCHMARKS)
    if unknown:
        raise SystemExit(f"unknown benchmark(s): {', '.join(sorted(unknown))}; choose from {', '.join(BENCHMARKS)}")
    modules = {"noop": noop, "one_change": one_change, "throughput": throughput, "watch": watch_latency,
               "restore": restore, "images": images, "scale": scale}
    rows: list[Row] = []
    notes: dict[str, Any] = {}
    for name in BENCHMARKS:
        if name not in selected:
            continue
        started = time.perf_counter()
        got, notes[name] = modules[name].run(cfg, work, pool, say)
        notes[name]["benchmark_s"] = time.perf_counter() - started
        rows += got
    return rows, notes


def report(cfg: Config, rows: list[Row], notes: dict[str, Any], info: dict[str, str]) -> str:
    out = [(f"assetgen benchmarks ({'quick' if cfg.quick else 'full'}, seed {cfg.seed}, "
           f"{cfg.repeat} runs per no-op figure), started {info['started']}"),
           f"machine: {info['nproc']} CPUs ({info['cpu']}), {info['memory']}, {info['python']}, {info['platform']}",
           f"code: {info['code']}; {info.get('bytecode', '')}",
           info.get("speed", ""),
           (f"load average (1 min) at start {info['load_start']}, at end {info.get('load_end', '?')}: other "
           f"processes on the machine add noise to every figure"),
           "", summarise(rows)]
    if cfg.quick:
        out.append("(quick: smoke sizes; the goals are the full sizes' and are shown for reference only)")
    n = notes.get("noop")
    if n:
        out += ["", "No-op cost per 1,000 targets (median wall incl. interpreter start / size):"]
        for size, per in n["per_1k_ms"].items():
            out.append(f"  {size:>6,} targets: plan {per['plan']:8.1f} ms/1k   build {per['build']:8.1f} ms/1k"
                       f"   (setup: offline build in-process {n['setup_s'][size]:.1f} s)")
        for bench, fit in n.get("linearity", {}).items():
            out.append(f"  fit {bench}: {fit['fixed_s']:.3f} s fixed + {fit['per_1k_s']:.3f} s per 1,000 targets "
                       f"(R² {fit['r2']:.4f})")
        imp = n["imports"]
        out += ["", (f"Import time (python -X importtime -c 'import assetgen.cli'): {imp['total_s']:.3f} s; "
                    f"wall of `python -c 'import assetgen.cli'` {imp['import_wall_s']:.3f} s vs bare "
                    f"`python -c pass` {imp['bare_wall_s']:.3f} s"),
                "  self time by package: " + ", ".join(f"{k} {v * 1000:.0f} ms" for k, v in imp["packages"])]
        if "phases" in n:
            out += ["", (f"Phases of a no-op plan at {n['profile_size']:,} targets, each timed alone in-process "
                        f"(perf_counter, median of 3, no profiler):"), profiling.format_phases(n["phases"])]
        if "memory" in n:
            mem = n["memory"]
            out += ["", (f"Python memory (tracemalloc) after Project.open + plan at {n['profile_size']:,} targets: "
                        f"{mem['live_mb']:.0f} MB live, peak {mem['peak_mb']:.0f} MB; by file:"),
                    "  " + ", ".join(f"{f} {mb:.1f} MB" for f, mb in mem["by_file"])]
        if "profile_groups" in n:
            out += ["", (f"Profile of `plan --offline` at {n['profile_size']:,} targets (cProfile, in-process, "
                        f"imports excluded; groups nest as indented):"),
                    profiling.format_breakdown(n["profile_groups"], n["profile_wall_s"]),
                    "", f"  top {cfg.profile_top} by cumulative time:",
                    profiling.format_top(n["profile_top"], n["profile_wall_s"]),
                    "", f"Profile of `build --offline` (nothing to do) at {n['profile_size']:,} targets:",
                    profiling.format_breakdown(n["build_profile_groups"], n["build_profile_wall_s"]),
                    "", f"  top {cfg.profile_top} by cumulative time:",
                    profiling.format_top(n["build_profile_top"], n["build_profile_wall_s"])]
    for name, title in (("one_change", "Profile of the one-change `build` (subprocess, cProfile; imports included)"),
                        ("throughput", "Profile of a throughput `build` (subprocess, cProfile; imports included)"),
                        ("restore", "Profile of a restore `build --offline` (subprocess, cProfile; imports included)")):
        n = notes.get(name)
        if n and "profile_groups" in n:
            out += ["", f"{title}:", profiling.format_breakdown(n["profile_groups"], n["profile_wall_s"]),
                    "", f"  top {cfg.profile_top} by cumulative time:",
                    profiling.format_top(n["profile_top"], n["profile_wall_s"])]
    out += _extras(notes)
    w = notes.get("watch")
    if w:
        out += ["", (f"Watch: default settle time {w['settle']:g} s (assetgen.commands.watch.DEFAULT_SETTLE); "
                    f"figures above are raw, minus_settle subtracts it.")]
    t = notes.get("throughput")
    if t:
        hist = " ".join(f"{k}:{v}" for k, v in sorted(t["poll_histogram"].items()))
        out += ["", (f"Throughput: ideal {t['ideal_s']:.2f} s; polls per task (polls:tasks) {hist}; "
                    f"bound {t['poll_bound']}; a task's span (submit → download, emulator clock) "
                    f"{t['task_span_mean']:.3f} s on average, of which {t['detect_delay_mean']:.3f} s "
                    f"(p90 {t['detect_delay_p90']:.3f} s) between completing and the poll that saw it; "
                    f"{t['waves']} waves × span = {t['waves'] * t['task_span_mean']:.2f} s")]
    return "\n".join(out)


def _extras(notes: dict[str, Any]) -> list[str]:
    """The scale benchmark's growth, the throughput curve, peers that were not there."""
    out: list[str] = []
    if "scale" in notes:
        out += ["", *scale.format_growth(notes["scale"])]
    if notes.get("throughput", {}).get("curve"):
        out += ["", *throughput.format_curve(notes["throughput"]["curve"])]
    if notes.get("noop", {}).get("peers_missing"):
        out += ["", "Peers not timed (not installed): " + ", ".join(notes["noop"]["peers_missing"])]
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="smoke sizes (what the tests run)")
    parser.add_argument("--only", default="", help=f"comma-separated subset of: {', '.join(BENCHMARKS)}")
    parser.add_argument("--repeat", type=int, help="runs per no-op figure (default 5; 3 with --quick)")
    parser.add_argument("--sizes", help="no-op sizes, comma-separated (default 1000,2000,5000,10000)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--keep", type=Path, help="generate the workloads here and keep them")
    parser.add_argument("--json", type=Path, help="also write the rows and machine as JSON here")
    parser.add_argument("--scale-sizes", help="sizes of `--only scale` (default 1000,10000,100000)")
    parser.add_argument("--throughput-curve", action="store_true",
                        help="also run throughput over latency 0.2/1/5 s × --jobs 8/32/64 (one run each)")
    parser.add_argument("--no-peers", action="store_true", help="do not time ninja and doit")
    parser.add_argument("--submit-latency", type=float, default=0.0,
                        help="seconds the emulator takes to answer each submit in the throughput benchmark "
                             "(submits are serialised: this measures what that costs)")
    args = parser.parse_args(argv)
    overrides: dict[str, Any] = {"seed": args.seed, "throughput_submit_latency": args.submit_latency}
    if args.repeat:
        overrides["repeat"] = args.repeat
    if args.sizes:
        overrides["noop_sizes"] = tuple(int(s) for s in args.sizes.split(","))
    if args.scale_sizes:
        overrides["scale_sizes"] = tuple(int(s) for s in args.scale_sizes.split(","))
    if args.throughput_curve:
        overrides["throughput_curve"] = True
    if args.no_peers:
        overrides["peers"] = False
    if args.only:
        overrides["only"] = tuple(s.strip() for s in args.only.split(",") if s.strip())
    cfg = Config.quick_config(**overrides) if args.quick else Config(**overrides)
    info = {**machine(), "started": time.strftime("%Y-%m-%d %H:%M:%S"), "code": code_fingerprint(),
            "load_start": _load(), "bytecode": compile_bytecode(), "speed": calibrate()}

    def say(message: str) -> None:
        print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)

    if args.keep:
        args.keep.mkdir(parents=True, exist_ok=True)
        rows, notes = run_all(cfg, args.keep.resolve(), say)
    else:
        with tempfile.TemporaryDirectory(prefix="assetgen-bench-") as tmp:
            rows, notes = run_all(cfg, Path(tmp), say)
    info["load_end"] = _load()
    print(report(cfg, rows, notes, info))
    if args.json:
        args.json.write_text(json.dumps({"machine": info, "quick": cfg.quick, "rows": [r.to_json() for r in rows]},
                                        indent=2, default=str), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
