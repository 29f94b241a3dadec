"""What a build tells the person watching: ``Event``s, the ``Reporter`` protocol that receives them, the
plain reporters the library uses by default, and how money and times are shown. Injected, never global.

``PlainReporter`` writes one line per event (CI, pipes), ``QuietReporter`` only keeps failures; the
command line adds a live view (``cli.reporters.LiveReporter``). Core code never prints: it emits events
or returns values that reporters render.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, Protocol, TextIO

from ..errors import safe_text

_MESSAGE_LIMIT = 2000


def utc_now() -> str:
    """Now, to the second, as ISO 8601 in UTC (``2026-01-31T12:00:00Z``): when something was built or written."""
    return datetime.now(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def money(value: float) -> str:
    return f"${value:.4f}".rstrip("0").rstrip(".") if value else "free"


def usd(value: float) -> str:
    return f"${value:.2f}" if value >= 0.1 or value == 0 else f"${value:.4f}"


class EventKind(StrEnum):
    """What happened: a task's life (submitted, progress, resumed), a notice, or how a target ended
    (the values of ``scheduler.Status``, which the scheduler emits as the kind of equal value)."""

    SUBMITTED = "submitted"
    PROGRESS = "progress"
    RESUMED = "resumed"
    NOTICE = "notice"
    BUILT = "built"
    RESTORED = "restored"
    SHARED = "shared"
    FAILED = "failed"
    BLOCKED = "blocked"
    SKIPPED = "skipped"
    SUPERSEDED = "superseded"
    UNCERTAIN = "uncertain"
    PENDING = "pending"


@dataclass(frozen=True)
class Event:
    kind: EventKind
    target: str
    message: str = ""
    data: dict[str, Any] = field(default_factory=dict)


class Reporter(Protocol):
    def emit(self, event: Event) -> None: ...


# -- build progress ---------------------------------------------------------------------------------

def label(event: Event) -> str:
    """Whom a line is about: the target, or several cells of a grid as one (``data["label"]``)."""
    return str(event.data.get("label") or event.target)


_LINE_KINDS = set(EventKind) - {EventKind.PROGRESS}          # one line each (progress: on a change)
_FAILED_KINDS = {EventKind.FAILED, EventKind.BLOCKED, EventKind.SKIPPED, EventKind.UNCERTAIN}


class PlainReporter:
    """One line per event; progress only when a task's state changes."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self.stream = stream or sys.stdout
        self._state: dict[str, str] = {}

    def emit(self, event: Event) -> None:
        if event.kind == "progress":
            status = str(event.data.get("status"))
            if self._state.get(event.target) == status:
                return
            self._state[event.target] = status
            line = f"{safe_text(label(event))}: {safe_text(status, 40)}"
        elif event.kind in _LINE_KINDS:
            message = safe_text(event.message, _MESSAGE_LIMIT)
            line = f"{safe_text(label(event))}: {event.kind}" + (f" ({message})" if message else "")
            if event.kind == "built" and event.data.get("cost"):
                line += f" {usd(float(event.data['cost']))}"
        else:
            return
        print(line, file=self.stream, flush=True)


class QuietReporter:
    def __init__(self, stream: TextIO | None = None) -> None:
        self.stream = stream or sys.stderr

    def emit(self, event: Event) -> None:
        if event.kind in _FAILED_KINDS - {EventKind.SKIPPED}:     # a skip follows a failure shown already
            print(f"{safe_text(label(event))}: {event.kind} ({safe_text(event.message, _MESSAGE_LIMIT)})",
                  file=self.stream, flush=True)
