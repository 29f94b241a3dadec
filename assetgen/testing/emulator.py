"""A gateway emulator: a real HTTP server on 127.0.0.1 that speaks ``docs/gateway-api.md``.

Tests and benchmarks run the real client against it over real sockets, and inject faults (429 bursts,
5xx, slow submits, failed tasks, expired URLs, an empty balance) through ``Faults``. A task's state is
computed from the clock, so a test needs no background workers: ``queued`` for ``queue_time`` seconds,
then ``processing`` until ``latency`` seconds after submission, then ``completed`` (or ``failed``).

The provider documents two dialects of the same API (``docs/gateway-api.md``, "Where the provider's
pages disagree"); each difference is a switch: ``submit_answer``, ``ratio_field``, ``n_fixed_at_1``,
``prompt_limit``, ``result_shape``. ``Hostile`` makes it misbehave as an adversary would (trickled
answers, huge or deeply nested bodies, unusable task ids, infinite numbers, messages with markup,
escape sequences or the caller's own API key).

Manual trials: ``python -m assetgen.emulator --port 8765 --latency 2`` prints the base URL.
"""

from __future__ import annotations

import argparse
import base64
import binascii
import functools
import hashlib
import io
import json
import re
import struct
import threading
import time
import uuid
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any, Literal

from PIL import Image, ImageDraw, ImageFont

from .. import catalog
from .server import LoopbackEmulator, LoopbackServer

__all__ = ["EmulatedTask", "Faults", "GatewayEmulator", "Hostile", "RecordedRequest"]

_DATA_URL = re.compile(r"data:image/(png|jpeg|webp);base64,(.*)", re.DOTALL)
_FILE_PATH = re.compile(r"/files/([^/]+)/(\d+)\.jpg")
_TASK_PATH = re.compile(r"/v1/tasks/([^/]+)(/cancel)?")


@dataclass
class Faults:
    """Faults to inject; tests may change them at any time (hold ``emulator.lock`` to be strict)."""

    rate_limit_burst: int = 0  # the next N requests (any endpoint) answer 429
    retry_after: str | None = "0"  # Retry-After on those 429s; None = no header
    server_errors: int = 0  # the next N requests answer 503, 500, 503, ...
    fail_prompts: set[str] = field(default_factory=set)  # prompts containing these end `failed`
    insufficient_balance_after: int | None = None  # after N accepted submits, submits answer 402
    download_failures: int = 0  # the next N downloads answer 500
    submit_timeout: float = 0.0  # seconds to sleep before answering a submit
    junk_downloads: int = 0  # the next N downloads answer ``download_payload`` instead of the image
    # html (an error page) | empty (0 bytes) | truncated (half a JPEG) | png (PNG bytes for the .jpg) |
    # bomb (a PNG of 48 million pixels) | wrong_size (3 % narrower) | wrong_ratio (a quarter less tall)
    download_payload: str = "html"


@dataclass
class Hostile:
    """A gateway that misbehaves on purpose; every field is off by default. ``{key}`` in a text is
    replaced by the API key the emulator accepts (a gateway that echoes it), ``{n}`` by a counter."""

    trickle: float = 0.0                 # seconds between single bytes of the answers below
    trickle_on: Literal["submit", "get", "download"] = "get"
    huge_json: int = 0                   # pad task answers (get) with this many bytes
    huge_download: int = 0               # downloads answer this many bytes (streamed, never held)
    huge_declared: bool = True           # ... with an honest Content-Length (else none, then close)
    deep_json: int = 0                   # task answers (get) carry an array nested this deep
    task_id: str | None = None           # task ids as this template, e.g. "x" * 2_000_000, "t-[/]{n}"
    raw_fields: dict[str, str] = field(default_factory=dict)  # task fields as raw JSON text: "1e400"
    error_message: str | None = None     # failed tasks and 4xx answers carry this message
    extra_images: int = 0                # completed tasks list this many more URLs than n


