"""The gateway's HTTP client: the only module that imports httpx.

It speaks the contract in ``docs/gateway-api.md``: submit a task, poll it, cancel it, download its
results. Everything the wire can throw is translated here into ``assetgen.errors`` — no httpx
exception escapes — and retries live here too, with one rule above all others: a submission that may
have reached the server is never sent again, because every submission is paid for.

It is also the boundary where the gateway's data is distrusted: every exchange has a total deadline
(not only a per-read timeout), every body is read as a stream under a size cap, JSON that is too deep
or too big is one clear error, and task ids, numbers and messages are checked or cleaned before the
rest of assetgen sees them (no control characters, no API key, bounded lengths). Both documented
dialects of the provider are read: see ``submit`` and ``Task.from_json``.
"""

from __future__ import annotations

import asyncio
import dataclasses
import email.utils
import importlib.util
import json as jsonlib
import logging
import math
import random
import re
import sys
import time
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import quote

import httpx

from ..catalog import MAX_TASK_ID, safe_task_id

# httpcore runs `import sniffio` on every request. Where sniffio is not installed (recent anyio does not
# need it), each of those failed imports searched sys.path again: 60 µs a request, a few per cent of a
# throughput build's CPU. Recorded as absent, the import fails at once, as it would anyway.
if importlib.util.find_spec("sniffio") is None:
    sys.modules.setdefault("sniffio", None)  # type: ignore[arg-type]
from ..errors import (
    AuthenticationFailed,
    DownloadFailed,
    GatewayError,
    GatewayUnreachable,
    InsufficientBalance,
    InvalidRequest,
    RateLimited,
    ServerError,
    SubmissionUncertain,
    TaskNotFound,
    UsageError,
    safe_text,
)

__all__ = ["DEFAULT_BASE_URL", "MAX_IMAGE_BYTES", "MAX_JSON_BYTES", "GatewayClient", "ResultImage", "Task",
           "refuses_n"]

# The provider documents both spellings (www. and bare); ASSETGEN_BASE_URL accepts either.
DEFAULT_BASE_URL = "https://www.qingbo.dev"
TERMINAL_STATUSES = frozenset({"completed", "failed", "cancelled"})

# Caps on what is read from the wire, enforced while streaming (a 512 MB body never reaches memory).
MAX_JSON_BYTES = 1024 * 1024            # a task object or an error answer
MAX_IMAGE_BYTES = 64 * 1024 * 1024      # one result image
MAX_RESULT_IMAGES = 64                  # result URLs kept from one task (callers cut to the n they asked)
MIN_SECRET = 8                          # shorter keys are not searched for in answers (see __init__)
MAX_MESSAGE = 500                       # characters of a server message kept in errors
MAX_URL = 8192
# A whole exchange (connect, send, every byte of the answer) must end within these, however slowly
# the server trickles: the per-read timeout alone let 1 byte every 2 s keep a build alive forever.
DEFAULT_DEADLINE = 120.0
DEFAULT_DOWNLOAD_DEADLINE = 600.0

_MODEL_ID = re.compile(r"[A-Za-z0-9._:-]{1,100}")
# Timestamps above this are milliseconds: 1e11 seconds is the year 5138, 1e11 ms is 1973.
_MS_THRESHOLD = 1e11
_MAX_SECONDS = 1e11
_EXPIRED_STATUSES = frozenset({403, 404, 410})
_Kind = Literal["submit", "api", "download"]

log = logging.getLogger(__name__)


def _seconds(value: Any) -> float | None:
    """A server timestamp in unix seconds, whether it was sent in seconds or milliseconds."""
    if isinstance(value, bool) or value is None:
        return None
    try:
        number = float(value)
    except (TypeError, ValueError, OverflowError):
        return None
    if not math.isfinite(number) or number < 0:
        return None
    number = number / 1000.0 if number > _MS_THRESHOLD else number
    return number if number < _MAX_SECONDS else None   # beyond the year 5138 even as milliseconds


