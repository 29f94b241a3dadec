"""Offline provider: deterministic placeholder JPEGs at the target's exact pixel size, for free."""

from __future__ import annotations

import asyncio

from ..images.placeholders import render_placeholder
from ..manifest.model import Target
from .base import Generation, Job, Provider, TaskEvents


class OfflineProvider(Provider):
    name = "offline"
    placeholder = True

    async def generate(self, job: Job, events: TaskEvents) -> Generation:
        target = job.target
        assert target is not None, "only an orphan has no target, and orphans are collected, never generated"
        width, height = target.size
        n = int(job.body["n"])

        backdrop = _backdrop(target)

        def render() -> list[bytes]:
            if target.grid is not None:         # the grid drawn, so slicing shows before paying
                from ..images.grid import grid_placeholder
                return [grid_placeholder(name=target.name, prompt=target.prompt, width=width, height=height,
                                         cols=target.grid[0], rows=target.grid[1]) for _i in range(n)]
            return [render_placeholder(name=target.name, prompt=target.prompt, width=width,
                                       height=height, index=i, total=n, backdrop=backdrop) for i in range(n)]

        # Encoding a 4K JPEG takes a while; a thread keeps other targets moving.
        images = await asyncio.to_thread(render)
        return Generation(images=images, model=job.body["model"], task_id=None, cost=0.0, placeholder=True)


def _backdrop(target: Target) -> str | None:
    """What the placeholder's background must be for the target's outputs to come out transparent: the
    colour (or checkerboard) an output keys out, "transparent" if the model is asked for it, else None."""
    for out in target.outputs:
        key = out.derivation.key_out
        if key is not None and out.derivation.format != "jpg":
            return "checkerboard" if key.checkerboard else key.color
    return "transparent" if dict(target.openai).get("background") == "transparent" else None