@dataclass(frozen=True)
class _Raw:
    """An answer body sent as given: bytes, or chunks streamed with or without a Content-Length."""

    chunks: Iterator[bytes] | bytes
    length: int | None
    content_type: str = "application/json"


_RAW_MARK = "\x00raw:"


def _raw(text: str) -> str:
    """A placeholder that ``GatewayEmulator._encode`` replaces by ``text`` as raw JSON."""
    return _RAW_MARK + text.encode().hex()


def _zeros(total: int, chunk: int = 1 << 16) -> Iterator[bytes]:
    block = b"\0" * chunk
    while total > 0:
        yield block[:min(chunk, total)]
        total -= chunk


@dataclass(frozen=True)
class RecordedRequest:
    method: str
    path: str
    body: Any  # the parsed JSON body, or None
    time: float
    # None: no Authorization header; else "valid" or "invalid". The key itself is never stored.
    auth: str | None = None


@dataclass
class EmulatedTask:
    task_id: str
    body: dict[str, Any]
    created: float  # unix seconds
    fails: bool
    cancelled_at: float | None = None
    expires_override: float | None = None  # set by expire_urls()

    @property
    def n(self) -> int:
        return int(self.body.get("n", 1))


def _error(message: str, code: str) -> dict[str, Any]:
    return {"error": {"message": message, "code": code}}


def _ratio(body: dict[str, Any], ratio_field: str) -> Any:
    """The aspect ratio as this dialect reads it; the other field is ignored ("both": either)."""
    if ratio_field == "size":
        return body.get("size", "1:1")
    if ratio_field == "aspect_ratio":
        return body.get("aspect_ratio", "1:1")
    return body.get("aspect_ratio", body.get("size", "1:1"))


def _validate(body: Any, ratio_field: str = "aspect_ratio") -> str | None:
    """Why this submit body is invalid, or None; the checks the real gateway is documented to make."""
    if not isinstance(body, dict):
        return "The request body must be a JSON object"
    model_id = body.get("model")
    model = catalog.BY_ID.get(model_id) if isinstance(model_id, str) else None
    if model is None:
        return f"Unknown model {body.get('model')!r}; valid models: {', '.join(catalog.BY_ID)}"
    prompt = body.get("prompt")
    if not isinstance(prompt, str) or not prompt.strip():
        return "prompt is required"
    n = body.get("n", 1)
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        return f"n must be an integer >= 1, got {n!r}"
    ratio_name = "size" if ratio_field == "size" else "aspect_ratio"
    checks = (("action", body.get("action", "generate"), model.actions),
              ("resolution", body.get("resolution", "1K"), model.resolutions),
              (ratio_name, _ratio(body, ratio_field), model.ratios))
    for name, value, allowed in checks:
        if value not in allowed:
            return f"{name} {value!r} is not supported by {model.id}; use one of {', '.join(allowed)}"
    for flag in ("google_search", "google_image_search"):
        if body.get(flag) and not model.search:
            return f"{flag} is not supported by {model.id}"
    urls = body.get("image_urls", [])
    if not isinstance(urls, list):
        return "image_urls must be a list of URLs"
    for i, url in enumerate(urls):
        problem = _check_image_url(url)
        if problem:
            return f"image_urls[{i}]: {problem}"
    return None


