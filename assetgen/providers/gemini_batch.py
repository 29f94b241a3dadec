"""Google's Batch API for ``build --batch``: many ``generateContent`` requests in one job, at half price.

Documented in the Batch API reference (ai.google.dev/api/batch-api, read 2026-12-02):

- create: ``POST /v1beta/models/{model}:batchGenerateContent`` with ``{"batch": {"displayName",
  "inputConfig": {"requests": {"requests": [{"request": <GenerateContentRequest>, "metadata": {...}}]}}}}``
  (inline requests: the Batch API guide keeps them for batches "under 20 MB"; a larger batch goes
  through an input file, below);
- the answer is an Operation whose ``name`` is the job's name (``batches/{id}``), returned before any
  work is done: it is fsynced to every key's journal record (as task id ``batches:{id}``: ``/`` has no
  place in a journal id) before the build waits;
- ``GET /v1beta/batches/{id}``: ``metadata.state`` BATCH_STATE_PENDING | RUNNING | SUCCEEDED | FAILED |
  CANCELLED | EXPIRED; once done, ``response.inlinedResponses.inlinedResponses[]`` in request order, each
  a ``response`` (a GenerateContentResponse) or an ``error`` (a Status), with the request's ``metadata``.

Over the inline limit (``max_inline_bytes``), an **input file** — where each field comes from (read
2026-12-03 through the docs corpus):

- the file: JSON Lines, "each line a complete GenerateContentRequest" with its ``key`` (Batch API guide,
  ai.google.dev/gemini-api/docs/batch-api, "Input file": lines ``{"key": "request-1", "request": {…}}``);
  our key is ``KEY#i`` (the target's key and the image's index), so results map back as ``metadata`` does;
- upload, resumable (Files API reference ai.google.dev/api/files, ``media.upload``: the upload URI
  ``/upload/v1beta/files``; the ``X-Goog-Upload-*`` headers as Google's resumable protocol documents
  them, e.g. developers.google.com/streetview/publish/resumable-uploads): ``POST /upload/v1beta/files``
  with ``X-Goog-Upload-Protocol: resumable``, ``X-Goog-Upload-Command: start``,
  ``X-Goog-Upload-Header-Content-Length`` and ``-Content-Type`` and the body ``{"file": {"display_name"}}``;
  the answer's ``X-Goog-Upload-URL`` header is where the bytes go, in one ``POST`` with
  ``X-Goog-Upload-Command: upload, finalize`` and ``X-Goog-Upload-Offset: 0``; its answer ``{"file":
  {"name": "files/{id}", …}}`` names the file (``File.name``: the id is up to 40 lowercase letters,
  digits or dashes, Files API reference). The upload URL must be on the base URL's host (else refused:
  the requests never go elsewhere) and gets no API key header (it carries its own upload id);
- create: ``"inputConfig": {"fileName": "files/{id}"}`` (Batch API reference ai.google.dev/api/batch-mode,
  ``InputConfig``: ``fileName`` or ``requests``, never both);
- results: a done job's ``response.responsesFile`` (``GenerateContentBatchOutput``: "the file ID of the
  file containing the responses … a JSONL file with a single response per line"), downloaded with
  ``GET /download/v1beta/files/{id}:download?alt=media`` (the Files API's media download, as the guide's
  REST sample and public clients call it; not observed against Google). Each line: ``{"key", "response":
  <GenerateContentResponse>}`` or ``{"key", "error": <Status>}``.

Bounded: the upload's answers (1 MB), the results file (``MAX_RESULTS_BYTES``) and each of its lines
(``MAX_RESULT_LINE_BYTES``). An upload that fails leaves nothing to pay (no job exists). A results file
that cannot be had (download failed, over the cap, no usable name) is ``DownloadFailed``: the keys stay
journaled and a later build downloads again, never submits again. A line that is garbled or over its cap
fails only the targets without a readable result, each saying which lines were unreadable.

One job per build and model (requests of several models cannot share a job); targets whose upstream is
built in the same build join a later job. Each request asks one image and carries ``{"key": KEY, "image":
i}``, so results map back to targets by key (verified only against our emulator: whether Google echoes
``metadata`` is documented, not observed). A request that failed fails its target alone. Creating a job
is one POST at a time; a create whose answer is lost leaves its keys uncertain, like any submit.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import urlsplit

from .. import catalog
from ..errors import (
    AuthenticationFailed,
    BatchPending,
    DownloadFailed,
    GatewayError,
    GatewayUnreachable,
    SubmissionUncertain,
    TaskFailed,
)
from .base import Generation, Job, Provider, TaskEvents
from .gemini import gemini_images, gemini_request
from .vendorclient import MAX_ANSWER_BYTES, Answer, VendorClient

if TYPE_CHECKING:
    from ..state.journal import JournalRecord

BATCH_DISCOUNT = 0.5                 # Google's batch price is half the interactive one
MAX_INLINE_BYTES = 20 * 1024 * 1024  # the Batch API's limit for inline requests
MAX_FILE_BYTES = 2 * 1024**3         # the Files API's limit per file (2 GB)
MAX_RESULTS_BYTES = 1024**3          # a results file is held in memory: refused above 1 GB
MAX_RESULT_LINE_BYTES = MAX_ANSWER_BYTES   # one response line: as much as one generateContent answer
UPLOAD_ANSWER_BYTES = 1024 * 1024    # the upload's answers are a header and a File's metadata
DOWNLOAD_TRIES = 3
_FILE_NAME = re.compile(r"files/[a-z0-9](?:[a-z0-9-]{0,38}[a-z0-9])?")   # File.name, Files API reference
WINDOW = 0.3                         # seconds the first job waits for the build's other ready jobs
DONE = {"BATCH_STATE_SUCCEEDED", "BATCH_STATE_FAILED", "BATCH_STATE_CANCELLED", "BATCH_STATE_EXPIRED"}
PREFIX = "batches:"


def task_id_of(name: str) -> str:
    return PREFIX + name.split("/", 1)[1] if name.startswith("batches/") else name


def name_of(task_id: str) -> str:
    return "batches/" + task_id[len(PREFIX):]


@dataclass
class _Results:
    """A done job: its operation, its results by (key, image), and why lines of its results file were
    unreadable."""

    data: dict[str, Any]
    items: dict[tuple[str, int], dict[str, Any]]
    unreadable: list[str]


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
        self._polls: dict[str, asyncio.Task[_Results]] = {}

    async def finished(self, task_id: str, events: TaskEvents | None = None) -> _Results:
        if task_id not in self._polls:
            self._polls[task_id] = asyncio.ensure_future(self._poll(task_id, events))
        return await asyncio.shield(self._polls[task_id])

    async def _poll(self, task_id: str, events: TaskEvents | None) -> _Results:
        while True:
            answer = await self.client.get(f"/v1beta/{name_of(task_id)}")
            data: dict[str, Any] = answer.data if isinstance(answer.data, dict) else {}
            meta: dict[str, Any] = data["metadata"] if isinstance(data.get("metadata"), dict) else {}
            state = str(meta.get("state") or data.get("state") or "")
            if events is not None:
                events.progress(state.removeprefix("BATCH_STATE_").lower() or "pending", 0)
            if state in DONE or data.get("done") is True:
                return await self._results(task_id, data)
            await asyncio.sleep(self.poll_interval)

    async def _results(self, task_id: str, data: dict[str, Any]) -> _Results:
        """The job's results: inline in the operation, or in its ``responsesFile`` (downloaded once)."""
        output = _output(data)
        if output is None or "responsesFile" not in output:
            items = {ref: r for r in _responses(data) if (ref := _inline_ref(r)) is not None}
            return _Results(data, items, [])
        name = output["responsesFile"]
        if not isinstance(name, str) or not _FILE_NAME.fullmatch(name):
            raise DownloadFailed(f"Google's finished batch job {name_of(task_id)} names no usable results file "
                                 f"(response.responsesFile); its targets stay journaled and a later build "
                                 f"collects them without submitting them again", code="no_results_file")
        items, unreadable = _file_items(await self._download(task_id, name))
        return _Results(data, items, unreadable)

    async def _download(self, task_id: str, name: str) -> bytes:
        """The results file's bytes (a GET: retried); ``DownloadFailed`` keeps the keys journaled."""
        why = ""
        for attempt in range(DOWNLOAD_TRIES):
            try:
                status, _headers, body = await self.client.exchange(
                    "GET", f"/download/v1beta/{name}:download?alt=media", headers={}, auth=True,
                    max_bytes=MAX_RESULTS_BYTES)
            except GatewayUnreachable as exc:
                why = str(exc)
            except GatewayError as exc:            # over MAX_RESULTS_BYTES: trying again gets no smaller
                why = str(exc)
                break
            else:
                if 200 <= status < 300:
                    return body
                why = str(self.client.error_of(status, body))
                if status < 500 and status != 429:
                    break
            if attempt + 1 < DOWNLOAD_TRIES:
                await asyncio.sleep(self.poll_interval)
        raise DownloadFailed(f"the results file of batch job {name_of(task_id)} could not be downloaded ({why}); "
                             f"its targets stay journaled and a later build downloads it again without "
                             f"submitting anything", code="results_file")

    async def collect(self, task_id: str, key: str, n: int, events: TaskEvents, unit: float,
                      model: str) -> Generation:
        results = await self.finished(task_id, events)
        data = results.data
        meta: dict[str, Any] = data["metadata"] if isinstance(data.get("metadata"), dict) else {}
        state = str(meta.get("state") or "")
        if state and state != "BATCH_STATE_SUCCEEDED":
            events.task_ended(task_id)
            raise TaskFailed(f"batch job {name_of(task_id)} ended {state.removeprefix('BATCH_STATE_')}; "
                             f"its targets are built again by the next build", code="batch_failed")
        images: list[bytes] = []
        for i in range(n):
            item = results.items.get((key, i))
            if item is None:
                events.task_ended(task_id)
                unreadable = f" (its results file: {'; '.join(results.unreadable[:3])})" if results.unreadable else ""
                raise TaskFailed(f"batch job {name_of(task_id)} holds no result for image {i + 1} of this "
                                 f"target{unreadable}", code="no_image")
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


