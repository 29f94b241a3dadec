"""Orphans: the outputs of targets no longer in the manifest, and what may be done with them.

An orphan is known from the lock (an entry whose target was removed) or, once a build has dropped
that entry (the lock describes exactly the manifest's targets), from the record the build left in
``.assetgen/orphans/`` (one file per lock). ``plan`` lists them (they are not stale: nothing is built
for them), ``prune`` deletes those whose file still has the locked hash. A file changed by hand is an
artist's: never deleted without ``force``. Their images stay in the cache until ``gc``.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..state.atomic import atomic_write
from ..state.lockfile import Lock
from ..state.store import Store


@dataclass(frozen=True)
class OrphanOutput:
    target: str          # the removed target
    path: str            # relative to the manifest's folder
    sha256: str          # as locked
    state: str           # locked (the file as assetgen wrote it) | modified | missing

    def to_json(self) -> dict[str, Any]:
        return {"target": self.target, "path": self.path, "state": self.state}


def record_path(cache_dir: Path, lock_path: Path) -> Path:
    """Where the orphans of ``lock_path``, dropped from it by a build, are remembered."""
    digest = hashlib.sha256(str(lock_path.resolve()).encode("utf-8")).hexdigest()[:16]
    return cache_dir / "orphans" / f"{lock_path.stem}-{digest}.json"


def _recorded(path: Path) -> dict[str, dict[str, str]]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}                               # none, or damaged: only costs listing them
    return {str(k): {str(p): str(s) for p, s in v.items()} for k, v in data.items() if isinstance(v, dict)} \
        if isinstance(data, dict) else {}


def prunable(root: Path, out_dirs: list[str]) -> Callable[[str], bool]:
    """Whether a path the lock (or the orphans record) names may be an orphan: relative, and (symbolic
    links resolved) inside the manifest's folder or one of ``out_dirs`` (an ``allow_outside`` out_dir).
    A lock is a file in the repository: one crafted in a branch must never make ``prune`` delete, or
    ``plan`` hash, a file elsewhere."""
    base = root.resolve()
    roots = [base, *((base / d).resolve() for d in out_dirs)]

    def allowed(rel: str) -> bool:
        if not rel or "\0" in rel or os.path.isabs(rel) or rel.startswith(("/", "\\")):
            return False
        try:
            where = (base / rel).resolve()
        except (OSError, RuntimeError, ValueError):
            return False
        return any(where != r and r in where.parents for r in roots)
    return allowed


def find_orphans(targets: Any, outputs_in_use: set[str], lock: Lock, store: Store, root: Path,
                 record: Path, allowed: Callable[[str], bool] | None = None) -> list[OrphanOutput]:
    """Every orphaned output (see the module's docstring) whose path no current target writes.
    Missing files from the record are forgotten (nothing left to prune). Paths ``allowed`` refuses
    (outside the project: see ``prunable``) are never listed."""
    allowed = allowed or prunable(root, [])
    found: dict[str, dict[str, str]] = {}
    for name, entry in lock.entries.items():
        if name not in targets:
            found[name] = {o.path: o.sha256 for o in entry.outputs}
    for name, paths in _recorded(record).items():
        if name not in targets:
            for rel, sha in paths.items():
                found.setdefault(name, {}).setdefault(rel, sha)
    orphans = []
    for name in sorted(found):
        for rel, sha in sorted(found[name].items()):
            if rel in outputs_in_use or not allowed(rel):
                continue
            current = store.stat.probe(os.path.join(str(root), rel))
            state = "missing" if current is None else "locked" if current == sha else "modified"
            if state != "missing" or name in lock.entries:
                orphans.append(OrphanOutput(name, rel, sha, state))
    return orphans


def drop_orphan_entries(targets: Any, lock: Lock, record: Path) -> list[str]:
    """Remove the lock entries of removed targets, remembering their outputs in ``record`` first (so
    ``prune`` can still find them). Returns the names dropped; the caller saves the lock."""
    dropped = [name for name in lock.entries if name not in targets]
    if not dropped:
        return []
    kept = _recorded(record)
    for name in dropped:
        kept.setdefault(name, {}).update({o.path: o.sha256 for o in lock.entries[name].outputs})
    atomic_write(record, json.dumps(kept, indent=1, sort_keys=True).encode("utf-8"), durable=True)
    for name in dropped:
        del lock.entries[name]
    return dropped


def forget(record: Path, gone: list[OrphanOutput]) -> None:
    """Forget the orphaned outputs ``gone`` (deleted by ``prune``) in ``record``."""
    kept = _recorded(record)
    if not kept:
        return
    for orphan in gone:
        kept.get(orphan.target, {}).pop(orphan.path, None)
    kept = {name: paths for name, paths in kept.items() if paths}
    atomic_write(record, json.dumps(kept, indent=1, sort_keys=True).encode("utf-8"), durable=True)
