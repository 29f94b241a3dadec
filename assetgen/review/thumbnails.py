"""The gallery's thumbnails: source images (by SHA-256) → ``thumbs/<sha>.<ext>`` beside the page.

Thumbnails are keyed by the source image's SHA-256 in a diskcache under ``.assetgen/thumbs`` (this
module is diskcache's one home), so rewriting the page for 1,000 targets re-encodes only the images
that changed. WebP where Pillow has it, else JPEG; 320 pixels on the long side.
"""

from __future__ import annotations

import io
import os
import sqlite3
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import diskcache
from PIL import Image, UnidentifiedImageError, features

from ..state.atomic import atomic_write
from .cards import Shot

THUMB_SIZE = 320                                   # pixels on the long side
# WebP method 3 (of 0-6) encodes a third faster than the default 4 for about 10 % more bytes.
_FORMAT, _EXT, _OPTIONS = (("WEBP", "webp", {"quality": 80, "method": 3}) if features.check("webp")
                           else ("JPEG", "jpg", {"quality": 82}))
_CACHE_KEY = f"thumb/v1/{_FORMAT}/{THUMB_SIZE}/"


@dataclass
class ThumbnailStats:
    """How each thumbnail since the last ``reset()`` was obtained (counted where it happens)."""

    encoded: int = 0        # decoded and encoded with Pillow
    from_cache: int = 0     # bytes taken from the diskcache
    reused: int = 0         # the file was already in the gallery's thumbs/ folder

    def reset(self) -> None:
        self.encoded = self.from_cache = self.reused = 0


THUMBNAIL_STATS = ThumbnailStats()


class Thumbnails:
    """Source images (by SHA-256) → ``thumbs/<sha>.<ext>`` beside the page, via the diskcache.

    Cards ask for thumbnails with ``add`` as they are made; ``make`` then writes the missing ones at
    once, encoding cache misses on a thread pool (Pillow releases the GIL while it decodes/encodes).
    """

    def __init__(self, cache_dir: Path, gallery_dir: Path) -> None:
        self.folder = gallery_dir / "thumbs"
        self.wanted: dict[str, tuple[Path, list[Shot]]] = {}
        try:
            self.cache: diskcache.Cache | None = diskcache.Cache(str(cache_dir / "thumbs"))
        except (OSError, sqlite3.Error, diskcache.Timeout):
            self.cache = None                      # an unusable cache only costs re-encoding

    def add(self, sha: str, source: Path, shot: Shot) -> None:
        shot.thumb = f"thumbs/{sha}.{_EXT}"
        self.wanted.setdefault(sha, (source, []))[1].append(shot)

    def make(self) -> None:
        """Write every wanted thumbnail not yet beside the page, then drop those no card uses."""
        todo: dict[str, Path] = {}
        for sha, (source, _shots) in self.wanted.items():
            path = self.folder / f"{sha}.{_EXT}"
            if path.exists():
                THUMBNAIL_STATS.reused += 1
            elif (data := self._cache(sha)) is not None:
                THUMBNAIL_STATS.from_cache += 1
                atomic_write(path, data, durable=False)
            else:
                todo[sha] = source
        if todo:
            self._encode_all(todo)
        keep = {f"{sha}.{_EXT}" for sha in self.wanted}
        for path in self.folder.iterdir() if self.folder.exists() else []:
            if path.name not in keep and path.suffix == f".{_EXT}":
                path.unlink(missing_ok=True)

    def _encode_all(self, todo: dict[str, Path]) -> None:
        with ThreadPoolExecutor(max_workers=min(8, os.cpu_count() or 1)) as pool:
            for sha, data in zip(todo, pool.map(_encode, todo.values()), strict=True):
                if data is None:                   # unreadable: the card says so instead
                    for shot in self.wanted[sha][1]:
                        shot.thumb = None
                    continue
                THUMBNAIL_STATS.encoded += 1
                self._cache(sha, data)
                atomic_write(self.folder / f"{sha}.{_EXT}", data, durable=False)

    def _cache(self, sha: str, data: bytes | None = None) -> bytes | None:
        """Get a thumbnail from the diskcache, or put ``data`` there; its errors only cost re-encoding."""
        try:
            if self.cache is not None and data is not None:
                self.cache.set(_CACHE_KEY + sha, data)
            value = self.cache.get(_CACHE_KEY + sha) if self.cache is not None and data is None else None
        except (OSError, sqlite3.Error, diskcache.Timeout):
            return None
        return value if isinstance(value, bytes) else None

    def close(self) -> None:
        if self.cache is not None:
            self.cache.close()


def _encode(source: Path) -> bytes | None:
    try:
        with Image.open(source) as image:
            image.draft("RGB", (THUMB_SIZE, THUMB_SIZE))   # JPEG: decode at a fraction of full size
            small = image.convert("RGB")
        small.thumbnail((THUMB_SIZE, THUMB_SIZE))
        out = io.BytesIO()
        small.save(out, _FORMAT, **_OPTIONS)
        return out.getvalue()
    except (OSError, UnidentifiedImageError, ValueError):
        return None
