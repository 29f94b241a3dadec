"""``assetgen watch``: rebuild what an edit affects, once the files have settled. No build logic here.

The loop: wait for changes to the manifest or a reference (watchfiles, ``step`` = the settle time, so
a burst of editor saves arrives as one batch) → reload the manifest (errors are shown; the watch goes
on) → tell running builds which of their targets a newer spec replaced (``Builder.supersede``:
queued tasks are cancelled, processing ones finish into the cache) → start a build of the targets that
are stale and not already being built with the same key. Builds of one session share a ``Session``, so
a key is never submitted twice and ``--budget`` caps the whole session.

The tool's own writes (``out_dir``, ``.assetgen/``, the locks beside the manifest) never trigger
anything, and nothing is written while idle.

What is watched follows the manifest as it is now, not as it last loaded: while it has errors, the
folders of every file reference it names (up to the nearest folder that exists) are watched too, and
every tick checks whether a missing one appeared, so creating the file a broken manifest names is
enough to build it.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import os
import re
import tomllib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import watchfiles

from ..engine.events import Reporter, usd
from ..engine.project import CACHE_DIR, Project, lock_path
from ..engine.scheduler import Builder, BuildReport, Controller, Session, Status
from ..engine.spending import session_limit
from ..errors import AssetgenError, BuildLocked, ManifestError
from ..providers.base import Provider
from ..state.lockfile import Lock
from ..state.store import Store
from . import DEFAULT_SETTLE

_T = TypeVar("_T")

_MAX_BATCH_MS = 10_000     # a stream of saves is still built at least this often


@dataclass(kw_only=True)
class WatchOptions:
    targets: tuple[str, ...] = ()
    offline: bool = False
    settle: float = DEFAULT_SETTLE
    budget: float | None = None
    jobs: int | None = None
    profile: str | None = None
    use_remote: bool = True


class Watcher:
    def __init__(self, manifest_path: str | os.PathLike[str], provider: Provider, options: WatchOptions, *,
                 reporter: Reporter, echo: Callable[[str], None]) -> None:
        self.path = Path(manifest_path).resolve()
        self.shown = str(manifest_path)
        self.provider = provider
        self.options = options
        self.reporter = reporter
        self.echo = echo
        self.session = Session(budget=options.budget)   # None here: [settings] budget applies at first load
        self.store = Store(self.path.parent / CACHE_DIR)
        self.lock = Lock.load(lock_path(self.path, options.profile))
        self.builds: list[tuple[Builder, asyncio.Task[BuildReport]]] = []
        self.controller = Controller()
        self._project: Project | None = None
        self._paused_said = False
        self._broken = False                        # the last reload failed
        self._named: set[Path] = set()              # file references the broken manifest names
        self._warned: set[str] = set()
        self._limits: list[str] = []                # the documented-limit warnings last shown
        self.rebuilds = 0                           # batches of changes handled (for tests/benchmarks)
        # Called on the event loop after each build with its project and report (e.g. the gallery).
        self.after_build: Callable[[Project, BuildReport | None], None] | None = None
        self._editor_noise_filter = watchfiles.DefaultFilter()   # swap files, backups, .git, …
        self._loop: asyncio.AbstractEventLoop | None = None
        self._read_stamp: tuple[int, int] | None = None    # the manifest as the last rebuild read it

    def call(self, fn: Callable[[Lock], _T], timeout: float = 60.0) -> _T:
        """``fn(lock)`` run on the watch's event loop, from another thread (the live gallery's buttons),
        with the lock object the watch's builds change and save: between two of their steps, so neither
        write is lost (a verdict written to the file instead would be dropped by the next build's save).
        BuildLocked (the gallery answers "busy") if the watch is not running or does not get to it."""
        loop = self._loop
        if loop is None or loop.is_closed():
            raise BuildLocked("the watch is not running")

        async def run() -> _T:
            return fn(self.lock)

        future = asyncio.run_coroutine_threadsafe(run(), loop)
        try:
            return future.result(timeout)
        except concurrent.futures.TimeoutError:
            future.cancel()
            raise BuildLocked(f"the watch did not get to it within {timeout:g} s") from None

    # -- the loop -----------------------------------------------------------------------------------

    async def run(self, stop: asyncio.Event) -> None:
        self._loop = asyncio.get_running_loop()
        await self.rebuild()
        while not stop.is_set():
            paths = self._watched_folders()
            async for changes in watchfiles.awatch(
                    *paths, watch_filter=self._relevant, step=max(1, int(self.options.settle * 1000)),
                    debounce=_MAX_BATCH_MS, stop_event=stop, recursive=False, rust_timeout=500,
                    yield_on_timeout=True):
                # An empty batch is a quiet tick: a named file may have appeared while a new folder's
                # watch was being set up (or in a folder that did not exist yet), or the manifest saved
                # between the last rebuild's read and this watch's start (no event for it): look once.
                missed = self._manifest_stamp() != self._read_stamp
                if changes or missed or any(path.exists() for path in self._missing()):
                    await self.rebuild()
                    if self._watched_folders() != paths:
                        break                       # a new reference folder: watch it too
        await self.close()

    async def close(self) -> None:
        """Stop: in-flight tasks stay in the journal (paid for; the next build collects them)."""
        for _builder, task in self.builds:
            task.cancel()
        await asyncio.gather(*(t for _b, t in self.builds), return_exceptions=True)
        self.builds.clear()
        self.store.close()
        await self.provider.aclose()

    def _manifest_stamp(self) -> tuple[int, int] | None:
        try:
            stat = self.path.stat()
        except OSError:
            return None
        return stat.st_mtime_ns, stat.st_size

    async def rebuild(self) -> None:
        self.rebuilds += 1
        self._read_stamp = self._manifest_stamp()     # before the read: a save during it is seen later
        try:
            project = Project.open(self.path, profile=self.options.profile, store=self.store, lock=self.lock,
                                   use_remote=self.options.use_remote, warn=self._warn_once)
            plan = project.plan(self.options.targets, offline=self.options.offline)
        except ManifestError as exc:
            self._failed(str(exc))
            self.echo("Watching for a fix…")
            return
        except AssetgenError as exc:
            self._failed(f"Error: {exc}")
            return
        was_broken, self._broken, self._named = self._broken, False, set()
        self._show_limits(project.manifest.warnings)
        if self._project is None and self.session.budget is None:
            self.session.budget = project.manifest.settings.budget
        if not self.options.offline:       # [settings] limits, from the ledger: again at every build
            self.session.limit = session_limit(project, self.session.committed)
        self._project = project
        keys = {i.name: i.key for i in plan.items}
        being_built: dict[str, str] = {}
        for builder, task in self.builds:
            if task.done():
                continue
            replaced = {name for name, key in builder.active.items() if keys.get(name) != key}
            if replaced:
                builder.supersede(replaced)
                self.echo(f"Superseded: {', '.join(sorted(replaced))} (a newer spec replaces them)")
            being_built.update({n: k for n, k in builder.active.items() if n not in replaced})
        plan.items = [i for i in plan.items if not (i.stale and being_built.get(i.name) == i.key)]
        self.builds = [(b, t) for b, t in self.builds if not t.done()]
        if not plan.stale:
            if was_broken:
                self.echo("Manifest OK again; everything is up to date")
            project.remember()      # the next reload then resolves only what changed
            return
        self.echo(f"Building {len(plan.stale)} target(s): {', '.join(i.name for i in plan.stale[:8])}"
                  + ("…" if len(plan.stale) > 8 else ""))
        builder = Builder(project, plan, self.provider, reporter=self.reporter,
                          jobs=self.options.jobs or project.manifest.settings.jobs, keep_going=True,
                          controller=self.controller, session=self.session)
        task = asyncio.create_task(builder.run())
        task.add_done_callback(self._finished)
        self.builds.append((builder, task))
        # Once the build has started (callbacks run in order; its task was scheduled first).
        asyncio.get_running_loop().call_soon(project.remember)

    def _finished(self, task: asyncio.Task[BuildReport]) -> None:
        if task.cancelled():
            return
        exc = task.exception()
        if exc is not None:
            self.echo(f"Error: {exc}")
            return
        report = task.result()
        if self._project is not None and (self._project.manifest.sheets or self._project.lock.sheets):
            from .build import sheets_after       # [sheets.*] remade from what this build wrote, free
            sheets_after(self._project, report)
            if report.sheets:
                self.echo(f"Sheets made: {', '.join(report.sheets)} (free)")
        if self.after_build is not None and self._project is not None:
            self.after_build(self._project, report)
        if not self._paused_said and any("budget" in r.message or "spend limit" in r.message
                                        for r in report.results if r.status == Status.SKIPPED):
            self._paused_said = True
            if any("spend limit" in r.message for r in report.results if r.status == "skipped"):
                self.echo("Spend limit reached ([settings] limits); paused submitting (see `assetgen spend`).")
            else:
                self.echo(f"Budget reached: this session has spent {usd(self.session.spent)} of "
                          f"{usd(self.session.budget or 0)}; paused submitting (restart the watch to go on).")
        budget = f" of {usd(self.session.budget)}" if self.session.budget is not None else ""
        self.echo(f"Built {len(report.results)} target(s); session spent {usd(self.session.spent)}{budget}. "
                  f"Watching for changes…")

    def _failed(self, message: str) -> None:
        self._broken = True
        self._named = named_file_references(self.path)
        self.echo(message)

    def _show_limits(self, warnings: list[str], limit: int = 10) -> None:
        """The gateway's documented limits that targets go beyond, as `plan` and `build` print them:
        after each load that changes them (not on every save)."""
        if warnings == self._limits:
            return
        self._limits = warnings
        for message in warnings[:limit]:
            self.echo(f"Warning: {message}")
        if len(warnings) > limit:
            self.echo(f"Warning: … and {len(warnings) - limit} more targets beyond the gateway's documented limits")

    def _warn_once(self, message: str) -> None:
        if message not in self._warned:
            self._warned.add(message)
            self.echo(f"Warning: {message}")

    async def wait_idle(self) -> None:
        """Wait until no build of this session is running (for tests and scripts)."""
        while any(not t.done() for _b, t in self.builds):
            await asyncio.gather(*(t for _b, t in self.builds), return_exceptions=True)

    # -- what to watch --------------------------------------------------------------------------------

    def _watched_folders(self) -> list[Path]:
        folders = {self.path.parent}
        project = self._project
        if project is not None:
            for target in project.manifest.targets.values():
                for ref in target.references:
                    if ref.kind == "file" and ref.path is not None:
                        folder = ref.path.resolve().parent
                        if folder.exists():
                            folders.add(folder)
        for path in self._named:          # what the broken manifest names, whether it exists or not
            folder = path.parent
            while not folder.is_dir() and folder != folder.parent:
                folder = folder.parent
            folders.add(folder)
        return sorted(folders)

    def _missing(self) -> list[Path]:
        """File references the broken manifest names that did not exist (at most a few stats)."""
        return [path for path in self._named if not path.exists()] if self._broken else []

    def _relevant(self, change: watchfiles.Change, path: str) -> bool:
        if not self._editor_noise_filter(change, path):
            return False
        resolved = Path(path).resolve()
        root = self.path.parent
        if resolved.parent == root and resolved.suffix == ".lock":
            return False                    # this manifest's lock, or another's beside it
        ignored = [root / CACHE_DIR, lock_path(self.path, None)]
        if self._project is not None:
            ignored.append((root / self._project.manifest.settings.out_dir).resolve())
        return not any(resolved == p or p in resolved.parents for p in ignored)


_REFERENCES = re.compile(r"references\s*=\s*\[(.*?)\]", re.DOTALL)
_QUOTED = re.compile(r"\"((?:[^\"\\\n]|\\.)*)\"|'([^'\n]*)'")


def named_file_references(manifest_path: Path) -> set[Path]:
    """Every local file a manifest's ``references`` name, resolved beside it, read leniently: from
    the TOML if it parses (in any table, valid or not), else from the text. A name built from a
    matrix value (``refs/{item}.png``) stands for its folder."""
    try:
        text = manifest_path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return set()
    try:
        names = list(_references_in(tomllib.loads(text)))
    except tomllib.TOMLDecodeError:
        names = [a or b for block in _REFERENCES.findall(text) for a, b in _QUOTED.findall(block)]
    found: set[Path] = set()
    for name in names:
        if not name or name.startswith(("@", "http://", "https://", "data:")) or "\0" in name:
            continue
        if "{" in name:               # any file in the folder the matrix names it in
            folder = name[:name.index("{")].rpartition("/")[0]
            name = f"{folder}/{{}}" if folder else "{}"
        found.add(Path(os.path.normpath(manifest_path.parent / name)))
    return found


def _references_in(data: object) -> list[str]:
    if isinstance(data, dict):
        found: list[str] = []
        for key, value in data.items():
            if key == "references" and isinstance(value, list):
                found.extend(v for v in value if isinstance(v, str))
            else:
                found.extend(_references_in(value))
        return found
    if isinstance(data, list):
        return [name for item in data for name in _references_in(item)]
    return []
