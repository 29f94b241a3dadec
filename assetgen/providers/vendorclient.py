"""One synchronous generation call to a vendor's HTTP API (Google's Gemini API, OpenAI's Images API).

A sync call has no id before it is paid: the answer *is* the result. So the rule of ``client`` holds
harder here: a request that may have reached the server is never sent again. What is retried, and why:

- connection refused / DNS / connect timeout: the request never left this machine;
- 429 (both vendors: rate limit or quota, refused before any work) and 503 (Google: "UNAVAILABLE",
  the model is overloaded; OpenAI: engine overloaded), honouring ``Retry-After``: our reading of both
  vendors' error pages is that such a request was not processed. Not verifiable without the real
  services; if a vendor ever bills a 503, these retries could pay twice.

Everything after the body was sent — a timeout, a dropped connection, 500/502/504, an unreadable 200 —
raises ``SubmissionUncertain``: the call may have been processed and billed. Every exchange has a total
deadline and a size cap on the answer (images come back inside the JSON, base64: up to 64 MB each).
"""

from __future__ import annotations

import asyncio
import json as jsonlib
import random
from dataclasses import dataclass
from typing import Any

import httpx

from ..errors import (
    AuthenticationFailed,
    GatewayError,
    GatewayUnreachable,
    InsufficientBalance,
    InvalidRequest,
    RateLimited,
    SubmissionUncertain,
    safe_text,
)

MAX_ANSWER_BYTES = 160 * 1024 * 1024     # JSON holding up to a few base64 images
DEFAULT_DEADLINE = 300.0                 # a 4K Gemini Pro image can take a minute or two
_REFUSED = frozenset({429, 503})


@dataclass(frozen=True)
class Answer:
    status: int
    data: Any                            # parsed JSON


