"""Providers whose generation is one synchronous call (Google's Gemini API, OpenAI's Images API).

Such a call has no id before it is paid, so the journal can only say that one was made: the intent is
fsynced before the call (``TaskEvents.intent``), and the answer brings the images themselves. A call
that ends without an answer — killed, stopped, timed out, a 5xx, a dropped connection — may have been
processed and billed: the key is *uncertain* (``events.uncertain``; after a kill the intent says it),
and no later build calls again unless told to (``--retry-uncertain``). An answer that holds no image
(a safety block, a text-only reply) is known: the target fails with the vendor's reason and the intent
is dropped. Calls are not serialised (there is no task id to lose); ``--jobs`` bounds them.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import re
from dataclasses import dataclass, field
from typing import Any

from .. import catalog
from ..errors import GatewayError, SubmissionUncertain, TaskFailed
from .base import Generation, Job, Provider, TaskEvents
from .vendorclient import VendorClient

_DATA_URL = re.compile(r"data:(image/(?:png|jpeg|webp));base64,(.*)", re.DOTALL)
STOPPED = "stopped during a synchronous call: it may have been processed and paid"


@dataclass(frozen=True)
class Call:
    """One request to the vendor and the images it asks for."""

    n: int
    journal_body: dict[str, Any]          # what the intent's digest is made of
    payload: dict[str, Any] = field(default_factory=dict)


def data_url_bytes(url: str) -> tuple[str, bytes]:
    """(MIME type, bytes) of a ``data:`` URL made by ``request.reference_url``."""
    match = _DATA_URL.fullmatch(url)
    if not match:
        raise GatewayError(f"reference {url[:60]!r} is not an inline image; this provider takes file bytes only")
    try:
        return match.group(1), base64.b64decode(match.group(2), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise GatewayError("a reference image could not be encoded") from exc


def b64_image(text: Any, where: str) -> bytes:
    """An image sent as base64 text; ``TaskFailed`` (paid: the call was answered) if it is not."""
    try:
        if not isinstance(text, str):
            raise ValueError("not a string")
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise TaskFailed(f"{where} is not valid base64 ({exc}); the call was answered, so it was paid",
                         code="invalid_image") from None


class SyncProvider(Provider):
    """Runs a job as one or more sync calls (``calls``), each sent by ``send``."""

    def __init__(self, client: VendorClient) -> None:
        self.client = client

    def calls(self, job: Job) -> list[Call]:
        raise NotImplementedError

    async def send(self, job: Job, call: Call) -> tuple[list[bytes], str | None]:
        """The call's images and the vendor's id for the answer; ``TaskFailed`` if it holds none."""
        raise NotImplementedError

    async def generate(self, job: Job, events: TaskEvents) -> Generation:
        images: list[bytes] = []
        ids: list[str] = []
        for call in self.calls(job):
            events.intent(call.journal_body)               # durable before anything is sent
            try:
                got, answer_id = await self.send(job, call)
            except SubmissionUncertain as exc:
                events.uncertain(str(exc))
                raise
            except asyncio.CancelledError:
                events.uncertain(STOPPED)
                raise
            except GatewayError:
                events.not_created()                       # refused, or answered without an image
                raise
            for data in got:
                images.append(await asyncio.to_thread(events.check, data))   # decoding 4K takes a while
            if answer_id:
                ids.append(answer_id)
        model_id = str(job.body["model"])
        model = catalog.lookup(self.name, model_id)
        unit = job.target.unit_price if job.target is not None else (model.price if model else 0.0)
        return Generation(images=images, model=model_id, task_id=",".join(ids) or f"{self.name}:sync",
                          cost=unit * len(images), placeholder=False)

    async def aclose(self) -> None:
        await self.client.aclose()


def answer_id(value: Any, prefix: str) -> str | None:
    """The vendor's id of an answer, if it is one we may show and store."""
    text = f"{prefix}:{value}" if isinstance(value, (str, int)) and not isinstance(value, bool) else ""
    return text if catalog.safe_task_id(text) else None
