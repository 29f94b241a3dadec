"""OpenAI's Images API on 127.0.0.1: ``POST /v1/images/generations`` (JSON) and ``/v1/images/edits``
(multipart: the fields as form fields, references as ``image[]`` files), as documented.

Checks ``Authorization: Bearer``, the documented fields and values (unknown fields are refused, as
OpenAI answers "Unknown parameter"), ``n`` 1–10, ``size`` among the model's, transparent backgrounds
only with png/webp; answers ``{"created", "data": [{"b64_json"}], "size", "quality", "background",
"output_format", "usage"}`` with real images of that size and format (with alpha when transparent).
A prompt with ``emulate:blocked-prompt`` gets the safety system's 400 (code ``moderation_blocked``),
``emulate:short`` one image fewer than asked.

The Batch API too (``batch_latency``: seconds a job takes; validating for the first third, then
in_progress): ``POST /v1/files`` (multipart, ``purpose=batch``), ``POST /v1/batches``
(``input_file_id``, ``endpoint``, ``completion_window`` "24h"; every line checked like a call),
``GET /v1/batches/{id}``, ``GET /v1/files/{id}/content`` (JSONL output and error files, lines in reverse
order: clients must map by ``custom_id``). A line whose prompt holds ``emulate:batch-item-error`` fails
alone (a 500 line in the error file); ``emulate:blocked-prompt`` gets a 400 ``moderation_blocked`` line.
``expire_batches`` makes jobs end ``expired`` with no output. Batch lines are billed when the job
completes (``batch_billed``: custom ids).

Manual trials: ``python -m assetgen.testing.openai_emulator --port 8767 --latency 2``.
"""

from __future__ import annotations

import argparse
import base64
import json
import re
import time
import uuid
from typing import Any

from .. import catalog
from .gemini_emulator import BATCH_ITEM_ERROR
from .vendor_emulator import BLOCKED_PROMPT, SHORT, VendorEmulator, VendorFaults, render

__all__ = ["OpenAIEmulator", "VendorFaults"]

_FIELDS = {"model", "prompt", "n", "size", "quality", "background", "output_format", "output_compression",
           "moderation", "user", "input_fidelity", "partial_images", "stream"}
_FORMATS = {"png": "PNG", "jpeg": "JPEG", "webp": "WEBP"}
_BATCH = re.compile(r"/v1/batches/([A-Za-z0-9_-]+)")
_CONTENT = re.compile(r"/v1/files/([A-Za-z0-9_-]+)/content")
_BATCH_ENDPOINTS = ("/v1/images/generations", "/v1/images/edits")


