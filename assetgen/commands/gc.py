"""``assetgen gc``: which cached images stay, for every manifest that shares the cache.

Several manifests in one folder share ``.assetgen/`` (``project`` registers each one that builds). An
image stays if anything could still want it:

* any lock of any of those manifests (its default lock and every profile lock): each output, the
  image it was made from, and every image of its key (all candidates, so a later ``pick`` is free);
* the journal (``.assetgen/journal/*.json``, whatever its version): every SHA-256 written there, and
  every image of every key written there (a task being collected);
* anything younger than the grace period: a process that takes no build lock (``pull``) may be
  writing it;
* a registered manifest that has vanished keeps what its locks still reference, and if its lock is
  gone too nothing is removed at all (its images cannot be told apart), until ``forget_missing``.

The pass runs under the build lock, which is the cache's (shared by every manifest beside it), so no
build, watch or other gc of any of them runs meanwhile. Locks are read after the lock is taken: a build
that just finished has saved its lock by then.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from ..engine.project import (DEFAULT_MANIFEST, acquire_build_lock, forget_manifest, lock_path, profile_locks,
                              registered_manifests)
from ..errors import StateError
from ..state.lockfile import Lock
from ..state.store import GcResult, Store

if TYPE_CHECKING:
    from ..engine.project import Project

DEFAULT_GRACE = 600.0        # seconds: objects younger than this are never removed
_HEX = re.compile(r"(?<![0-9a-f])[0-9a-f]{64}(?![0-9a-f])")


@dataclass(kw_only=True)
class GcOptions:
    dry_run: bool = False
    grace: float = DEFAULT_GRACE
    forget_missing: bool = False
    wait: float = 600.0               # for the build lock, like ``build --wait``


@dataclass
class Vanished:
    name: str                         # the manifest's file name, beside the cache
    locks: list[Path]                 # what is left of its locks (kept unless forgotten)
    lock_gone: bool                   # its own lock is gone: its images cannot be told apart


@dataclass
class GcReport:
    manifests: list[str] = field(default_factory=list)      # whose locks were read
    vanished: list[Vanished] = field(default_factory=list)
    forgotten: list[str] = field(default_factory=list)
    result: GcResult = field(default_factory=GcResult)
    kept: int = 0                     # referenced objects in the cache
    held_back: bool = False           # nothing removed: a vanished manifest's images are unknown
    dry_run: bool = False


def collect(project: Project, options: GcOptions | None = None, *,
            on_wait: Callable[[], None] | None = None) -> GcReport:
    """Remove what no manifest sharing ``project``'s cache could want (see the module docstring)."""
    options = options or GcOptions()
    lock = None if options.dry_run else acquire_build_lock(project.manifest.path, timeout=options.wait,
                                                           on_wait=on_wait)
    try:
        return _collect(project, options)
    finally:
        if lock is not None:
            lock.release()


def _collect(project: Project, options: GcOptions) -> GcReport:
    report = GcReport(dry_run=options.dry_run)
    root, cache, store = project.root, project.cache_dir, project.store
    present, vanished = users(project.manifest.path, cache)
    for name in vanished:
        if options.forget_missing:
            if not options.dry_run:
                _forget(root / name, cache)
            report.forgotten.append(name)
        else:
            report.vanished.append(Vanished(name, _locks_of(root / name),
                                            lock_gone=not lock_path(root / name, None).exists()))
    report.manifests = present
    keep: set[str] = set()
    for path in [p for name in present for p in _locks_of(root / name)] + \
            [p for v in report.vanished for p in v.locks]:
        keep |= _referenced_by(path, store)
    keep |= _journaled(cache, store)
    keep |= store.index.all_rejected()        # paid for, the wrong size: kept for a later fix or adopt
    # A vanished manifest without its lock: which images were its own cannot be told, so none go.
    report.held_back = any(v.lock_gone for v in report.vanished)
    if not report.held_back:
        report.result = store.gc(keep, older_than=time.time() - options.grace, dry_run=options.dry_run)
    objects = store.objects.glob("*/*.jpg") if store.objects.exists() else []
    report.kept = sum(1 for p in objects if p.stem in keep)
    return report


def users(manifest_path: Path, cache: Path) -> tuple[list[str], list[str]]:
    """File names of the manifests that use the cache and exist, and of those registered but gone.

    Besides the registry: this manifest, and any ``X.toml`` beside the cache with an ``X.lock`` (a
    build made before the registry existed, or a lock that only ``pull`` has used)."""
    root = cache.parent
    names = set(registered_manifests(cache)) | {manifest_path.name}
    names |= {p.with_suffix(".toml").name for p in root.glob("*.lock") if p.with_suffix(".toml").is_file()}
    present = sorted(n for n in names if (root / n).is_file())
    return present, sorted(names - set(present))


def _locks_of(manifest_path: Path) -> list[Path]:
    default = lock_path(manifest_path, None)
    return ([default] if default.exists() else []) + list(profile_locks(manifest_path).values())


def _referenced_by(path: Path, store: Store) -> set[str]:
    """Images a lock still needs: outputs, their sources, and every image of each locked key."""
    try:
        lock = Lock.load(path, memo=store.memos)
    except StateError as exc:
        raise StateError(f"{exc} `assetgen gc` removed nothing: it cannot tell what that lock needs.") from exc
    keep: set[str] = set()
    for entry in lock.entries.values():
        keep.update(o.sha256 for o in entry.outputs)
        keep.update(o.source for o in entry.outputs if o.source)
        keep |= store.index.images_of(entry.key)
    return keep


def _journaled(cache: Path, store: Store) -> set[str]:
    """Every SHA-256 in the journal's files, and the images of every key among them. Read as text,
    whatever the journal's version: anything that looks like a hash there is kept."""
    keep: set[str] = set()
    for path in sorted((cache / "journal").glob("*.json")):
        try:
            text = path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            continue                     # gone meanwhile: collected
        for value in set(_HEX.findall(text)) | {path.stem}:
            keep.add(value)
            keep |= store.index.images_of(value)
    return keep


def _forget(manifest_path: Path, cache: Path) -> None:
    """Forget a vanished manifest: its registration and its profile locks (they are in the cache)."""
    for path in profile_locks(manifest_path).values():
        path.unlink(missing_ok=True)
    folder = cache / "profiles" / manifest_path.stem
    if manifest_path.name != DEFAULT_MANIFEST and folder.is_dir() and not any(folder.iterdir()):
        folder.rmdir()
    forget_manifest(cache, manifest_path.name)
