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
from ..errors import UsageError
from ..manifest.edits import set_target_field
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
    finally:
        project.close()
    written = [f for f in RESTORABLE if f in generation.spec and generation.spec[f] != now.get(f)]
    for name in written:
        set_target_field(path, target, name, generation.spec[name])
    project = Project.open(path, profile=profile)
    try:
        plan = project.plan([target])
        item = next(i for i in plan.items if i.name == target)
        if item.key != generation.key:
            return Restored(generation, written, False,
                            note="its spec differs in fields a manifest cannot be set to from here (model "
                                 "family, references or style); `assetgen plan` shows what a build would do")
        if not all(i.action in ("none", "restore") for i in plan.items):
            return Restored(generation, written, False, note="its images are no longer cached: a build pays anew")
        asyncio.run(build(project, BuildOptions(targets=(target,), offline=True), provider=OfflineProvider(),
                          reporter=QuietReporter()))
        return Restored(generation, written, True)
    finally:
        project.close()