def _check_image_url(url: Any) -> str | None:
    if not isinstance(url, str):
        return "must be a string"
    if url.startswith(("http://", "https://")):
        return None
    match = _DATA_URL.fullmatch(url)
    if not match:
        return "must be an http(s) URL or a data:image/(png|jpeg|webp);base64 URL"
    try:
        data = base64.b64decode(match.group(2), validate=True)
        with Image.open(io.BytesIO(data)) as img:
            img.verify()
    except (binascii.Error, ValueError, OSError, SyntaxError, Image.DecompressionBombError):
        return "the data URL does not hold a valid image"
    return None


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as a real gateway would
    disable_nagle_algorithm = True  # headers and body go out in two writes: avoid a 40 ms stall
    timeout = 30  # idle keep-alive connections must not hold a thread forever
    server: LoopbackServer

    def log_message(self, format: str, *args: Any) -> None:
        pass  # quiet: tests and benchmarks read `emulator.requests` instead

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        try:
            body = json.loads(raw) if raw else None
            malformed = False
        except ValueError:
            body, malformed = None, True
        emulator: GatewayEmulator = self.server.emulator
        path = self.path.split("?", 1)[0]
        status, payload, headers = emulator._handle(
            self.command, path, body, malformed, self.headers.get("Authorization"),
        )
        payload = emulator._hostile_answer(self.command, path, status, payload)
        size: int | None
        chunks: Iterator[bytes] | bytes
        if isinstance(payload, _Raw):
            chunks, size, ctype = payload.chunks, payload.length, payload.content_type
        elif isinstance(payload, bytes):
            chunks, size, ctype = payload, len(payload), "image/jpeg"
        else:
            chunks = emulator._encode(payload)
            size, ctype = len(chunks), "application/json"
        trickle = emulator._trickle(self.command, self.path)
        try:
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            if size is None:
                self.send_header("Connection", "close")   # the body ends when the connection does
                self.close_connection = True
            else:
                self.send_header("Content-Length", str(size))
            for name, value in headers.items():
                self.send_header(name, value)
            self.end_headers()
            for chunk in [chunks] if isinstance(chunks, bytes) else chunks:
                if trickle > 0:
                    self._trickle(chunk, trickle)
                else:
                    self.wfile.write(chunk)
        except OSError:
            self.close_connection = True  # the client gave up waiting

    def _trickle(self, data: bytes, interval: float) -> None:
        stopping = self.server.emulator._stopping
        for i in range(len(data)):
            self.wfile.write(data[i:i + 1])
            self.wfile.flush()
            if stopping.wait(interval):
                raise OSError("emulator stopping")

    do_GET = do_POST


