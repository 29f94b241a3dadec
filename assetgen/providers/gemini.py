"""Google's Gemini API, direct: ``POST /v1beta/models/{model}:generateContent``, one sync call per image.

Where each field comes from (Gemini API reference, ai.google.dev/api/generate-content, and the image
generation guide, ai.google.dev/gemini-api/docs/image-generation, read 2026-12-02):

- auth: the ``x-goog-api-key`` header (the key from ``GEMINI_API_KEY`` or ``GOOGLE_API_KEY``);
- ``contents[0].parts``: the prompt as ``{"text"}``, then each reference as
  ``{"inlineData": {"mimeType", "data"}}`` (base64; the whole request must stay under 20 MB);
- ``generationConfig.responseModalities``: ``["TEXT", "IMAGE"]`` (image models answer both);
- ``generationConfig.imageConfig``: ``aspectRatio`` ("1:1", "3:2", …) and ``imageSize`` ("1K", "2K",
  "4K"; not sent to gemini-2.5-flash-image, which has one size); ``generationConfig.seed`` when ≥ 0;
- the answer: ``candidates[0].content.parts[]`` with ``inlineData`` images (parts marked
  ``"thought": true`` are the model's drafts, not results), ``finishReason``, ``promptFeedback.blockReason``
  (the prompt was blocked: no candidates), ``responseId``.

One image per call: ``n`` images are ``n`` calls (each journaled), seeds ``seed + i`` as the gateway's
one-image tasks. An answer without an image is a failed target, never a crash: a blocked prompt
(``promptFeedback.blockReason``), a blocked image (``finishReason`` SAFETY, IMAGE_SAFETY,
PROHIBITED_CONTENT, …) or a text-only reply (``finishReason`` STOP with text parts only, or NO_IMAGE).
Billing of those, as we read Google's pricing page: input tokens (and any text returned) are billed, no
image is; this is recorded in the failure message, not verified against a real bill.
"""

from __future__ import annotations

import base64
from typing import Any
from urllib.parse import quote

from .. import catalog
from ..errors import TaskFailed
from .base import Job
from .sync import Call, SyncProvider, answer_id, b64_image, data_url_bytes
from .vendorclient import VendorClient

NO_IMAGE_BILLING = "billing: Google bills the input tokens (and any text returned), no image"
_BLOCKED_FINISH = {"SAFETY", "IMAGE_SAFETY", "PROHIBITED_CONTENT", "IMAGE_PROHIBITED_CONTENT", "BLOCKLIST",
                   "SPII", "RECITATION", "IMAGE_RECITATION", "IMAGE_OTHER", "NO_IMAGE", "OTHER", "LANGUAGE",
                   "MALFORMED_FUNCTION_CALL", "MAX_TOKENS"}


def gemini_request(body: dict[str, Any]) -> dict[str, Any]:
    """The ``generateContent`` body for one image of the gateway-shaped ``body`` (see ``request``)."""
    parts: list[dict[str, Any]] = [{"text": str(body["prompt"])}]
    for url in body.get("image_urls", []):
        mime, data = data_url_bytes(url)
        parts.append({"inlineData": {"mimeType": mime, "data": base64.b64encode(data).decode("ascii")}})
    image_config: dict[str, Any] = {"aspectRatio": body.get("aspect_ratio") or body.get("size") or "1:1"}
    model = catalog.lookup("gemini", str(body["model"]))
    if model is None or len(model.resolutions) > 1:
        image_config["imageSize"] = body.get("resolution", "1K")
    config: dict[str, Any] = {"responseModalities": ["TEXT", "IMAGE"], "imageConfig": image_config}
    seed = body.get("seed", -1)
    if isinstance(seed, int) and not isinstance(seed, bool) and seed >= 0:
        config["seed"] = seed
    return {"contents": [{"role": "user", "parts": parts}], "generationConfig": config}


def gemini_images(data: Any, clean: Any = str) -> tuple[list[bytes], str | None]:
    """The images of a ``generateContent`` answer and its id; ``TaskFailed`` saying why there is none."""
    if not isinstance(data, dict):
        raise TaskFailed("Gemini answered with something that is not a JSON object; no image", code="no_image")
    feedback: dict[str, Any] = data["promptFeedback"] if isinstance(data.get("promptFeedback"), dict) else {}
    candidates: list[Any] = data["candidates"] if isinstance(data.get("candidates"), list) else []
    if feedback.get("blockReason") and not candidates:
        reason = clean(feedback["blockReason"], 60)
        raise TaskFailed(f"Gemini blocked the prompt (promptFeedback.blockReason {reason}); "
                         f"no image ({NO_IMAGE_BILLING}). Change the prompt or references", code="blocked")
    if not candidates or not isinstance(candidates[0], dict):
        raise TaskFailed(f"Gemini's answer holds no candidate; no image ({NO_IMAGE_BILLING})", code="no_image")
    candidate = candidates[0]
    content: dict[str, Any] = candidate["content"] if isinstance(candidate.get("content"), dict) else {}
    parts = [p for p in content.get("parts") or [] if isinstance(p, dict) and not p.get("thought")]
    images: list[bytes] = []
    texts: list[str] = []
    for i, part in enumerate(parts):
        inline = part.get("inlineData") or part.get("inline_data")
        mime = str(inline.get("mimeType") or inline.get("mime_type") or "") if isinstance(inline, dict) else ""
        if isinstance(inline, dict) and mime.startswith("image/"):
            images.append(b64_image(inline.get("data"), f"image part {i} of Gemini's answer"))
        elif isinstance(part.get("text"), str):
            texts.append(part["text"])
    finish = str(candidate.get("finishReason") or "")
    if images:
        return images[:1], answer_id(data.get("responseId"), "gemini")
    said = f": \"{clean(' '.join(texts), 200)}\"" if texts else ""
    if finish in _BLOCKED_FINISH:
        raise TaskFailed(f"Gemini returned no image (finishReason {clean(finish, 40)}){said} ({NO_IMAGE_BILLING})",
                         code="blocked" if "SAFETY" in finish or "PROHIBITED" in finish else "no_image")
    raise TaskFailed(f"Gemini answered with text only{said} (finishReason {clean(finish, 40) or 'none'}; "
                     f"{NO_IMAGE_BILLING}). Say in the prompt that an image is wanted", code="text_only")


class GeminiProvider(SyncProvider):
    name = "gemini"

    def __init__(self, client: VendorClient, poll_interval: float = 10.0) -> None:
        super().__init__(client)
        self.poll_interval = poll_interval       # for batch jobs an earlier build left (see ``router``)

    def calls(self, job: Job) -> list[Call]:
        n = int(job.body.get("n", 1))
        seed = job.body.get("seed", -1)
        calls = []
        for i in range(n):
            body = {**job.body, "n": 1}
            if isinstance(seed, int) and seed >= 0:
                body["seed"] = seed + i           # one-image calls: candidates differ, as the gateway's
            calls.append(Call(n=1, journal_body=body, payload=gemini_request(body)))
        return calls

    async def send(self, job: Job, call: Call) -> tuple[list[bytes], str | None]:
        model = quote(str(job.body["model"]), safe="")
        answer = await self.client.post(f"/v1beta/models/{model}:generateContent", json=call.payload)
        return gemini_images(answer.data, self.client.clean)
