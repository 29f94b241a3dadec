"""The local cache in ``.assetgen/``: images by content, the key → images index, the stat cache.

    .assetgen/
      objects/ab/abcdef….jpg   every image ever generated or rendered, named by its SHA-256
      index/gen/<key>.json     key → images of a generation; index/placeholder/<key>.json offline
      index/derived/<dkey>.json  derivation key → the post-processed output image
      index/rejected/<key>.json  downloaded images of the wrong size: paid for, kept, never written
      sizes/<sha256>.json      a served image whose pixel size differs (within 5 %) from the catalogue's
      stat.json                path → [size, mtime_ns, inode, sha256]: unchanged files are not re-read
      stat-parsed/             the resolved manifest (``snapshot``) and the lock's entries, kept with
                               the text they came from (``lockfile``)

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
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from ..errors import StateError
from .atomic import atomic_write, not_a_file

STORE_VERSION = 1
MEMO_VERSION = 2          # of the files in stat-parsed/ (1: JSON copies of TOML parses)
_CHUNK = 1 << 20
# File times tick coarsely (a kernel jiffy, or seconds on some file systems): a file changed this
# recently could change again, same size, without its mtime moving. Such hashes are not persisted.
RACY_NS = 2_000_000_000
_REJECTING = threading.Lock()     # downloads are checked in threads; one key's list is read-modify-write
_SHA256_RE = re.compile(r"[0-9a-f]{64}")


def _touch(path: Path) -> None:
    try:
        os.utime(path)
    except OSError:
        pass      # (gone meanwhile, or not ours to touch: only gc's grace period is at stake)


@contextmanager
def no_gc() -> Iterator[None]:
    """Pause the cyclic garbage collector while building many objects that hold no cycles.

    Each collection walks every live container: loading 10,000 targets triggered hundreds of them
    for nothing (measured: 15 % of a no-op `plan` at 10,000 targets). (The CLI then freezes what it
    loaded, ``cli.main.Context.project``, so no full collection walks it afterwards either.)"""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


_PACKAGE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))     # assetgen/


def code_stamp() -> tuple[Any, ...] | None:
    """The identity of assetgen's own source files (every ``.py`` file of the package, sorted by path:
    path, size, mtime): remembered results made by other code (an upgrade, an edit in a checkout) are
    not trusted. The whole package, not a hand-kept list of modules, so no edit can be missed (~60
    stats). None when the sources are not there to look at (a zip or frozen install): then nothing is
    remembered."""
    stamp: list[tuple[str, int, int]] = []
    folders = [""]
    try:
        while folders:
            folder = folders.pop()
            with os.scandir(os.path.join(_PACKAGE, folder)) as entries:
                for entry in entries:
                    if entry.name.endswith(".py"):
                        st = entry.stat()
                        stamp.append((folder + entry.name, st.st_size, st.st_mtime_ns))
                    elif entry.is_dir() and entry.name != "__pycache__":
                        folders.append(f"{folder}{entry.name}/")
    except OSError:
        return None
    return tuple(sorted(stamp)) or None


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


@dataclass
class GcResult:
    removed: int = 0         # image objects removed (or that would be)
    freed: int = 0           # their bytes
    young: int = 0           # unreferenced objects kept because they are younger than the grace period
    entries: int = 0         # index entries removed (their images are gone)


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

    def images_of(self, key: str) -> set[str]:
        """SHA-256 of every image the index lists for ``key`` (real and placeholder), present or not."""
        found: set[str] = set()
        for kind in ("gen", "placeholder"):
            entry = self._read_entry(self._entry_path(kind, key))
            if entry is not None and entry.key == key:
                found.update(i.sha256 for i in entry.images)
        return found

    def record(self, entry: IndexEntry) -> None:
        # Durable: once the journal drops a task, this entry is the only way back to its paid images.
        kind = "placeholder" if entry.placeholder else "gen"
        atomic_write(self._entry_path(kind, entry.key), entry.to_json().encode("utf-8"), durable=True)

    def entries(self) -> list[IndexEntry]:
        files = [p for p in self._entry_files() if p.parent.name not in ("derived", "rejected")]
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

    # -- downloaded images that are not quite what was asked for ---------------------------------------

    def record_rejected(self, key: str, image: CachedImage, reason: str) -> None:
        """List a paid-for image of the wrong size under its key (``index/rejected/<key>.json``), so a
        later fix or an ``adopt`` can take it from the cache without paying; ``lookup`` never returns it."""
        with _REJECTING:
            path = self._entry_path("rejected", key)
            try:
                data = json.loads(path.read_text(encoding="utf-8"))
                images = [i for i in data["images"] if i["sha256"] != image.sha256]
            except (OSError, ValueError, KeyError, TypeError):
                images = []
            images.append({"sha256": image.sha256, "size": image.size, "reason": reason})
            blob = json.dumps({"version": STORE_VERSION, "key": key, "images": images}, sort_keys=True)
            atomic_write(path, blob.encode("utf-8"), durable=True)

    def rejected(self, key: str) -> list[tuple[CachedImage, str]]:
        """The images rejected for ``key`` that are still in the cache, each with why."""
        try:
            data = json.loads(self._entry_path("rejected", key).read_text(encoding="utf-8"))
            found = [(CachedImage(i["sha256"], int(i["size"])), str(i["reason"])) for i in data["images"]]
        except (OSError, ValueError, KeyError, TypeError):
            return []
        return [(image, reason) for image, reason in found if self.has_image(image)]

    def all_rejected(self) -> set[str]:
        """SHA-256 of every rejected image still listed: paid for, so ``gc`` keeps them."""
        files = sorted((self.index / "rejected").glob("*.json")) if self.index.exists() else []
        return {image.sha256 for path in files for image, _ in self.rejected(path.stem)}

    def record_size_note(self, sha: str, note: str) -> None:
        atomic_write(self.root / "sizes" / f"{sha}.json",
                     json.dumps({"version": STORE_VERSION, "note": note}).encode("utf-8"), durable=False)

    def size_note(self, sha: str) -> str:
        """What ``record_size_note`` said about the image ``sha`` ("" for the usual exact size)."""
        try:
            return str(json.loads((self.root / "sizes" / f"{sha}.json").read_text(encoding="utf-8"))["note"])
        except (OSError, ValueError, KeyError, TypeError):
            return ""

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
        for path in self._entry_files():
            try:
                if young(path.stat()):
                    continue
            except FileNotFoundError:
                continue
            if path.parent.name == "derived":
                image = self.derived(path.stem)
                lost = image is None or image.sha256 in gone
            elif path.parent.name == "rejected":
                lost = not self.rejected(path.stem)
            else:
                entry = self._read_entry(path)
                lost = entry is None or any(i.sha256 in gone or not self.has_image(i) for i in entry.images)
            if lost:
                result.entries += 1
                if not dry_run:
                    path.unlink(missing_ok=True)
        # (Empty objects/ab/ folders stay: a writer without the lock may be about to create a file there.)
        return result

    def close(self) -> None:
        self.stat.save()
