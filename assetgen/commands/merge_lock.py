"""``assetgen merge-lock``: a git merge driver for ``assets.lock``, target by target.

Git calls it with the common ancestor's, our and their version of the lock (``%O %A %B``) and takes what it
leaves in ours (``%A``) as the merge. Each target is merged on its own, as a three-way merge of its entry:
changed on one side only, that side wins; changed the same way on both (the same build; only ``built_at``
may differ), either; changed differently on both, a real conflict. A conflict is written as git's conflict
markers around the two versions of that target's block, the rest merged; the driver exits 1, so git stops
the merge with the file listed as conflicting, and the lock does not parse until someone chooses.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import tomli_w

from ..errors import StateError
from ..state.atomic import atomic_write
from ..state.lockfile import HEADER, LOCK_VERSION, Lock, LockEntry, _sorted, entry_text

ATTRIBUTE = "merge=assetgen-lock"
DRIVER_CONFIG = 'git config merge.assetgen-lock.driver "assetgen merge-lock %O %A %B %P"'


@dataclass
class MergeResult:
    merged: int = 0                                        # targets in the result
    taken_theirs: list[str] = field(default_factory=list)  # changed (added, removed) on their side only
    conflicts: list[str] = field(default_factory=list)     # changed differently on both sides


def _entries(path: Path, what: str) -> tuple[dict[str, LockEntry], dict[str, dict[str, Any]]]:
    """A version's entries and sprite-sheet records; an empty or missing file (no common ancestor, a lock
    added on a branch) has none."""
    if not path.exists() or not path.read_bytes().strip():
        return {}, {}
    try:
        lock = Lock.load(path)
    except StateError as exc:
        raise StateError(f"{what}: {exc}") from None
    return dict(lock.entries), dict(lock.sheets)


def _sheets(old: dict[str, Any], mine: dict[str, Any], other: dict[str, Any]) -> dict[str, Any]:
    """The sheet records, three-way; one changed differently on both sides is left out: the next build
    remakes that sheet from its members' outputs, for free."""
    merged = {}
    for name in sorted(set(old) | set(mine) | set(other)):
        before, a, b = old.get(name), mine.get(name), other.get(name)
        chosen = a if a == b or before == b else b if before == a else None
        if chosen is not None:
            merged[name] = chosen
    return merged


def _same(a: LockEntry | None, b: LockEntry | None) -> bool:
    """The same build of a target: equal but for when it was recorded."""
    if a is None or b is None:
        return a is b
    return replace(a, built_at="") == replace(b, built_at="")


def merge_locks(base: Path, ours: Path, theirs: Path, *, shown: str = "assets.lock",
                marker: int = 7) -> MergeResult:
    """Merge ``theirs`` into ``ours`` (rewritten in place, as git expects) against ``base``."""
    (old, old_sheets), (mine, my_sheets), (other, other_sheets) = (
        _entries(base, "the common ancestor's lock"), _entries(ours, shown), _entries(theirs, "their lock"))
    result = MergeResult()
    parts = [HEADER, f"version = {LOCK_VERSION}\n"]
    sheets = _sheets(old_sheets, my_sheets, other_sheets)
    if sheets:                  # before the targets, where ``Lock.render`` puts them
        parts.append("\n" + tomli_w.dumps(_sorted({"sheets": sheets})))
    for name in sorted(set(old) | set(mine) | set(other)):
        before, a, b = old.get(name), mine.get(name), other.get(name)
        if _same(a, b) or _same(before, b):
            chosen = a
        elif _same(before, a):
            chosen = b
            result.taken_theirs.append(name)
        else:
            result.conflicts.append(name)
            parts.append("\n" + _conflict(name, a, b, marker))
            continue
        if chosen is not None:
            result.merged += 1
            parts.append("\n" + entry_text(name, chosen))
    atomic_write(ours, "".join(parts).encode("utf-8"), durable=True)
    return result


def _conflict(name: str, ours: LockEntry | None, theirs: LockEntry | None, size: int) -> str:
    def side(entry: LockEntry | None) -> str:
        return entry_text(name, entry) if entry is not None else f"# (targets.{name} removed on this side)\n"

    return (f"{'<' * size} ours\n{side(ours)}{'=' * size}\n{side(theirs)}{'>' * size} theirs\n")


def targets_count(n: int) -> str:
    """"1 target", "2 targets"."""
    return f"{n} target" if n == 1 else f"{n} targets"


def conflict_help(result: MergeResult, shown: str) -> list[str]:
    """What to tell the person resolving the merge."""
    if not result.conflicts:
        return []
    names = ", ".join(result.conflicts)
    return [f"{shown}: {targets_count(len(result.conflicts))} built differently on both branches: {names}.",
            f"Keep one side's [targets.NAME] block between the <<<<<<< and >>>>>>> markers in {shown} (or delete "
            f"both: the next `assetgen build` then rebuilds it, restoring from the cache what it already has), "
            f"then `git add {shown}`."]
