"""Gateway provider: submit a task, record it, poll it with jitter, download its images.

Submits go one at a time (``_submit``: intent fsynced, POST, task id fsynced), so a kill loses at most
one task id; a gateway that refuses ``n > 1`` gets ``n`` one-image tasks instead. Polling follows the
provider's guidance (every 2–5 s, jittered so many tasks do not poll in step);
tests and benchmarks pass a smaller interval. A task that outlives ``task_timeout`` is left in the
journal, not cancelled: it is paid for, and the next build collects it.
"""

from __future__ import annotations

import asyncio
import random
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .. import catalog
from ..errors import (DownloadFailed, GatewayError, IncompleteResult, InvalidImage, InvalidRequest, ServerError,
                      SubmissionUncertain, TaskFailed, TaskNotFound)
from .base import Generation, Job, Provider, TaskEvents, record_intent, record_submitted
from .client import GatewayClient, ResultImage, Task, refuses_n

if TYPE_CHECKING:
    from ..state.journal import JournalRecord


REDOWNLOADS = 3          # junk served for a result URL is downloaded again this many times
# A 404 for a task id we hold (e.g. the gateway has not registered a fresh task yet) is asked again
# this many times, waiting 1, 2, 4, 8 poll intervals; after that the key is uncertain, never forgotten.
NOT_FOUND_RETRIES = 4


# A submit stopped from outside (SIGTERM, a second Ctrl-C, a watch closing) waits this long for the
# gateway's answer, so a task it may already have created is journaled rather than lost.
SUBMIT_GRACE = 3.0


@dataclass
class _Phase:
    """Where a task's collection is, for the message when ``task_timeout`` ends it."""

    downloading: bool = False
    status: str = "queued"


@dataclass
class _Part:
    """One task serving (part of) a key: its id, images asked of it, and saved result URLs."""

    task_id: str
    n: int
    model: str
    images: list[dict[str, Any]] | None = None


