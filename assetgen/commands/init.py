"""``assetgen init``: write the commented starter manifest, and keep the cache folder out of git."""

from __future__ import annotations

import subprocess
from pathlib import Path

from ..engine.project import CACHE_DIR
from ..manifest.starter import STARTER_MANIFEST
from .merge_lock import ATTRIBUTE


def init(path: Path) -> Path:
    """Write the starter manifest at ``path`` (over any file there: the caller asked), ignore the cache
    beside it and give its lock the merge driver (``.gitattributes``); returns the ``.gitignore``'s path."""
    path.write_text(STARTER_MANIFEST, encoding="utf-8")
    merge_lock_attribute(path.parent, path.with_suffix(".lock").name)
    return ignore_cache(path.parent)


def merge_lock_attribute(folder: Path, lock: str) -> Path:
    """Add ``LOCK merge=assetgen-lock`` to ``folder``'s ``.gitattributes`` unless a line there names it."""
    attributes = folder / ".gitattributes"
    lines = attributes.read_text(encoding="utf-8").splitlines() if attributes.exists() else []
    if not any(line.split()[:1] == [lock] and ATTRIBUTE in line.split() for line in lines):
        with attributes.open("a", encoding="utf-8") as handle:
            if lines and lines[-1].strip():
                handle.write("\n")
            handle.write(f"# assetgen merges its lock target by target (see `assetgen merge-lock --help`)\n"
                         f"{lock} {ATTRIBUTE}\n")
    return attributes


def ignore_cache(folder: Path) -> Path:
    """Add ``.assetgen/`` to ``folder``'s ``.gitignore`` unless a line there ignores it already."""
    ignore = folder / ".gitignore"
    lines = ignore.read_text(encoding="utf-8").splitlines() if ignore.exists() else []
    if not any(line.strip().rstrip("/") in (CACHE_DIR, "/" + CACHE_DIR) for line in lines):
        with ignore.open("a", encoding="utf-8") as handle:
            if lines and lines[-1].strip():
                handle.write("\n")
            handle.write(f"# assetgen's local cache\n{CACHE_DIR}/\n")
    return ignore


def in_git_work_tree(folder: Path) -> bool:
    """Whether ``folder`` is inside a git work tree (where enabling the lock's merge driver applies);
    False without git."""
    try:
        done = subprocess.run(["git", "rev-parse", "--is-inside-work-tree"], cwd=folder, capture_output=True,
                              text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return False
    return done.returncode == 0 and done.stdout.strip() == "true"
