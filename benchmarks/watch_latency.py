"""Benchmark 4, watch latency: from saving the manifest to the resulting submission.

A project of N targets is built online against the emulator (setup), so both an offline and an online
watch start with nothing to do. ``assetgen watch`` (``--offline``, then online against the emulator)
runs as a subprocess; once it is watching, each of ``edits`` edits appends words to one target's prompt
and the clock runs from just before the write (``time.time()``) to

* online: the emulator's record of the submit carrying the new prompt (its ``time.time()``), and to the
  output file being rewritten (its mtime);
* offline (no submission exists): the "Building" line the watch prints, and the output file's mtime.

Each edit waits for its build to finish (the watch's "Built" line) and a short pause before the next.
The watch's settle time is its default (``DEFAULT_SETTLE``, 0.4 s); figures are shown raw and minus it.
"""

from __future__ import annotations

import signal
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from assetgen.commands.watch import DEFAULT_SETTLE
from assetgen.testing.emulator import GatewayEmulator

from .config import Config
from .emulation import env_for, start_emulator, submits_per_prompt
from .measure import Row, cli_env
from .prepare import build_in_process, verify_up_to_date
from .workloads import Workload, edit_prompt, make_project

PAUSE = 0.3            # after a build finishes, before the next edit
STARTUP = 1.5          # after "Watching …" is printed, before the first edit (watchfiles starting)
TIMEOUT = 30.0


class WatchProcess:
    """``python -m assetgen watch`` with its output lines timestamped as they arrive."""

    def __init__(self, root: Path, args: list[str], env: dict[str, str]) -> None:
        self.lines: list[tuple[float, str]] = []
        self._lock = threading.Lock()
        # Unbuffered: each line must reach us when it is printed, not when a pipe buffer fills.
        self.proc = subprocess.Popen([sys.executable, "-m", "assetgen", "-f", "assets.toml", "watch", *args],
                                     cwd=root, env={**env, "PYTHONUNBUFFERED": "1"}, stdin=subprocess.DEVNULL,
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1)
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            with self._lock:
                self.lines.append((time.time(), line.rstrip("\n")))

    def count(self, prefix: str) -> int:
        with self._lock:
            return sum(1 for _t, line in self.lines if line.startswith(prefix))

    def first_after(self, prefix: str, since: float) -> float | None:
        with self._lock:
            return next((t for t, line in self.lines if t >= since and line.startswith(prefix)), None)

    def output(self) -> str:
        with self._lock:
            return "\n".join(line for _t, line in self.lines)

    def stop(self) -> None:
        """Ctrl-C, as a user stops it; killed only if it does not stop by itself."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._reader.join(timeout=5)
        if self.proc.stdout is not None:
            self.proc.stdout.close()


def _wait(condition: Callable[[], Any], what: str, watch: WatchProcess) -> Any:
    deadline = time.monotonic() + TIMEOUT
    while True:
        value = condition()
        if value:
            return value
        if watch.proc.poll() is not None:
            raise RuntimeError(f"the watch exited while waiting for {what}:\n{watch.output()[-3000:]}")
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out waiting for {what}:\n{watch.output()[-3000:]}")
        time.sleep(0.005)


def _mtime_after(path: Path, since_ns: int) -> float | None:
    try:
        st = path.stat()
    except FileNotFoundError:
        return None
    return st.st_mtime_ns / 1e9 if st.st_mtime_ns > since_ns else None


def _submit_time(emu: GatewayEmulator, prompt: str) -> float | None:
    with emu.lock:
        requests = list(emu.requests)
    return next((r.time for r in requests if r.method == "POST" and r.path == "/v1/tasks"
                 and isinstance(r.body, dict) and r.body.get("prompt") == prompt), None)


def measure_watch(wl: Workload, *, edits: int, emu: GatewayEmulator | None, env: dict[str, str],
                  say: Callable[[str], None]) -> dict[str, Any]:
    """Run one watch session with ``edits`` edits; latencies in seconds and counters."""
    online = emu is not None
    watch = WatchProcess(wl.root, [] if online else ["--offline"], env)
    to_submit, to_output, to_start, submits = [], [], [], []
    try:
        _wait(lambda: watch.count("Watching"), "the watch to start", watch)
        time.sleep(STARTUP)
        victims = wl.plain()
        token = f"{time.time_ns():x}"      # prompts no earlier run (--keep) has in its cache
        for i in range(edits):
            name = victims[(i * 7) % len(victims)]
            output = wl.root / "out" / f"{name}.jpg"
            built_before = watch.count("Built")
            before_ns = output.stat().st_mtime_ns
            saved = time.time()
            prompt = edit_prompt(wl, name, f"watch edit {i + 1} {'online' if online else 'offline'} ({token})")
            written = _wait(lambda o=output, b=before_ns: _mtime_after(o, b), f"{name}'s output", watch)
            to_output.append(written - saved)
            started = watch.first_after("Building", saved)
            if started is not None:
                to_start.append(started - saved)
            if emu is not None:
                submitted = _wait(lambda p=prompt: _submit_time(emu, p), "the submission", watch)
                to_submit.append(submitted - saved)
                submits.append(submits_per_prompt(emu, saved)[prompt])
            _wait(lambda b=built_before: watch.count("Built") > b, "the build to finish", watch)
            time.sleep(PAUSE)
    finally:
        watch.stop()
    say(f"watch ({'online' if online else 'offline'}): {edits} edits, median save→output "
        f"{statistics.median(to_output):.3f} s")
    return {"to_submit": to_submit, "to_output": to_output, "to_start": to_start, "submits": submits,
            "exit": watch.proc.returncode}


def run(cfg: Config, work: Path, pool: Path, say: Callable[[str], None]) -> tuple[list[Row], dict[str, Any]]:
    n = cfg.watch_targets
    emu = start_emulator(latency=0.0)
    try:
        env = env_for(emu, poll=0.05)
        say(f"watch {n}: setting up (online build against the emulator, in-process)…")
        wl = make_project(work / f"watch-{n}", n, seed=cfg.seed, refs_from=pool)
        build_in_process(wl.manifest, offline=False, jobs=cfg.online_setup_jobs, env=env)
        verify_up_to_date(wl.manifest, offline=False)
        offline = measure_watch(wl, edits=cfg.watch_edits, emu=None, env=cli_env(), say=say)
        online = measure_watch(wl, edits=cfg.watch_edits, emu=emu, env=env, say=say)
    finally:
        emu.stop()
    settle = DEFAULT_SETTLE
    size = f"{n} targets"

    def minus(values: list[float]) -> float:
        return statistics.median(values) - settle

    rows = [
        Row("watch offline save→output", size, offline["to_output"], None,
            counters={"minus_settle": minus(offline["to_output"]), "settle": settle,
                      "save→building": statistics.median(offline["to_start"]) if offline["to_start"] else -1,
                      "edits": len(offline["to_output"])},
            command="assetgen -f assets.toml watch --offline; edit a prompt; output file mtime − save time"),
        Row("watch online save→submit", size, online["to_submit"], None,
            counters={"minus_settle": minus(online["to_submit"]), "settle": settle,
                      "save→output": statistics.median(online["to_output"]),
                      "submits_per_edit": max(online["submits"]), "edits": len(online["to_submit"])},
            command="assetgen -f assets.toml watch (emulator, latency 0, poll 0.05); emulator submit time − save time"),
    ]
    return rows, {"settle": settle, "offline": offline, "online": online}
