"""Setup (never measured): bring a generated project to "everything built".

The real thing is ``assetgen build`` (``--offline`` for placeholders, or online against the emulator).
The same build code runs here in-process (``assetgen.commands.build.build``: the real planner, ``Builder``,
providers, store, stat cache and journal) with one difference, for speed only: the lock is written
once at the end instead of after every finished target. ``Lock.save`` re-renders the whole lock each
time, so a cold build of N targets costs O(N²) in lock rendering (about 45 s of 64 s at 1,000 targets,
and hours at 10,000); the runner measures that cost separately (``setup_cli``) and reports it.

Afterwards ``verify_up_to_date`` plans the project with the library and asserts nothing is stale.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Iterator, Mapping
from pathlib import Path

from assetgen.commands.build import BuildOptions, build, make_provider
from assetgen.engine.events import QuietReporter
from assetgen.engine.project import Project
from assetgen.engine.scheduler import BuildReport
from assetgen.state.lockfile import Lock

__all__ = ["build_in_process", "cheap_placeholders", "deferred_lock_writes", "verify_up_to_date"]


@contextlib.contextmanager
def deferred_lock_writes() -> Iterator[None]:
    """While active, ``Lock.save`` only remembers the lock; each remembered lock is saved on exit."""
    original = Lock.save
    pending: dict[int, Lock] = {}

    def save(self: Lock) -> bool:
        pending[id(self)] = self
        return True

    Lock.save = save  # type: ignore[method-assign]
    try:
        yield
    finally:
        Lock.save = original  # type: ignore[method-assign]
        for lock in pending.values():
            original(lock)


@contextlib.contextmanager
def cheap_placeholders() -> Iterator[None]:
    """While active, the offline provider's placeholders are one tiny JPEG (64×48) made unique per target
    by a comment segment, instead of a picture drawn at the target's size: the setup of 100,000 targets
    takes minutes instead of an hour and a half. Only the scale benchmark's largest sizes use it; their
    outputs are then ~1 KB instead of ~35 KB, so a fresh clone hashes less (the report says so)."""
    import io

    from PIL import Image

    from assetgen.providers import offline

    buffer = io.BytesIO()
    Image.new("RGB", (64, 48), (90, 120, 150)).save(buffer, format="JPEG", quality=70)
    base = buffer.getvalue()
    original = offline.render_placeholder

    def render(*, name: str, prompt: str, width: int, height: int, index: int, total: int) -> bytes:
        comment = f"{name} {index}/{total} {prompt}".encode()[:60000]
        return base[:2] + b"\xff\xfe" + (len(comment) + 2).to_bytes(2, "big") + comment + base[2:]

    offline.render_placeholder = render  # type: ignore[assignment]
    try:
        yield
    finally:
        offline.render_placeholder = original


def build_in_process(manifest: Path, *, offline: bool, jobs: int = 8,
                     env: Mapping[str, str] | None = None) -> tuple[BuildReport, float]:
    """Build every stale target of ``manifest`` (lock written once at the end). Returns the report and
    the seconds it took. ``env`` carries ``ASSETGEN_API_KEY``/``ASSETGEN_BASE_URL`` for online builds."""
    started = time.perf_counter()
    project = Project.open(manifest)
    try:
        provider = make_provider(project, offline=offline, env=env)
        with deferred_lock_writes():
            report = asyncio.run(build(project, BuildOptions(offline=offline, jobs=jobs),
                                       reporter=QuietReporter(), provider=provider))
    finally:
        project.close()
    if report.exit_code != 0:
        failed = "; ".join(f"{r.name}: {r.message}" for r in report.failed[:5])
        raise RuntimeError(f"setup build of {manifest} failed: {failed}")
    return report, time.perf_counter() - started


def verify_up_to_date(manifest: Path, *, offline: bool) -> int:
    """Plan with the library and raise unless every target is up to date; returns the target count."""
    project = Project.open(manifest)
    try:
        plan = project.plan(offline=offline)
    finally:
        project.close()
    if plan.stale:
        names = ", ".join(f"{i.name} ({i.action}: {'; '.join(map(str, i.reasons))})" for i in plan.stale[:5])
        raise RuntimeError(f"{len(plan.stale)} targets of {manifest} are stale after setup: {names}")
    return len(plan.items)
