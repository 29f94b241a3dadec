"""Providers turn a ``Job`` into images: the gateway (paid) or offline placeholders (free).

``base`` is the interface, ``offline`` and ``gateway`` the providers, ``client`` the gateway's HTTP
client (the only home of httpx) and ``request`` the body a target submits. Imports ``manifest``,
``state`` (journal records) and ``images`` below it, nothing above."""

from .base import Generation, Job, Provider, TaskEvents

__all__ = ["Generation", "Job", "Provider", "TaskEvents"]
