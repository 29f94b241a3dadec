"""The local cache in ``.assetgen/``: images by content, the key → images index, the stat cache.

    .assetgen/
      objects/ab/abcdef….jpg   every image ever generated or rendered, named by its SHA-256
      index/gen/<key>.json     key → images of a generation; index/placeholder/<key>.json offline
      index/derived/<dkey>.json  derivation key → the post-processed output image
      stat.json                path → [size, mtime_ns, inode, sha256]: unchanged files are not re-read
      stat-parsed/             the resolved manifest (``snapshot``) and the lock's entries, kept with
                               the text they came from (``lock``)

Everything here can be rebuilt or lost without harm to the project: the lock and the committed images
are the record. Writes of images and index entries are atomic; an object whose bytes no longer match
its name is treated as absent. The index is one small file per key (like the journal), so reading it
never writes anything: `plan` writes nothing but the stat cache (stat.json and stat-parsed/). The
remote cache (``remote``) sits behind this one: builds look there only when a key is not here.
"""

from __future__ import annotations

import hashlib
import json
import gc
import os
import pickle
import re
import shutil
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from .errors import StateError
from .fsutil import atomic_write, not_a_file

STORE_VERSION = 1
MEMO_VERSION = 2          # of the files in stat-parsed/ (1: JSON copies of TOML parses)
_CHUNK = 1 << 20
# File times tick coarsely (a kernel jiffy, or seconds on some file systems): a file changed this
# recently could change again, same size, without its mtime moving. Such hashes are not persisted.
RACY_NS = 2_000_000_000
_SHA256_RE = re.compile(r"[0-9a-f]{64}")


@contextmanager
def no_gc() -> Iterator[None]:
    """Pause the cyclic garbage collector while building many objects that hold no cycles.

    Each collection walks every live container: loading 10,000 targets triggered hundreds of them
    for nothing (measured: 15 % of a no-op `plan` at 10,000 targets). (The CLI then freezes what it
    loaded, ``cli.Context.project``, so no full collection walks it afterwards either.)"""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def code_stamp(*modules: str) -> tuple[Any, ...] | None:
    """The identity of some of assetgen's own source files (name, size, mtime): remembered results
    made by other code (an upgrade, an edit in a checkout) are not trusted. None when the sources are
    not there to look at (a zip or frozen install): then nothing is remembered."""
    here = Path(__file__).parent
    try:
        return tuple((name, st.st_size, st.st_mtime_ns) for name in modules for st in [os.stat(here / name)])
    except OSError:
        return None


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
        self._recent: dict[str, list[Any]] = {}     # racy entries: trusted in this process only
        self._dirty = False
        try:
            raw = json.loads(file.read_text(encoding="utf-8"))
            if raw.get("version") == STORE_VERSION:
                # Keep only well-formed entries: a damaged one must cost a re-hash, never a crash.
                self._entries = {name: entry for name, entry in raw["files"].items()
                                 if isinstance(entry, list) and len(entry) == 4
                                 and all(isinstance(v, int) for v in entry[:3]) and isinstance(entry[3], str)}
        except (OSError, ValueError, KeyError, AttributeError):
            pass  # a missing or damaged stat cache only costs re-hashing

    def sha256(self, path: Path | str, st: os.stat_result | None = None) -> str:
        """SHA-256 of the file at ``path``; raises ``OSError`` if it cannot be read."""
        name = os.fspath(path)
        st = st or os.stat(name)
        kind = not_a_file(st)
        if kind:         # a folder is an error; a FIFO or device would block the read
            raise StateError(f"{name} should be a file, but it is {kind}; move it away and run the command again")
        signature = [st.st_size, st.st_mtime_ns, st.st_ino]
        for cached in (self._entries.get(name), self._recent.get(name)):
            if cached is not None and cached[:3] == signature:
                return str(cached[3])
        digest = sha256_file(path)
        if time.time_ns() - st.st_mtime_ns < RACY_NS:
            # git's "racy clean" rule: a later same-size write in the same clock tick would keep this
            # signature, so the next run must read the file again rather than trust this hash.
            self._recent[name] = [*signature, digest]
        else:
            self._entries[name] = [*signature, digest]
            self._dirty = True
        return digest

    def memo_path(self, path: Path, suffix: str = ".parsed") -> Path:
        """Where to remember what was made from the file at ``path`` (its parse, resolution…)."""
        name = hashlib.sha256(str(path).encode()).hexdigest()[:24]
        return self._file.parent / "stat-parsed" / f"{name}{suffix}"

    @staticmethod
    def read_memo(memo: Path, head: Any) -> Any | None:
        """The value ``write_memo`` stored with an equal ``head``, or None (absent, other, damaged).

        A pickle: this cache is local, written by this user's own runs only, never shared."""
        try:
            with open(memo, "rb") as handle, no_gc():
                if pickle.load(handle) != [MEMO_VERSION, head]:
                    return None
                return pickle.load(handle)
        except Exception:      # noqa: BLE001 — any damage (or a class that changed) costs a re-parse
            return None

    @staticmethod
    def write_memo(memo: Path, head: Any, value: Any) -> None:
        data = pickle.dumps([MEMO_VERSION, head], pickle.HIGHEST_PROTOCOL) + \
            pickle.dumps(value, pickle.HIGHEST_PROTOCOL)
        atomic_write(memo, data, durable=False)

    def remember(self, path: Path, digest: str) -> None:
        """Record the hash of a file we just wrote, so the next run need not read it back."""
        st = path.stat()
        self._entries[str(path)] = [st.st_size, st.st_mtime_ns, st.st_ino, digest]
        self._dirty = True

    def probe(self, path: Path | str) -> str | None:
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

    def __post_init__(self) -> None:
        # The hash names a file under objects/: from a damaged or crafted index, lock or remote entry,
        # anything but 64 hex digits could name (and then delete) a file outside the cache.
        if not (isinstance(self.sha256, str) and _SHA256_RE.fullmatch(self.sha256)):
            raise ValueError(f"not a SHA-256: {self.sha256!r}")
        if not isinstance(self.size, int) or self.size < 0:
            raise ValueError(f"not a size: {self.size!r}")


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
        if not isinstance(data, dict) or data.pop("version", None) != STORE_VERSION:
            raise ValueError("unknown index entry version")
        data["images"] = tuple(CachedImage(**i) for i in data["images"])
        return cls(**data)


