"""``providers.base.durably``: fsyncs off the event loop, never abandoned half-way by a cancellation."""

from __future__ import annotations

import asyncio
import time

from assetgen.providers.base import durably


def test_the_loop_keeps_running_while_the_work_blocks() -> None:
    async def main() -> tuple[int, int, bool]:
        ticks = 0

        async def ticker() -> None:
            nonlocal ticks
            while True:
                ticks += 1
                await asyncio.sleep(0.01)
        task = asyncio.create_task(ticker())
        await asyncio.sleep(0)
        before = ticks
        result, cancelled = await durably(lambda: (time.sleep(0.3), 7)[1])    # a slow fsync, say
        task.cancel()
        return ticks - before, result, cancelled
    ticked, result, cancelled = asyncio.run(main())
    assert result == 7 and not cancelled
    assert ticked >= 5          # blocking the loop (the old way) would have let it tick once at most


def test_a_cancellation_waits_for_the_work_and_is_reported() -> None:
    done: list[str] = []

    def work() -> str:
        time.sleep(0.2)
        done.append("written")
        return "ok"

    async def main() -> tuple[str, bool, float]:
        async def caller() -> tuple[str, bool, float]:
            started = time.monotonic()
            result, cancelled = await durably(work)
            return result, cancelled, time.monotonic() - started
        task = asyncio.create_task(caller())
        await asyncio.sleep(0.05)
        task.cancel()                       # arrives mid-write
        return await task
    result, cancelled, took = asyncio.run(main())
    assert done == ["written"] and result == "ok" and cancelled
    assert took >= 0.15                     # it waited for the write instead of leaving it behind
