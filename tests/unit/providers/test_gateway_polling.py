"""providers.gateway: a new task is first polled when this build's tasks of its model usually finish."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from assetgen.providers.base import Job
from assetgen.providers.client import ResultImage, Task
from assetgen.providers.gateway import GatewayProvider

LATENCY = 0.3


class TimedClient:
    """A gateway whose tasks complete LATENCY seconds after their submit; it records every poll."""

    def __init__(self) -> None:
        self.created: dict[str, float] = {}
        self.polls: dict[str, list[float]] = {}

    async def submit(self, body: dict[str, Any]) -> Task:
        task_id = f"t{len(self.created)}"
        self.created[task_id] = time.monotonic()
        return Task(task_id=task_id, status="queued", progress=0, model="m")

    async def get(self, task_id: str, n: int | None = None) -> Task:
        elapsed = time.monotonic() - self.created[task_id]
        self.polls.setdefault(task_id, []).append(elapsed)
        if elapsed >= LATENCY:
            return Task(task_id=task_id, status="completed", progress=100, model="m",
                        images=(ResultImage(url=f"https://x/{task_id}.jpg"),))
        return Task(task_id=task_id, status="processing", progress=int(100 * elapsed / LATENCY), model="m")

    async def download(self, image: ResultImage) -> bytes:
        return b"img"

    async def aclose(self) -> None:
        pass


class Events:
    """TaskEvents that record nothing (the sync protocol: no aintent/asubmitted)."""

    def intent(self, body: dict[str, Any]) -> None: ...
    def submitted(self, task_id: str, model: str) -> None: ...
    def progress(self, status: str, progress: int) -> None: ...
    def completed(self, images: list[dict[str, Any]], *, task_id: str | None = None) -> None: ...

    def check(self, data: bytes) -> bytes:
        return data


def test_expected_wait_is_most_of_the_quickest_recent_task() -> None:
    provider = GatewayProvider(client=TimedClient(), poll_interval=0.05)   # type: ignore[arg-type]
    provider._took["m"] = [1.0, 1.2, 1.1]
    assert provider._expected("m") == 0.0                  # too few seen to trust
    provider._took["m"].append(0.9)
    assert provider._expected("m") == pytest.approx(0.81)
    assert provider._expected("other") == 0.0


def test_later_tasks_are_polled_about_twice_not_once_per_interval() -> None:
    client = TimedClient()
    provider = GatewayProvider(client=client, poll_interval=0.05)    # type: ignore[arg-type]

    async def one(i: int) -> None:
        job = Job(key=f"{i:064d}", target=None, names=(f"t{i}",), body={"model": "m", "n": 1})  # type: ignore[arg-type]
        await provider.generate(job, Events())             # type: ignore[arg-type]

    async def main() -> None:
        for i in range(4):                                  # the first ones teach it the latency
            await one(i)
        await asyncio.gather(*(one(i) for i in range(4, 8)))
    asyncio.run(main())
    early = [len(client.polls[f"t{i}"]) for i in range(4)]
    later = [len(client.polls[f"t{i}"]) for i in range(4, 8)]
    assert min(early) >= 5                                  # 0.3 s at 0.05 s intervals
    assert max(later) <= 3                                  # first poll near 0.27 s, then by progress
    assert all(polls[0] >= 0.8 * LATENCY for polls in (client.polls[f"t{i}"] for i in range(4, 8)))
