"""The local cache in ``.assetgen/``: images by content, with its index, stat cache and memos beside it.

    .assetgen/
      objects/ab/abcdef….jpg   every image ever generated or rendered, named by its SHA-256 (here)
      index/, sizes/           what the objects are images of (``index``)
      stat.json                path → [size, mtime_ns, inode, sha256] (``statcache``)
      stat-parsed/             the resolved manifest (``snapshot``) and the lock's entries (``lockfile``),
                               kept with what they came from (``memos``)

Everything here can be rebuilt or lost without harm to the project: the lock and the committed images
are the record. Writes of images and index entries are atomic; an object whose bytes no longer match
its name is treated as absent. Reading the index never writes anything: `plan` writes nothing but the
stat cache (stat.json and stat-parsed/). The remote cache (``remote``) sits behind this one: builds
look there only when a key is not here. ``Store`` holds the four parts and owns the objects and gc.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from .atomic import atomic_write
from .index import CachedImage, Index, IndexEntry
from .memos import Memos
from .statcache import StatCache, sha256_bytes, sha256_file

__all__ = ["CachedImage", "GcResult", "IndexEntry", "Store", "sha256_bytes", "sha256_file"]


def _touch(path: Path) -> None:
    try:
        os.utime(path)
    except OSError:
        pass      # (gone meanwhile, or not ours to touch: only gc's grace period is at stake)


@dataclass
class GcResult:
    removed: int = 0         # image objects removed (or that would be)
    freed: int = 0           # their bytes
    young: int = 0           # unreferenced objects kept because they are younger than the grace period
    entries: int = 0         # index entries removed (their images are gone)


class Store:
    """The cache folder: the image objects (here), and its parts ``index`` (``Index``), ``stat``
    (``StatCache``) and ``memos`` (``Memos``)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.objects = root / "objects"
        self.stat = StatCache(root / "stat.json")
        self.index = Index(root / "index", root / "sizes", self.has_image)
        self.memos = Memos(root / "stat-parsed")

    # -- images by content --------------------------------------------------------------------------

    def image_path(self, sha: str) -> Path:
        return self.objects / sha[:2] / f"{sha}.jpg"

    def put_image(self, data: bytes) -> CachedImage:
        sha = sha256_bytes(data)
        path = self.image_path(sha)
        if not (path.exists() and path.stat().st_size == len(data)):
            atomic_write(path, data, durable=True)
        else:
            _touch(path)        # just wanted again: young for gc's grace period, like a new object
        return CachedImage(sha256=sha, size=len(data))

    def read_image(self, image: CachedImage) -> bytes | None:
        """The image's bytes if present and intact; a damaged object is removed and reported absent."""
        path = self.image_path(image.sha256)
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            return None
        if sha256_bytes(data) != image.sha256:
            path.unlink(missing_ok=True)
            return None
        return data

    def has_image(self, image: CachedImage) -> bool:
        try:
            return self.image_path(image.sha256).stat().st_size == image.size
        except FileNotFoundError:
            return False

    # -- housekeeping -------------------------------------------------------------------------------

    def gc(self, keep: set[str], *, older_than: float | None = None, dry_run: bool = False) -> GcResult:
        """Delete image objects whose hash is not in ``keep`` and index entries that lose an image.

        Objects and index entries modified after ``older_than`` (a ``time.time()``) are kept whatever
        ``keep`` says: a process that takes no build lock (``pull``) may be writing them. The policy,
        what to keep, is ``assetgen.commands.gc``'s."""
        result = GcResult()
        gone: set[str] = set()

        def young(st: os.stat_result) -> bool:
            return older_than is not None and st.st_mtime > older_than

        for path in sorted(self.objects.glob("*/*.jpg")) if self.objects.exists() else []:
            try:
                st = path.stat()
            except FileNotFoundError:
                continue
            if path.stem in keep:
                continue
            if young(st):
                result.young += 1
                continue
            result.removed += 1
            result.freed += st.st_size
            gone.add(path.stem)
            if not dry_run:
                path.unlink(missing_ok=True)
        result.entries = self.index.gc(gone, young, dry_run=dry_run)
        # (Empty objects/ab/ folders stay: a writer without the lock may be about to create a file there.)
        return result

    def close(self) -> None:
        self.stat.save()
