"""What Google's and OpenAI's emulators share: a real HTTP server on 127.0.0.1, faults, a record.

Both vendors answer a sync call with the image itself, so an emulated call is billed (``billed``) the
moment it starts processing, whether or not the client is still there to read the answer: a test that
kills a build mid-call sees the call billed and no image kept, as a real bill would show.

Faults (``VendorFaults``): 429 bursts (with ``Retry-After``), 503 (overloaded: refused, not billed),
500 (failed while processing: billed, as we model it), a slow answer (``latency``, ``hang``). Prompts
holding these markers get the vendor's no-image answers: ``emulate:blocked-prompt``,
``emulate:image-safety``, ``emulate:text-only``, ``emulate:short`` (fewer images than asked).
"""

from __future__ import annotations

import email.parser
import email.policy
import hashlib
import io
import json
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler
from typing import Any

from PIL import Image

from .server import LoopbackEmulator, LoopbackServer

BLOCKED_PROMPT = "emulate:blocked-prompt"
IMAGE_SAFETY = "emulate:image-safety"
TEXT_ONLY = "emulate:text-only"
SHORT = "emulate:short"


@dataclass
class VendorFaults:
    rate_limit_burst: int = 0            # the next N calls answer 429
    retry_after: str | None = "0"
    overloaded: int = 0                  # the next N calls answer 503 (refused before any work)
    server_errors: int = 0               # the next N calls answer 500 after processing (billed)
    hang: float = 0.0                    # extra seconds before answering a processed call
    wrong_size: int = 0                  # the next N answers hold images a quarter less tall (OpenAI)
    echo_key: bool = False               # error messages repeat the caller's API key (a hostile server)


@dataclass(frozen=True)
class Recorded:
    method: str
    path: str
    body: Any                            # parsed JSON, or {"fields": {...}, "files": [(name, filename, mime, bytes)]}
    auth: str | None                     # None, "valid" or "invalid" (the key itself is never stored)
    time: float


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    timeout = 30
    server: LoopbackServer

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        emulator: VendorEmulator = self.server.emulator
        status, payload, headers = emulator._dispatch(self.command, self.path, self.headers, raw)
        data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()   # bytes: a file's content
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/octet-stream" if isinstance(payload, bytes)
                             else "application/json")
            self.send_header("Content-Length", str(len(data)))
            for name, value in headers.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(data)
        except OSError:
            self.close_connection = True

    do_GET = do_POST


def parse_multipart(content_type: str, raw: bytes) -> dict[str, Any]:
    """Form fields and file parts of a multipart/form-data body."""
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
        b"Content-Type: " + content_type.encode() + b"\r\n\r\n" + raw)
    fields: dict[str, str] = {}
    files: list[tuple[str, str, str, bytes]] = []
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition") or ""
        filename = part.get_filename()
        decoded = part.get_payload(decode=True)
        payload = decoded if isinstance(decoded, bytes) else b""
        if filename is not None:
            files.append((str(name), filename, part.get_content_type(), payload))
        else:
            fields[str(name)] = payload.decode("utf-8")
    return {"fields": fields, "files": files}


def render(prompt: str, index: int, size: tuple[int, int], fmt: str = "PNG", alpha: bool = False) -> bytes:
    """A real image of ``size``, deterministic per (prompt, index)."""
    digest = hashlib.sha256(f"{prompt}\0{index}".encode()).digest()
    mode = "RGBA" if alpha else "RGB"
    img = Image.new(mode, size, tuple(digest[:4]) if alpha else tuple(digest[:3]))
    out = io.BytesIO()
    img.save(out, format=fmt, **({"quality": 85} if fmt == "JPEG" else {}))
    return out.getvalue()


class VendorEmulator(LoopbackEmulator):
    """Lifecycle, faults and the record; subclasses answer ``_route``."""

    vendor = "vendor"
    handler = _Handler
    thread_name = "vendor-emulator"

    def __init__(self, *, api_key: str = "test-key", latency: float = 0.0, faults: VendorFaults | None = None,
                 port: int = 0) -> None:
        self.api_key = api_key
        self.latency = latency
        self.faults = faults or VendorFaults()
        super().__init__(port=port)
        self.lock = threading.RLock()
        self.requests: list[Recorded] = []
        self.billed: list[Recorded] = []         # calls that were processed: paid for

    def count(self, path_part: str = "") -> int:
        with self.lock:
            return sum(1 for r in self.requests if path_part in r.path)

    # -- for subclasses ---------------------------------------------------------------------------

    def _authorized(self, headers: Any, path: str) -> bool:
        raise NotImplementedError

    def _route(self, method: str, path: str, body: Any) -> tuple[int, Any, dict[str, str]] | None:
        """Validate; None for a valid call (then ``_answer`` makes the billed answer). A ``bytes`` payload
        is sent as it is (a file's content)."""
        raise NotImplementedError

    def _answer(self, path: str, body: Any) -> tuple[int, dict[str, Any]]:
        raise NotImplementedError

    def _error(self, status: int, message: str, code: str) -> dict[str, Any]:
        raise NotImplementedError

    # -- handling (server threads) ----------------------------------------------------------------

    def _dispatch(self, method: str, target: str, headers: Any, raw: bytes) -> tuple[int, Any, dict[str, str]]:
        path = target.split("?", 1)[0]
        ctype = headers.get("Content-Type", "")
        try:
            body: Any = (parse_multipart(ctype, raw) if ctype.startswith("multipart/")
                         else (json.loads(raw) if raw else None))
        except (ValueError, UnicodeDecodeError):
            body = None
        authorized = self._authorized(headers, target)
        auth_seen = "valid" if authorized else ("invalid" if self._auth_sent(headers, target) else None)
        record = Recorded(method, path, body, auth_seen, time.time())
        with self.lock:
            self.requests.append(record)
            faults = self.faults
            if faults.rate_limit_burst > 0:
                faults.rate_limit_burst -= 1
                extra = {} if faults.retry_after is None else {"Retry-After": faults.retry_after}
                return 429, self._error(429, "Resource exhausted (emulated rate limit)", "rate_limited"), extra
            if faults.overloaded > 0:
                faults.overloaded -= 1
                return 503, self._error(503, "The model is overloaded. Please try again later.", "unavailable"), {}
        if not authorized:
            return 401, self._echo(self._error(401, "API key not valid. Please pass a valid API key.",
                                               "invalid_api_key")), {}
        if body is None and method == "POST":
            return 400, self._error(400, "The request body is not valid JSON", "invalid_request"), {}
        refused = self._route(method, path, body)
        if refused is not None:
            return refused
        with self.lock:
            self.billed.append(record)           # processing starts: this call is paid for
            failing = self.faults.server_errors > 0
            if failing:
                self.faults.server_errors -= 1
            delay = self.latency + self.faults.hang
        if delay > 0:
            self._stopping.wait(delay)
        if failing:
            return 500, self._echo(self._error(500, "An internal error has occurred (emulated)", "internal")), {}
        status, payload = self._answer(path, body)
        return status, payload, {}

    def _echo(self, payload: dict[str, Any]) -> dict[str, Any]:
        if self.faults.echo_key and isinstance(payload.get("error"), dict):
            error = payload["error"]
            payload = {"error": {**error, "message": f"{error.get('message')} (key {self.api_key})"}}
        return payload

    def _auth_sent(self, headers: Any, target: str) -> bool:
        return bool(headers.get("Authorization") or headers.get("x-goog-api-key") or "key=" in target)
