"""The interface every provider implements, and the values that cross it.

The build owns ordering, concurrency, the journal and the files; a provider only turns a ``Job`` into
images. A provider that submits paid tasks calls ``TaskEvents.intent`` before each submit (it returns
once the intent is durable), then exactly one of ``submitted`` (the task id: recorded durably before
the provider waits on anything), ``uncertain`` (the answer was lost: the task may exist) or
``not_created`` (the gateway refused it: nothing was paid). ``notice`` tells the person something worth
a line (a batch job's name and its expected turnaround). ``record_intent`` and ``record_submitted`` are
the same two steps for an async provider: the fsyncs then run in a worker thread (``durably``), so
other tasks' polls and downloads go on while the disk is busy, and each still returns only once what
it records is durable.
"""

from __future__ import annotations

import asyncio
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

if TYPE_CHECKING:
    from ..manifest.model import Target
    from ..state.journal import JournalRecord


@dataclass(frozen=True)
class Job:
    key: str
    target: Target | None                # the first target with this key (names, size, prompt); None: an
                                         # orphan, a journaled task no target wants now (only collected)
    names: tuple[str, ...]               # every target served by this generation
    body: dict[str, Any]                 # the gateway's submit body, references already resolved


@dataclass(frozen=True)
class Generation:
    images: list[bytes]
    model: str                           # the model id that produced them
    task_id: str | None
    cost: float
    placeholder: bool


class TaskEvents(Protocol):
    def intent(self, body: dict[str, Any]) -> None: ...
    def submitted(self, task_id: str, model: str) -> None: ...
    def uncertain(self, why: str) -> None: ...
    def not_created(self) -> None: ...
    def progress(self, status: str, progress: int) -> None: ...
    def completed(self, images: list[dict[str, Any]], *, task_id: str | None = None) -> None: ...
    def task_ended(self, task_id: str) -> None: ...
    def check(self, data: bytes) -> bytes: ...
    def notice(self, message: str) -> None: ...


_T = TypeVar("_T")


async def durably(work: Callable[[], _T]) -> tuple[_T, bool]:
    """Run ``work`` (file writes that fsync) in a worker thread, so the event loop goes on polling and
    downloading other tasks while the disk is busy (measured: 14 fsyncs per target, a third of a
    throughput build's wall time with the loop blocked). ``work`` always runs to its end: a cancellation
    that arrives meanwhile waits for it, and is returned (True) for the caller to act on and re-raise,
    so what was written is known either way. ``work`` reports its own errors in what it returns."""
    # A plain executor future, not a task (as ``asyncio.to_thread`` makes): ``asyncio.run`` ending cancels
    # every task left, and a cancelled wrapper would end this wait while the work still runs.
    future = asyncio.get_running_loop().run_in_executor(None, work)
    cancelled = False
    while True:
        try:
            return await asyncio.shield(future), cancelled
        except asyncio.CancelledError:
            cancelled = True
            if future.done():                   # it finished as the cancellation came
                return future.result(), cancelled


async def record_intent(events: TaskEvents, body: dict[str, Any]) -> None:
    """``events.intent(body)``, its fsync off the event loop where ``events`` can (the build's can)."""
    aintent = getattr(events, "aintent", None)
    if aintent is None:
        events.intent(body)
    else:
        await aintent(body)


async def record_submitted(events: TaskEvents, task_id: str, model: str) -> None:
    """``events.submitted(task_id, model)``, its fsyncs off the event loop where ``events`` can."""
    asubmitted = getattr(events, "asubmitted", None)
    if asubmitted is None:
        events.submitted(task_id, model)
    else:
        await asubmitted(task_id, model)


class Provider(ABC):
    name: str = "provider"
    placeholder: bool = False            # outputs are placeholders (recorded so online builds replace them)

    @abstractmethod
    async def generate(self, job: Job, events: TaskEvents) -> Generation:
        """Submit ``job`` and return its images; raise a ``GatewayError`` subclass on failure."""

    async def resume(self, record: JournalRecord, events: TaskEvents, job: Job | None = None) -> Generation:
        """Collect the tasks an earlier build submitted (see ``journal``); with ``job``, also submit what
        that build had not submitted yet (e.g. the rest of an ``n = 1`` fallback)."""
        raise NotImplementedError(f"the {self.name} provider has no tasks to resume")

    async def cancel(self, task_id: str) -> None:     # noqa: B027 (optional: by default nothing to cancel)
        """Cancel a queued task (the gateway refunds it). Best effort."""

    async def aclose(self) -> None:                   # noqa: B027 (optional: by default nothing to release)
        """Release connections."""
