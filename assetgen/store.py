"""The local cache in ``.assetgen/``: images by content, the key → images index, the stat cache.

    .assetgen/
      objects/ab/abcdef….jpg   every image ever generated or rendered, named by its SHA-256
      index/                   diskcache: "gen:<key>" / "placeholder:<key>" → JSON entry
      stat.json                path → [size, mtime_ns, inode, sha256]: unchanged files are not re-read

Everything here can be rebuilt or lost without harm to the project: the lock and the committed images
are the record. Writes of images are atomic; an object whose bytes no longer match its name is
treated as absent. A remote cache (later) sits behind ``Store.lookup``/``Store.put_image``.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import diskcache

from .errors import StateError
from .fsutil import atomic_write

STORE_VERSION = 1
_CHUNK = 1 << 20


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class StatCache:
    """Content hashes of files, re-read only when size, mtime or inode changed (make's cheap check)."""

    def __init__(self, file: Path) -> None:
        self._file = file
        self._entries: dict[str, list[Any]] = {}
        self._dirty = False
        try:
            raw = json.loads(file.read_text(encoding="utf-8"))
            if raw.get("version") == STORE_VERSION:
                self._entries = raw["files"]
        except (OSError, ValueError, KeyError, AttributeError):
            pass  # a missing or damaged stat cache only costs re-hashing

    def sha256(self, path: Path, st: os.stat_result | None = None) -> str:
        """SHA-256 of the file at ``path``; raises ``OSError`` if it cannot be read."""
        st = st or path.stat()
        name = str(path)
        signature = [st.st_size, st.st_mtime_ns, st.st_ino]
        cached = self._entries.get(name)
        if cached is not None and cached[:3] == signature:
            return str(cached[3])
        digest = sha256_file(path)
        self._entries[name] = [*signature, digest]
        self._dirty = True
        return digest

    def remember(self, path: Path, digest: str) -> None:
        """Record the hash of a file we just wrote, so the next run need not read it back."""
        st = path.stat()
        self._entries[str(path)] = [st.st_size, st.st_mtime_ns, st.st_ino, digest]
        self._dirty = True

    def probe(self, path: Path) -> str | None:
        """Hash of the file, or None if it does not exist."""
        try:
            return self.sha256(path)
        except (FileNotFoundError, NotADirectoryError):
            return None

    def save(self) -> None:
        if self._dirty:
            data = json.dumps({"version": STORE_VERSION, "files": self._entries}, separators=(",", ":"))
            atomic_write(self._file, data.encode(), durable=False)
            self._dirty = False


@dataclass(frozen=True)
class CachedImage:
    sha256: str
    size: int


@dataclass(frozen=True)
class IndexEntry:
    key: str
    images: tuple[CachedImage, ...]
    model: str
    task_id: str | None
    cost: float
    placeholder: bool
    built_at: str

    def to_json(self) -> str:
        data = asdict(self)
        data["version"] = STORE_VERSION
        return json.dumps(data, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> IndexEntry:
        data = json.loads(text)
        if data.pop("version", None) != STORE_VERSION:
            raise ValueError("unknown index entry version")
        data["images"] = tuple(CachedImage(**i) for i in data["images"])
        return cls(**data)


class Store:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.objects = root / "objects"
        self.stat = StatCache(root / "stat.json")
        self._index: diskcache.Cache | None = None

    # -- images by content --------------------------------------------------------------------------

    def image_path(self, sha: str) -> Path:
        return self.objects / sha[:2] / f"{sha}.jpg"

    def put_image(self, data: bytes) -> CachedImage:
        sha = sha256_bytes(data)
        path = self.image_path(sha)
        if not (path.exists() and path.stat().st_size == len(data)):
            atomic_write(path, data, durable=True)
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

    # -- key → images ---------------------------------------------------------------------------------

    @property
    def index(self) -> diskcache.Cache:
        if self._index is None:
            self.root.mkdir(parents=True, exist_ok=True)
            try:
                self._index = diskcache.Cache(str(self.root / "index"))
            except Exception as exc:  # diskcache raises sqlite3 errors of several kinds
                raise StateError(f"the cache index in {self.root / 'index'} cannot be opened ({exc}); "
                                 f"delete that folder to rebuild it (images are kept)") from exc
        return self._index

    def _has_index(self) -> bool:
        return self._index is not None or (self.root / "index").exists()

    def lookup(self, key: str, *, placeholder_ok: bool = False) -> IndexEntry | None:
        """Cached images for ``key`` whose objects are all present; real images are preferred."""
        if not self._has_index():
            return None
        prefixes = ("gen:", "placeholder:") if placeholder_ok else ("gen:",)
        for prefix in prefixes:
            raw = self.index.get(prefix + key)
            if raw is None:
                continue
            try:
                entry = IndexEntry.from_json(raw)
            except (ValueError, TypeError, KeyError):
                continue  # an entry from another version: as good as absent
            if all(self.has_image(i) for i in entry.images):
                return entry
        return None

    def record(self, entry: IndexEntry) -> None:
        prefix = "placeholder:" if entry.placeholder else "gen:"
        self.index.set(prefix + entry.key, entry.to_json())

    def entries(self) -> list[IndexEntry]:
        if not self._has_index():
            return []
        found = []
        for name in list(self.index.iterkeys()):
            try:
                found.append(IndexEntry.from_json(self.index[name]))
            except (KeyError, ValueError, TypeError):
                continue
        return found

    # -- housekeeping -------------------------------------------------------------------------------

    def gc(self, keep: set[str]) -> tuple[int, int]:
        """Delete image objects whose hash is not in ``keep`` and index entries that lose an image.

        Returns (objects removed, bytes freed).
        """
        removed = freed = 0
        if self.objects.exists():
            for path in self.objects.glob("*/*.jpg"):
                if path.stem not in keep:
                    freed += path.stat().st_size
                    path.unlink()
                    removed += 1
        if self._has_index():
            for name in list(self.index.iterkeys()):
                try:
                    entry = IndexEntry.from_json(self.index[name])
                except (KeyError, ValueError, TypeError):
                    del self.index[name]
                    continue
                if any(i.sha256 not in keep for i in entry.images):
                    del self.index[name]
        for folder in list(self.objects.glob("*")) if self.objects.exists() else []:
            if folder.is_dir() and not any(folder.iterdir()):
                shutil.rmtree(folder, ignore_errors=True)
        return removed, freed

    def close(self) -> None:
        self.stat.save()
        if self._index is not None:
            self._index.close()
            self._index = None
