"""OpenAI's Images API, direct: ``POST /v1/images/generations`` (JSON) and ``POST /v1/images/edits``
(multipart, with the references), one sync call for all ``n`` images.

Where each field comes from (OpenAI API reference, "Images": create image, create image edit; read
2026-12-02 through the docs corpus):

- auth: ``Authorization: Bearer`` with ``OPENAI_API_KEY``;
- ``model``, ``prompt``, ``n`` (1–10), ``size`` ("1024x1024", "1536x1024", "1024x1536": the catalogue
  maps 1:1, 3:2, 2:3 to them; validation refuses other ratios), ``quality`` ("low", "medium", "high"),
  ``background`` ("transparent", "opaque", "auto"; transparent needs png or webp), ``output_format``
  ("png", "jpeg", "webp") — the last three from the manifest's ``openai = { … }`` table, every default
  sent explicitly so a change of OpenAI's defaults cannot change an image behind the lock's back;
- edits: the same fields as form fields, each reference as a file part ``image[]``;
- the answer: ``data[].b64_json`` (gpt-image models always answer base64; ``response_format`` is not
  sent), decoded and validated like every download (``images.check`` through ``events.check``);
- errors: ``{"error": {"message", "type", "param", "code"}}``; a prompt refused by the safety system is
  a 400 with code ``moderation_blocked`` (not billed: refused before generation, as we read the docs).
``seed`` has no OpenAI field: it stays in the key but is not sent.
"""

from __future__ import annotations

from typing import Any

from .. import catalog
from ..errors import InvalidRequest, TaskFailed
from .base import Job
from .sync import Call, SyncProvider, answer_id, b64_image, data_url_bytes

_EXT = {"image/png": "png", "image/jpeg": "jpg", "image/webp": "webp"}


def openai_request(body: dict[str, Any]) -> dict[str, Any]:
    """The generations body (or the edit's form fields) of the gateway-shaped ``body``."""
    model = catalog.lookup("openai", str(body["model"]))
    ratio = body.get("aspect_ratio") or body.get("size") or "1:1"
    sizes = dict(model.sizes if model else catalog.OPENAI_SIZES)
    if ratio not in sizes:          # validation refuses this first; a hand-made body gets a clear error
        raise InvalidRequest(f"{body['model']} draws only {', '.join(sizes)}; not {ratio}")
    w, h = sizes[ratio]
    options = dict(body.get("openai") or {})
    return {"model": str(body["model"]), "prompt": str(body["prompt"]), "n": int(body.get("n", 1)),
            "size": f"{w}x{h}", "quality": options.get("quality", "medium"),
            "background": options.get("background", "auto"), "output_format": options.get("output_format", "png")}


def openai_images(data: Any, n: int) -> tuple[list[bytes], str | None]:
    if not isinstance(data, dict) or not isinstance(data.get("data"), list):
        raise TaskFailed("OpenAI's answer holds no `data` list; no image (the call was answered, so it may "
                         "have been billed)", code="no_image")
    items = [d for d in data["data"] if isinstance(d, dict)]
    images = [b64_image(d.get("b64_json"), f"data[{i}].b64_json of OpenAI's answer") for i, d in enumerate(items[:n])]
    if len(images) < n:
        raise TaskFailed(f"OpenAI answered with {len(images)} of the {n} images asked for (billed for what "
                         f"it made); no output was written", code="no_image")
    return images, answer_id(data.get("created"), "openai")


class OpenAIProvider(SyncProvider):
    name = "openai"

    def calls(self, job: Job) -> list[Call]:
        return [Call(n=int(job.body.get("n", 1)), journal_body=dict(job.body), payload=openai_request(job.body))]

    async def send(self, job: Job, call: Call) -> tuple[list[bytes], str | None]:
        refs = job.body.get("image_urls") or []
        try:
            if not refs:
                answer = await self.client.post("/v1/images/generations", json=call.payload)
            else:
                files = []
                for i, url in enumerate(refs):
                    mime, data = data_url_bytes(url)
                    files.append(("image[]", (f"reference-{i + 1}.{_EXT[mime]}", data, mime)))
                form = {k: str(v) for k, v in call.payload.items()}
                answer = await self.client.post("/v1/images/edits", data=form, files=files)
        except InvalidRequest as exc:
            if exc.code == "moderation_blocked":
                raise TaskFailed(f"OpenAI's safety system refused the prompt ({exc}); no image (not billed: "
                                 f"refused before generation). Change the prompt or references",
                                 status=exc.status, code="blocked") from None
            raise
        return openai_images(answer.data, call.n)
