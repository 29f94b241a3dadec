"""How a command runs in a terminal: the open project, warnings on stderr, the reporter, and signals.

``Context`` opens a command's project (and freezes what it loaded out of the collector's sight);
``run_interruptible`` runs a build's coroutine so that a first Ctrl-C stops submitting and a second,
SIGTERM or SIGHUP exits at once with the journal intact; ``run_watch`` runs a watch until a signal.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Coroutine, Iterator
from contextlib import contextmanager
from gc import freeze as freeze_heap
from typing import TYPE_CHECKING, Any, TypeVar

import click

from ..engine.events import PlainReporter, QuietReporter
from ..engine.project import Project
from ..state.atomic import forget_sweeps
from ..state.memos import no_gc
from .reporters import LiveReporter

if TYPE_CHECKING:
    from ..commands.watch import Watcher
    from ..engine.scheduler import Controller

T = TypeVar("T")

# The build lock belongs to the cache folder, shared by every manifest beside it (and taken by gc).
WAITING = ("Another build, watch or gc using this cache (.assetgen/, shared by every manifest in this folder) "
           "is running; waiting for it to finish…")
STOP_SIGNALS = ("SIGTERM", "SIGHUP")     # a container stop, a CI cancel, a closed terminal


class Context:
    def __init__(self, file: str | None = None) -> None:
        self.requested = file        # -f or ASSETGEN_FILE; None: search upward (``discovery``)
        self._found: str | None = None

    @property
    def file(self) -> str:
        """The manifest: as requested, else the nearest ``assets.toml`` (relative to the working folder)."""
        if self.requested is not None:
            return self.requested
        if self._found is None:
            from .discovery import find_manifest
            self._found = find_manifest()
        return self._found

    @property
    def file_or_here(self) -> str:
        """``file``, or ``assets.toml`` in the working folder when there is none (``spend`` reads the ledger)."""
        from ..errors import ManifestNotFound
        try:
            return self.file
        except ManifestNotFound:
            return "assets.toml"

    def project(self, profile: str | None = None, *, remote: bool = True) -> Project:
        forget_sweeps()           # this command's writes remove stale temporaries where they write
        # A command's project lives until the process ends: move it (and everything before it) out of
        # the collector's sight, or the next full collection walks all of it (60 ms at 10,000
        # targets). Later garbage, a build's tasks and connections, is collected as usual. Frozen before
        # the collector is back on: between Project.open's own pauses, 18 collections walked what was
        # loaded so far (50 ms at 10,000 targets).
        with no_gc():
            project = Project.open(self.file, profile=profile, use_remote=remote, warn=warn)
            freeze_heap()
        if OUTPUT.verbosity > 0:
            notice(f"Manifest: {self.file}" + (f" (profile {profile})" if profile else "")
                   + f"; {len(project.manifest.targets)} targets")
        return project

    @contextmanager
    def opened(self, profile: str | None = None, *, remote: bool = True) -> Iterator[Project]:
        """``project()``, closed (the memos and stat cache saved) when the command is done with it."""
        project = self.project(profile, remote=remote)
        try:
            yield project
        finally:
            project.close()


class Output:
    """How this process prints: colours (``--color/--no-color``, ``NO_COLOR``) and verbosity (``-q/-v``).

    Set once from the command line (every command takes the options, before or after its name)."""

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.color: bool | None = None      # None: on a terminal unless NO_COLOR is set
        self.verbosity = 0                  # -1 quiet (no warnings or notes), 0 normal, 1+ verbose
        self.live: LazyLive | None = None   # the live view while a build shows one (``notice``)

    def colored(self, stream: Any) -> bool:
        import os

        if self.color is not None:
            return self.color
        return not os.environ.get("NO_COLOR") and bool(getattr(stream, "isatty", lambda: False)())

    def style(self, text: str, stream: Any, **how: Any) -> str:
        return click.style(text, **how) if self.colored(stream) else text


OUTPUT = Output()


def echo_err(message: str, **how: Any) -> None:
    """``message`` on stderr, styled (``how``: click.style's) when colours are on; ANSI codes only then."""
    click.echo(OUTPUT.style(message, sys.stderr, **how), err=True, color=OUTPUT.colored(sys.stderr))


def notice(message: str, **how: Any) -> None:
    """A message for the person at the terminal. While the live view runs it is printed through the view's
    console, above the view (printed on stderr behind rich's back, the next redraw would overwrite it)."""
    view = OUTPUT.live.view if OUTPUT.live is not None else None
    if view is not None:
        view.note(message)
    else:
        echo_err(message, **how)


def warn(message: str) -> None:
    if OUTPUT.verbosity >= 0:
        notice(f"Warning: {message}", fg="yellow")


def warn_limits(project: Project, limit: int = 10) -> None:
    """The gateway's documented limits that targets go beyond (``Manifest.warnings``), on stderr."""
    warnings = project.manifest.warnings
    for message in warnings[:limit]:
        warn(message)
    if len(warnings) > limit:
        warn(f"… and {len(warnings) - limit} more targets beyond the gateway's documented limits")


class LazyLive:
    """Starts rich's live view only once there is something to show."""

    def __init__(self, stream: Any) -> None:
        self.stream = stream
        self.view: LiveReporter | None = None

    def start(self, total: int) -> None:
        self.view = LiveReporter(total, self.stream, color=OUTPUT.colored(self.stream)).__enter__()
        OUTPUT.live = self

    def emit(self, event: Any) -> None:
        if self.view is not None:
            self.view.emit(event)

    def close(self) -> None:
        if self.view is not None:
            self.view.__exit__(None, None, None)
            self.view = None
        if OUTPUT.live is self:
            OUTPUT.live = None


def build_reporter(*, quiet: bool, as_json: bool, live: bool, stream: Any) -> Any:
    """What a build shows: failures only (``--quiet``, ``--json``), the live view, or a line per event."""
    if as_json or quiet:
        return QuietReporter()
    if live:
        return LazyLive(stream)
    return PlainReporter(stream)


def run_interruptible(main: Callable[[Controller], Coroutine[Any, Any, T]]) -> T:
    """Run ``main`` with Ctrl-C handling: first stops submitting, second exits now (journal intact).

    SIGTERM and SIGHUP stop submitting and exit at once (128 + the signal's number): a container or CI
    runner that sends them kills the process a few seconds later. The lock is saved, tasks in flight
    stay in the journal, and a submit already on the wire gets a moment to return its task id."""
    import asyncio

    from ..engine.scheduler import Controller

    controller = Controller()
    loop = asyncio.new_event_loop()
    task = loop.create_task(main(controller))
    stopped_by: list[int] = []
    handled = _handle_build_signals(loop, task, controller, stopped_by)
    try:
        return loop.run_until_complete(task)
    except (asyncio.CancelledError, KeyboardInterrupt):
        click.echo("Interrupted. Tasks in flight are recorded in .assetgen/journal and are paid for; run "
                   "`assetgen build` again to collect them without paying twice.", err=True)
        sys.exit(128 + stopped_by[0] if stopped_by else 130)
    finally:
        for signum in handled:
            try:
                loop.remove_signal_handler(signum)
            except (NotImplementedError, RuntimeError, ValueError):
                pass
        loop.run_until_complete(loop.shutdown_asyncgens())
        loop.close()


def _handle_build_signals(loop: Any, task: Any, controller: Controller, stopped_by: list[int]) -> list[int]:
    """Install the build's signal handlers on ``loop``; returns the signals handled (to remove after).
    ``stopped_by`` receives the stop signal that ended the build, if one did."""
    import signal

    presses = 0

    def on_stop_signal(signum: int) -> None:
        if not stopped_by:
            stopped_by.append(signum)
            name = signal.Signals(signum).name
            controller.stop(f"stopped ({name})")
            notice(f"\n{name}: stopping now; tasks in flight stay in the journal.", fg="yellow")
            task.cancel()

    def on_interrupt() -> None:
        nonlocal presses
        presses += 1
        if presses == 1:
            controller.stop("interrupted (Ctrl-C)")
            notice("\nStopping: no new tasks will be submitted; waiting for the ones in flight. "
                   "Press Ctrl-C again to exit now.", fg="yellow")
        else:
            task.cancel()

    handled: list[int] = [signal.SIGINT]
    try:
        loop.add_signal_handler(signal.SIGINT, on_interrupt)
        for name in STOP_SIGNALS:
            signum = getattr(signal, name, None)
            if signum is not None:
                loop.add_signal_handler(signum, on_stop_signal, signum)
                handled.append(signum)
    except (NotImplementedError, RuntimeError, ValueError):
        pass  # not the main thread (or Windows): plain KeyboardInterrupt applies
    return handled


def run_watch(watcher: Watcher) -> int | None:
    """Run the watch until Ctrl-C, SIGTERM or SIGHUP; returns the stop signal's number (None for Ctrl-C)."""
    import asyncio
    import signal

    stopped_by: list[int] = []

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()

        def on_signal(signum: int) -> None:
            if signum != signal.SIGINT and not stopped_by:
                stopped_by.append(signum)
            watcher.controller.stop("the watch is stopping")
            stop.set()

        try:
            loop.add_signal_handler(signal.SIGINT, on_signal, signal.SIGINT)
            for name in STOP_SIGNALS:
                if hasattr(signal, name):
                    loop.add_signal_handler(getattr(signal, name), on_signal, getattr(signal, name))
        except (NotImplementedError, RuntimeError, ValueError):
            pass
        await watcher.run(stop)

    asyncio.run(main())
    return stopped_by[0] if stopped_by else None