def _progress(value: Any) -> int:
    """0-100, whatever was sent: ``1e400`` (infinite once parsed), NaN, strings and junk become 0."""
    if isinstance(value, bool):
        return 0
    try:
        number = float(value or 0)
    except (TypeError, ValueError, OverflowError):
        return 0
    return int(min(100.0, max(0.0, number))) if math.isfinite(number) else 0


def _describe_id(value: Any) -> str:
    """What was wrong with a task id, without repeating it (it may hold anything, the key included)."""
    if not isinstance(value, str):
        return f"a {type(value).__name__}, not a string"
    if len(value) > MAX_TASK_ID:
        return f"{len(value):,} characters long; at most {MAX_TASK_ID} are accepted"
    return ("it holds characters outside letters, digits and '._:-'" if value
            else "it is empty")


@dataclass(frozen=True)
class ResultImage:
    """One result file: its URL and when that URL stops working (unix seconds, if known)."""

    url: str
    expires_at: float | None = None

    @property
    def expired(self) -> bool:
        return self.expires_at is not None and self.expires_at <= time.time()


@dataclass(frozen=True)
class Task:
    """A task as the gateway last described it. Timestamps are unix seconds."""

    task_id: str
    status: str  # queued | processing | completed | failed | cancelled
    progress: int = 0
    model: str | None = None
    created_at: float | None = None
    completed_at: float | None = None
    images: tuple[ResultImage, ...] = ()
    error_message: str | None = None
    error_code: str | None = None
    start_time: float | None = None
    # Result keys (e.g. "videos", "audios") that held media while ``images`` was empty: the task
    # completed, but with nothing assetgen can write as an image.
    other_media: tuple[str, ...] = ()

    @property
    def terminal(self) -> bool:
        """True once the task will not change again (completed, failed or cancelled)."""
        return self.status in TERMINAL_STATUSES

    @classmethod
    def from_json(cls, data: Any) -> Task:
        """Parse a task object, checked and cleaned; ``ValueError`` (saying what is wrong, without
        repeating the value) if it has no safe task id or no status.

        Both documented shapes are read: the task object itself, and the other pages' envelope
        ``{"code": "success", "data": {...task...}}``.
        """
        if isinstance(data, dict) and data.get("code") == "success" and isinstance(data.get("data"), dict):
            data = data["data"]
        if not isinstance(data, dict):
            raise ValueError("the task is not a JSON object")
        task_id, status = data.get("task_id"), data.get("status")
        if task_id is None or not isinstance(status, str) or not status:
            raise ValueError("the task has no task_id or status")
        if not safe_task_id(task_id):
            raise ValueError(f"its task id is unusable: {_describe_id(task_id)}")
        error: dict[str, Any] = data["error"] if isinstance(data.get("error"), dict) else {}
        model = data.get("model")
        message = _str_or_none(error.get("message"))
        code = _str_or_none(error.get("code"))
        images, other = _parse_result(data.get("result"))
        return cls(
            task_id=task_id,
            status=safe_text(status, 40),
            progress=_progress(data.get("progress")),
            model=model if isinstance(model, str) and _MODEL_ID.fullmatch(model) else None,
            created_at=_seconds(data.get("created_at")),
            completed_at=_seconds(data.get("completed_at")),
            images=images,
            error_message=safe_text(message, 4 * MAX_MESSAGE) if message is not None else None,
            error_code=safe_text(code, 60) if code is not None else None,
            start_time=_seconds(data.get("start_time")),
            other_media=other,
        )


