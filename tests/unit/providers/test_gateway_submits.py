"""providers.gateway: submits go one at a time (intent → POST → task id), polls and downloads stay
concurrent. Against a fake client object in-process (the wire is test_gateway's subject)."""

from __future__ import annotations

import asyncio
from typing import Any

from helpers.images import jpeg_bytes

from assetgen.providers.base import Job
from assetgen.providers.client import ResultImage, Task
from assetgen.providers.gateway import GatewayProvider


class FakeClient:
    def __init__(self) -> None:
        self.submitting = self.most_submitting = 0
        self.polling = self.most_polling = 0
        self.count = 0

    async def submit(self, body: dict[str, Any]) -> Task:
        self.submitting += 1
        self.most_submitting = max(self.most_submitting, self.submitting)
        await asyncio.sleep(0.01)
        self.submitting -= 1
        self.count += 1
        return Task(task_id=f"task-{self.count}", status="queued", model=str(body["model"]))

    async def get(self, task_id: str, n: int | None = None) -> Task:
        self.polling += 1
        self.most_polling = max(self.most_polling, self.polling)
        await asyncio.sleep(0.02)
        self.polling -= 1
        return Task(task_id=task_id, status="completed", progress=100,
                    images=tuple(ResultImage(url=f"https://x/{task_id}/{i}.jpg") for i in range(n or 1)))

    async def download(self, image: ResultImage) -> bytes:
        return jpeg_bytes()

    async def aclose(self) -> None:
        pass


class Events:
    """TaskEvents that log, per job, the order of what the provider reported."""

    def __init__(self, log: list[str], name: str) -> None:
        self.log, self.name = log, name

    def intent(self, body: dict[str, Any]) -> None:
        self.log.append(f"{self.name}:intent")

    def submitted(self, task_id: str, model: str) -> None:
        self.log.append(f"{self.name}:submitted")

    def uncertain(self, why: str) -> None:
        self.log.append(f"{self.name}:uncertain")

    def not_created(self) -> None:
        self.log.append(f"{self.name}:not_created")

    def progress(self, status: str, progress: int) -> None:
        pass

    def completed(self, images: list[dict[str, Any]], *, task_id: str | None = None) -> None:
        self.log.append(f"{self.name}:completed")

    def task_ended(self, task_id: str) -> None:
        pass

    def check(self, data: bytes) -> bytes:
        return data


def test_one_submit_at_a_time_while_tasks_are_polled_together() -> None:
    client = FakeClient()
    provider = GatewayProvider(client=client, poll_interval=0.01)   # type: ignore[arg-type]
    log: list[str] = []
    jobs = [Job(key=f"{i}" * 64, target=None, names=(f"t{i}",),     # type: ignore[arg-type]
                body={"model": "gemini-3.1-flash-image-preview", "n": 1}) for i in range(4)]

    async def main() -> list[Any]:
        return await asyncio.gather(*(provider.generate(job, Events(log, job.names[0])) for job in jobs))

    generations = asyncio.run(main())
    assert client.most_submitting == 1
    assert client.most_polling > 1
    assert [len(g.images) for g in generations] == [1, 1, 1, 1]
    # Each submission: intent, then its task id, before the next intent.
    submits = [entry for entry in log if not entry.endswith(":completed")]
    assert all(submits[i].split(":")[0] == submits[i + 1].split(":")[0]
               and submits[i].endswith(":intent") and submits[i + 1].endswith(":submitted")
               for i in range(0, len(submits), 2))
    assert len(submits) == 8
