"""The gateway's HTTP client: the only module that imports httpx.

It speaks the contract in ``docs/gateway-api.md``: submit a task, poll it, cancel it, download its
results. Everything the wire can throw is translated here into ``assetgen.errors`` — no httpx
exception escapes — and retries live here too, with one rule above all others: a submission that may
have reached the server is never sent again, because every submission is paid for.
"""

from __future__ import annotations

import asyncio
import email.utils
import logging
import random
import time
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import quote

import httpx

from .errors import (
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
)

__all__ = ["DEFAULT_BASE_URL", "GatewayClient", "ResultImage", "Task"]

DEFAULT_BASE_URL = "https://www.qingbo.dev"
TERMINAL_STATUSES = frozenset({"completed", "failed", "cancelled"})

# Timestamps above this are milliseconds: 1e11 seconds is the year 5138, 1e11 ms is 1973.
_MS_THRESHOLD = 1e11
_EXPIRED_STATUSES = frozenset({403, 404, 410})
_Kind = Literal["submit", "api", "download"]

log = logging.getLogger(__name__)


def _seconds(value: Any) -> float | None:
    """A server timestamp in unix seconds, whether it was sent in seconds or milliseconds."""
    if isinstance(value, bool) or value is None:
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number / 1000.0 if number > _MS_THRESHOLD else number


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

    @property
    def terminal(self) -> bool:
        """True once the task will not change again (completed, failed or cancelled)."""
        return self.status in TERMINAL_STATUSES

    @classmethod
    def from_json(cls, data: Any) -> Task:
        """Parse a task object; ``ValueError`` if it has no task id or status."""
        if not isinstance(data, dict):
            raise ValueError("the task is not a JSON object")
        task_id, status = data.get("task_id"), data.get("status")
        if not isinstance(task_id, str) or not task_id or not isinstance(status, str):
            raise ValueError("the task has no task_id or status")
        try:
            progress = int(float(data.get("progress") or 0))
        except (TypeError, ValueError):
            progress = 0
        error = data.get("error") if isinstance(data.get("error"), dict) else {}
        model = data.get("model")
        return cls(
            task_id=task_id,
            status=status,
            progress=progress,
            model=model if isinstance(model, str) else None,
            created_at=_seconds(data.get("created_at")),
            completed_at=_seconds(data.get("completed_at")),
            images=_parse_images(data.get("result")),
            error_message=_str_or_none(error.get("message")),
            error_code=_str_or_none(error.get("code")),
        )


def _str_or_none(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _parse_images(result: Any) -> tuple[ResultImage, ...]:
    # The provider documents `url` both as a string and as "always an array of strings": a list
    # holds several images that share one expiry.
    if not isinstance(result, dict) or not isinstance(result.get("images"), list):
        return ()
    images: list[ResultImage] = []
    for item in result["images"]:
        if isinstance(item, str):
            item = {"url": item}
        if not isinstance(item, dict):
            continue
        urls = item.get("url")
        expires_at = _seconds(item.get("expires_at"))
        for url in urls if isinstance(urls, list) else [urls]:
            if isinstance(url, str) and url:
                images.append(ResultImage(url=url, expires_at=expires_at))
    return tuple(images)


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
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._api_key = api_key
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
        """POST /v1/tasks. Never resent once it may have reached the server (it would be paid twice)."""
        response = await self._send("POST", "/v1/tasks", json=body, kind="submit")
        try:
            return Task.from_json(response.json())
        except ValueError as exc:
            # A 2xx means the server took the task, but without its id we cannot find it again.
            raise SubmissionUncertain(
                "The gateway accepted the submission but its answer was unreadable, so the task "
                "id is unknown; it was not resent to avoid paying twice.",
                status=response.status_code,
            ) from exc

    async def get(self, task_id: str) -> Task:
        """GET /v1/tasks/{task_id}: the task's current state."""
        response = await self._send("GET", f"/v1/tasks/{quote(task_id, safe='')}", kind="api")
        return self._task(response)

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

    def _task(self, response: httpx.Response) -> Task:
        try:
            return Task.from_json(response.json())
        except ValueError as exc:
            raise ServerError(
                f"The gateway sent an unreadable task ({exc})", status=response.status_code
            ) from exc

    def _headers(self, url: httpx.URL, kind: _Kind) -> dict[str, str]:
        headers = {"Accept": "*/*" if kind == "download" else "application/json"}
        if _origin(url) == self._origin:
            headers["Authorization"] = f"Bearer {self._api_key}"
        return headers

    def _clean(self, text: str) -> str:
        # Defence in depth: should anything ever echo the key back, it is not shown.
        return text.replace(self._api_key, "***") if self._api_key else text

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
    ) -> httpx.Response:
        """Send with bounded retries; return a 2xx response or raise a GatewayError."""
        url = target if isinstance(target, httpx.URL) else httpx.URL(self.base_url + target)
        attempts = self._max_retries + 1
        for attempt in range(attempts):
            last = attempt == attempts - 1
            self.requests_made += 1
            try:
                response = await self._http.request(
                    method, url, json=json, headers=self._headers(url, kind),
                    follow_redirects=kind == "download",  # httpx drops the key on a cross-origin hop
                )
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

    async def _wait(self, attempt: int, retry_after: str | None, why: str) -> None:
        delay = self._delay(attempt, retry_after)
        log.debug("%s; retrying in %.2fs (attempt %d)", why, delay, attempt + 1)
        await asyncio.sleep(delay)

    @staticmethod
    def _retryable(response: httpx.Response, kind: _Kind, image: ResultImage | None) -> bool:
        status = response.status_code
        if kind == "download":
            # 410 Gone is final; 403/404 are too once the URL's expiry has passed.
            return status != 410 and not (status in _EXPIRED_STATUSES and image and image.expired)
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

    def _server_message(self, response: httpx.Response) -> tuple[str, str | None]:
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
        elif isinstance(error, str):
            message = error
        if not message:
            # e.g. a proxy's HTML error page: one line, short enough to read in a terminal
            message = " ".join(response.text.split())[:300] or response.reason_phrase or "no message"
        return self._clean(message), code

    def _error(
        self, response: httpx.Response, kind: _Kind, image: ResultImage | None, attempts: int
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