class GatewayEmulator(LoopbackEmulator):
    """The gateway on 127.0.0.1; ``start()`` returns its base URL. Use as a context manager."""

    handler = _Handler
    thread_name = "gateway-emulator"

    def __init__(
        self,
        *,
        api_key: str = "test-key",
        latency: float = 0.0,
        queue_time: float = 0.0,
        url_ttl: float = 3 * 24 * 3600,
        url_as_list: bool = False,
        timestamps_in_seconds: bool = False,
        image_size: tuple[int, int] | None = None,
        faults: Faults | None = None,
        port: int = 0,
        submit_answer: Literal["task", "code_data", "code_error", "garbage"] = "task",
        ratio_field: Literal["aspect_ratio", "size", "both"] = "aspect_ratio",
        n_fixed_at_1: bool = False,
        prompt_limit: int | None = None,
        result_shape: Literal["images", "media", "videos"] = "images",
        submit_latency: float = 0.0,
        hostile: Hostile | None = None,
    ) -> None:
        # Dialects (docs/gateway-api.md): the submit answer is the task object ("task") or
        # {"code": "success", "data": id} ("code_data"); for tests, "code_error" answers 200 with
        # another code (nothing created) and "garbage" answers 200 with no id (the task exists).
        self.submit_answer = submit_answer
        self.ratio_field = ratio_field            # which field is READ; the other is ignored
        self.n_fixed_at_1 = n_fixed_at_1          # 400 about n when n > 1 (nothing created)
        self.prompt_limit = prompt_limit          # 400 for a longer prompt (nothing created)
        # "images": result.images as on the model page; "media": keyed by media (images, videos,
        # audios) with start_time; "videos": the same but images empty and the media under videos.
        self.result_shape = result_shape
        self.submit_latency = submit_latency      # seconds before a submit answers (the task exists)
        self.hostile = hostile or Hostile()
        self.api_key = api_key
        self.latency = latency
        self.queue_time = queue_time
        self.url_ttl = url_ttl
        self.url_as_list = url_as_list
        self.timestamps_in_seconds = timestamps_in_seconds
        self.image_size = image_size
        self.faults = faults or Faults()
        super().__init__(port=port)
        self.lock = threading.RLock()
        self.requests: list[RecordedRequest] = []
        self.tasks: dict[str, EmulatedTask] = {}
        self.cancelled: list[str] = []
        self._accepted: list[dict[str, Any]] = []
        self._images: dict[tuple[str, int], bytes] = {}
        self._errors_sent = 0
        self._ids = 0

    # -- for tests ---------------------------------------------------------------------------

    @property
    def submissions(self) -> list[dict[str, Any]]:
        """Bodies of accepted submissions (the ones that would be paid for)."""
        with self.lock:
            return list(self._accepted)

    def count(self, method: str, path_prefix: str) -> int:
        with self.lock:
            return sum(1 for r in self.requests
                       if r.method == method and r.path.startswith(path_prefix))

    def forget(self, task_id: str) -> None:
        """The gateway no longer knows this task: it answers 404 from now on."""
        with self.lock:
            self.tasks.pop(task_id, None)

    def expire_urls(self) -> None:
        """Every result URL of a task completed so far expires now."""
        now = time.time()
        with self.lock:
            for task in self.tasks.values():
                if self._state(task, now)[0] == "completed":
                    task.expires_override = now

    def state(self, task_id: str) -> dict[str, Any]:
        """The task object the gateway would answer now; ``KeyError`` if unknown."""
        with self.lock:
            return self._task_json(self.tasks[task_id], time.time())

    # -- task state --------------------------------------------------------------------------

    def _state(self, task: EmulatedTask, now: float) -> tuple[str, int, float | None]:
        """(status, progress, completed time) at ``now``, derived from the clock alone."""
        if task.cancelled_at is not None:
            return "cancelled", 0, None
        total = max(self.latency, self.queue_time)
        elapsed = now - task.created
        if elapsed < self.queue_time:
            return "queued", 0, None
        if elapsed < total:
            span = total - self.queue_time
            return "processing", min(99, int(100 * (elapsed - self.queue_time) / span)), None
        return ("failed", 0, task.created + total) if task.fails else \
            ("completed", 100, task.created + total)

    def _stamp(self, t: float) -> int:
        return int(t) if self.timestamps_in_seconds else int(t * 1000)

    def _expires_at(self, task: EmulatedTask, completed: float) -> float:
        return task.expires_override if task.expires_override is not None \
            else completed + self.url_ttl

    def _task_json(self, task: EmulatedTask, now: float, *, fresh: bool = False) -> dict[str, Any]:
        status, progress, completed = ("queued", 0, None) if fresh else self._state(task, now)
        link = f"{self.base_url}/v1/tasks/{task.task_id}"
        out: dict[str, Any] = {
            "task_id": task.task_id, "model": task.body["model"],
            "action": task.body.get("action", "generate"), "status": status,
            "progress": progress, "created_at": self._stamp(task.created),
            "urls": {"get": link, "cancel": f"{link}/cancel"},
        }
        if completed is not None:
            out["completed_at"] = self._stamp(completed)
        if status == "failed":
            out["error"] = {"message": self._hostile_text(self.hostile.error_message)
                            or "The request was blocked by the safety filter", "code": "task_failed"}
        if self.result_shape != "images" and status in ("processing", "completed"):
            out["start_time"] = self._stamp(task.created + min(self.queue_time, self.latency))
        if status == "completed":
            expires = int(self._expires_at(task, completed or now))
            images = []
            for i in range(task.n + self.hostile.extra_images):
                url = f"{self.base_url}/files/{task.task_id}/{i}.jpg"
                images.append({"url": [url] if self.url_as_list else url, "expires_at": expires})
            if self.result_shape == "images":
                out["result"] = {"images": images}
            elif self.result_shape == "media":
                out["result"] = {"images": images, "videos": [], "audios": []}
            else:
                out["result"] = {"images": [], "videos": images, "audios": []}
        for name, text in self.hostile.raw_fields.items():
            out[name] = _raw(self._hostile_text(text) or "")
        return out

    # -- hostile answers ---------------------------------------------------------------------

    def _hostile_text(self, text: str | None) -> str | None:
        if text is None:
            return None
        return text.replace("{key}", self.api_key).replace("{n}", str(self._ids))

    def _encode(self, payload: dict[str, Any]) -> bytes:
        """JSON, with ``Hostile.raw_fields`` (and deep nesting) spliced in as raw text."""
        text = json.dumps(payload)
        if "\\u0000raw:" in text:
            text = re.sub(r'"\\u0000raw:([0-9a-f]*)"', lambda m: bytes.fromhex(m.group(1)).decode(), text)
        return text.encode()

    def _trickle(self, method: str, path: str) -> float:
        hostile = self.hostile
        if hostile.trickle <= 0:
            return 0.0
        kind = ("submit" if method == "POST" and path == "/v1/tasks" else
                "download" if path.startswith("/files/") else
                "get" if method == "GET" and path.startswith("/v1/tasks/") else "")
        return hostile.trickle if kind == hostile.trickle_on else 0.0

    def _hostile_answer(self, method: str, path: str, status: int, payload: Any) -> Any:
        """The answer as ``Hostile`` would distort it (called with the answer the route gave)."""
        hostile = self.hostile
        if (hostile.error_message and 400 <= status < 500 and isinstance(payload, dict)
                and isinstance(payload.get("error"), dict)):
            payload = {"error": {**payload["error"], "message": self._hostile_text(hostile.error_message)}}
        if hostile.huge_download and status == 200 and path.startswith("/files/"):
            size = hostile.huge_download
            payload = _Raw(_zeros(size), size if hostile.huge_declared else None, "image/jpeg")
        if status == 200 and method == "GET" and path.startswith("/v1/tasks/") and isinstance(payload, dict):
            if hostile.deep_json:
                payload = {**payload, "nested": _raw("[" * hostile.deep_json + "]" * hostile.deep_json)}
            if hostile.huge_json:
                payload = {**payload, "padding": "x" * hostile.huge_json}
        return payload

    # -- request handling (called from server threads) ---------------------------------------

    def _handle(
        self, method: str, path: str, body: Any, malformed: bool, auth: str | None
    ) -> tuple[int, dict[str, Any] | bytes, dict[str, str]]:
        now = time.time()
        authorized = auth == f"Bearer {self.api_key}"
        with self.lock:
            seen = None if auth is None else ("valid" if authorized else "invalid")
            self.requests.append(RecordedRequest(method, path, body, now, seen))
            faults = self.faults
            if faults.rate_limit_burst > 0:
                faults.rate_limit_burst -= 1
                headers = {} if faults.retry_after is None else {"Retry-After": faults.retry_after}
                return 429, _error("Too many requests (emulated)", "rate_limited"), headers
            if faults.server_errors > 0:
                faults.server_errors -= 1
                self._errors_sent += 1
                status = 503 if self._errors_sent % 2 else 500
                return status, _error(f"Server error {status} (emulated)", "server_error"), {}
        file_match = _FILE_PATH.fullmatch(path)
        if method == "GET" and file_match:
            return self._download(file_match.group(1), int(file_match.group(2)), now)
        if not path.startswith("/v1/"):
            return 404, _error(f"No such endpoint: {method} {path}", "not_found"), {}
        if not authorized:
            return 401, _error("Invalid API key", "invalid_api_key"), {}
        if malformed:
            return 400, _error("The request body is not valid JSON", "invalid_request"), {}
        if method == "POST" and path == "/v1/tasks":
            return self._submit(body, now)
        task_match = _TASK_PATH.fullmatch(path)
        if task_match and (method == "POST") == bool(task_match.group(2)):
            return self._task_call(task_match.group(1), bool(task_match.group(2)), now)
        return 404, _error(f"No such endpoint: {method} {path}", "not_found"), {}

    def _submit(self, body: Any, now: float) -> tuple[int, dict[str, Any], dict[str, str]]:
        problem = _validate(body, self.ratio_field)
        if problem:
            return 400, _error(problem, "invalid_request"), {}
        if self.n_fixed_at_1 and body.get("n", 1) > 1:
            return 400, _error(f"n: Number of images to generate, fixed at 1 (got {body['n']})",
                               "invalid_parameter"), {}
        if self.prompt_limit is not None and len(body["prompt"]) > self.prompt_limit:
            return 400, _error(f"prompt: maximum {self.prompt_limit} characters "
                               f"(got {len(body['prompt'])})", "invalid_parameter"), {}
        if self.submit_answer == "code_error":
            return 200, {"code": "quota_exceeded", "message": "Daily quota exceeded", "data": None}, {}
        with self.lock:
            limit = self.faults.insufficient_balance_after
            if limit is not None and len(self._accepted) >= limit:
                return 402, _error("Insufficient balance", "insufficient_balance"), {}
            self._ids += 1
            task_id = self._hostile_text(self.hostile.task_id) or f"task-emu{uuid.uuid4().hex[:20]}"
            fails = any(s in body["prompt"] for s in self.faults.fail_prompts)
            # The task remembers the ratio as this dialect read it (what the image is drawn at).
            stored = {**body, "aspect_ratio": _ratio(body, self.ratio_field)}
            task = EmulatedTask(task_id=task_id, body=stored, created=now, fails=fails)
            self.tasks[task_id] = task
            self._accepted.append(dict(body))
            answer: dict[str, Any] = (
                self._task_json(task, now, fresh=True) if self.submit_answer == "task" else
                {"code": "success", "data": task_id} if self.submit_answer == "code_data" else
                {"ok": True, "message": "accepted"})
            delay = self.faults.submit_timeout + self.submit_latency
        if delay > 0:
            # The task exists already: a client that times out here has paid for it.
            self._stopping.wait(delay)
        return 200, answer, {}

    def _task_call(
        self, task_id: str, cancel: bool, now: float
    ) -> tuple[int, dict[str, Any], dict[str, str]]:
        with self.lock:
            task = self.tasks.get(task_id)
            if task is None:
                return 404, _error(f"Task {task_id} not found", "task_not_found"), {}
            if cancel:
                state = self._state(task, now)[0]
                if state != "queued":
                    message = f"Task is {state}: only queued tasks can be cancelled"
                    return 400, _error(message, "invalid_state"), {}
                task.cancelled_at = now
                self.cancelled.append(task_id)
            return 200, self._task_json(task, now), {}

    def _download(self, task_id: str, index: int, now: float
                  ) -> tuple[int, dict[str, Any] | bytes, dict[str, str]]:
        with self.lock:
            task = self.tasks.get(task_id)
            status, _, completed = self._state(task, now) if task else ("missing", 0, None)
            if task is None or status != "completed" or completed is None or index >= task.n:
                return 404, _error("File not found", "not_found"), {}
            if now >= self._expires_at(task, completed):
                return 410, _error("URL expired", "expired"), {}
            if self.faults.download_failures > 0:
                self.faults.download_failures -= 1
                return 500, _error("Download failed (emulated)", "server_error"), {}
            junk = None
            if self.faults.junk_downloads > 0:
                self.faults.junk_downloads -= 1
                junk = self.faults.download_payload
            cached = self._images.get((task_id, index))
        if junk is not None:
            return 200, self._junk(task, index, junk), {}
        if cached is None:
            cached = self._render(task, index)  # outside the lock: encoding a 4K JPEG takes a while
            with self.lock:
                self._images[(task_id, index)] = cached
        return 200, cached, {}

    def _junk(self, task: EmulatedTask, index: int, kind: str) -> bytes:
        """What a misbehaving gateway serves for a result URL (``Faults.download_payload``)."""
        if kind == "html":
            return (b"<!DOCTYPE html>\n<html><head><title>502 Bad Gateway</title></head>"
                    b"<body><h1>502 Bad Gateway</h1><p>nginx</p></body></html>\n")
        if kind == "empty":
            return b""
        if kind == "truncated":
            whole = self._render(task, index)
            return whole[: len(whole) // 2]
        if kind == "png":
            return self._render(task, index, fmt="PNG")
        if kind == "bomb":
            return _bomb()
        width, height = self._size(task)
        if kind == "wrong_size":
            return self._render(task, index, size=(round(width * 0.97), height))
        if kind == "wrong_ratio":
            return self._render(task, index, size=(width, round(height * 0.75)))
        raise ValueError(f"unknown download_payload {kind!r}")

    def _size(self, task: EmulatedTask) -> tuple[int, int]:
        return self.image_size or catalog.pixel_size(task.body.get("aspect_ratio", "1:1"),
                                                     task.body.get("resolution", "1K"))

    def _render(self, task: EmulatedTask, index: int, *, size: tuple[int, int] | None = None,
                fmt: str = "JPEG") -> bytes:
        """A real JPEG of the right size, deterministic per (task, index), distinct between tasks."""
        body = task.body
        size = size or self._size(task)
        digest = hashlib.sha256(f"{body['prompt']}\0{index}".encode()).digest()
        img = Image.new("RGB", size, tuple(digest[:3]))
        draw = ImageDraw.Draw(img)
        font = ImageFont.load_default(size=max(8, min(size[0] // 30, size[1] // 16)))
        ink = (255, 255, 255) if sum(digest[:3]) < 384 else (0, 0, 0)
        # The task id in the pixels makes two tasks with the same prompt give different files.
        draw.text((4, 4), f"{task.task_id}\n#{index + 1} {body['prompt'][:40]}", fill=ink, font=font)
        out = io.BytesIO()
        img.save(out, format=fmt, **({"quality": 85} if fmt == "JPEG" else {}))
        return out.getvalue()


@functools.cache
def _bomb() -> bytes:
    """A valid PNG of 8000x6000 black pixels in ~50 KB: decoding it takes 48 MB (a decompression bomb
    below Pillow's own warning threshold, so only a check of the pixel count stops it)."""
    width, height = 8000, 6000
    packer = zlib.compressobj(9)
    row = bytes(width + 1)                          # filter byte 0, then a row of 8-bit grey
    data = b"".join(packer.compress(row) for _ in range(height)) + packer.flush()

    def chunk(kind: bytes, payload: bytes) -> bytes:
        return struct.pack(">I", len(payload)) + kind + payload + \
            struct.pack(">I", zlib.crc32(kind + payload) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", data) + chunk(b"IEND", b"")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Run the assetgen gateway emulator.")
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--api-key", default="test-key")
    parser.add_argument("--latency", type=float, default=2.0, help="seconds from submit to done")
    parser.add_argument("--queue-time", type=float, default=0.0)
    parser.add_argument("--url-ttl", type=float, default=3 * 24 * 3600)
    parser.add_argument("--url-as-list", action="store_true")
    parser.add_argument("--seconds", action="store_true", help="timestamps in seconds, not ms")
    parser.add_argument("--submit-answer", choices=["task", "code_data"], default="task")
    parser.add_argument("--ratio-field", choices=["aspect_ratio", "size", "both"], default="aspect_ratio")
    parser.add_argument("--n-fixed-at-1", action="store_true")
    parser.add_argument("--prompt-limit", type=int, default=None)
    parser.add_argument("--result-shape", choices=["images", "media", "videos"], default="images")
    parser.add_argument("--submit-latency", type=float, default=0.0)
    args = parser.parse_args(argv)
    emulator = GatewayEmulator(
        api_key=args.api_key, latency=args.latency, queue_time=args.queue_time,
        url_ttl=args.url_ttl, url_as_list=args.url_as_list,
        timestamps_in_seconds=args.seconds, port=args.port,
        submit_answer=args.submit_answer, ratio_field=args.ratio_field,
        n_fixed_at_1=args.n_fixed_at_1, prompt_limit=args.prompt_limit,
        result_shape=args.result_shape, submit_latency=args.submit_latency,
    )
    emulator.serve_until_interrupted()


if __name__ == "__main__":
    main()
