"""``assetgen history TARGET`` and ``assetgen restore TARGET N``: the prompt-iteration loop.

History is the ledger's accepted generations of a target (each with the canonical spec that made its
key), oldest first and numbered from 1, with the spec fields that differed from the one before, the
cost, and whether its images are still in the cache. Restore writes generation N's fields back into
the manifest (comments and layout kept, by ``manifest.edits``) and, when its images are cached, puts
its outputs back at once for free (as ``pick`` does): nothing is submitted.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..engine.events import QuietReporter
from ..engine.project import Project
from ..engine.spending import ledger_of
from ..errors import ManifestError, UsageError
from ..manifest.edits import with_target_fields, write_text
from ..manifest.loader import parse
from ..providers.offline import OfflineProvider
from .build import BuildOptions, build

# Canonical spec fields a manifest spells the same way (the rest — family, references, style — are
# reported but not written back).
RESTORABLE = ("prompt", "n", "seed", "aspect_ratio", "resolution")


@dataclass
class Generation:
    number: int
    time: str
    key: str
    model: str
    cost: float
    cached: bool
    spec: dict[str, Any]
    changed: dict[str, tuple[Any, Any]] = field(default_factory=dict)    # field → (before, after)


def history(project: Project, target: str) -> list[Generation]:
    if target not in project.manifest.targets:
        raise UsageError(f"there is no target '{target}' in {project.manifest.path}")
    entries, _damaged = ledger_of(project).entries()
    found: list[Generation] = []
    previous: dict[str, Any] | None = None
    for entry in entries:
        if entry.target != target or entry.outcome != "accepted" or entry.spec is None:
            continue
        if found and found[-1].key == entry.key:          # an n = 1 fallback's parts: one generation
            found[-1].cost += entry.amount
            continue
        spec = entry.spec
        changed = {k: ((previous or {}).get(k), spec.get(k)) for k in sorted(set(spec) | set(previous or {}))
                   if previous is not None and previous.get(k) != spec.get(k)}
        found.append(Generation(number=len(found) + 1, time=entry.time, key=entry.key, model=entry.model,
                                cost=entry.amount, cached=project.store.index.lookup(entry.key) is not None,
                                spec=spec, changed=changed))
        previous = spec
    return found


@dataclass
class Restored:
    generation: Generation
    written: list[str]              # fields written into the manifest
    applied: bool                   # outputs put back from the cache (free)
    note: str = ""


def restore(path: Path, target: str, number: int, *, profile: str | None = None) -> Restored:
    project = Project.open(path, profile=profile)
    try:
        generations = history(project, target)
        if not 1 <= number <= len(generations):
            raise UsageError(f"target '{target}' has {len(generations)} generation(s) in the ledger: restore one "
                             f"of 1 … {len(generations)} (see `assetgen history {target}`)")
        generation = generations[number - 1]
        current = project.plan([target]).items
        now = next(i.spec for i in current if i.name == target)
        wanted = {f: generation.spec[f] for f in RESTORABLE
                  if f in generation.spec and generation.spec[f] != now.get(f)}
        new_text = _reproducing_text(project, path, target, number, generation, wanted, profile)
    finally:
        project.close()
    if new_text is not None:              # checked in memory first: a restore that fails writes nothing
        write_text(path, new_text)
    written = list(wanted)
    project = Project.open(path, profile=profile)
    try:
        plan = project.plan([target])
        if not all(i.action in ("none", "restore") for i in plan.items):
            return Restored(generation, written, False, note="its images are no longer cached: a build pays anew")
        asyncio.run(build(project, BuildOptions(targets=(target,), offline=True), provider=OfflineProvider(),
                          reporter=QuietReporter()))
        return Restored(generation, written, True)
    finally:
        project.close()


def _reproducing_text(project: Project, path: Path, target: str, number: int, generation: Generation,
                      wanted: dict[str, Any], profile: str | None) -> str | None:
    """The manifest text that gives ``target`` generation N's key (None: the manifest already does), or
    ``UsageError`` saying why no edit of its own fields can, with nothing written.

    The ledger keeps the composed prompt (the target's, then its style's fragment after a blank line), so
    with a style the candidates are the prompt with a trailing fragment cut off; each candidate is loaded
    and keyed in memory and only one that reproduces the key is accepted."""
    if not wanted:
        if project.keyed[target].key == generation.key:
            return None
        raise UsageError(_cannot(target, number, generation, project, "fields a manifest cannot be set to from "
                                 "here (model family, references or style)"))
    base = project.manifest.targets[target].base or target
    if base != target:
        raise UsageError(_cannot(target, number, generation, project,
                                 f"{', '.join(sorted(wanted))}, and '{target}' is a row of the matrix "
                                 f"[targets.{base}], whose fields every row shares (its prompt is a template)"))
    prompts = [wanted["prompt"]] if "prompt" in wanted else [None]
    if project.manifest.targets[target].style and "prompt" in wanted:
        composed: str = wanted["prompt"]
        prompts = [composed[:i].strip() for i in _blank_lines(composed)] + prompts
    for prompt in prompts:
        fields = dict(wanted) if prompt is None else {**wanted, "prompt": prompt}
        text = with_target_fields(path, target, fields)
        try:
            manifest = parse(text, path.resolve(), shown=str(path), profile=profile)
        except ManifestError:
            continue
        trial = Project(manifest, store=project.store, lock=project.lock, use_remote=False)
        if target in trial.keyed and trial.keyed[target].key == generation.key:
            return text
    raise UsageError(_cannot(target, number, generation, project,
                             f"{', '.join(sorted(wanted))} in a way that writing them back does not reproduce "
                             "(the ledger keeps the prompt composed with the style's fragment, or its style, model "
                             "family or references changed since)"))


def _blank_lines(text: str) -> list[int]:
    """Where a style's fragment may begin: each blank line, the last first."""
    found, at = [], text.rfind("\n\n")
    while at > 0:
        found.append(at)
        at = text.rfind("\n\n", 0, at)
    return found


def _cannot(target: str, number: int, generation: Generation, project: Project, why: str) -> str:
    return (f"cannot restore generation {number} of '{target}' ({generation.time[:19]}): it differs from "
            f"{project.manifest.path.name} in {why}; nothing was written. Edit [targets."
            f"{project.manifest.targets[target].base or target}] by hand (`assetgen history {target}` shows "
            f"generation {number}'s fields) and `assetgen plan` shows whether it is restored for free")