class Store:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.objects = root / "objects"
        self.stat = StatCache(root / "stat.json")
        self.index = root / "index"

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

    def _entry_path(self, kind: str, key: str) -> Path:
        return self.index / kind / f"{key}.json"

    def _entry_files(self) -> list[Path]:
        return sorted(self.index.glob("*/*.json")) if self.index.exists() else []

    @staticmethod
    def _read_entry(path: Path) -> IndexEntry | None:
        try:
            return IndexEntry.from_json(path.read_text(encoding="utf-8"))
        except (OSError, ValueError, TypeError, KeyError):
            return None  # absent, damaged or from another version: as good as absent

    def lookup(self, key: str, *, placeholder_ok: bool = False) -> IndexEntry | None:
        """Cached images for ``key`` whose objects are all present; real images are preferred."""
        for kind in ("gen", "placeholder") if placeholder_ok else ("gen",):
            entry = self._read_entry(self._entry_path(kind, key))
            if entry is not None and entry.key == key and all(self.has_image(i) for i in entry.images):
                return entry
        return None

    def record(self, entry: IndexEntry) -> None:
        # Durable: once the journal drops a task, this entry is the only way back to its paid images.
        kind = "placeholder" if entry.placeholder else "gen"
        atomic_write(self._entry_path(kind, entry.key), entry.to_json().encode("utf-8"), durable=True)

    def entries(self) -> list[IndexEntry]:
        files = [p for p in self._entry_files() if p.parent.name != "derived"]
        return [e for e in map(self._read_entry, files) if e is not None]

    # -- derivation key → output image (resize, format, pick… made locally) ----------------------------

    def derived(self, dkey: str) -> CachedImage | None:
        try:
            data = json.loads(self._entry_path("derived", dkey).read_text(encoding="utf-8"))
            image = CachedImage(sha256=data["sha256"], size=int(data["size"]))
        except (OSError, ValueError, KeyError, TypeError):
            return None
        return image if self.has_image(image) else None

    def record_derived(self, dkey: str, image: CachedImage) -> None:
        data = json.dumps({"version": STORE_VERSION, "sha256": image.sha256, "size": image.size})
        atomic_write(self._entry_path("derived", dkey), data.encode("utf-8"), durable=False)

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
        for path in self._entry_files():
            if path.parent.name == "derived":
                image = self.derived(path.stem)
                if image is None or image.sha256 not in keep:
                    path.unlink(missing_ok=True)
                continue
            entry = self._read_entry(path)
            if entry is None or any(i.sha256 not in keep for i in entry.images):
                path.unlink(missing_ok=True)
        for folder in list(self.objects.glob("*")) if self.objects.exists() else []:
            if folder.is_dir() and not any(folder.iterdir()):
                shutil.rmtree(folder, ignore_errors=True)
        return removed, freed

    def close(self) -> None:
        self.stat.save()
