"""Small, real image files for tests (Pillow), and giving a file an mtime in the past."""

from __future__ import annotations

import io
import os
import time
from pathlib import Path

from PIL import Image


def make_image(path: Path, color: tuple[int, int, int] = (200, 40, 40), size: tuple[int, int] = (8, 8),
               fmt: str | None = None) -> Path:
    """A real, small image file (PNG or JPEG by extension unless ``fmt`` says)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, color).save(path, format=fmt)
    return path


def jpeg_bytes(color: tuple[int, int, int] = (40, 120, 200), size: tuple[int, int] = (8, 8)) -> bytes:
    """The bytes of a small, real JPEG (what a fake provider hands back as a generated image)."""
    buffer = io.BytesIO()
    Image.new("RGB", size, color).save(buffer, format="JPEG")
    return buffer.getvalue()


def backdate(path: Path, seconds: int = 3600) -> Path:
    """Give a file an mtime in the past, as a reference file in a real project has. (The stat cache
    does not persist hashes of files changed in the last moments: their mtime may not move again.)"""
    then = time.time_ns() - seconds * 1_000_000_000
    os.utime(path, ns=(then, then))
    return path