class OpenAIEmulator(VendorEmulator):
    vendor = "openai"

    def __init__(self, *, batch_latency: float = 0.5, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.batch_latency = batch_latency
        self.expire_batches = False
        self.files: dict[str, bytes] = {}
        self.batches: dict[str, dict[str, Any]] = {}
        self.batch_billed: list[str] = []

    def _authorized(self, headers: Any, path: str) -> bool:
        return bool(headers.get("Authorization") == f"Bearer {self.api_key}")

    def _error(self, status: int, message: str, code: str) -> dict[str, Any]:
        return {"error": {"message": message, "type": "invalid_request_error" if status < 500 else "server_error",
                          "param": None, "code": code}}

    def _route(self, method: str, path: str, body: Any) -> tuple[int, Any, dict[str, str]] | None:
        batch = self._batch_route(method, path, body)
        if batch is not None:
            return batch
        if method != "POST" or path not in ("/v1/images/generations", "/v1/images/edits"):
            return 404, self._error(404, f"Invalid URL ({method} {path})", "not_found"), {}
        fields = _fields(path, body)
        if fields is None:
            return 400, self._error(400, "Invalid body", "invalid_request"), {}
        problem = _check_fields(fields) or _check_options(fields)
        if problem is None and path.endswith("/edits") and not _has_image(body):
            problem = "Missing required parameter: 'image'.", "missing_required_parameter"
        if problem is None and BLOCKED_PROMPT in fields["prompt"]:
            problem = "Your request was rejected as a result of our safety system.", "moderation_blocked"
        if problem is not None:
            message, code = problem
            return 400, self._error(400, message, code), {}
        return None

    def _answer(self, path: str, body: Any) -> tuple[int, dict[str, Any]]:
        fields = _fields(path, body) or {}
        model = catalog.lookup("openai", str(fields["model"]))
        assert model is not None
        n = int(fields.get("n", 1))
        size = str(fields.get("size", "1024x1024"))
        w, h = (1024, 1024) if size == "auto" else (int(x) for x in size.split("x"))
        fmt = str(fields.get("output_format", "png"))
        alpha = fields.get("background") == "transparent"
        count = n - 1 if SHORT in fields["prompt"] else n
        with self.lock:
            if self.faults.wrong_size > 0:
                self.faults.wrong_size -= 1
                h = round(h * 0.75)
        images = [render(f"{fields['prompt']}\0{time.time_ns()}", i, (w, h), _FORMATS[fmt], alpha)
                  for i in range(count)]
        data = [{"b64_json": base64.b64encode(d).decode("ascii")} for d in images]
        return 200, {"created": int(time.time()), "data": data,
                     "size": size, "quality": fields.get("quality", "auto"),
                     "background": fields.get("background", "auto"),
                     "output_format": fmt, "usage": {"input_tokens": 50, "output_tokens": 4160, "total_tokens": 4210}}


    # -- the Batch API (platform.openai.com/docs/api-reference/batch) ------------------------------

    def _batch_route(self, method: str, path: str, body: Any) -> tuple[int, Any, dict[str, str]] | None:
        if method == "POST" and path == "/v1/files":
            return self._upload(body)
        if method == "POST" and path == "/v1/batches":
            return self._create_batch(body)
        got = _BATCH.fullmatch(path)
        if method == "GET" and got:
            with self.lock:
                if got.group(1) not in self.batches:
                    return 404, self._error(404, f"No batch found with id '{got.group(1)}'.", "not_found"), {}
                return 200, self._batch_object(got.group(1)), {}
        got = _CONTENT.fullmatch(path)
        if method == "GET" and got:
            with self.lock:
                if got.group(1) not in self.files:
                    return 404, self._error(404, f"No such File object: {got.group(1)}", "not_found"), {}
                return 200, self.files[got.group(1)], {}
        return None

    def _upload(self, body: Any) -> tuple[int, Any, dict[str, str]]:
        files = body.get("files") if isinstance(body, dict) else None
        if not files or body["fields"].get("purpose") != "batch":
            return 400, self._error(400, "purpose 'batch' and a file are required", "invalid_request"), {}
        file_id = "file-" + uuid.uuid4().hex[:16]
        with self.lock:
            self.files[file_id] = files[0][3]
        return 200, {"id": file_id, "object": "file", "bytes": len(files[0][3]), "created_at": int(time.time()),
                     "filename": files[0][1], "purpose": "batch"}, {}

    def _create_batch(self, body: Any) -> tuple[int, Any, dict[str, str]]:
        if (not isinstance(body, dict) or body.get("completion_window") != "24h"
                or body.get("endpoint") not in _BATCH_ENDPOINTS or body.get("input_file_id") not in self.files):
            return 400, self._error(400, "input_file_id (an uploaded file), endpoint and completion_window '24h' "
                                         "are required", "invalid_request"), {}
        lines = [json.loads(t) for t in self.files[body["input_file_id"]].decode().splitlines() if t.strip()]
        ids = [line.get("custom_id") for line in lines]
        for line in lines:
            problem = (None if line.get("method") == "POST" and line.get("url") == body["endpoint"]
                       and isinstance(line.get("custom_id"), str) and isinstance(line.get("body"), dict)
                       else ("each line needs custom_id, method POST, the batch's url and a body", "invalid"))
            problem = problem or _check_fields(line["body"]) or _check_options(line["body"])
            if problem is not None or len(set(ids)) != len(ids):
                message = problem[0] if problem else "custom_id values must be unique"
                return 400, self._error(400, f"invalid batch input line: {message}", "invalid_request"), {}
        batch_id = "batch_" + uuid.uuid4().hex[:16]
        with self.lock:
            self.batches[batch_id] = {"lines": lines, "created": time.time(), "endpoint": body["endpoint"],
                                      "input_file_id": body["input_file_id"]}
            return 200, self._batch_object(batch_id), {}

    def _batch_object(self, batch_id: str) -> dict[str, Any]:
        batch = self.batches[batch_id]
        elapsed = time.time() - batch["created"]
        done = elapsed >= self.batch_latency
        status = ("validating" if elapsed < self.batch_latency / 3 else "in_progress" if not done
                  else "expired" if self.expire_batches else "completed")
        obj: dict[str, Any] = {"id": batch_id, "object": "batch", "endpoint": batch["endpoint"], "errors": None,
                               "input_file_id": batch["input_file_id"], "completion_window": "24h",
                               "status": status, "output_file_id": None, "error_file_id": None,
                               "created_at": int(batch["created"]),
                               "request_counts": {"total": len(batch["lines"]), "completed": 0, "failed": 0}}
        if status == "completed":
            if "output" not in batch:
                results = [self._batch_line(line) for line in batch["lines"]]
                ok = [r for r in results if r["response"]["status_code"] == 200]
                bad = [r for r in results if r["response"]["status_code"] != 200]
                batch["output"] = self._file(ok)
                batch["error"] = self._file(bad) if bad else None
                batch["counts"] = {"total": len(results), "completed": len(ok), "failed": len(bad)}
            obj.update(output_file_id=batch["output"], error_file_id=batch["error"], request_counts=batch["counts"])
        return obj

    def _file(self, lines: list[dict[str, Any]]) -> str:
        file_id = "file-" + uuid.uuid4().hex[:16]
        self.files[file_id] = "".join(json.dumps(x) + "\n" for x in reversed(lines)).encode()
        return file_id

    def _batch_line(self, line: dict[str, Any]) -> dict[str, Any]:
        prompt = str(line["body"].get("prompt"))
        result: dict[str, Any] = {"id": "batch_req_" + uuid.uuid4().hex[:12], "custom_id": line["custom_id"],
                                  "error": None}
        if BATCH_ITEM_ERROR in prompt:
            status, body = 500, self._error(500, "The server had an error processing your request.", "server_error")
        elif BLOCKED_PROMPT in prompt:
            status, body = 400, self._error(400, "Your request was rejected as a result of our safety system.",
                                            "moderation_blocked")
        else:
            self.batch_billed.append(line["custom_id"])
            status, body = self._answer(line["url"], line["body"])
        result["response"] = {"status_code": status, "request_id": uuid.uuid4().hex, "body": body}
        return result


def _check_fields(fields: dict[str, Any]) -> tuple[str, str] | None:
    """The (message, code) of a 400 for unknown fields, the model, the prompt or n; None if they are fine."""
    unknown = set(fields) - _FIELDS
    if unknown:
        return f"Unknown parameter: '{min(unknown)}'.", "unknown_parameter"
    if catalog.lookup("openai", str(fields.get("model"))) is None:
        return f"Invalid value for 'model': {fields.get('model')!r}.", "invalid_value"
    prompt = fields.get("prompt")
    if not isinstance(prompt, str) or not prompt.strip():
        return "Missing required parameter: 'prompt'.", "missing_required_parameter"
    try:
        n = int(fields.get("n", 1))
    except (TypeError, ValueError):
        n = 0
    if not 1 <= n <= catalog.OPENAI_MAX_N:
        return f"Invalid 'n': must be 1 to 10 (got {fields.get('n')!r}).", "invalid_value"
    return None


def _check_options(fields: dict[str, Any]) -> tuple[str, str] | None:
    """The (message, code) of a 400 for size, quality, background or output_format (the model is known)."""
    model = catalog.lookup("openai", str(fields.get("model")))
    assert model is not None
    sizes = {f"{w}x{h}" for _r, (w, h) in model.sizes} | {"auto"}
    checks = (("size", sizes), ("quality", {"low", "medium", "high", "auto"}),
              ("background", {"transparent", "opaque", "auto"}), ("output_format", set(_FORMATS)))
    for name, allowed in checks:
        if name in fields and fields[name] not in allowed:
            return (f"Invalid value: '{fields[name]}'. Supported values are: "
                    f"{', '.join(sorted(allowed))}.", "invalid_value")
    if fields.get("background") == "transparent" and fields.get("output_format", "png") == "jpeg":
        return "Transparent background requires output_format png or webp.", "invalid_value"
    return None


def _has_image(body: Any) -> bool:
    return bool([f for f in body["files"] if f[0] in ("image", "image[]")])


def _fields(path: str, body: Any) -> dict[str, Any] | None:
    if path.endswith("/edits"):
        return dict(body["fields"]) if isinstance(body, dict) and "fields" in body else None
    return body if isinstance(body, dict) else None


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Run an emulator of OpenAI's Images API.")
    parser.add_argument("--port", type=int, default=8767)
    parser.add_argument("--api-key", default="test-key")
    parser.add_argument("--latency", type=float, default=2.0, help="seconds a call takes")
    args = parser.parse_args(argv)
    emulator = OpenAIEmulator(api_key=args.api_key, latency=args.latency, port=args.port)
    emulator.serve_until_interrupted()


if __name__ == "__main__":
    main()
