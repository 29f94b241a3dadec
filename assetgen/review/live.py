"""``watch --gallery``: keep the gallery written and served while a watch runs, and push updates.

Glue only: ``page`` writes pages and ``server`` serves them; this rewrites the page after each build (on the event
loop, because the gallery reads the project's stat cache that builds also use) and forwards build
progress to open pages, at most a few times a second.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..engine.events import Event, EventKind, Reporter, usd
from ..engine.scheduler import SUCCEEDED_STATES, Status
from .page import write_gallery
from .server import Actions, GalleryServer

if TYPE_CHECKING:
    from ..engine.project import Project
    from ..engine.scheduler import BuildReport

_MIN_INTERVAL = 0.25      # seconds between progress pushes


class LiveGallery:
    def __init__(self, gallery_dir: Path, project: Project | None, actions: Actions | None = None) -> None:
        self.gallery_dir = gallery_dir
        self.server = GalleryServer(gallery_dir, actions=actions)
        self.failures: dict[str, str] = {}
        self._active: set[str] = set()
        self._done = 0
        self._spent = 0.0
        self._last_push = 0.0
        if project is not None:
            write_gallery(project, out_dir=gallery_dir, live=True)

    def start(self) -> str:
        return self.server.start()

    def stop(self) -> None:
        self.server.stop()

    def refresh(self, project: Project, report: BuildReport | None) -> None:
        for result in report.results if report else []:
            if result.status == Status.FAILED:
                self.failures[result.name] = result.message
            elif result.status in SUCCEEDED_STATES:
                self.failures.pop(result.name, None)
        write_gallery(project, out_dir=self.gallery_dir, live=True, failures=self.failures)
        self._done = 0
        self.server.notify({"line": f"Up to date · session spent {usd(self._spent)}"})

    def reporter(self, inner: Reporter) -> Reporter:
        live = self

        class Forward:
            def emit(self, event: Event) -> None:
                inner.emit(event)
                live._observe(event)

        return Forward()

    def _observe(self, event: Event) -> None:
        if event.kind in (EventKind.SUBMITTED, EventKind.RESUMED):
            self._active.add(event.target)
        elif event.kind not in (EventKind.PROGRESS, EventKind.NOTICE):
            self._active.discard(event.target)
            self._done += 1
            self._spent = float(event.data.get("spent", self._spent))
        now = time.monotonic()
        if now - self._last_push >= _MIN_INTERVAL:
            self._last_push = now
            line: dict[str, Any] = {"line": f"Building: {len(self._active)} in flight · {self._done} done · "
                                            f"session spent {usd(self._spent)}"}
            self.server.notify(line)
