"""Providers turn a ``Job`` into images: the gateway (paid) or offline placeholders (free)."""

from .base import Generation, Job, Provider, TaskEvents

__all__ = ["Generation", "Job", "Provider", "TaskEvents"]