class GatewayProvider(Provider):
    name = "gateway"

    def __init__(self, *, client: GatewayClient, poll_interval: float = 3.0, task_timeout: float = 600.0,
                 rng: random.Random | None = None) -> None:
        self.client = client
        self.poll_interval = poll_interval
        self.task_timeout = task_timeout
        self._rng = rng or random.Random()
        # One POST /v1/tasks in flight at a time, from intent to journaled task id: a kill loses at most
        # one task id (polls and downloads stay concurrent). Created on first use, in the build's loop.
        self._submit_lock: asyncio.Lock | None = None
        self.one_image_models: set[str] = set()     # models that refused n > 1 in this build
        self._took: dict[str, list[float]] = {}      # model → seconds from collecting a task to its completion

    async def generate(self, job: Job, events: TaskEvents) -> Generation:
        return await self._run(job, [], events)

    async def resume(self, record: JournalRecord, events: TaskEvents, job: Job | None = None) -> Generation:
        parts = [_Part(s.task_id, s.n, record.model, s.images) for s in record.submissions if s.task_id]
        return await self._run(job, parts, events)

    async def cancel(self, task_id: str) -> None:
        try:
            await self.client.cancel(task_id)
        except GatewayError:
            pass  # a task that already started cannot be cancelled; its image will be cached

    async def aclose(self) -> None:
        await self.client.aclose()

    # -- submitting ---------------------------------------------------------------------------------

    async def _run(self, job: Job | None, parts: list[_Part], events: TaskEvents) -> Generation:
        """Submit what the key still needs (nothing, when resuming a complete record), then collect
        every task concurrently; their images, in order, are the key's."""
        fresh = len(parts)
        want = int(job.body["n"]) if job is not None and job.body else sum(p.n for p in parts)
        while sum(p.n for p in parts) < want:
            assert job is not None
            parts.append(await self._submit_part(job, len(parts), want - sum(p.n for p in parts), events))
        outcomes = await asyncio.gather(
            *(self._collect_part(p, events, first_wait=i >= fresh) for i, p in enumerate(parts)),
            return_exceptions=True)
        for outcome in outcomes:
            if isinstance(outcome, BaseException):
                raise outcome
        images = [data for outcome in outcomes for data in outcome]   # type: ignore[union-attr]
        model = parts[0].model
        return Generation(images=images, model=model, task_id=",".join(p.task_id for p in parts),
                          cost=catalog.task_cost(model, len(images)), placeholder=False)

    async def _submit_part(self, job: Job, index: int, remaining: int, events: TaskEvents) -> _Part:
        if self._submit_lock is None:
            self._submit_lock = asyncio.Lock()
        async with self._submit_lock:       # the body is made inside: a refusal of n > 1 is remembered
            return await self._submit_part_locked(job, index, remaining, events)

    async def _submit_part_locked(self, job: Job, index: int, remaining: int, events: TaskEvents) -> _Part:
        model = str(job.body["model"])
        while True:
            one = model in self.one_image_models
            body = dict(job.body)
            if one or index:
                body["n"] = 1
                seed = job.body.get("seed", -1)
                if isinstance(seed, int) and seed >= 0:
                    body["seed"] = seed + index          # task i sends seed + i - 1: candidates differ
            else:
                body["n"] = remaining
            try:
                task = await self._submit(body, events)
            except InvalidRequest as exc:
                if body["n"] > 1 and refuses_n(exc):
                    self.one_image_models.add(model)    # nothing was created: ask one image at a time
                    continue
                raise
            return _Part(task.task_id, int(body["n"]), task.model or model)

    async def _submit(self, body: dict[str, Any], events: TaskEvents) -> Task:
        """One POST, with the submit lock held: intent, send, then the task id or what went wrong."""
        await record_intent(events, body)               # durable before anything is sent
        try:
            task = await self._post(body, events)
        except SubmissionUncertain as exc:
            events.uncertain(str(exc))
            raise
        except ServerError as exc:
            # The body was sent and the server failed after it: the task may exist.
            events.uncertain(f"HTTP {exc.status} after the body was sent")
            raise SubmissionUncertain(f"{exc}; the submission may have been accepted, so it is not "
                                      f"resent", status=exc.status, code=exc.code) from exc
        except GatewayError:
            events.not_created()                        # refused or never sent: nothing was paid
            raise
        # Durable before the submit lock is released: the next POST waits for it.
        await record_submitted(events, task.task_id, task.model or str(body["model"]))
        return task

    async def _post(self, body: dict[str, Any], events: TaskEvents) -> Task:
        sending = asyncio.ensure_future(self.client.submit(body))
        try:
            return await asyncio.shield(sending)
        except asyncio.CancelledError:
            # Stopped mid-POST: the task may exist already. Wait briefly for its id so it is journaled.
            try:
                task = await asyncio.wait_for(asyncio.shield(sending), SUBMIT_GRACE)
            except (TimeoutError, asyncio.CancelledError, GatewayError):
                sending.cancel()                        # the intent stays: the key is reported uncertain
                raise asyncio.CancelledError() from None
            events.submitted(task.task_id, task.model or str(body["model"]))
            raise

    # -- collecting ---------------------------------------------------------------------------------

    async def _collect_part(self, part: _Part, events: TaskEvents, *, first_wait: bool) -> list[bytes]:
        """The part's images: polled (unless its URLs were saved) and downloaded, all within
        ``task_timeout``. Past it the task stays in the journal (with its URLs once it completed), so a
        later build collects it without paying: a trickling download server cannot hold a build for
        the client's per-exchange download deadline (600 s) on top of the task's own."""
        phase = _Phase(downloading=bool(part.images))
        try:
            async with asyncio.timeout(self.task_timeout):
                return await self._collect_part_in_time(part, events, first_wait=first_wait, phase=phase)
        except TimeoutError:
            if not phase.downloading:
                raise GatewayError(
                    f"task {part.task_id} is still {phase.status} after {self.task_timeout:g} s (task_timeout); "
                    f"it stays recorded, and the next `assetgen build` collects it without paying again",
                    code="deadline") from None
            raise DownloadFailed(
                f"the images of task {part.task_id} were not downloaded within task_timeout "
                f"({self.task_timeout:g} s, polling and downloads together); the task stays recorded with "
                f"its result URLs, and the next `assetgen build` downloads them without paying again",
                code="deadline") from None

    async def _collect_part_in_time(self, part: _Part, events: TaskEvents, *, first_wait: bool,
                                    phase: _Phase) -> list[bytes]:
        if part.images:
            images = tuple(ResultImage(url=i["url"], expires_at=i.get("expires_at")) for i in part.images)
            if not _expired(images):
                try:
                    return (await self._download(part.task_id, part.model, images, events)).images
                except DownloadFailed as exc:
                    if exc.code == "deadline":
                        raise           # a download server too slow now: asking again would not help
                    # fall back to asking the gateway: it may hand out fresh URLs
            phase.downloading = False
        for attempt in range(NOT_FOUND_RETRIES + 1):
            try:
                return (await self._collect(part.task_id, part.model, events, first_wait=first_wait,
                                             n=part.n, phase=phase)).images
            except TaskNotFound as exc:
                if exc.code == "expired":
                    events.task_ended(part.task_id)     # its images are gone for good: drop it
                    raise
                if attempt == NOT_FOUND_RETRIES:        # still paid for: the caller closes the record
                    raise TaskNotFound(f"{exc} (task {part.task_id}, asked {attempt + 1} times)",
                                       status=exc.status, code=exc.code or "not_found") from exc
                await asyncio.sleep(self.poll_interval * 2 ** attempt)
            except TaskFailed:
                events.task_ended(part.task_id)         # it will never give images: drop it
                raise
        raise AssertionError("unreachable")

    async def _collect(self, task_id: str, model: str, events: TaskEvents, *, first_wait: bool,
                       n: int | None = None, phase: _Phase | None = None) -> Generation:
        phase = phase or _Phase()
        started = time.monotonic()
        deadline = started + self.task_timeout
        if first_wait:
            await asyncio.sleep(max(self._interval(), self._expected(model)))
        while True:
            task = await self.client.get(task_id, n=n)   # URLs beyond the n asked for are ignored
            events.progress(task.status, task.progress)
            phase.status = task.status
            if task.status == "completed":
                self._took.setdefault(model, []).append(time.monotonic() - started)
                images = task.images
                if len(images) < (n or 1):
                    # Paid and completed, but short of the images asked for (none, or media of another
                    # kind): kept in the journal, never indexed as the key's images (see IncompleteResult).
                    held = f" (it holds {', '.join(task.other_media)})" if task.other_media else ""
                    raise IncompleteResult(f"no image in the result of task {task_id}{held}" if not images else
                                           f"task {task_id} completed with {len(images)} of the {n or 1} "
                                           f"images asked for")
                events.completed([{"url": i.url, "expires_at": i.expires_at} for i in images], task_id=task_id)
                if _expired(images):
                    raise TaskNotFound(f"task {task_id} completed but its result URLs have expired",
                                       code="expired")
                phase.downloading = True
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
                          cost=catalog.task_cost(model, len(data)), placeholder=False)

    def _expected(self, model: str) -> float:
        """How long a new task of ``model`` may be left alone before its first poll: 90 % of the quickest
        of this build's last 16 tasks of it (0 until 4 have finished). Polling a task before it can
        be done costs a request and CPU and tells nothing; after this, progress sets the pace
        (``_next_wait``), so the one that finishes is seen within a few per cent of its time."""
        took = self._took.get(model, [])
        return 0.9 * min(took[-16:]) if len(took) >= 4 else 0.0

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
