"""Review decisions as commands: ``pick`` a candidate, ``reroll`` for fresh ones, a contact sheet.

``pick`` and ``reroll`` edit the manifest in place (``manifest.edits``, comments kept): a matrix table's
``pick``/``seed``, or one row's override in ``[targets.X.rows."a.b"]``; neither submits
anything. ``pick`` applies the choice at once when the candidates are cached (a local derivation), and
``reroll`` reports what the next build will pay.
"""

from __future__ import annotations

import secrets
import sys
from dataclasses import dataclass
from pathlib import Path

from ..engine.plan import TargetPlan
from ..engine.project import Project
from ..errors import UsageError
from ..images.derive import contact_sheet
from ..manifest.edits import set_target_field
from ..manifest.model import MAX_SEED, Target
from ..state.atomic import atomic_write


@dataclass
class Outcome:
    rows: list[TargetPlan]          # the plan of the affected targets after the edit
    applied: list[str]              # outputs rewritten from cached candidates (pick)
    cost: float                     # what the next build will pay for them


def _candidates_target(project: Project, name: str) -> tuple[str, str | None, list[Target]]:
    """The ``[targets.X]`` table behind ``name``, the matrix row named (None: the whole table) and the
    targets the edit affects: all of a table's rows, or the one row."""
    manifest = project.manifest
    rows = [manifest.targets[n] for n in manifest.expand([name])]
    if name not in manifest.groups and rows[0].base != name:
        base = rows[0].base
        return base, name[len(base) + 1:], rows          # one row: its override table is edited
    return rows[0].base or name, None, rows


def pick(path: Path, name: str, choice: int, *, profile: str | None = None, apply: bool = True) -> Outcome:
    """Write ``pick = choice`` for ``name`` (a row: its override) and, when every image it needs is
    cached and ``apply``, re-derive its outputs now (``apply=False`` under a watch: its rebuild does)."""
    project = Project.open(path, profile=profile)
    base, row, rows = _candidates_target(project, name)
    if not rows[0].candidates:
        raise UsageError(f"target '{name}' has no candidates to pick from; set `candidates = N` on it first")
    if not 1 <= choice <= rows[0].n:
        raise UsageError(f"target '{name}' has {rows[0].n} candidates: pick one of 1 … {rows[0].n}")
    project.close()
    set_target_field(path, base, "pick", choice, row=row)
    project = Project.open(path, profile=profile)
    try:
        names = [t.name for t in rows]
        placeholders = all((e := project.lock.entries.get(n)) is not None and e.placeholder for n in names)
        plan = project.plan(names, offline=placeholders or None)
        items = [i for i in plan.items if i.name in names]
        applied: list[str] = []
        if apply and all(i.action in ("none", "restore") for i in plan.items):   # upstream too: nothing to pay
            import asyncio

            from ..engine.events import QuietReporter
            from ..providers.offline import OfflineProvider
            from .build import BuildOptions, build

            # Every image needed is cached: re-deriving is local, so apply the pick now.
            options = BuildOptions(targets=tuple(names), offline=placeholders)
            asyncio.run(build(project, options, provider=OfflineProvider(), reporter=QuietReporter(),
                              on_wait=_say_waiting))
            applied = [o for i in items for o in i.target.output_paths]
        return Outcome(rows=items, applied=applied, cost=sum(i.cost for i in items if i.action == "generate"))
    finally:
        project.close()


def _say_waiting() -> None:
    print("Another build of this manifest is running; waiting for it to finish (Ctrl-C to stop)…",
          file=sys.stderr, flush=True)


def reroll(path: Path, name: str, *, profile: str | None = None, seed: int | None = None) -> tuple[int, Outcome]:
    project = Project.open(path, profile=profile)
    base, row, rows = _candidates_target(project, name)
    old = rows[0].seed
    project.close()
    new = seed if seed is not None else old
    while new == old:
        new = secrets.randbelow(MAX_SEED + 1)
    set_target_field(path, base, "seed", new, row=row)
    project = Project.open(path, profile=profile)
    try:
        names = [t.name for t in rows]
        items = [i for i in project.plan(names, offline=False).items if i.name in names]
        return new, Outcome(rows=items, applied=[], cost=sum(i.cost for i in items))
    finally:
        project.close()


def write_contact_sheet(project: Project, name: str, out: Path | None = None) -> Path:
    """A PNG of ``name``'s cached candidates side by side (the picked one framed); returns its path."""
    if name not in project.manifest.targets:
        rows = project.manifest.expand([name])     # an unknown name raises here
        raise UsageError(f"'{name}' names {len(rows)} matrix rows; give one, e.g. '{rows[0]}'")
    target = project.manifest.targets[name]
    key = project.keyed[name].key
    entry = project.store.index.lookup(key, placeholder_ok=True)
    if entry is None:
        raise UsageError(f"the candidates of '{name}' are not in the local cache yet; run "
                         f"`assetgen build {name}` first")
    images = [project.store.read_image(i) for i in entry.images]
    if any(i is None for i in images):
        raise UsageError(f"some candidates of '{name}' are missing from the cache; run `assetgen build {name}`")
    sheet = contact_sheet([i for i in images if i is not None],
                          picked=target.pick if target.candidates else None)
    path = out or project.cache_dir / "candidates" / f"{name}.png"
    atomic_write(path, sheet, durable=False)
    return path
