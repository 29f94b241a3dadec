"""Gateway provider: submit a task, record it, poll it with jitter, download its images.

Polling follows the provider's guidance (every 2–5 s, jittered so many tasks do not poll in step);
tests and benchmarks pass a smaller interval. A task that outlives ``task_timeout`` is left in the
journal, not cancelled: it is paid for, and the next build collects it.
"""

from __future__ import annotations

import asyncio
import random
import time
from typing import TYPE_CHECKING

from .. import catalog
from ..errors import DownloadFailed, GatewayError, InvalidImage, TaskFailed, TaskNotFound
from ..gateway import GatewayClient, ResultImage, Task
from .base import Generation, Job, Provider, TaskEvents

if TYPE_CHECKING:
    from ..journal import JournalRecord


REDOWNLOADS = 3          # junk served for a result URL is downloaded again this many times


def task_cost(model_id: str, images: int) -> float:
    model = catalog.BY_ID.get(model_id)
    return model.price * images if model else 0.0


class GatewayProvider(Provider):
    name = "gateway"

    def __init__(self, *, client: GatewayClient, poll_interval: float = 3.0, task_timeout: float = 600.0,
                 rng: random.Random | None = None) -> None:
        self.client = client
        self.poll_interval = poll_interval
        self.task_timeout = task_timeout
        self._rng = rng or random.Random()

    async def generate(self, job: Job, events: TaskEvents) -> Generation:
        task = await self.client.submit(job.body)
        model = task.model or str(job.body["model"])
        events.submitted(task.task_id, model)
        return await self._collect(task.task_id, model, events, first_wait=True, n=int(job.body["n"]))

    async def resume(self, record: JournalRecord, events: TaskEvents) -> Generation:
        if record.images:
            images = tuple(ResultImage(url=i["url"], expires_at=i.get("expires_at")) for i in record.images)
            if not _expired(images):
                try:
                    return await self._download(record.task_id, record.model, images, events)
                except DownloadFailed:
                    pass  # fall back to asking the gateway: it may hand out fresh URLs
        return await self._collect(record.task_id, record.model, events, first_wait=False, n=record.n)

    async def cancel(self, task_id: str) -> None:
        try:
            await self.client.cancel(task_id)
        except GatewayError:
            pass  # a task that already started cannot be cancelled; its image will be cached

    async def aclose(self) -> None:
        await self.client.aclose()

    async def _collect(self, task_id: str, model: str, events: TaskEvents, *, first_wait: bool,
                       n: int | None = None) -> Generation:
        started = time.monotonic()
        deadline = started + self.task_timeout
        if first_wait:
            await asyncio.sleep(self._interval())
        while True:
            task = await self.client.get(task_id, n=n)   # URLs beyond the n asked for are ignored
            events.progress(task.status, task.progress)
            if task.status == "completed":
                images = task.images
                if not images and task.other_media:
                    # Paid and completed, but media of another kind: kept in the journal (not a
                    # TaskFailed, which drops it) so no later build pays for this key blindly.
                    raise GatewayError(
                        f"no image in the result of task {task_id} (it holds {', '.join(task.other_media)}); "
                        f"the task stays recorded and the next build asks for it again without paying",
                        code="no_image")
                events.completed([{"url": i.url, "expires_at": i.expires_at} for i in images])
                if _expired(images):
                    raise TaskNotFound(f"task {task_id} completed but its result URLs have expired",
                                       code="expired")
                return await self._download(task_id, task.model or model, images, events)
            if task.status in ("failed", "cancelled"):
                message = task.error_message or f"the task was {task.status}"
                raise TaskFailed(f"{message} (task {task_id})", code=task.error_code or task.status)
            if time.monotonic() >= deadline:
                raise GatewayError(
                    f"task {task_id} is still {task.status} after {self.task_timeout:.0f} s; it stays "
                    f"recorded, and the next `assetgen build` collects it without paying again",
                    code="deadline")
            await asyncio.sleep(self._next_wait(task, time.monotonic() - started))

    async def _download(self, task_id: str, model: str, images: tuple[ResultImage, ...],
                        events: TaskEvents) -> Generation:
        """The task's images, each validated by ``events.check`` before anything keeps it. Junk
        (``InvalidImage``) is downloaded again, up to ``REDOWNLOADS`` times, never resubmitted."""
        if not images:
            raise TaskFailed(f"task {task_id} completed without any image", code="empty_result")

        async def valid(image: ResultImage) -> bytes:
            for attempt in range(1 + REDOWNLOADS):
                data = await self.client.download(image)
                try:
                    return await asyncio.to_thread(events.check, data)   # decoding 4K takes a while
                except InvalidImage as exc:
                    if attempt == REDOWNLOADS:
                        raise InvalidImage(f"{exc}; task {task_id}, downloaded {attempt + 1} times, "
                                           f"nothing of it was kept", code=exc.code) from exc
            raise AssertionError("unreachable")

        data = await asyncio.gather(*(valid(i) for i in images))
        return Generation(images=list(data), model=model, task_id=task_id,
                          cost=task_cost(model, len(data)), placeholder=False)

    def _interval(self) -> float:
        # Jitter only lengthens the interval, so many tasks do not poll in step and a task of latency L
        # is never polled more than ceil(L / interval) + 1 times.
        return self.poll_interval * self._rng.uniform(1.0, 1.2)

    def _next_wait(self, task: Task, elapsed: float) -> float:
        """The regular interval, or sooner when the task's progress says it will be done sooner: a
        finished image is then collected at once instead of up to one interval late."""
        wait = self._interval()
        if task.status == "processing" and 0 < task.progress < 100 and elapsed > 0:
            eta = elapsed * (100 - task.progress) / task.progress
            wait = min(wait, eta * 1.05 + 0.02)
        return max(wait, 0.01)


def _expired(images: tuple[ResultImage, ...] | list[ResultImage]) -> bool:
    now = time.time()
    return any(i.expires_at is not None and i.expires_at <= now for i in images)