def _output(data: dict[str, Any]) -> dict[str, Any] | None:
    """A done job's ``GenerateContentBatchOutput``: ``response``, else ``metadata.output``."""
    meta = data.get("metadata")
    for holder in (data.get("response"), meta.get("output") if isinstance(meta, dict) else None):
        if isinstance(holder, dict) and ("inlinedResponses" in holder or "responsesFile" in holder):
            return holder
    return None


def _responses(data: dict[str, Any]) -> list[dict[str, Any]]:
    """``inlinedResponses.inlinedResponses`` of a done job."""
    inlined = (_output(data) or {}).get("inlinedResponses")
    if isinstance(inlined, dict) and isinstance(inlined.get("inlinedResponses"), list):
        return [r for r in inlined["inlinedResponses"] if isinstance(r, dict)]
    return []


def _inline_ref(item: dict[str, Any]) -> tuple[str, int] | None:
    meta = item.get("metadata")
    if isinstance(meta, dict) and isinstance(meta.get("key"), str) and type(meta.get("image")) is int:
        return meta["key"], meta["image"]
    return None


def _file_ref(key: Any) -> tuple[str, int] | None:
    """``KEY#i`` (an input file line's ``key``) → (KEY, i)."""
    if not isinstance(key, str):
        return None
    target, _, image = key.rpartition("#")
    return (target, int(image)) if target and image.isdigit() and len(image) < 6 else None


