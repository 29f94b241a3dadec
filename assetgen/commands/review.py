"""Review verdicts as commands: ``approve``, ``unapprove``, ``reject`` (``state.verdicts``).

A verdict is written into the lock with the hashes of the outputs it is given for, who gave it (git's
``user.email``, else user@host) and when; it lapses when those outputs change. Only what was built and
is on disk as built can be approved: approving a hand-modified file (adopt it first) or a stale target
(build it first) would bind the verdict to bytes nobody looked at. Nothing is submitted.
"""

from __future__ import annotations

import getpass
import socket
import subprocess
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path

from ..engine.plan import TargetPlan
from ..engine.project import Project
from ..errors import UsageError
from ..state.lockfile import Lock
from ..state.verdicts import Verdict


@dataclass
class Reviewed:
    name: str
    state: str            # the review state now: approved | rejected | unreviewed
    outputs: list[str]


def reviewer() -> str:
    """git's ``user.email`` where available, else user@host."""
    try:
        found = subprocess.run(["git", "config", "user.email"], capture_output=True, text=True, timeout=5,
                               check=False)
        email = found.stdout.strip()
        if found.returncode == 0 and email:
            return email
    except (OSError, subprocess.SubprocessError):
        pass
    try:
        user = getpass.getuser()
    except (OSError, KeyError):
        user = "unknown"
    return f"{user}@{socket.gethostname()}"


def _reviewable(item: TargetPlan, verdict: str) -> None:
    name = item.name
    if item.locked is None:
        raise UsageError(f"target '{name}' was never built: nothing to review; run `assetgen build {name}` first")
    if item.locked.placeholder:
        raise UsageError(f"target '{name}' holds placeholders (an offline build): build it for real, then review it")
    hand = [r.detail for r in item.reasons if r.kind == "hand"]
    if hand:
        raise UsageError(f"target '{name}': {', '.join(hand)} was modified by hand, so the verdict would not be "
                         f"for what is on disk; `assetgen adopt {name}` first (or rebuild it)")
    if verdict == "approved" and item.stale:
        why = "; ".join(map(str, item.reasons))
        raise UsageError(f"target '{name}' is not up to date ({why}): `assetgen build {name}`, look at the "
                         f"result, then approve it")


def set_verdict(path: Path, names: list[str], verdict: str | None, *, tags: tuple[str, ...] = (),
                note: str = "", profile: str | None = None, timeout: float = 600.0,
                by: str | None = None, lock: Lock | None = None) -> list[Reviewed]:
    """Record ``verdict`` (approved, rejected; None: withdraw it) for the named targets (names, globs,
    matrix names, ``tags``); every target is checked before the lock is written. ``lock``: the lock a
    watch holds in memory (with the build lock) and its builds save; the verdict goes into that object,
    on the watch's event loop (``Watcher.call``), or the watch's next save would drop it."""
    if not names and not tags:
        raise UsageError("name the targets to review (globs such as 'icon.*' and --tag TAG work)")
    project = Project.open(path, profile=profile, lock=lock)
    try:
        held = None if lock is not None else project.build_lock(timeout=timeout)
        try:
            if lock is None:
                project.reload_lock()
            chosen = project.manifest.expand(project.manifest.selection(names, tags))
            items = [i for i in project.plan(chosen).items if i.name in set(chosen)]
            if verdict is not None:
                for item in items:
                    _reviewable(item, verdict)
            who, when = (by or reviewer()), datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
            done = []
            for item in items:
                locked = project.lock.entries.get(item.name)
                if locked is None:
                    done.append(Reviewed(item.name, "unreviewed", []))
                    continue
                review = None if verdict is None else Verdict(
                    verdict=verdict, outputs=tuple(sorted((o.path, o.sha256) for o in locked.outputs)),
                    by=who, at=when, note=note)
                project.lock.entries[item.name] = replace(locked, review=review)
                done.append(Reviewed(item.name, verdict or "unreviewed", [o.path for o in locked.outputs]))
            project.lock.save()
            return done
        finally:
            if held is not None:
                held.release()
    finally:
        project.close()


# -- the gallery's buttons ---------------------------------------------------------------------------

ACTIONS = ("approve", "unapprove", "reject", "pick", "reroll")


def gallery_actions(path: Path, gallery_dir: Path, *, profile: str | None = None, timeout: float = 5.0,
                    in_watch: Callable[[Callable[[Lock], object]], object] | None = None,
                    ) -> Callable[[dict[str, str]], str]:
    """The live gallery's buttons as one callable for ``GalleryServer(actions=…)``: it runs the same
    function as the command (``set_verdict``, ``authoring.pick``/``reroll``), rewrites the page and
    returns what to tell the reviewer. Under a watch (which holds the build lock for its life),
    ``in_watch`` runs a verdict on the watch's event loop against the lock its builds save, and a pick
    is left to the watch's own rebuild (the manifest edit triggers it)."""
    from ..review.page import write_gallery
    from .authoring import pick, reroll

    def act(params: dict[str, str]) -> str:
        action, target = params.get("action", ""), params.get("target", "")
        if action not in ACTIONS:
            raise UsageError(f"unknown gallery action {action!r}; one of {', '.join(ACTIONS)}")
        if not target:
            raise UsageError(f"{action}: name the target")
        if action == "pick":
            choice = params.get("choice", "")
            if not choice.isdigit():
                raise UsageError(f"pick {target}: the candidate must be a number, not {choice!r}")
            pick(path, target, int(choice), profile=profile, apply=in_watch is None)
            message = f"Set pick = {choice} for {target}."
        elif action == "reroll":
            seed, outcome = reroll(path, target, profile=profile)
            message = f"Set seed = {seed} for {target}; the next build pays ${outcome.cost:.2f}."
        else:
            verdict = {"approve": "approved", "reject": "rejected", "unapprove": None}[action]
            note = params.get("note", "").strip()
            if verdict == "rejected" and not note:
                raise UsageError(f"reject {target}: say what is wrong (a note is required)")
            if in_watch is None:
                set_verdict(path, [target], verdict, note=note, profile=profile, timeout=timeout)
            else:
                in_watch(lambda lock: set_verdict(path, [target], verdict, note=note, profile=profile, lock=lock))
            message = {"approve": "Approved", "reject": "Rejected", "unapprove": "Withdrew the verdict on"}[
                action] + f" {target}."
        project = Project.open(path, profile=profile)
        try:
            write_gallery(project, out_dir=gallery_dir, live=True)
        finally:
            project.close()
        return message

    return act
