"""Google's Batch API for ``build --batch``: many ``generateContent`` requests in one job, at half price.

Documented in the Batch API reference (ai.google.dev/api/batch-api, read 2026-12-02):

- create: ``POST /v1beta/models/{model}:batchGenerateContent`` with ``{"batch": {"displayName",
  "inputConfig": {"requests": {"requests": [{"request": <GenerateContentRequest>, "metadata": {...}}]}}}}``
  (inline requests; the reference caps an inline batch's size — 20 MB — beyond which a JSONL file is
  uploaded: not implemented, such a build is refused before anything is sent);
- the answer is an Operation whose ``name`` is the job's name (``batches/{id}``), returned before any
  work is done: it is fsynced to every key's journal record (as task id ``batches:{id}``: ``/`` has no
  place in a journal id) before the build waits;
- ``GET /v1beta/batches/{id}``: ``metadata.state`` BATCH_STATE_PENDING | RUNNING | SUCCEEDED | FAILED |
  CANCELLED | EXPIRED; once done, ``response.inlinedResponses.inlinedResponses[]`` in request order, each
  a ``response`` (a GenerateContentResponse) or an ``error`` (a Status), with the request's ``metadata``.

One job per build and model (requests of several models cannot share a job); targets whose upstream is
built in the same build join a later job. Each request asks one image and carries ``{"key": KEY, "image":
i}``, so results map back to targets by key (verified only against our emulator: whether Google echoes
``metadata`` is documented, not observed). A request that failed fails its target alone. Creating a job
is one POST at a time; a create whose answer is lost leaves its keys uncertain, like any submit.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from .. import catalog
from ..errors import BatchPending, GatewayError, SubmissionUncertain, TaskFailed
from .base import Generation, Job, Provider, TaskEvents
from .gemini import gemini_images, gemini_request
from .vendorclient import Answer, VendorClient

if TYPE_CHECKING:
    from ..state.journal import JournalRecord

BATCH_DISCOUNT = 0.5                 # Google's batch price is half the interactive one
MAX_INLINE_BYTES = 20 * 1024 * 1024  # the Batch API's limit for inline requests
WINDOW = 0.3                         # seconds the first job waits for the build's other ready jobs
DONE = {"BATCH_STATE_SUCCEEDED", "BATCH_STATE_FAILED", "BATCH_STATE_CANCELLED", "BATCH_STATE_EXPIRED"}
PREFIX = "batches:"


def task_id_of(name: str) -> str:
    return PREFIX + name.split("/", 1)[1] if name.startswith("batches/") else name


def name_of(task_id: str) -> str:
    return "batches/" + task_id[len(PREFIX):]


@dataclass
class _Waiting:
    job: Job
    events: TaskEvents
    done: asyncio.Future[Generation]


class BatchCollector:
    """Polls batch jobs (one poller per job, shared by its keys) and hands each key its images."""

    def __init__(self, client: VendorClient, poll_interval: float) -> None:
        self.client = client
        self.poll_interval = poll_interval
        self._polls: dict[str, asyncio.Task[dict[str, Any]]] = {}

    async def finished(self, task_id: str, events: TaskEvents | None = None) -> dict[str, Any]:
        if task_id not in self._polls:
            self._polls[task_id] = asyncio.ensure_future(self._poll(task_id, events))
        return await asyncio.shield(self._polls[task_id])

    async def _poll(self, task_id: str, events: TaskEvents | None) -> dict[str, Any]:
        while True:
            answer = await self.client.get(f"/v1beta/{name_of(task_id)}")
            data: dict[str, Any] = answer.data if isinstance(answer.data, dict) else {}
            meta: dict[str, Any] = data["metadata"] if isinstance(data.get("metadata"), dict) else {}
            state = str(meta.get("state") or data.get("state") or "")
            if events is not None:
                events.progress(state.removeprefix("BATCH_STATE_").lower() or "pending", 0)
            if state in DONE or data.get("done") is True:
                return data
            await asyncio.sleep(self.poll_interval)

    async def collect(self, task_id: str, key: str, n: int, events: TaskEvents, unit: float,
                      model: str) -> Generation:
        data = await self.finished(task_id, events)
        meta: dict[str, Any] = data["metadata"] if isinstance(data.get("metadata"), dict) else {}
        state = str(meta.get("state") or "")
        if state and state != "BATCH_STATE_SUCCEEDED":
            events.task_ended(task_id)
            raise TaskFailed(f"batch job {name_of(task_id)} ended {state.removeprefix('BATCH_STATE_')}; "
                             f"its targets are built again by the next build", code="batch_failed")
        responses = _responses(data)
        images: list[bytes] = []
        for i in range(n):
            item = next((r for r in responses if _meta(r) == {"key": key, "image": i}), None)
            if item is None:
                events.task_ended(task_id)
                raise TaskFailed(f"batch job {name_of(task_id)} holds no result for image {i + 1} of this "
                                 f"target", code="no_image")
            if isinstance(item.get("error"), dict):
                events.task_ended(task_id)
                message = self.client.clean(item["error"].get("message") or item["error"])
                raise TaskFailed(f"Google failed this request of batch job {name_of(task_id)}: {message}",
                                 code="batch_item_failed")
            try:
                got, _id = gemini_images(item.get("response"), self.client.clean)
            except TaskFailed:
                events.task_ended(task_id)
                raise
            for data_ in got:
                images.append(await asyncio.to_thread(events.check, data_))
        return Generation(images=images, model=model, task_id=task_id, cost=unit * BATCH_DISCOUNT * len(images),
                          placeholder=False)


def _responses(data: dict[str, Any]) -> list[dict[str, Any]]:
    """``inlinedResponses.inlinedResponses`` of a done job, from ``response`` or ``metadata.output``."""
    for holder in (data.get("response"), (data.get("metadata") or {}).get("output")):
        if isinstance(holder, dict):
            inlined = holder.get("inlinedResponses")
            if isinstance(inlined, dict) and isinstance(inlined.get("inlinedResponses"), list):
                return [r for r in inlined["inlinedResponses"] if isinstance(r, dict)]
    return []


def _meta(item: dict[str, Any]) -> Any:
    return item.get("metadata")


class GeminiBatchProvider(Provider):
    """``build --batch`` for Gemini targets: jobs that arrive within ``WINDOW`` of each other share one
    batch job per model."""

    name = "gemini"
    vendor = "Google"
    # Google's stated target turnaround for a batch job (Batch API guide; "results within 24 hours", Gemini
    # API batch mode announcement, 2025-07-07); read 2026-12-02.
    turnaround = "up to 24 h (Google's stated target turnaround for batch jobs; most finish sooner)"

    def __init__(self, client: VendorClient, poll_interval: float = 10.0, *, no_wait: bool = False) -> None:
        self.client = client
        self.poll_interval = poll_interval
        self.no_wait = no_wait            # --no-wait: create and journal the jobs, never poll them
        self.collector: Collector = BatchCollector(client, poll_interval)
        self._waiting: list[_Waiting] = []
        self._timer: asyncio.TimerHandle | None = None
        self._create_lock: asyncio.Lock | None = None
        self.jobs_created: list[str] = []

    async def generate(self, job: Job, events: TaskEvents) -> Generation:
        loop = asyncio.get_running_loop()
        waiting = _Waiting(job, events, loop.create_future())
        self._waiting.append(waiting)
        if self._timer is not None:
            self._timer.cancel()
        self._timer = loop.call_later(WINDOW, lambda: asyncio.ensure_future(self._flush()))
        return await waiting.done

    async def resume(self, record: JournalRecord, events: TaskEvents, job: Job | None = None) -> Generation:
        self._not_waiting(record)
        return await resume_batch(self.collector, record, events, job)

    def _not_waiting(self, record: JournalRecord) -> None:
        """--no-wait: a journaled batch job stays pending, unpolled (the build that waits collects it)."""
        if self.no_wait:
            raise BatchPending(f"in batch job {record.task_id} of an earlier build, not checked (--no-wait); "
                               f"`assetgen build` collects it", task_id=record.task_id)

    def job_name(self, task_id: str) -> str:
        return name_of(task_id)

    async def _flush(self) -> None:
        batch, self._waiting = self._waiting, []
        by_model: dict[str, list[_Waiting]] = {}
        for w in batch:
            by_model.setdefault(str(w.job.body["model"]), []).append(w)
        await asyncio.gather(*(self._run(model, group) for model, group in by_model.items()))

    async def _run(self, model: str, group: list[_Waiting]) -> None:
        if self._create_lock is None:
            self._create_lock = asyncio.Lock()
        async with self._create_lock:            # one job creation in flight at a time
            try:
                task_id, started = await self._create(model, group)
            except BaseException as exc:
                for w in group:
                    if not w.done.done():
                        w.done.set_exception(exc if isinstance(exc, Exception) else GatewayError("stopped"))
                if not isinstance(exc, Exception):
                    raise
                return
        name = self.job_name(task_id)
        later = "; not waiting for it (--no-wait): `assetgen build` collects it later" if self.no_wait else ""
        started[0].events.notice(f"{self.vendor} batch job {name} created and journaled for {len(started)} "
                                 f"target(s); estimated turnaround {self.turnaround}{later}")
        if self.no_wait:
            for w in started:
                if not w.done.done():
                    w.done.set_exception(BatchPending(f"in {self.vendor} batch job {name}; `assetgen build` "
                                                      f"collects it", task_id=task_id))
            return
        results = await asyncio.gather(*(self._collect(w, task_id) for w in started), return_exceptions=True)
        for w, result in zip(started, results, strict=True):
            if w.done.done():
                continue
            if isinstance(result, BaseException):
                w.done.set_exception(result)
            else:
                w.done.set_result(result)

    async def _collect(self, w: _Waiting, task_id: str) -> Generation:
        return await self.collector.collect(task_id, w.job.key, int(w.job.body.get("n", 1)), w.events,
                                            w.job.target.unit_price if w.job.target else 0.0, str(w.job.body["model"]))

    async def _create(self, model: str, group: list[_Waiting]) -> tuple[str, list[_Waiting]]:
        started, requests = start_batch(group, _requests)
        body = {"batch": {"displayName": f"assetgen-{len(started)}-targets",
                          "inputConfig": {"requests": {"requests": requests}}}}
        if len(json.dumps(body)) > MAX_INLINE_BYTES:
            for w in started:
                w.events.not_created()
            raise GatewayError(f"this batch's inline requests are over {MAX_INLINE_BYTES // 2**20} MB (references "
                               f"travel inline); build fewer targets at once, or without --batch")
        answer = await self._post_batch(f"/v1beta/models/{model}:batchGenerateContent", body, started)
        task_id = _batch_task_id(answer.data, started)
        for w in started:
            w.events.submitted(task_id, model)       # fsynced per key before waiting
        self.jobs_created.append(name_of(task_id))
        return task_id, started

    async def _post_batch(self, path: str, body: dict[str, Any], started: list[_Waiting]) -> Answer:
        """Create the batch job, journaling each started key as uncertain or not created when that fails."""
        try:
            answer = await self.client.post(path, json=body)
        except SubmissionUncertain as exc:
            for w in started:
                w.events.uncertain(str(exc))
            raise
        except asyncio.CancelledError:
            for w in started:
                w.events.uncertain("stopped while the batch job was being created: it may exist")
            raise
        except GatewayError:
            for w in started:
                w.events.not_created()
            raise
        return answer

    async def aclose(self) -> None:
        await self.client.aclose()


def start_batch(group: list[_Waiting], requests_of: Callable[[Job], Iterable[dict[str, Any]]],
                ) -> tuple[list[_Waiting], list[dict[str, Any]]]:
    """Journal each waiting key's intent; the keys that could start and their batch requests (a job whose
    requests cannot be made fails alone, before its intent)."""
    requests: list[dict[str, Any]] = []
    started: list[_Waiting] = []
    for w in group:
        try:
            mine = list(requests_of(w.job))
            w.events.intent(w.job.body)            # durable before the job is created
        except Exception as exc:  # noqa: BLE001 -- stopped, superseded, journal unwritable: that target's answer
            if not w.done.done():
                w.done.set_exception(exc)
            continue
        started.append(w)
        requests += mine
    if not started:
        raise GatewayError("nothing left to submit")
    return started, requests


def _batch_task_id(data: Any, started: list[_Waiting]) -> str:
    """The task id of the batch job Google created; its keys uncertain when its name is unusable."""
    name = data.get("name") if isinstance(data, dict) else None
    task_id = task_id_of(name) if isinstance(name, str) else ""
    if not catalog.safe_task_id(task_id) or not task_id.startswith(PREFIX):
        for w in started:
            w.events.uncertain("the batch job's name in Google's answer was unusable")
        raise SubmissionUncertain("Google created a batch job but its name was unusable; its targets are "
                                  "uncertain", code="bad_name")
    return task_id


def _requests(job: Job) -> Iterable[dict[str, Any]]:
    seed = job.body.get("seed", -1)
    for i in range(int(job.body.get("n", 1))):
        body = {**job.body, "n": 1}
        if isinstance(seed, int) and seed >= 0:
            body["seed"] = seed + i
        yield {"request": gemini_request(body), "metadata": {"key": job.key, "image": i}}


class Collector(Protocol):
    async def collect(self, task_id: str, key: str, n: int, events: TaskEvents, unit: float,
                      model: str) -> Generation: ...


async def resume_batch(collector: Collector, record: JournalRecord, events: TaskEvents,
                       job: Job | None = None, prefix: str = PREFIX, provider: str = "gemini") -> Generation:
    """Collect a key whose images an earlier build's batch job makes (nothing is submitted again)."""
    task_id = next((t for t in record.task_ids if t.startswith(prefix)), "")
    if not task_id:
        raise GatewayError("this record holds no batch job")
    n = sum(s.n for s in record.submissions if s.task_id == task_id)
    model = catalog.lookup(provider, record.model)
    unit = job.target.unit_price if job is not None and job.target is not None else (model.price if model else 0.0)
    return await collector.collect(task_id, record.key, n, events, unit, record.model)