def _file_items(raw: bytes) -> tuple[dict[tuple[str, int], dict[str, Any]], list[str]]:
    """A results file's lines by (key, image), and why the lines that could not be read were not."""
    items: dict[tuple[str, int], dict[str, Any]] = {}
    unreadable: list[str] = []
    cap = MAX_RESULT_LINE_BYTES
    for number, line in enumerate(raw.split(b"\n"), 1):
        if not line.strip():
            continue
        if len(line) > cap:
            unreadable.append(f"line {number} is over {_bytes(cap)} and was skipped")
            continue
        try:
            item = json.loads(line)
        except (ValueError, RecursionError):
            unreadable.append(f"line {number} is not JSON")
            continue
        ref = _file_ref(item.get("key")) if isinstance(item, dict) else None
        if ref is None:
            unreadable.append(f"line {number} holds no key of this build")
            continue
        items[ref] = item
    return items, unreadable


def _bytes(n: int) -> str:
    return f"{n // 2**20} MB" if n >= 2**20 else f"{n:,} bytes"


class GeminiBatchProvider(Provider):
    """``build --batch`` for Gemini targets: jobs that arrive within ``WINDOW`` of each other share one
    batch job per model."""

    name = "gemini"
    vendor = "Google"
    # Google's stated target turnaround for a batch job (Batch API guide; "results within 24 hours", Gemini
    # API batch mode announcement, 2025-07-07); read 2026-12-02.
    turnaround = "up to 24 h (Google's stated target turnaround for batch jobs; most finish sooner)"

    def __init__(self, client: VendorClient, poll_interval: float = 10.0, *, no_wait: bool = False,
                 max_inline_bytes: int | None = None) -> None:
        self.client = client
        self.poll_interval = poll_interval
        self.no_wait = no_wait            # --no-wait: create and journal the jobs, never poll them
        # Over this, the requests go in an uploaded input file (tests make it small).
        self.max_inline_bytes = MAX_INLINE_BYTES if max_inline_bytes is None else max_inline_bytes
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
        display = f"assetgen-{len(started)}-targets"
        body: dict[str, Any] = {"batch": {"displayName": display, "inputConfig": {"requests": {"requests": requests}}}}
        if len(json.dumps(body)) > self.max_inline_bytes:
            file_name = await self._upload_input(_jsonl(requests), display, started)
            body = {"batch": {"displayName": display, "inputConfig": {"fileName": file_name}}}
        answer = await self._post_batch(f"/v1beta/models/{model}:batchGenerateContent", body, started)
        task_id = _batch_task_id(answer.data, started)
        for w in started:
            w.events.submitted(task_id, model)       # fsynced per key before waiting
        self.jobs_created.append(name_of(task_id))
        return task_id, started

    async def _upload_input(self, jsonl: bytes, display: str, started: list[_Waiting]) -> str:
        """Upload the input file; its ``files/{id}`` name. No job exists yet: whatever happens, nothing was
        paid, so every started key is journaled as not created when it fails."""
        try:
            if len(jsonl) > MAX_FILE_BYTES:
                raise GatewayError(f"this batch's input file would be {_bytes(len(jsonl))}, over the Files API's "
                                   f"{_bytes(MAX_FILE_BYTES)}; build fewer targets at once")
            return await self._upload_file(jsonl, display)
        except BaseException:
            for w in started:
                w.events.not_created()
            raise

    async def _upload_file(self, jsonl: bytes, display: str) -> str:
        start = {"X-Goog-Upload-Protocol": "resumable", "X-Goog-Upload-Command": "start",
                 "X-Goog-Upload-Header-Content-Length": str(len(jsonl)),
                 "X-Goog-Upload-Header-Content-Type": "application/jsonl"}
        status, headers, body = await self.client.exchange(
            "POST", "/upload/v1beta/files", headers=start, auth=True, json={"file": {"display_name": display}},
            max_bytes=UPLOAD_ANSWER_BYTES)
        self._check_upload(status, body, "start")
        url = headers.get("X-Goog-Upload-URL", "")
        if not self._on_base_host(url):
            raise GatewayError("Google's answer to the batch input file's upload start held no usable upload URL "
                               "(X-Goog-Upload-URL missing, or not on the API's host, where alone the requests "
                               "may go); nothing was submitted", code="bad_upload_url")
        finalize = {"X-Goog-Upload-Command": "upload, finalize", "X-Goog-Upload-Offset": "0",
                    "Content-Type": "application/jsonl"}
        status, _headers, body = await self.client.exchange("POST", url, headers=finalize, auth=False,
                                                            content=jsonl, max_bytes=UPLOAD_ANSWER_BYTES)
        self._check_upload(status, body, "upload")
        try:
            answer = json.loads(body)
        except (ValueError, RecursionError):
            answer = None
        file = answer.get("file") if isinstance(answer, dict) else None
        name = file.get("name") if isinstance(file, dict) else None
        if not isinstance(name, str) or not _FILE_NAME.fullmatch(name):
            raise GatewayError("Google's answer to the batch input file's upload names no usable file (file.name "
                               "should be files/ and an id of up to 40 lowercase letters, digits or dashes); no "
                               "batch job was created, nothing was paid", code="bad_file_name")
        return name

    def _check_upload(self, status: int, body: bytes, step: str) -> None:
        if 200 <= status < 300:
            return
        error = self.client.error_of(status, body)
        if isinstance(error, AuthenticationFailed):
            raise error
        raise GatewayError(f"the batch input file's upload ({step}) failed: {error}; no batch job was created, "
                           f"nothing was paid", status=status, code=error.code)

    def _on_base_host(self, url: str) -> bool:
        try:
            got, base = urlsplit(url), urlsplit(self.client.base_url)
        except ValueError:
            return False
        return got.scheme in ("http", "https") and (got.scheme, got.netloc) == (base.scheme, base.netloc)

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


def _jsonl(requests: list[dict[str, Any]]) -> bytes:
    """The input file: one ``{"key": "KEY#i", "request": …}`` line per inline request."""
    lines = (json.dumps({"key": f"{r['metadata']['key']}#{r['metadata']['image']}", "request": r["request"]},
                        separators=(",", ":")) + "\n" for r in requests)
    return "".join(lines).encode()


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
