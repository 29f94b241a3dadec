"""OpenAI's Batch API for ``build --batch``: many ``/v1/images/generations`` requests in one job, at half price.

Where each field comes from (OpenAI API reference, "Batch" and "Files", read 2026-12-02 through the docs
corpus: developers.openai.com/api/reference …/batches/methods/create, and the ``BatchRequestOutput`` schema
of OpenAI's OpenAPI spec 2.3.0):

- images are accepted: the create reference lists ``/v1/images/generations`` and ``/v1/images/edits``
  among the endpoints a batch may use (edits are not sent in batches here: their references are
  multipart files, which a JSONL line cannot carry as documented; such a target fails alone, before
  anything is sent — build it without ``--batch``);
- upload: ``POST /v1/files`` (multipart: ``purpose=batch``, ``file`` = the JSONL), at most 50,000
  requests and 200 MB per file; each line ``{"custom_id", "method": "POST", "url":
  "/v1/images/generations", "body": <the generations body>}``; the answer's ``id`` is the file id;
- create: ``POST /v1/batches`` ``{"input_file_id", "endpoint", "completion_window": "24h"}`` (24h is the
  only window documented); the answer's ``id`` (``batch_…``) is the job's name, returned before any work
  is done: fsynced to every key's journal record as task id ``openai-batches:{id}`` before the build waits;
- poll: ``GET /v1/batches/{id}``, ``status`` validating | in_progress | finalizing | completed | failed |
  expired | cancelling | cancelled, ``request_counts {total, completed, failed}``, ``output_file_id``,
  ``error_file_id``, ``errors.data[].message`` (why a batch failed validation);
- results: ``GET /v1/files/{id}/content`` of the output and error files, JSONL lines ``{"id",
  "custom_id", "response": {"status_code", "request_id", "body"}, "error": {"code", "message"}}``, in any
  order: mapped back by ``custom_id`` (the target's key). An expired batch's finished requests are in
  its output file (as documented): those targets are built, the rest fail alone.

One job per build and model (the docs ask one model per input file); targets whose upstream is built in
the same build join a later job, as for Gemini (``gemini_batch`` holds the shared windowing). Each line
asks all ``n`` images of its target (the generations endpoint's ``n``). Upload then create, one job at a
time; an upload that fails leaves nothing to pay (no batch exists), a create whose answer is lost leaves
its keys uncertain, like any submit.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from .. import catalog
from ..errors import GatewayError, InvalidRequest, SubmissionUncertain, TaskFailed
from .base import Generation, Job, TaskEvents
from .gemini_batch import BATCH_DISCOUNT, GeminiBatchProvider, _Waiting, resume_batch, start_batch
from .openai import openai_images, openai_request
from .vendorclient import VendorClient

if TYPE_CHECKING:
    from ..state.journal import JournalRecord

ENDPOINT = "/v1/images/generations"
WINDOW = "24h"                          # the only completion_window OpenAI documents: the turnaround bound
MAX_FILE_BYTES = 200 * 1024 * 1024      # the Batch API's input file limit
MAX_REQUESTS = 50_000
DONE = {"completed", "failed", "expired", "cancelled"}
PREFIX = "openai-batches:"


def task_id_of(batch_id: str) -> str:
    return PREFIX + batch_id


def name_of(task_id: str) -> str:
    return task_id[len(PREFIX):]


class OpenAIBatchCollector:
    """Polls OpenAI batch jobs (one poller per job, shared by its keys), downloads their output and error
    files once, and hands each key its images."""

    def __init__(self, client: VendorClient, poll_interval: float) -> None:
        self.client = client
        self.poll_interval = poll_interval
        self._polls: dict[str, asyncio.Task[tuple[dict[str, Any], dict[str, dict[str, Any]]]]] = {}

    async def finished(self, task_id: str, events: TaskEvents | None = None,
                       ) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
        if task_id not in self._polls:
            self._polls[task_id] = asyncio.ensure_future(self._poll(task_id, events))
        return await asyncio.shield(self._polls[task_id])

    async def _poll(self, task_id: str, events: TaskEvents | None) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
        while True:
            answer = await self.client.get(f"/v1/batches/{name_of(task_id)}")
            data: dict[str, Any] = answer.data if isinstance(answer.data, dict) else {}
            status = str(data.get("status") or "")
            if events is not None:
                counts: dict[str, Any] = data["request_counts"] if isinstance(data.get("request_counts"), dict) else {}
                total, done = int(counts.get("total") or 0), int(counts.get("completed") or 0)
                events.progress(status or "validating", 100 * done // total if total else 0)
            if status in DONE:
                return data, await self._lines(data)
            await asyncio.sleep(self.poll_interval)

    async def _lines(self, data: dict[str, Any]) -> dict[str, dict[str, Any]]:
        """The output and error files' lines by ``custom_id``."""
        lines: dict[str, dict[str, Any]] = {}
        for field in ("error_file_id", "output_file_id"):        # an output line wins over an error line
            file_id = data.get(field)
            if not isinstance(file_id, str) or not catalog.safe_task_id(file_id):
                continue
            raw = await self.client.get_bytes(f"/v1/files/{file_id}/content")
            for text in raw.decode("utf-8", "replace").splitlines():
                try:
                    line = json.loads(text)
                except ValueError:
                    continue
                if isinstance(line, dict) and isinstance(line.get("custom_id"), str):
                    lines[line["custom_id"]] = line
        return lines

    async def collect(self, task_id: str, key: str, n: int, events: TaskEvents, unit: float,
                      model: str) -> Generation:
        data, lines = await self.finished(task_id, events)
        line = lines.get(key)
        try:
            if line is None:
                raise _ended(task_id, data)
            body = _body(line, task_id, self.client.clean)
            images, _id = openai_images(body, n)
        except TaskFailed:
            events.task_ended(task_id)
            raise
        checked = [await asyncio.to_thread(events.check, image) for image in images]
        return Generation(images=checked, model=model, task_id=task_id, cost=unit * BATCH_DISCOUNT * len(checked),
                          placeholder=False)