def _str_or_none(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _parse_result(result: Any) -> tuple[tuple[ResultImage, ...], tuple[str, ...]]:
    """The result's images, and the other media keys that held something when there were none."""
    if not isinstance(result, dict):
        return (), ()
    images = _parse_images(result.get("images"))
    if images:
        return images, ()
    other = tuple(safe_text(k, 40) for k, v in result.items()
                  if k != "images" and isinstance(v, list) and v)
    return (), other[:10]


def _parse_images(items: Any) -> tuple[ResultImage, ...]:
    # The provider documents `url` both as a string and as "always an array of strings": a list
    # holds several images that share one expiry.
    if not isinstance(items, list):
        return ()
    images: list[ResultImage] = []
    for item in items[:MAX_RESULT_IMAGES]:
        if isinstance(item, str):
            item = {"url": item}
        if not isinstance(item, dict):
            continue
        urls = item.get("url")
        expires_at = _seconds(item.get("expires_at"))
        for url in urls if isinstance(urls, list) else [urls]:
            if isinstance(url, str) and url and len(url) <= MAX_URL and safe_text(url, MAX_URL) == url:
                images.append(ResultImage(url=url, expires_at=expires_at))
    return tuple(images[:MAX_RESULT_IMAGES])


def _load_json(data: bytes) -> Any:
    """Parsed JSON; ``ValueError`` with a reason for anything unreadable, too deep included (the
    parser's RecursionError must never become a traceback)."""
    try:
        return jsonlib.loads(data)
    except RecursionError:
        raise ValueError("its JSON is nested too deeply") from None
    except (ValueError, UnicodeDecodeError):
        raise ValueError("it is not valid JSON") from None


def _success_code(code: Any) -> bool:
    """The codes the gateway's pages (and common API envelopes) use for success."""
    if isinstance(code, bool):
        return False
    return str(code).strip().lower() in ("success", "ok", "200") if isinstance(code, (str, int)) else False


_N_FIELD = re.compile(r"(?<![A-Za-z0-9_])[`'\"]?n[`'\"]?(?![A-Za-z0-9_/])")


def refuses_n(exc: BaseException) -> bool:
    """True for a 400 whose error is about the ``n`` field (e.g. a gateway that takes only n = 1).
    Nothing was created by such an answer, so the caller may resubmit with n = 1."""
    if not isinstance(exc, InvalidRequest) or exc.status != 400:
        return False
    code = (exc.code or "").lower()
    if re.search(r"(?<![a-z0-9])n(?![a-z0-9])", code):
        return True
    return _N_FIELD.search(str(exc)) is not None


@dataclass(frozen=True)
class _Reply:
    """An answer read whole, within the size cap: what the rest of the client works from."""

    status_code: int
    headers: httpx.Headers
    content: bytes
    reason_phrase: str

    @property
    def is_success(self) -> bool:
        return 200 <= self.status_code < 300

    @property
    def text(self) -> str:
        return self.content.decode("utf-8", "replace")

    def json(self) -> Any:
        return _load_json(self.content)


class _TooBig(Exception):
    def __init__(self, limit: int, declared: int | None) -> None:
        super().__init__(limit, declared)
        self.limit, self.declared = limit, declared


def _size(limit: int) -> str:
    return f"{limit // 2**20} MB" if limit >= 2**20 else f"{limit // 1024} KB"


def _origin(url: httpx.URL) -> tuple[str, str, int | None]:
    default = {"http": 80, "https": 443}.get(url.scheme)
    return url.scheme, url.host, url.port or default


def _retry_after(value: str | None) -> float | None:
    """Seconds to wait from a Retry-After header: delta-seconds or an HTTP date."""
    if value is None or not value.strip():
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    return max(0.0, when.timestamp() - time.time())


class GatewayClient:
    """Async client for the image gateway. Use as ``async with GatewayClient(api_key=...) as gw``."""

    requests_made: int

    def __init__(
        self,
        *,
        api_key: str,
        base_url: str = DEFAULT_BASE_URL,
        timeout: float = 30.0,
        max_retries: int = 5,
        backoff_base: float = 0.5,
        backoff_max: float = 30.0,
        deadline: float = DEFAULT_DEADLINE,
        download_deadline: float = DEFAULT_DOWNLOAD_DEADLINE,
        max_json_bytes: int = MAX_JSON_BYTES,
        max_image_bytes: int = MAX_IMAGE_BYTES,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._api_key = api_key
        # What is looked for (and redacted) in the gateway's answers. A key of a few characters (a test
        # key such as "k") would match inside every id and word: real keys are tens of characters long.
        self._secret = api_key if len(api_key) >= MIN_SECRET else ""
        # Total seconds for one exchange, however slowly the bytes arrive (a per-read timeout alone
        # never ends a trickle); the per-read timeout below is never longer.
        self.deadline = deadline
        self.download_deadline = download_deadline
        self.max_json_bytes = max_json_bytes
        self.max_image_bytes = max_image_bytes
        timeout = min(timeout, deadline)
        self.base_url = base_url.rstrip("/")
        try:
            self._origin = _origin(httpx.URL(self.base_url))
        except httpx.InvalidURL as exc:
            raise UsageError(f"The gateway URL {base_url!r} is not a valid URL") from exc
        if self._origin[0] not in ("http", "https"):
            raise UsageError(f"The gateway URL {base_url!r} must start with http:// or https://")
        self._max_retries = max(0, max_retries)
        self._backoff_base = backoff_base
        self._backoff_max = backoff_max
        self.requests_made = 0  # every HTTP request sent, retries included (for benchmarks)
        # The key is added per request rather than as a client default so that downloads from
        # another origin (a CDN) never carry it.
        self._http = httpx.AsyncClient(
            transport=transport,
            timeout=httpx.Timeout(timeout, connect=min(10.0, timeout)),
            headers={"User-Agent": "assetgen"},
            follow_redirects=False,
        )

    def __repr__(self) -> str:
        return f"GatewayClient(base_url={self.base_url!r})"

    async def __aenter__(self) -> GatewayClient:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    # -- the task endpoints ------------------------------------------------------------------

    async def submit(self, body: dict[str, Any]) -> Task:
        """POST /v1/tasks. Never resent once it may have reached the server (it would be paid twice).

        Both documented answers are read: the task object, and ``{"code": "success", "data":
        "<task id>"}`` (the task is then ``queued``). A 2xx whose ``code`` is not "success" is an
        ``InvalidRequest`` naming the code; any other 2xx body is a ``SubmissionUncertain``: the
        gateway may have taken (and charged) a task whose id we cannot read.
        """
        response = await self._send("POST", "/v1/tasks", json=body, kind="submit")
        try:
            data = response.json()
            if isinstance(data, dict) and "code" in data and "task_id" not in data:
                return self._code_answer(data, response.status_code)
            return self._checked(Task.from_json(data))
        except ValueError as exc:
            # A 2xx means the server took the task, but without its id we cannot find it again.
            raise SubmissionUncertain(
                f"The gateway accepted the submission but its answer could not be used ({exc}), so "
                "the task id is unknown; it was not resent to avoid paying twice.",
                status=response.status_code,
            ) from None

    def _code_answer(self, data: dict[str, Any], status: int) -> Task:
        """The ``{"code": ..., "data": ...}`` dialect of a submit answer. A success code (``"success"``,
        ``"ok"``, ``200``) with a usable id is a task; any other code came with a 2xx, so the gateway
        may have created (and charged) a task all the same: uncertain, naming the code."""
        code = data.get("code")
        if not _success_code(code):
            text = data.get("message") or data.get("msg") or data.get("error") or ""
            message = self._clean(text if isinstance(text, str) else jsonlib.dumps(text)[:MAX_MESSAGE])
            shown = safe_text(self._clean(str(code)), 60)
            raise SubmissionUncertain(
                f"The gateway answered the submission with HTTP {status} and code {shown!r}"
                + (f": {message}" if message else "") + "; a 2xx may mean it was accepted, so it was not "
                "resent to avoid paying twice.", status=status, code=shown)
        inner = data.get("data")
        if isinstance(inner, dict):
            return self._checked(Task.from_json(inner))
        if not safe_task_id(inner):
            raise ValueError(f"its task id (\"data\") is unusable: {_describe_id(inner)}")
        return self._checked(Task(task_id=str(inner), status="queued"))

    def _checked(self, task: Task) -> Task:
        """The task, with the key redacted from its message; ``ValueError`` for a task id that holds
        the key (it would be written to the journal and the lock)."""
        if self._secret and self._secret in task.task_id:
            raise ValueError("its task id contains the API key, so it cannot be recorded")
        if self._secret and self._secret in "\0".join((task.status, task.model or "", task.error_code or "")):
            task = dataclasses.replace(task, status=self._redact(task.status), error_code=self._redact(
                task.error_code or "") or None, model=None if self._secret in (task.model or "") else task.model)
        if task.error_message:
            task = dataclasses.replace(task, error_message=self._clean(task.error_message))
        if self._secret and any(self._secret in i.url for i in task.images):
            task = dataclasses.replace(task, images=tuple(i for i in task.images if self._secret not in i.url))
        return task

    async def get(self, task_id: str, *, n: int | None = None) -> Task:
        """GET /v1/tasks/{task_id}: the task's current state. ``n``: the images asked for; result
        URLs beyond it are ignored (they are not paid for, and not downloaded)."""
        response = await self._send("GET", f"/v1/tasks/{quote(task_id, safe='')}", kind="api")
        task = self._task(response)
        if n is not None and len(task.images) > n:
            task = dataclasses.replace(task, images=task.images[:max(0, n)])
        return task

    async def cancel(self, task_id: str) -> Task:
        """POST /v1/tasks/{task_id}/cancel: only a queued task can be cancelled (and is refunded)."""
        path = f"/v1/tasks/{quote(task_id, safe='')}/cancel"
        response = await self._send("POST", path, kind="api")
        return self._task(response)

    async def download(self, image: ResultImage) -> bytes:
        """The bytes of one result image, retried on failure; never resubmits anything."""
        try:
            url = httpx.URL(self.base_url).join(image.url)
        except (httpx.InvalidURL, ValueError) as exc:
            raise DownloadFailed(f"Result URL {image.url!r} is not a valid URL") from exc
        response = await self._send("GET", url, kind="download", image=image)
        return response.content

    # -- plumbing ----------------------------------------------------------------------------

    def _task(self, response: _Reply) -> Task:
        try:
            return self._checked(Task.from_json(response.json()))
        except ValueError as exc:
            raise ServerError(
                f"The gateway sent an unusable task ({exc})", status=response.status_code
            ) from None

    def _headers(self, url: httpx.URL, kind: _Kind) -> dict[str, str]:
        headers = {"Accept": "*/*" if kind == "download" else "application/json"}
        if _origin(url) == self._origin:
            headers["Authorization"] = f"Bearer {self._api_key}"
        return headers

    def _clean(self, text: str) -> str:
        """Server text fit for a message: the key redacted (should anything echo it back), escape
        sequences and control characters removed, length capped."""
        # Redacted before and after cleaning (escapes could split the key), and cut only then, so
        # no prefix of the key survives at the cut.
        text = safe_text(self._redact(text), len(text) + 1)
        return safe_text(self._redact(text), MAX_MESSAGE)

    def _redact(self, text: str) -> str:
        return text.replace(self._secret, "***") if self._secret else text

    def _delay(self, attempt: int, retry_after: str | None) -> float:
        waited = _retry_after(retry_after)
        if waited is not None:
            return min(self._backoff_max, waited)
        # Full jitter: spreads retries of many parallel tasks so they do not hit the gateway in step.
        return random.uniform(0.0, min(self._backoff_max, self._backoff_base * 2**attempt))

    async def _send(
        self,
        method: str,
        target: str | httpx.URL,
        *,
        kind: _Kind,
        json: dict[str, Any] | None = None,
        image: ResultImage | None = None,
    ) -> _Reply:
        """Send with bounded retries; return a 2xx answer or raise a GatewayError."""
        url = target if isinstance(target, httpx.URL) else httpx.URL(self.base_url + target)
        attempts = self._max_retries + 1
        for attempt in range(attempts):
            last = attempt == attempts - 1
            self.requests_made += 1
            try:
                response = await self._exchange(method, url, kind=kind, json=json)
            except TimeoutError:
                # The whole exchange overran its deadline: a server that slow is not asked again.
                raise self._too_slow(kind, method, url) from None
            except _TooBig as exc:
                raise self._too_big(exc, kind, method, url) from None
            except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout) as exc:
                # The request never left this machine: resending cannot cause a second charge.
                if last:
                    raise self._unreachable(exc, kind, url, attempts) from exc
                await self._wait(attempt, None, f"{type(exc).__name__} on {method} {url.path}")
                continue
            except (httpx.UnsupportedProtocol, httpx.InvalidURL) as exc:
                raise self._unreachable(exc, kind, url, attempt + 1) from exc
            except httpx.HTTPError as exc:
                if kind == "submit":
                    raise SubmissionUncertain(
                        "The submission may have been accepted by the gateway "
                        f"({type(exc).__name__}: {self._clean(str(exc)) or 'no answer'}); "
                        "it was not resent to avoid paying twice."
                    ) from exc
                if last:
                    raise self._unreachable(exc, kind, url, attempts) from exc
                await self._wait(attempt, None, f"{type(exc).__name__} on {method} {url.path}")
                continue
            if response.is_success:
                return response
            if last or not self._retryable(response, kind, image):
                raise self._error(response, kind, image, attempt + 1)
            await self._wait(
                attempt, response.headers.get("Retry-After"),
                f"HTTP {response.status_code} on {method} {url.path}",
            )
        raise AssertionError("unreachable")  # the loop always returns or raises

    async def _exchange(self, method: str, url: httpx.URL, *, kind: _Kind,
                        json: dict[str, Any] | None) -> _Reply:
        """One request and its whole answer, read as a stream under the size cap and the deadline."""
        limit = self.max_image_bytes if kind == "download" else self.max_json_bytes
        async with asyncio.timeout(self.download_deadline if kind == "download" else self.deadline):
            async with self._http.stream(
                method, url, json=json, headers=self._headers(url, kind),
                follow_redirects=kind == "download",  # httpx drops the key on a cross-origin hop
            ) as response:
                ok = response.is_success
                declared = response.headers.get("Content-Length", "")
                if ok and declared.isdigit() and len(declared) < 20 and int(declared) > limit:
                    raise _TooBig(limit, int(declared))       # refused before reading a byte of it
                cap = limit if ok else min(limit, 64 * 1024)  # an error answer: its start says it all
                body = bytearray()
                async for chunk in response.aiter_bytes():
                    body += chunk
                    if len(body) > cap:
                        if ok:
                            raise _TooBig(limit, None)
                        del body[cap:]
                        break
                return _Reply(response.status_code, response.headers, bytes(body),
                              response.reason_phrase)

    def _too_slow(self, kind: _Kind, method: str, url: httpx.URL) -> GatewayError:
        seconds = self.download_deadline if kind == "download" else self.deadline
        text = (f"did not finish answering {method} {url.path} within {seconds:g} s (the whole exchange "
                "has that deadline, however slowly the answer arrives)")
        if kind == "submit":
            return SubmissionUncertain(f"The gateway {text}; the submission may have been accepted, and it "
                                       "was not resent to avoid paying twice.", code="deadline")
        if kind == "download":
            return DownloadFailed(f"The download server {text}", code="deadline")
        return GatewayUnreachable(f"The gateway {text}", code="deadline")

    def _too_big(self, exc: _TooBig, kind: _Kind, method: str, url: httpx.URL) -> GatewayError:
        size = f"{exc.declared:,} bytes" if exc.declared is not None else f"more than {_size(exc.limit)}"
        if kind == "submit":
            return SubmissionUncertain(
                f"The gateway's answer to the submission was {size}, over the {_size(exc.limit)} "
                "accepted, so its task id is unknown; the submission may have been accepted, and it "
                "was not resent to avoid paying twice.", code="too_large")
        if kind == "download":
            return DownloadFailed(f"The image at {url.path} is {size}; images over {_size(exc.limit)} "
                                  "are refused", code="too_large")
        return ServerError(f"The gateway's answer to {method} {url.path} was {size}; answers over "
                           f"{_size(exc.limit)} are refused", code="too_large")

    async def _wait(self, attempt: int, retry_after: str | None, why: str) -> None:
        delay = self._delay(attempt, retry_after)
        log.debug("%s; retrying in %.2fs (attempt %d)", why, delay, attempt + 1)
        await asyncio.sleep(delay)

    @staticmethod
    def _retryable(response: _Reply, kind: _Kind, image: ResultImage | None) -> bool:
        status = response.status_code
        if kind == "download":
            # 410 Gone is final; 403/404 are too once the URL's expiry has passed.
            return status != 410 and not (status in _EXPIRED_STATUSES and image and image.expired)
        if kind == "submit":
            # A 5xx came after the body was sent: the task may exist, and a resend would pay again. Only
            # a 429 (refused before any work) is safe to send again; the caller makes a 5xx uncertain.
            return status == 429
        return status == 429 or status >= 500

    def _unreachable(
        self, exc: Exception, kind: _Kind, url: httpx.URL, attempts: int
    ) -> GatewayError:
        detail = self._clean(str(exc)) or type(exc).__name__
        where = f"{url.scheme}://{url.netloc.decode('ascii', 'replace')}"
        tries = f" after {attempts} attempt{'s' if attempts != 1 else ''}"
        if kind == "download":
            return DownloadFailed(f"Could not download {url}{tries}: {detail}")
        return GatewayUnreachable(f"Could not reach the gateway at {where}{tries}: {detail}")

    def _server_message(self, response: _Reply) -> tuple[str, str | None]:
        """The server's own words and error code, falling back to the body text or reason phrase."""
        code: str | None = None
        message = ""
        try:
            data = response.json()
        except ValueError:
            data = None
        error = data.get("error") if isinstance(data, dict) else None
        if isinstance(error, dict):
            message = str(error.get("message") or "")
            code = _str_or_none(error.get("code"))
            code = safe_text(self._redact(code), 60) if code is not None else None
        elif isinstance(error, str):
            message = error
        if not message:
            # e.g. a proxy's HTML error page: one line, short enough to read in a terminal
            message = " ".join(response.text.split())[:300] or response.reason_phrase or "no message"
        return self._clean(message), code

    def _error(
        self, response: _Reply, kind: _Kind, image: ResultImage | None, attempts: int
    ) -> GatewayError:
        status = response.status_code
        message, code = self._server_message(response)
        tries = f" after {attempts} attempts" if attempts > 1 else ""
        if kind == "download":
            if status == 410 or code == "expired" or (status in _EXPIRED_STATUSES and image
                                                      and image.expired):
                return DownloadFailed(
                    f"The result URL has expired (HTTP {status}: {message}); the image can no "
                    "longer be downloaded", status=status, code=code or "expired",
                )
            return DownloadFailed(
                f"Download failed with HTTP {status}{tries}: {message}", status=status, code=code
            )
        if kind == "submit" and status < 400:
            # A redirect (or another non-error answer) to a submit: the task may exist. Only a 4xx says
            # nothing was created.
            return SubmissionUncertain(f"The gateway answered the submission with HTTP {status} instead of a "
                                       f"task; it may have been accepted, so it was not resent to avoid "
                                       f"paying twice.", status=status, code=code)
        if status == 400:
            return InvalidRequest(f"The gateway refused the request: {message}", status=status,
                                  code=code)
        if status == 401:
            return AuthenticationFailed(
                f"The gateway rejected the API key ({message}). Set the ASSETGEN_API_KEY "
                "environment variable to a valid key.", status=status, code=code,
            )
        if status == 402:
            return InsufficientBalance(f"Insufficient balance on the gateway account: {message}",
                                       status=status, code=code)
        if status == 404:
            return TaskNotFound(f"The gateway does not know this task: {message}", status=status,
                                code=code)
        if status == 429:
            return RateLimited(f"Rate limited by the gateway{tries}: {message}", status=status,
                               code=code)
        if status >= 500:
            return ServerError(f"Gateway server error (HTTP {status}){tries}: {message}",
                               status=status, code=code)
        # Any other 4xx is a request problem that a retry would not fix.
        return InvalidRequest(f"The gateway refused the request (HTTP {status}): {message}",
                              status=status, code=code)
