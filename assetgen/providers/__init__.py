"""Providers turn a ``Job`` into images: the gateway (paid) or offline placeholders (free).

``base`` is the interface, ``offline`` and ``gateway`` the providers, ``client`` the gateway's HTTP
client and ``request`` the body a target submits. Google's and OpenAI's APIs: ``sync`` (one paid call,
no id before it), ``gemini``, ``openai``, ``gemini_batch`` (``build --batch``), ``vendorclient``
(their HTTP client; with ``client`` the only homes of httpx) and ``router`` (a build using several
providers). Imports ``manifest``, ``state`` (journal records) and ``images`` below it, nothing above."""

from .base import Generation, Job, Provider, TaskEvents

__all__ = ["Generation", "Job", "Provider", "TaskEvents"]
