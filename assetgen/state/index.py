"""The cache's index, ``.assetgen/index/``: what the cache objects are images of.

    index/gen/<key>.json         key → images of a generation; index/placeholder/<key>.json offline
    index/derived/<dkey>.json    derivation key → the post-processed output image
    index/rejected/<key>.json    downloaded images of the wrong size: paid for, kept, never written
    sizes/<sha256>.json          a served image whose pixel size differs (within 5 %) from the catalogue's

One small file per key (like the journal), so reading the index never writes anything. An entry whose
images are not all in the objects (``has_image``, the store's) is as good as absent; a damaged entry
or one of another version, likewise.
"""

from __future__ import annotations

import json
import os
import re
import threading
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

from .atomic import atomic_write

INDEX_VERSION = 1
_REJECTING = threading.Lock()     # downloads are checked in threads; one key's list is read-modify-write
_SHA256_RE = re.compile(r"[0-9a-f]{64}")


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
        data["version"] = INDEX_VERSION
        return json.dumps(data, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> IndexEntry:
        data = json.loads(text)
        if not isinstance(data, dict) or data.pop("version", None) != INDEX_VERSION:
            raise ValueError("unknown index entry version")
        data["images"] = tuple(CachedImage(**i) for i in data["images"])
        return cls(**data)


class Index:
    """Keys and derivation keys → cached images, the rejected images and the size notes."""

    def __init__(self, folder: Path, sizes: Path, has_image: Callable[[CachedImage], bool]) -> None:
        self.folder = folder
        self._sizes = sizes
        self._has_image = has_image

    def _entry_path(self, kind: str, key: str) -> Path:
        return self.folder / kind / f"{key}.json"

    def _entry_files(self) -> list[Path]:
        return sorted(self.folder.glob("*/*.json")) if self.folder.exists() else []

    @staticmethod
    def _read_entry(path: Path) -> IndexEntry | None:
        try:
            return IndexEntry.from_json(path.read_text(encoding="utf-8"))
        except (OSError, ValueError, TypeError, KeyError):
            return None  # absent, damaged or from another version: as good as absent

    # -- key → images ---------------------------------------------------------------------------------

    def lookup(self, key: str, *, placeholder_ok: bool = False) -> IndexEntry | None:
        """Cached images for ``key`` whose objects are all present; real images are preferred."""
        for kind in ("gen", "placeholder") if placeholder_ok else ("gen",):
            entry = self._read_entry(self._entry_path(kind, key))
            if entry is not None and entry.key == key and all(self._has_image(i) for i in entry.images):
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
        """The image the derivation ``dkey`` makes (its hash and size), as recorded when it was made.
        Its bytes are usually not cached (they are remade from the generation): see ``has_image``."""
        entry = self._derived_entry(dkey)
        return None if entry is None else entry[0]

    def _derived_entry(self, dkey: str) -> tuple[CachedImage, CachedImage | None] | None:
        """(what ``dkey`` makes, the image it is made from: None in entries written before it was kept)."""
        try:
            data = json.loads(self._entry_path("derived", dkey).read_text(encoding="utf-8"))
            made = CachedImage(sha256=data["sha256"], size=int(data["size"]))
            source = data.get("source")
            return made, CachedImage(str(source["sha256"]), int(source["size"])) if source else None
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def record_derived(self, dkey: str, image: CachedImage, *, source: CachedImage | None = None) -> None:
        """Record what ``dkey`` makes from the image ``source``: kept while that image is cached."""
        made_from = {"sha256": source.sha256, "size": source.size} if source is not None else None
        data = json.dumps({"version": INDEX_VERSION, "sha256": image.sha256, "size": image.size,
                           "source": made_from})
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
            blob = json.dumps({"version": INDEX_VERSION, "key": key, "images": images}, sort_keys=True)
            atomic_write(path, blob.encode("utf-8"), durable=True)

    def rejected(self, key: str) -> list[tuple[CachedImage, str]]:
        """The images rejected for ``key`` that are still in the cache, each with why."""
        try:
            data = json.loads(self._entry_path("rejected", key).read_text(encoding="utf-8"))
            found = [(CachedImage(i["sha256"], int(i["size"])), str(i["reason"])) for i in data["images"]]
        except (OSError, ValueError, KeyError, TypeError):
            return []
        return [(image, reason) for image, reason in found if self._has_image(image)]

    def all_rejected(self) -> set[str]:
        """SHA-256 of every rejected image still listed: paid for, so ``gc`` keeps them."""
        files = sorted((self.folder / "rejected").glob("*.json")) if self.folder.exists() else []
        return {image.sha256 for path in files for image, _ in self.rejected(path.stem)}

    def record_size_note(self, sha: str, note: str) -> None:
        atomic_write(self._sizes / f"{sha}.json",
                     json.dumps({"version": INDEX_VERSION, "note": note}).encode("utf-8"), durable=False)

    def size_note(self, sha: str) -> str:
        """What ``record_size_note`` said about the image ``sha`` ("" for the usual exact size)."""
        try:
            return str(json.loads((self._sizes / f"{sha}.json").read_text(encoding="utf-8"))["note"])
        except (OSError, ValueError, KeyError, TypeError):
            return ""

    # -- housekeeping -------------------------------------------------------------------------------

    def gc(self, gone: set[str], young: Callable[[os.stat_result], bool], *, dry_run: bool) -> int:
        """Delete the entries (not ``young``) that lose an image: one of ``gone``, or not in the
        objects any more. Returns how many there were."""
        removed = 0
        for path in self._entry_files():
            try:
                if young(path.stat()):
                    continue
            except FileNotFoundError:
                continue
            if path.parent.name == "derived":
                # Gone with the image it is made from (its own bytes are remade, never needed here).
                found = self._derived_entry(path.stem)
                source = found[1] if found is not None else None
                if found is None:
                    lost = True
                elif source is None:            # an older entry: its own image object is what it names
                    lost = found[0].sha256 in gone or not self._has_image(found[0])
                else:
                    lost = source.sha256 in gone or not self._has_image(source)
            elif path.parent.name == "rejected":
                lost = not self.rejected(path.stem)
            else:
                entry = self._read_entry(path)
                lost = entry is None or any(i.sha256 in gone or not self._has_image(i) for i in entry.images)
            if lost:
                removed += 1
                if not dry_run:
                    path.unlink(missing_ok=True)
        return removed
