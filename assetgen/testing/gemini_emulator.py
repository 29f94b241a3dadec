"""Google's Gemini API on 127.0.0.1: ``POST /v1beta/models/{model}:generateContent``, as documented.

Checks what the reference documents (``x-goog-api-key`` or ``?key=``; ``contents[].parts[]`` with
``text`` and ``inlineData {mimeType, data}``; ``generationConfig.imageConfig.aspectRatio/imageSize``
against the model's lists; unknown top-level fields refused) and answers with ``candidates[0].content
.parts`` holding a text part and an ``inlineData`` PNG of the catalogue's size for the ratio and
resolution. The no-image answers: ``promptFeedback.blockReason`` with no candidates, a candidate with
``finishReason: IMAGE_SAFETY`` and no parts, a text-only candidate (see ``vendor_emulator``).

The Batch API with inline requests (refused over ``inline_limit``, the guide's 20 MB) or with an input file,
from the same references as ``providers.gemini_batch``: the Files API's resumable upload (``POST
/upload/v1beta/files`` with ``X-Goog-Upload-Command: start`` answers an ``X-Goog-Upload-URL``; ``upload,
finalize`` at that URL, offset 0 and exactly the announced length, answers ``{"file": {"name": "files/…"}}``),
``inputConfig.fileName``, a done job's ``response.responsesFile`` and ``GET
/download/v1beta/files/{id}:download?alt=media``. Hostile answers on request (``file_faults``):
``bad_upload_url`` (the upload URL is on another host), ``no_file_name`` (finalize names no file),
``garbled_line`` (the first results line is not JSON), ``huge_line`` (the first results line is padded
to ``huge_line_bytes``), ``no_responses_file`` (a done job names no results file), ``download_500``.

Manual trials: ``python -m assetgen.testing.gemini_emulator --port 8766 --latency 2`` prints the base URL;
then ``GEMINI_API_KEY=test-key GEMINI_BASE_URL=<url> assetgen build``.
"""

from __future__ import annotations

import argparse
import base64
import binascii
import io
import json
import re
import time
import uuid
from typing import Any

from PIL import Image

from .. import catalog
from .vendor_emulator import (
    BLOCKED_PROMPT,
    IMAGE_SAFETY,
    TEXT_ONLY,
    Recorded,
    VendorEmulator,
    VendorFaults,
    render,
)

__all__ = ["GeminiEmulator", "VendorFaults"]

_PATH = re.compile(r"/v1beta/models/([^/:]+):generateContent")
_BATCH_PATH = re.compile(r"/v1beta/models/([^/:]+):batchGenerateContent")
_GET_BATCH = re.compile(r"/v1beta/batches/([A-Za-z0-9_-]+)")
_UPLOAD = "/upload/v1beta/files"
_DOWNLOAD = re.compile(r"/download/v1beta/files/([a-z0-9-]{1,40}):download")
BATCH_ITEM_ERROR = "emulate:batch-item-error"      # this request of a batch fails alone
FILE_FAULTS = {"bad_upload_url", "no_file_name", "garbled_line", "huge_line", "no_responses_file", "download_500"}
_FIELDS = {"contents", "generationConfig", "safetySettings", "systemInstruction", "tools", "toolConfig",
           "cachedContent"}
_STATUS = {400: "INVALID_ARGUMENT", 401: "UNAUTHENTICATED", 404: "NOT_FOUND", 429: "RESOURCE_EXHAUSTED",
           500: "INTERNAL", 503: "UNAVAILABLE"}


