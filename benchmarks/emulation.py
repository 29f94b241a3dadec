"""The gateway emulator as the benchmarks run it, and per-task accounting of its request records.

The emulator (``assetgen.testing.emulator``) runs in the benchmark runner's process, on 127.0.0.1; the
assetgen under test is a separate process, so the two do not share an interpreter lock.

One adjustment, made here at run time and never in ``assetgen/``: the emulator's HTTP server keeps
socketserver's default listen backlog of 5. A build with ``--jobs 32`` opens dozens of connections at
once; connections beyond the backlog are dropped and the client sees ``ReadError`` on a submit, which
assetgen (rightly) refuses to resend. A real gateway accepts far more, so the benchmarks raise the
backlog to ``BACKLOG`` (see README, "Findings").
"""

from __future__ import annotations

import gc

import math
from collections import Counter
from dataclasses import dataclass
from typing import Any

from assetgen.testing.server import LoopbackServer
from assetgen.testing.emulator import GatewayEmulator

__all__ = [
    "API_KEY",
    "BACKLOG",
    "IMAGE_SIZE",
    "TaskRequests",
    "env_for",
    "per_task",
    "poll_bound",
    "start_emulator",
    "submits_per_prompt",
]

API_KEY = "sk-bench-0000000000000000"
BACKLOG = 256
# Emulator images: real JPEGs of the catalogue's size for their ratio at 0.5K (None), as a real gateway
# serves them: builds check every download against that size, so a tiny stand-in would be refused.
IMAGE_SIZE: tuple[int, int] | None = None


def start_emulator(*, latency: float, backlog: int = BACKLOG, **kwargs: Any) -> GatewayEmulator:
    """A started emulator (stop it with ``.stop()``, or use it as a context manager).

    It serves from this process's threads, so this process's garbage collections pause it. Earlier
    benchmarks leave a large heap here (a 10,000-target build in-process): collected now and frozen,
    it is not walked again while the emulator serves (the throughput build ran 5 % slower without)."""
    gc.collect()
    gc.freeze()
    LoopbackServer.request_queue_size = backlog           # socketserver's class attribute (default 5)
    kwargs.setdefault("image_size", IMAGE_SIZE)
    emu = GatewayEmulator(api_key=API_KEY, latency=latency, **kwargs)
    emu.start()
    return emu


def env_for(emu: GatewayEmulator, *, poll: float, backoff: float = 0.05) -> dict[str, str]:
    from .measure import cli_env

    return cli_env({"ASSETGEN_API_KEY": API_KEY, "ASSETGEN_BASE_URL": emu.base_url,
                    "ASSETGEN_POLL_INTERVAL": f"{poll:g}", "ASSETGEN_RETRY_BACKOFF": f"{backoff:g}"},
                   offline=False)


@dataclass
class TaskRequests:
    """The HTTP requests the emulator saw for one task (one target here)."""

    task_id: str
    prompt: str
    submitted: float            # unix time of the accepted submit
    polls: int                  # GET /v1/tasks/{id}
    downloads: int              # GET /files/{id}/N.jpg
    last: float                 # unix time of the last request for this task
    last_poll: float            # unix time of the last poll (the one that saw it completed), or 0

    @property
    def total(self) -> int:
        return 1 + self.polls + self.downloads

    @property
    def span(self) -> float:
        """Seconds from the submit to the last request (the download): the task's own time."""
        return self.last - self.submitted


def per_task(emu: GatewayEmulator, since: float = 0.0) -> list[TaskRequests]:
    """Requests grouped by task, for tasks submitted at or after ``since`` (unix time)."""
    with emu.lock:
        tasks = dict(emu.tasks)
        requests = list(emu.requests)
    polls: Counter[str] = Counter()
    downloads: Counter[str] = Counter()
    last: dict[str, float] = {}
    last_poll: dict[str, float] = {}
    for r in requests:
        parts = r.path.split("/")
        if r.method == "GET" and r.path.startswith("/v1/tasks/") and len(parts) == 4:
            polls[parts[3]] += 1
            last[parts[3]] = max(last.get(parts[3], 0.0), r.time)
            last_poll[parts[3]] = max(last_poll.get(parts[3], 0.0), r.time)
        elif r.method == "GET" and r.path.startswith("/files/") and len(parts) == 4:
            downloads[parts[2]] += 1
            last[parts[2]] = max(last.get(parts[2], 0.0), r.time)
    out = []
    for task_id, task in tasks.items():
        if task.created < since:
            continue
        out.append(TaskRequests(task_id=task_id, prompt=str(task.body.get("prompt")), submitted=task.created,
                                polls=polls[task_id], downloads=downloads[task_id],
                                last=last.get(task_id, task.created), last_poll=last_poll.get(task_id, 0.0)))
    return sorted(out, key=lambda t: t.submitted)


def submits_per_prompt(emu: GatewayEmulator, since: float = 0.0) -> Counter[str]:
    """Accepted and refused submit requests per prompt (a prompt is one target in these workloads)."""
    with emu.lock:
        requests = list(emu.requests)
    return Counter(str(r.body.get("prompt")) for r in requests
                   if r.method == "POST" and r.path == "/v1/tasks" and r.time >= since
                   and isinstance(r.body, dict))


def poll_bound(latency: float, poll: float) -> int:
    """The issue's bound on polls per task: ⌈latency / poll interval⌉ + 1."""
    return math.ceil(latency / poll - 1e-9) + 1
