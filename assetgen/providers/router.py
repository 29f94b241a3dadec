"""One build, several sellers: each job goes to its target's provider (``Target.provider``).

Only the gateway and the batch jobs of Google and OpenAI leave tasks to collect later (sync calls answer
with their images or leave an uncertain intent), so resuming goes to them; cancelling to the gateway.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..errors import GatewayError
from .base import Generation, Job, Provider, TaskEvents
from .gemini_batch import BatchCollector, GeminiBatchProvider, resume_batch
from .openai_batch import PREFIX as OPENAI_PREFIX
from .openai_batch import OpenAIBatchCollector, OpenAIBatchProvider
from .sync import SyncProvider

if TYPE_CHECKING:
    from ..state.journal import JournalRecord


class RoutingProvider(Provider):
    name = "providers"

    def __init__(self, providers: dict[str, Provider]) -> None:
        self.providers = providers

    @property
    def poll_interval(self) -> float:
        return float(getattr(self.providers.get("gateway"), "poll_interval", 1.0))

    def _for(self, job: Job) -> Provider:
        name = job.target.provider if job.target is not None else "gateway"
        provider = self.providers.get(name)
        if provider is None:
            raise GatewayError(f"no {name} provider in this build (its API key was not checked)")
        return provider

    async def generate(self, job: Job, events: TaskEvents) -> Generation:
        return await self._for(job).generate(job, events)

    async def resume(self, record: JournalRecord, events: TaskEvents, job: Job | None = None) -> Generation:
        if any(t.startswith("batches:") for t in record.task_ids):       # a Gemini batch job
            gemini = self.providers.get("gemini")
            if gemini is None:
                raise GatewayError(f"{record.task_id} is a Gemini batch job; set GEMINI_API_KEY so this build "
                                   f"can collect it")
            if isinstance(gemini, GeminiBatchProvider):
                return await gemini.resume(record, events, job)
            # A sync Gemini provider (a build without --batch, or watch) collects the job all the same.
            assert isinstance(gemini, SyncProvider)
            collector = BatchCollector(gemini.client, float(getattr(gemini, "poll_interval", 10.0)))
            return await resume_batch(collector, record, events, job)
        if any(t.startswith(OPENAI_PREFIX) for t in record.task_ids):     # an OpenAI batch job
            openai = self.providers.get("openai")
            if openai is None:
                raise GatewayError(f"{record.task_id} is an OpenAI batch job; set OPENAI_API_KEY so this build "
                                   f"can collect it")
            if isinstance(openai, OpenAIBatchProvider):
                return await openai.resume(record, events, job)
            assert isinstance(openai, SyncProvider)
            poller = OpenAIBatchCollector(openai.client, self.poll_interval)
            return await resume_batch(poller, record, events, job, prefix=OPENAI_PREFIX, provider="openai")
        gateway = self.providers.get("gateway")
        if gateway is None:
            raise GatewayError(f"task {record.task_id} was submitted to the gateway; set ASSETGEN_API_KEY so "
                               f"this build can collect it")
        return await gateway.resume(record, events, job)

    async def cancel(self, task_id: str) -> None:
        if "gateway" in self.providers:
            await self.providers["gateway"].cancel(task_id)

    async def aclose(self) -> None:
        for provider in self.providers.values():
            await provider.aclose()