class GeminiEmulator(VendorEmulator):
    """``batch_latency``: seconds a batch job takes (PENDING for the first half, then RUNNING)."""

    vendor = "gemini"

    def __init__(self, *, batch_latency: float = 0.5, inline_limit: int = 20 * 1024 * 1024, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.batch_latency = batch_latency
        self.inline_limit = inline_limit
        self.batches: dict[str, dict[str, Any]] = {}     # id → {"model", "requests", "created", "display"}
        self.files: dict[str, bytes] = {}                # "files/{id}" → content (inputs and results)
        self.uploads: dict[str, dict[str, Any]] = {}     # upload id → {"length", "mime", "display"}
        self.file_faults: set[str] = set()
        self.huge_line_bytes = 4096

    # -- the Files API: resumable upload and media download (ai.google.dev/api/files) ---------------

    def _dispatch(self, method: str, target: str, headers: Any, raw: bytes) -> tuple[int, Any, dict[str, str]]:
        path = target.split("?", 1)[0]
        if path == _UPLOAD and method == "POST":
            return self._upload(target, headers, raw)
        download = _DOWNLOAD.fullmatch(path)
        if download and method == "GET":
            return self._download(target, headers, f"files/{download.group(1)}")
        if path.endswith(":batchGenerateContent") and len(raw) > self.inline_limit:
            self._record(method, path, None, headers, target)
            return 400, self._error(400, f"Request payload size exceeds the limit: {self.inline_limit} bytes.",
                                    "invalid"), {}
        return super()._dispatch(method, target, headers, raw)

    def _record(self, method: str, path: str, body: Any, headers: Any, target: str) -> bool:
        authorized = self._authorized(headers, target)
        auth = "valid" if authorized else ("invalid" if self._auth_sent(headers, target) else None)
        with self.lock:
            self.requests.append(Recorded(method, path, body, auth, time.time()))
        return authorized

    def _upload(self, target: str, headers: Any, raw: bytes) -> tuple[int, Any, dict[str, str]]:
        command = (headers.get("X-Goog-Upload-Command") or "").replace(" ", "").lower()
        if command == "start":
            if not self._record("POST", _UPLOAD, {"start": json.loads(raw or b"{}")}, headers, target):
                return 401, self._error(401, "API key not valid. Please pass a valid API key.", "auth"), {}
            length = headers.get("X-Goog-Upload-Header-Content-Length") or ""
            if headers.get("X-Goog-Upload-Protocol") != "resumable" or not length.isdigit():
                return 400, self._error(400, "X-Goog-Upload-Protocol: resumable and X-Goog-Upload-Header-"
                                        "Content-Length are required", "invalid"), {}
            upload_id = uuid.uuid4().hex
            with self.lock:
                self.uploads[upload_id] = {"length": int(length),
                                           "mime": headers.get("X-Goog-Upload-Header-Content-Type") or ""}
            base = "http://example.invalid" if "bad_upload_url" in self.file_faults else self.base_url
            return 200, b"", {"X-Goog-Upload-URL": f"{base}{_UPLOAD}?upload_id={upload_id}&upload_protocol=resumable",
                              "X-Goog-Upload-Status": "active"}
        found = re.search(r"[?&]upload_id=([0-9a-f]+)", target)
        session = self.uploads.pop(found.group(1), None) if found else None
        # The upload URL carries its session: no key is needed (the record shows whether one was sent).
        self._record("POST", _UPLOAD, {"upload": raw}, headers, target)
        if session is None or command != "upload,finalize":
            return 400, self._error(400, "unknown upload session, or not 'upload, finalize'", "invalid"), {}
        if headers.get("X-Goog-Upload-Offset") != "0" or len(raw) != session["length"]:
            return 400, self._error(400, f"expected {session['length']} bytes at offset 0, got {len(raw)}",
                                    "invalid"), {}
        name = f"files/{uuid.uuid4().hex[:12]}"
        with self.lock:
            self.files[name] = raw
        file = {} if "no_file_name" in self.file_faults else {
            "name": name, "mimeType": session["mime"], "sizeBytes": str(len(raw)), "state": "ACTIVE"}
        return 200, {"file": file}, {}

    def _download(self, target: str, headers: Any, name: str) -> tuple[int, Any, dict[str, str]]:
        if not self._record("GET", f"/download/v1beta/{name}:download", None, headers, target):
            return 401, self._error(401, "API key not valid. Please pass a valid API key.", "auth"), {}
        if "alt=media" not in target:
            return 400, self._error(400, "media download needs alt=media", "invalid"), {}
        if "download_500" in self.file_faults:
            return 500, self._error(500, "An internal error has occurred (emulated)", "internal"), {}
        with self.lock:
            content = self.files.get(name)
        if content is None:
            return 404, self._error(404, f"{name} not found", "nf"), {}
        return 200, content, {}

    def _authorized(self, headers: Any, path: str) -> bool:
        return headers.get("x-goog-api-key") == self.api_key or f"key={self.api_key}" in path

    def _error(self, status: int, message: str, code: str) -> dict[str, Any]:
        return {"error": {"code": status, "message": message, "status": _STATUS.get(status, "UNKNOWN")}}

    def _route(self, method: str, path: str, body: Any) -> tuple[int, dict[str, Any], dict[str, str]] | None:
        got = _GET_BATCH.fullmatch(path)
        if got and method == "GET":
            return self._batch_state(got.group(1))
        batch = _BATCH_PATH.fullmatch(path)
        if batch and method == "POST":
            return self._batch_check(batch.group(1), body)
        match = _PATH.fullmatch(path)
        if method != "POST" or not match:
            return 404, self._error(404, f"No such method: {method} {path}", "not_found"), {}
        model = catalog.lookup("gemini", match.group(1))
        if model is None:
            return 404, self._error(404, f"models/{match.group(1)} is not found for API version v1beta", "nf"), {}
        problem = _validate(body, model)
        return (400, self._error(400, problem, "invalid"), {}) if problem else None

    # -- the Batch API (ai.google.dev/api/batch-api) ----------------------------------------------

    def _batch_check(self, model_id: str, body: Any) -> tuple[int, dict[str, Any], dict[str, str]] | None:
        model = catalog.lookup("gemini", model_id)
        if model is None:
            return 404, self._error(404, f"models/{model_id} is not found", "nf"), {}
        try:
            config = body["batch"]["inputConfig"]
            assert isinstance(body["batch"]["displayName"], str) and isinstance(config, dict)
            assert ("fileName" in config) != ("requests" in config)          # one or the other, never both
            inline = self._file_requests(config["fileName"]) if "fileName" in config else config["requests"]["requests"]
            assert isinstance(inline, list) and inline
        except (KeyError, TypeError, AssertionError, ValueError):
            return 400, self._error(400, "batch.displayName and batch.inputConfig (requests.requests, or the "
                                    "fileName of an uploaded JSONL file of {key, request} lines) are required",
                                    "invalid"), {}
        for i, item in enumerate(inline):
            problem = _validate(item.get("request") if isinstance(item, dict) else None, model)
            if problem:
                return 400, self._error(400, f"requests[{i}]: {problem}", "invalid"), {}
        return None

    def _file_requests(self, name: str) -> list[dict[str, Any]]:
        """An uploaded input file's lines ``{"key", "request"}`` (ValueError: not such a file)."""
        with self.lock:
            content = self.files.get(name)
        if content is None:
            raise ValueError(name)
        lines = [json.loads(line) for line in content.splitlines() if line.strip()]
        if not all(isinstance(line, dict) and isinstance(line.get("key"), str) for line in lines):
            raise ValueError("every line needs a key")
        return lines

    def _create_batch(self, model_id: str, body: Any) -> dict[str, Any]:
        batch_id = uuid.uuid4().hex[:16]
        config = body["batch"]["inputConfig"]
        from_file = "fileName" in config
        requests = self._file_requests(config["fileName"]) if from_file else config["requests"]["requests"]
        with self.lock:
            self.batches[batch_id] = {"model": model_id, "display": body["batch"]["displayName"],
                                      "requests": requests, "from_file": from_file, "created": time.time()}
        return self._operation(batch_id)

    def _operation(self, batch_id: str) -> dict[str, Any]:
        batch = self.batches[batch_id]
        elapsed = time.time() - batch["created"]
        state = ("BATCH_STATE_PENDING" if elapsed < self.batch_latency / 2 else
                 "BATCH_STATE_RUNNING" if elapsed < self.batch_latency else "BATCH_STATE_SUCCEEDED")
        name = f"batches/{batch_id}"
        meta = {"@type": "type.googleapis.com/google.ai.generativelanguage.v1main.GenerateContentBatch",
                "name": name, "displayName": batch["display"], "model": f"models/{batch['model']}", "state": state}
        op: dict[str, Any] = {"name": name, "metadata": meta, "done": state == "BATCH_STATE_SUCCEEDED"}
        if op["done"]:
            if "responses" not in batch:
                batch["responses"] = [self._batch_item(batch["model"], item) for item in batch["requests"]]
            output: dict[str, Any] = {"@type": ("type.googleapis.com/google.ai.generativelanguage.v1main"
                                                ".GenerateContentBatchOutput")}
            if batch["from_file"]:
                output["responsesFile"] = self._results_file(batch_id, batch["responses"])
            else:
                output["inlinedResponses"] = {"inlinedResponses": batch["responses"]}
            op["response"] = output
        return op

    def _results_file(self, batch_id: str, responses: list[dict[str, Any]]) -> str | None:
        """The results JSONL (``{"key", "response"|"error"}`` per line, in request order), stored once."""
        name = f"files/batch-{batch_id}"
        if name not in self.files:
            lines = [json.dumps(r).encode() for r in responses]
            if "garbled_line" in self.file_faults:
                lines[0] = lines[0][: len(lines[0]) // 2]
            if "huge_line" in self.file_faults:
                lines[0] = lines[0][:-1] + b', "padding": "' + b"x" * self.huge_line_bytes + b'"}'
            self.files[name] = b"\n".join(lines) + b"\n"
        return None if "no_responses_file" in self.file_faults else name

    def _batch_item(self, model_id: str, item: dict[str, Any]) -> dict[str, Any]:
        request = item["request"]
        prompt = next(p["text"] for p in request["contents"][0]["parts"] if "text" in p)
        out: dict[str, Any] = {"key": item["key"]} if "key" in item else {"metadata": item.get("metadata")}
        if BATCH_ITEM_ERROR in prompt:
            out["error"] = {"code": 13, "message": "Internal error while processing this request (emulated)"}
        else:
            out["response"] = self._answer(f"/v1beta/models/{model_id}:generateContent", request)[1]
        return out

    def _batch_state(self, batch_id: str) -> tuple[int, dict[str, Any], dict[str, str]]:
        with self.lock:
            if batch_id not in self.batches:
                return 404, self._error(404, f"batches/{batch_id} not found", "nf"), {}
            return 200, self._operation(batch_id), {}

    def _answer(self, path: str, body: Any) -> tuple[int, dict[str, Any]]:
        batch = _BATCH_PATH.fullmatch(path)
        if batch:
            return 200, self._create_batch(batch.group(1), body)
        model = catalog.lookup("gemini", _PATH.fullmatch(path).group(1))  # type: ignore[union-attr]
        assert model is not None
        prompt = next(p["text"] for p in body["contents"][0]["parts"] if "text" in p)
        usage: dict[str, Any] = {"promptTokenCount": 12, "candidatesTokenCount": 1290, "totalTokenCount": 1302}
        answer_id = uuid.uuid4().hex[:22]
        if BLOCKED_PROMPT in prompt:
            return 200, {"promptFeedback": {"blockReason": "PROHIBITED_CONTENT"}, "usageMetadata": usage,
                         "modelVersion": model.id, "responseId": answer_id}
        if IMAGE_SAFETY in prompt:
            return 200, {"candidates": [{"finishReason": "IMAGE_SAFETY", "index": 0}], "usageMetadata": usage,
                         "modelVersion": model.id, "responseId": answer_id}
        if TEXT_ONLY in prompt:
            said = [{"text": "I can describe that scene in words: a knight at dawn."}]
            return 200, {"candidates": [{"content": {"role": "model", "parts": said}, "finishReason": "STOP",
                                         "index": 0}], "usageMetadata": usage, "modelVersion": model.id,
                         "responseId": answer_id}
        config = body.get("generationConfig", {}).get("imageConfig", {})
        size = catalog.size_of(model, config.get("aspectRatio", "1:1"), config.get("imageSize", "1K"))
        seed = body.get("generationConfig", {}).get("seed", int(time.time() * 1000))
        png = render(f"{prompt}\0{seed}", 0, size)
        parts: list[dict[str, Any]] = [{"text": "Here is the image."},
                 {"inlineData": {"mimeType": "image/png", "data": base64.b64encode(png).decode("ascii")}}]
        return 200, {"candidates": [{"content": {"role": "model", "parts": parts}, "finishReason": "STOP",
                                     "index": 0}], "usageMetadata": usage, "modelVersion": model.id,
                     "responseId": answer_id}


def _validate(body: Any, model: catalog.Model) -> str | None:
    if not isinstance(body, dict):
        return "Invalid JSON payload received."
    unknown = set(body) - _FIELDS
    if unknown:
        return f"Invalid JSON payload received. Unknown name \"{min(unknown)}\": Cannot find field."
    return _validate_contents(body.get("contents")) or _validate_config(body.get("generationConfig", {}), model)


def _validate_contents(contents: Any) -> str | None:
    if not isinstance(contents, list) or not contents or not isinstance(contents[0], dict):
        return "* GenerateContentRequest.contents: contents is not specified"
    parts = contents[0].get("parts")
    if not isinstance(parts, list) or not parts:
        return "* GenerateContentRequest.contents[0].parts: contents.parts must not be empty."
    if not any(isinstance(p, dict) and isinstance(p.get("text"), str) and p["text"].strip() for p in parts):
        return "a text part (the prompt) is required"
    for i, part in enumerate(parts):
        inline = part.get("inlineData") if isinstance(part, dict) else None
        problem = None if inline is None else _validate_inline(i, inline)
        if problem:
            return problem
    return None


def _validate_inline(i: int, inline: Any) -> str | None:
    if inline.get("mimeType") not in ("image/png", "image/jpeg", "image/webp", "image/heic", "image/heif"):
        return f"contents[0].parts[{i}].inlineData.mimeType: unsupported MIME type {inline.get('mimeType')!r}"
    try:
        with Image.open(io.BytesIO(base64.b64decode(inline.get("data", ""), validate=True))) as img:
            img.verify()
    except (binascii.Error, ValueError, OSError, SyntaxError):
        return f"contents[0].parts[{i}].inlineData.data: Provided image is not valid."
    return None


def _validate_config(config: Any, model: catalog.Model) -> str | None:
    if not isinstance(config, dict):
        return "generationConfig must be an object"
    image = config.get("imageConfig", {})
    if image.get("aspectRatio") is not None and image["aspectRatio"] not in model.ratios:
        return (f"imageConfig.aspectRatio {image['aspectRatio']!r} is not supported; "
                f"use one of {', '.join(model.ratios)}")
    size = image.get("imageSize")
    if size is not None and (len(model.resolutions) == 1 or size not in model.resolutions):
        return f"imageConfig.imageSize {image['imageSize']!r} is not supported by {model.id}"
    modalities = config.get("responseModalities")
    if modalities is not None and "IMAGE" not in modalities:
        return "responseModalities must include IMAGE for an image model"
    return None


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Run an emulator of Google's Gemini API (generateContent).")
    parser.add_argument("--port", type=int, default=8766)
    parser.add_argument("--api-key", default="test-key")
    parser.add_argument("--latency", type=float, default=2.0, help="seconds a call takes")
    args = parser.parse_args(argv)
    emulator = GeminiEmulator(api_key=args.api_key, latency=args.latency, port=args.port)
    emulator.serve_until_interrupted()


if __name__ == "__main__":
    main()