def _ended(task_id: str, data: dict[str, Any]) -> TaskFailed:
    status = str(data.get("status") or "unknown")
    errors: dict[str, Any] = data["errors"] if isinstance(data.get("errors"), dict) else {}
    why = "; ".join(str(e.get("message")) for e in errors.get("data") or [] if isinstance(e, dict))[:300]
    if status == "completed":
        return TaskFailed(f"OpenAI batch job {name_of(task_id)} holds no result for this target", code="no_image")
    return TaskFailed(f"OpenAI batch job {name_of(task_id)} ended {status}{f' ({why})' if why else ''} without "
                      f"this target's result; the next build builds it again", code="batch_failed")


def _body(line: dict[str, Any], task_id: str, clean: Any) -> Any:
    """The generations answer of one output line; a failed line raises its target's ``TaskFailed``."""
    response = line.get("response") if isinstance(line.get("response"), dict) else None
    error = line.get("error") if isinstance(line.get("error"), dict) else None
    body = response.get("body") if response is not None else None
    status = response.get("status_code") if response is not None else None
    if response is not None and status == 200 and error is None:
        return body
    detail = (body or {}).get("error") if isinstance(body, dict) else None
    detail = detail if isinstance(detail, dict) else error or {}
    code = str(detail.get("code") or "")
    billed = " (not billed: refused before generation)" if code == "moderation_blocked" else ""
    raise TaskFailed(f"OpenAI failed this request of batch job {name_of(task_id)} (HTTP {status}, {code or 'error'}): "
                     f"{clean(detail.get('message') or detail)}{billed}", code="batch_item_failed")


def _lines(job: Job) -> Iterable[dict[str, Any]]:
    if job.body.get("image_urls"):
        raise InvalidRequest(f"target '{job.target.name if job.target else job.key}': an edit with references "
                             f"cannot go in an OpenAI batch (its images are multipart files); build it without "
                             f"--batch")
    yield {"custom_id": job.key, "method": "POST", "url": ENDPOINT, "body": openai_request(job.body)}


class OpenAIBatchProvider(GeminiBatchProvider):
    """``build --batch`` for OpenAI targets: the Gemini batch's windowing, OpenAI's upload and job."""

    name = "openai"
    vendor = "OpenAI"
    turnaround = f"up to {WINDOW} (the job's completion_window, the only one OpenAI documents)"

    def __init__(self, client: VendorClient, poll_interval: float = 10.0, *, no_wait: bool = False) -> None:
        super().__init__(client, poll_interval, no_wait=no_wait)
        self.collector = OpenAIBatchCollector(client, poll_interval)

    def job_name(self, task_id: str) -> str:
        return name_of(task_id)

    async def resume(self, record: JournalRecord, events: TaskEvents, job: Job | None = None) -> Generation:
        self._not_waiting(record)
        return await resume_batch(self.collector, record, events, job, prefix=PREFIX, provider="openai")

    async def _create(self, model: str, group: list[_Waiting]) -> tuple[str, list[_Waiting]]:
        started, lines = start_batch(group, _lines)
        jsonl = "".join(json.dumps(line, separators=(",", ":")) + "\n" for line in lines).encode()
        if len(jsonl) > MAX_FILE_BYTES or len(lines) > MAX_REQUESTS:
            for w in started:
                w.events.not_created()
            raise GatewayError(f"this batch is over OpenAI's limits ({MAX_REQUESTS} requests, "
                               f"{MAX_FILE_BYTES // 2**20} MB); build fewer targets at once")
        file_id = await self._upload(jsonl, started)
        body = {"input_file_id": file_id, "endpoint": ENDPOINT, "completion_window": WINDOW,
                "metadata": {"assetgen": f"{len(started)} targets"}}
        answer = await self._post_batch("/v1/batches", body, started)
        batch_id = answer.data.get("id") if isinstance(answer.data, dict) else None
        task_id = task_id_of(batch_id) if isinstance(batch_id, str) else ""
        if not catalog.safe_task_id(task_id):
            for w in started:
                w.events.uncertain("the batch job's id in OpenAI's answer was unusable")
            raise SubmissionUncertain("OpenAI created a batch job but its id was unusable; its targets are "
                                      "uncertain", code="bad_name")
        for w in started:
            w.events.submitted(task_id, model)       # fsynced per key before waiting
        self.jobs_created.append(name_of(task_id))
        return task_id, started

    async def _upload(self, jsonl: bytes, started: list[_Waiting]) -> str:
        """Upload the input file. No batch exists yet, so whatever happens nothing was paid."""
        try:
            answer = await self.client.post("/v1/files", data={"purpose": "batch"},
                                            files=[("file", ("assetgen-batch.jsonl", jsonl, "application/jsonl"))])
            file_id = answer.data.get("id") if isinstance(answer.data, dict) else None
            if not isinstance(file_id, str) or not catalog.safe_task_id(file_id):
                raise GatewayError("OpenAI's answer to the batch file upload holds no usable file id")
        except BaseException:
            for w in started:
                w.events.not_created()
            raise
        return file_id
