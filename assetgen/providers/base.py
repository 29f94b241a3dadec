"""The interface every provider implements, and the values that cross it.

The build owns ordering, concurrency, the journal and the files; a provider only turns a ``Job`` into
images. ``TaskEvents.submitted`` is called the moment a paid task exists and must not return before the
task is recorded durably: the provider calls it before it waits on anything.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from ..journal import JournalRecord
    from ..manifest import Target


@dataclass(frozen=True)
class Job:
    key: str
    target: Target                       # the first target with this key (names, size, prompt)
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
    def submitted(self, task_id: str, model: str) -> None: ...
    def progress(self, status: str, progress: int) -> None: ...
    def completed(self, images: list[dict[str, Any]]) -> None: ...


class Provider(ABC):
    name: str = "provider"
    placeholder: bool = False            # outputs are placeholders (recorded so online builds replace them)

    @abstractmethod
    async def generate(self, job: Job, events: TaskEvents) -> Generation:
        """Submit ``job`` and return its images; raise a ``GatewayError`` subclass on failure."""

    async def resume(self, record: JournalRecord, events: TaskEvents) -> Generation:
        """Collect a task submitted by an earlier build (see ``journal``)."""
        raise NotImplementedError(f"the {self.name} provider has no tasks to resume")

    async def cancel(self, task_id: str) -> None:
        """Cancel a queued task (the gateway refunds it). Best effort."""

    async def aclose(self) -> None:
        """Release connections."""
