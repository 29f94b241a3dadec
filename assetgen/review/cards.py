"""What a gallery card shows (``Card``, ``Shot``), collected from a plan, the lock and the cache.

A card shows what the plan and the lock already know — status and reasons, model, size, cost, build
time — plus a target's candidates from the cache with the picked one marked, and drafts from
``.assetgen/profiles/*.lock``. Images are linked by paths relative to the page (the outputs as they
are on disk, else the cached images); their thumbnails are asked of a ``ThumbnailSink``.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Protocol
from urllib.parse import quote

from ..engine.events import money
from ..engine.project import profile_locks
from ..errors import StateError
from ..state.index import CachedImage
from ..state.lockfile import Lock, LockEntry, LockedOutput

if TYPE_CHECKING:
    from ..engine.plan import TargetPlan
    from ..engine.project import Project
    from ..manifest.model import Target


@dataclass
class Shot:
    """One image on a card."""

    thumb: str | None       # thumbnail URL relative to the page; None: the image could not be read
    href: str | None        # full-size image, relative to the page


@dataclass
class Card:
    name: str
    status: str             # a key of page.STATUS_LABELS
    reasons: list[str]
    prompt: str
    model: str
    size: str
    cost: str = ""
    estimate: str = ""      # what a rebuild would cost, if stale
    built_at: str = ""
    error: str = ""
    tags: tuple[str, ...] = ()     # searchable, and a filter each
    review: str = "unreviewed"     # approved | rejected | lapsed | unreviewed (``TargetPlan.review``)
    review_note: str = ""          # the verdict's note, by whom
    main: Shot | None = None
    others: list[tuple[str, Shot]] = field(default_factory=list)   # every output after the first: (path, image)
    # Outputs retouched by hand (``adopt``): (path, the file as it is now, what assetgen generated or None)
    retouched: list[tuple[str, Shot | None, Shot | None]] = field(default_factory=list)
    candidates: list[Shot] = field(default_factory=list)
    picked: int = 0         # index into candidates
    drafts: list[tuple[str, list[Shot]]] = field(default_factory=list)   # (profile, its images)


class ThumbnailSink(Protocol):
    """Where a card asks for the thumbnail of an image (``thumbnails.Thumbnails``)."""

    def add(self, sha: str, source: Path, shot: Shot) -> None: ...


class CardCollector:
    """Makes the cards of one page: ``card(item, failure)`` for each target of a plan."""

    def __init__(self, project: Project, gallery_dir: Path, thumbs: ThumbnailSink) -> None:
        self.project, self.gallery_dir, self.thumbs = project, gallery_dir, thumbs
        self.root = project.root.resolve()
        self.profiles = _profiles(project)

    def href(self, path: Path) -> str:
        try:
            rel = os.path.relpath(path, self.gallery_dir)
        except ValueError:                              # another drive (Windows)
            return path.as_uri()
        return quote(Path(rel).as_posix(), safe="/")

    def shot(self, sha: str, source: Path, href: Path | None = None) -> Shot:
        shot = Shot(thumb=None, href=self.href(href or source))
        self.thumbs.add(sha, source, shot)
        return shot

    def output(self, out: LockedOutput) -> Shot | None:
        """The output as it is on disk now, else its image in the cache, else nothing."""
        path = self.root / out.path
        current = self.project.store.stat.probe(path)
        if current is not None:
            return self.shot(current, path)
        cached = self.project.store.image_path(out.sha256)
        if self.project.store.has_image(CachedImage(out.sha256, out.size)):
            return self.shot(out.sha256, cached)
        return None

    def generated(self, out: LockedOutput, target: Target) -> Shot | None:
        """What assetgen generated for a retouched output: the output as it wrote it (cached, or remade
        from its generation), else the generated image it was made from (before resizing or conversion)."""
        store = self.project.store
        if out.generated and store.image_path(out.generated).is_file():
            return self.shot(out.generated, store.image_path(out.generated))
        remade = self._remade(out, target)
        if remade is not None and out.generated:
            return self.shot(out.generated, remade)
        if out.source and store.image_path(out.source).is_file():
            return self.shot(out.source, store.image_path(out.source))
        return None

    def _remade(self, out: LockedOutput, target: Target) -> Path | None:
        """Derived outputs are not cached as images (they are remade from their generation): remake the
        one assetgen wrote into the gallery's folder, if it still comes out as the bytes it locked (the
        manifest's derivation may have changed since)."""
        from ..images.derive import derive

        spec = next((o for o in target.outputs if o.path == out.path), None)
        source = self.project.store.image_path(out.source) if out.source else None
        if spec is None or source is None or not out.generated or not source.is_file():
            return None
        file = self.gallery_dir / "generated" / f"{out.generated}.{spec.derivation.format}"
        if file.is_file():
            return file
        try:
            data = derive(source.read_bytes(), spec.derivation)
        except (OSError, ValueError):
            return None
        if hashlib.sha256(data).hexdigest() != out.generated:
            return None
        file.parent.mkdir(parents=True, exist_ok=True)
        file.write_bytes(data)
        return file

    def candidates(self, locked: LockEntry) -> tuple[list[Shot], int]:
        """Every image of the locked generation if there are several, and the index of the picked one:
        the image the first output was made from (its ``source``), else the first."""
        store = self.project.store
        entry = store.index.lookup(locked.key, placeholder_ok=locked.placeholder)
        if entry is None or len(entry.images) < 2:
            return [], 0
        on_disk = {o.sha256: self.root / o.path for o in locked.outputs if (self.root / o.path).exists()}
        shots = [self.shot(i.sha256, store.image_path(i.sha256), on_disk.get(i.sha256)) for i in entry.images]
        first = locked.outputs[0] if locked.outputs else None
        made_from = {first.source or first.sha256, first.sha256} if first else set()
        picked = next((k for k, i in enumerate(entry.images) if i.sha256 in made_from), 0)
        return shots, picked

    def card(self, item: TargetPlan, failure: str | None) -> Card:
        target, locked = item.target, item.locked
        width, height = target.size
        size = f"{target.resolution} · {target.aspect_ratio} · {width}×{height} px"
        model = target.model
        if locked is not None and locked.model != target.model:
            model += f" (built with {locked.model})"
        card = Card(name=item.name, status=_status(item, failure), reasons=[str(r) for r in item.reasons],
                     prompt=target.prompt, model=model, size=size + _count(target),
                     error=failure or "", estimate=money(item.cost) if item.cost else "",
                     tags=tuple(target.tags))
        if locked is not None:
            card.cost, card.built_at = money(locked.cost), locked.built_at
            card.review = item.review
            if locked.review is not None:
                note = f": {locked.review.note}" if locked.review.note else ""
                card.review_note = f"{locked.review.verdict} by {locked.review.by}{note}"
            card.main = self.output(locked.outputs[0]) if locked.outputs else None
            card.others = [(o.path, s) for o in locked.outputs[1:] if (s := self.output(o)) is not None]
            card.candidates, card.picked = self.candidates(locked)
            card.retouched = [(o.path, self.output(o), self.generated(o, target)) for o in locked.outputs
                              if o.generated and o.generated != o.sha256]
        for profile, lock in self.profiles.items():
            entry = lock.entries.get(item.name)
            if entry is not None:
                card.drafts.append((profile, [s for s in map(self.output, entry.outputs) if s is not None]))
        return card


def _count(target: Target) -> str:
    if target.n < 2:
        return ""
    return f" · {target.n} candidates" if target.candidates else f" · n={target.n}"


def _status(item: TargetPlan, failure: str | None) -> str:
    locked = item.locked
    if failure is not None:
        return "failed"
    if locked is None:
        return "new"
    if item.stale and any(r.kind != "placeholder" for r in item.reasons):
        return "stale"
    return "placeholder" if locked.placeholder else "ok"


def _profiles(project: Project) -> dict[str, Lock]:
    """Draft builds' locks (``project.profile_locks``); absent or unreadable ones are skipped."""
    found: dict[str, Lock] = {}
    for name, path in profile_locks(project.manifest.path).items():
        try:
            found[name] = Lock.load(path)
        except (StateError, OSError):
            continue                                   # a damaged draft lock must not hide the finals
    return found