class VendorClient:
    """POSTs to one vendor, with its auth header; answers parsed JSON or raises a ``GatewayError``."""

    def __init__(self, *, vendor: str, base_url: str, headers: dict[str, str], secret: str,
                 deadline: float = DEFAULT_DEADLINE, max_retries: int = 4, backoff_base: float = 0.5,
                 backoff_max: float = 30.0, max_bytes: int = MAX_ANSWER_BYTES) -> None:
        self.vendor = vendor
        self.base_url = base_url.rstrip("/")
        self._headers = headers
        self._secret = secret
        self.deadline = deadline
        self.max_retries = max_retries
        self.backoff_base = backoff_base
        self.backoff_max = backoff_max
        self.max_bytes = max_bytes
        self.requests_made = 0
        self._http = httpx.AsyncClient(timeout=httpx.Timeout(min(60.0, deadline), connect=15.0))

    async def aclose(self) -> None:
        await self._http.aclose()

    def clean(self, text: object, limit: int = 500) -> str:
        """Server text fit for a message: the key redacted, control characters removed, length capped."""
        value = str(text)
        if self._secret:
            value = value.replace(self._secret, "***")
        return safe_text(value, limit)

    async def get(self, path: str) -> Answer:
        """A GET (polling a batch job): safe to repeat, so every failure but a 4xx is retried."""
        return await self._get(path, parse=True)

    async def get_bytes(self, path: str) -> bytes:
        """A GET of a file's content (a batch's JSONL output), retried like ``get``."""
        answer = await self._get(path, parse=False)
        return bytes(answer.data)

    async def _get(self, path: str, *, parse: bool) -> Answer:
        url = self.base_url + path
        for attempt in range(self.max_retries + 1):
            self.requests_made += 1
            try:
                async with asyncio.timeout(self.deadline):
                    sent = {**self._headers, "Accept": "application/json"}
                    async with self._http.stream("GET", url, headers=sent) as r:
                        body = await r.aread()
                        status, headers = r.status_code, r.headers
            except (TimeoutError, httpx.HTTPError) as exc:
                if attempt == self.max_retries:
                    raise GatewayUnreachable(f"could not poll {self.vendor} ({type(exc).__name__})") from None
                await self._sleep(attempt, None)
                continue
            if 200 <= status < 300:
                if not parse:
                    return Answer(status, body)
                try:
                    return Answer(status, jsonlib.loads(body))
                except (ValueError, RecursionError):
                    pass
            elif status < 500 and status != 429:
                raise self._error(status, body, attempt + 1)
            if attempt < self.max_retries:
                await self._sleep(attempt, headers.get("Retry-After"))
        raise GatewayUnreachable(f"{self.vendor} kept failing to answer a poll of {path}")

    async def post(self, path: str, *, json: dict[str, Any] | None = None, data: dict[str, Any] | None = None,
                   files: list[tuple[str, tuple[str, bytes, str]]] | None = None) -> Answer:
        url = self.base_url + path
        for attempt in range(self.max_retries + 1):
            last = attempt == self.max_retries
            self.requests_made += 1
            try:
                async with asyncio.timeout(self.deadline):
                    status, headers, body = await self._exchange(url, json=json, data=data, files=files)
            except TimeoutError:
                raise SubmissionUncertain(
                    f"{self.vendor} did not answer within {self.deadline:g} s; the call may have been "
                    f"processed and paid, so it is not resent", code="deadline") from None
            except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout) as exc:
                if last:
                    why = self.clean(exc) or type(exc).__name__
                    raise GatewayUnreachable(f"could not reach {self.vendor} at {self.base_url} after "
                                             f"{attempt + 1} attempts: {why}") from exc
                await self._sleep(attempt, None)
                continue
            except (httpx.UnsupportedProtocol, httpx.InvalidURL) as exc:
                raise GatewayUnreachable(f"{self.vendor} base URL {self.base_url!r} is not usable: "
                                         f"{self.clean(exc)}") from exc
            except _TooBig:
                raise SubmissionUncertain(f"{self.vendor}'s answer was over {self.max_bytes // 2**20} MB and "
                                          f"was refused; the call may have been paid", code="too_large") from None
            except httpx.HTTPError as exc:
                raise SubmissionUncertain(
                    f"the connection to {self.vendor} failed during the call ({type(exc).__name__}: "
                    f"{self.clean(exc) or 'no answer'}); it may have been processed and paid, so it is "
                    f"not resent") from exc
            if 200 <= status < 300:
                try:
                    return Answer(status, jsonlib.loads(body))
                except (ValueError, RecursionError):
                    raise SubmissionUncertain(f"{self.vendor} answered HTTP {status} with a body that is not "
                                              f"JSON; the call may have been paid", status=status) from None
            if status in _REFUSED and not last:
                await self._sleep(attempt, headers.get("Retry-After"))
                continue
            raise self._error(status, body, attempt + 1)
        raise AssertionError("unreachable")

    async def _exchange(self, url: str, *, json: dict[str, Any] | None, data: dict[str, Any] | None,
                        files: list[tuple[str, tuple[str, bytes, str]]] | None) -> tuple[int, httpx.Headers, bytes]:
        async with self._http.stream("POST", url, json=json, data=data, files=files,
                                     headers={**self._headers, "Accept": "application/json"}) as response:
            body = bytearray()
            async for chunk in response.aiter_bytes():
                body += chunk
                if len(body) > self.max_bytes:
                    if response.is_success:
                        raise _TooBig()
                    break
            return response.status_code, response.headers, bytes(body)

    async def _sleep(self, attempt: int, retry_after: str | None) -> None:
        try:
            wait = float(retry_after) if retry_after is not None else None
        except ValueError:
            wait = None
        if wait is None or not (0 <= wait < 1e6):
            wait = random.uniform(0, min(self.backoff_max, self.backoff_base * 2 ** attempt))
        await asyncio.sleep(min(self.backoff_max, wait))

    async def exchange(self, method: str, url: str, *, headers: dict[str, str], auth: bool,
                       content: bytes | None = None, json: dict[str, Any] | None = None,
                       max_bytes: int) -> tuple[int, httpx.Headers, bytes]:
        """One request, not retried (a file upload or download: the caller knows what a failure costs).
        ``url`` is a path under the base URL or an absolute URL; ``auth`` adds the key header (never to a
        URL a server named). Raises ``GatewayUnreachable`` on any transport failure or timeout, and
        ``GatewayError`` when the answer is over ``max_bytes``; a non-2xx status comes back as it is."""
        full = url if "://" in url else self.base_url + url
        sent = {**(self._headers if auth else {}), **headers}
        self.requests_made += 1
        try:
            async with asyncio.timeout(self.deadline):
                async with self._http.stream(method, full, headers=sent, content=content, json=json) as r:
                    body = bytearray()
                    async for chunk in r.aiter_bytes():
                        body += chunk
                        if len(body) > max_bytes:
                            raise _TooBig()
                    return r.status_code, r.headers, bytes(body)
        except _TooBig:
            raise GatewayError(f"{self.vendor}'s answer was over {max_bytes // 2**20} MB and was refused") from None
        except (TimeoutError, httpx.HTTPError) as exc:
            why = self.clean(exc) or type(exc).__name__
            raise GatewayUnreachable(f"{self.vendor} did not complete the exchange ({why})") from None

    def error_of(self, status: int, body: bytes) -> GatewayError:
        """The vendor's error answer, in its words (as ``post`` raises it)."""
        return self._error(status, body, 1)

    def _error(self, status: int, body: bytes, attempts: int) -> GatewayError:
        """The vendor's error, in its words. Both vendors answer ``{"error": {"message", …}}``: Google
        adds ``status`` ("INVALID_ARGUMENT", "RESOURCE_EXHAUSTED", …), OpenAI ``type`` and ``code``."""
        message, code = "", None
        try:
            error = jsonlib.loads(body).get("error")
        except (ValueError, AttributeError, RecursionError):
            error = None
        if isinstance(error, dict):
            message = str(error.get("message") or "")
            raw_code = error.get("code") if isinstance(error.get("code"), str) else error.get("status")
            code = self.clean(raw_code, 60) if raw_code else None
        message = self.clean(message or body[:300].decode("utf-8", "replace") or f"HTTP {status}")
        tries = f" after {attempts} attempts" if attempts > 1 else ""
        if status in (401, 403):
            return AuthenticationFailed(f"{self.vendor} rejected the API key (HTTP {status}: {message})",
                                        status=status, code=code)
        if status == 402:
            return InsufficientBalance(f"{self.vendor}: {message}", status=status, code=code)
        if status in _REFUSED:
            return RateLimited(f"{self.vendor} refused the call{tries} (HTTP {status}: {message}); nothing "
                               f"was generated", status=status, code=code)
        if status >= 500:
            # The body was sent and the server failed while handling it: it may have been processed.
            return SubmissionUncertain(f"{self.vendor} failed with HTTP {status}{tries} ({message}); the call "
                                       f"may have been processed and paid, so it is not resent",
                                       status=status, code=code)
        return InvalidRequest(f"{self.vendor} refused the request (HTTP {status}): {message}", status=status,
                              code=code)


class _TooBig(Exception):
    pass
