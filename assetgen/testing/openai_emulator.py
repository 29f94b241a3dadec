"""OpenAI's Images API on 127.0.0.1: ``POST /v1/images/generations`` (JSON) and ``/v1/images/edits``
(multipart: the fields as form fields, references as ``image[]`` files), as documented.

Checks ``Authorization: Bearer``, the documented fields and values (unknown fields are refused, as
OpenAI answers "Unknown parameter"), ``n`` 1–10, ``size`` among the model's, transparent backgrounds
only with png/webp; answers ``{"created", "data": [{"b64_json"}], "size", "quality", "background",
"output_format", "usage"}`` with real images of that size and format (with alpha when transparent).
A prompt with ``emulate:blocked-prompt`` gets the safety system's 400 (code ``moderation_blocked``),
``emulate:short`` one image fewer than asked.

Manual trials: ``python -m assetgen.testing.openai_emulator --port 8767 --latency 2``.
"""

from __future__ import annotations

import argparse
import base64
import time
from typing import Any

from .. import catalog
from .vendor_emulator import BLOCKED_PROMPT, SHORT, VendorEmulator, VendorFaults, render

__all__ = ["OpenAIEmulator", "VendorFaults"]

_FIELDS = {"model", "prompt", "n", "size", "quality", "background", "output_format", "output_compression",
           "moderation", "user", "input_fidelity", "partial_images", "stream"}
_FORMATS = {"png": "PNG", "jpeg": "JPEG", "webp": "WEBP"}


class OpenAIEmulator(VendorEmulator):
    vendor = "openai"

    def _authorized(self, headers: Any, path: str) -> bool:
        return bool(headers.get("Authorization") == f"Bearer {self.api_key}")

    def _error(self, status: int, message: str, code: str) -> dict[str, Any]:
        return {"error": {"message": message, "type": "invalid_request_error" if status < 500 else "server_error",
                          "param": None, "code": code}}

    def _route(self, method: str, path: str, body: Any) -> tuple[int, dict[str, Any], dict[str, str]] | None:
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
    print(emulator.start(), flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        emulator.stop()


if __name__ == "__main__":
    main()
