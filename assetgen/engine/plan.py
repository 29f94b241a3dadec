"""What a build would do, and why: (manifest keys, lock, local cache, file hashes) → ``Plan``.

Each target gets an action and the reasons that make it stale (doit's ``DependencyStatus``), so
``plan``, ``explain``, ``--json`` and ``build`` print and act on one computation and never recompute.
Nothing here writes except the stat cache, and nothing touches the network.

A derived output (resized, converted, picked) is stale when the lock says it was made from another
image than the one its generation has now ("derived from an older image"): the lock records each
output's ``source`` (SHA-256), and the outputs of one generated image must agree on it. This is decided
from the lock alone, so a no-op reads no cache index.

Actions, cheapest first:
  ``none``      up to date: key equals the lock's and every output has its locked hash
  ``restore``   the images for this key are in the cache (or still on disk): copied, free
  ``share``     another target in this plan generates the same key: one task serves both, free
  ``resume``    a task an interrupted build submitted (paid already): collected, not resubmitted
  ``generate``  a paid task (or a placeholder offline)
  ``blocked``   an output was changed by hand: left alone unless --force
  ``uncertain`` a submission may have been paid for but its task id never arrived (or its journal record
                is damaged or given up): not submitted again unless ``build --retry-uncertain``
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, assert_never

from ..images.derive import derivation_key, legacy_derivation_key
from ..manifest.model import Manifest, Output, Target
from ..state.lockfile import Lock, LockEntry, LockedOutput
from ..state.index import CachedImage, IndexEntry
from ..state.store import Store
from ..state.verdicts import review_state
from .keys import KeyedTarget
from .orphans import OrphanOutput

_SPEC_FIELDS = ("family", "action", "prompt", "n", "seed", "aspect_ratio", "resolution",
                "google_search", "google_image_search", "openai")


class Action(StrEnum):
    """What a build does with a target (see the module docstring); the value is what ``--json`` shows."""

    NONE = "none"
    RESTORE = "restore"
    SHARE = "share"
    RESUME = "resume"
    GENERATE = "generate"
    BLOCKED = "blocked"
    UNCERTAIN = "uncertain"


class ReasonKind(StrEnum):
    """Why a target is stale; the value is what ``--json`` shows."""

    NEW = "new"
    SPEC = "spec"
    REFERENCE = "reference"
    UPSTREAM = "upstream"
    STYLE = "style"
    DERIVE = "derive"
    SOURCE = "source"
    LEGACY = "legacy"
    MISSING = "missing"
    HAND = "hand"
    PLACEHOLDER = "placeholder"
    UNCERTAIN = "uncertain"
    RETOUCHED = "retouched"


@dataclass(frozen=True)
class Reason:
    kind: ReasonKind
    detail: str = ""

    def __str__(self) -> str:
        return _reason_text(self.kind).format(self.detail)


def _reason_text(kind: ReasonKind) -> str:  # noqa: C901 (one flat case per kind; mypy checks it is exhaustive)
    match kind:
        case ReasonKind.NEW:
            return "new target"
        case ReasonKind.SPEC:
            return "spec changed: {}"
        case ReasonKind.REFERENCE:
            return "reference changed: {}"
        case ReasonKind.UPSTREAM:
            return "upstream changed: {}"
        case ReasonKind.MISSING:
            return "output missing: {}"
        case ReasonKind.HAND:
            return "modified by hand: {}"
        case ReasonKind.PLACEHOLDER:
            return "placeholder to be replaced"
        case ReasonKind.STYLE:
            return "style {} changed"
        case ReasonKind.DERIVE:
            return "output settings changed: {}"
        case ReasonKind.SOURCE:
            return "derived from an older image: {}"
        case ReasonKind.LEGACY:
            return "derived from an unrecorded image (lock written by an older assetgen): {}"
        case ReasonKind.UNCERTAIN:
            return "{}"
        case ReasonKind.RETOUCHED:
            return "retouched; {}"
        case _:
            assert_never(kind)


@dataclass
class TargetPlan:
    name: str
    keyed: KeyedTarget
    action: Action
    reasons: list[Reason] = field(default_factory=list)
    cost: float = 0.0                           # at the submitted model's price
    max_cost: float = 0.0                       # with official_fallback: at the official price
    shares_with: str | None = None
    retry_cost: float = 0.0                     # uncertain: what `build --retry-uncertain` would pay
    cached: IndexEntry | None = None            # where restore takes its images from
    remote: bool = False                        # ... which are in the remote cache, not yet local
    locked: LockEntry | None = None
    retouched: bool = False                     # its outputs on disk are an artist's (``adopt``)
    review: str = "unreviewed"                  # approved | rejected | lapsed | unreviewed (``verdicts``)
    same_grid: bool = False                     # a grid's cell whose one generation another cell pays for

    @property
    def sharing(self) -> str | None:
        """What ``plan`` and ``build`` say of a target whose generation another target pays for."""
        if self.same_grid:
            return f"one grid image with {self.shares_with}"
        return f"shares with {self.shares_with}: paid once" if self.shares_with else None

    def grid_json(self) -> dict[str, Any]:
        """A grid cell's grid, for ``plan --json``: its cells read as one generation (``paid_by``: the
        cell whose generation this plan pays, itself or another cell; None when nothing is generated)."""
        assert self.target.grid is not None
        cols, rows = self.target.grid
        paid_by = self.name if self.action == Action.GENERATE else self.shares_with if self.same_grid else None
        return {"target": self.target.base, "cols": cols, "rows": rows, "cells": cols * rows,
                "label": grid_label(self.target.base, self.target.grid, cols * rows), "paid_by": paid_by,
                **({"cost_per_cell": round(self.cost / (cols * rows), 6)} if paid_by == self.name else {})}

    @property
    def needs_review(self) -> bool:
        return self.review in ("unreviewed", "lapsed")

    @property
    def target(self) -> Target:
        return self.keyed.target

    @property
    def key(self) -> str:
        return self.keyed.key

    @property
    def spec(self) -> dict[str, Any]:
        return self.keyed.spec

    @property
    def stale(self) -> bool:
        return self.action != Action.NONE

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name, "key": self.key, "action": self.action, "stale": self.stale,
            "reasons": [{"kind": r.kind, "detail": r.detail, "text": str(r)} for r in self.reasons],
            "model": self.target.model, "provider": self.target.provider, "n": self.target.n,
            "cost": round(self.cost, 6),
            "max_cost": round(self.max_cost, 6), "shares_with": self.shares_with, "sharing": self.sharing,
            **({"retry_cost": round(self.retry_cost, 6)} if self.action == Action.UNCERTAIN else {}),
            "outputs": list(self.target.output_paths), "base": self.target.base,
            "retouched": self.retouched,
            "tags": list(self.target.tags), "notes": self.target.notes, "meta": self.target.meta or {},
            "review": self.locked.review.to_json(self.review) if self.locked and self.locked.review
            else {"state": self.review},
            **({"grid": self.grid_json()} if self.target.grid is not None else {}),
        }


def grid_label(base: str, grid: tuple[int, int], count: int) -> str:
    """How ``plan`` and ``build`` name ``count`` cells of a grid target: ``potions (4×4 grid, 16 cells)``
    when they are all of them, else ``potions (3 of 16 cells)``."""
    cols, rows = grid
    if count == cols * rows:
        return f"{base} ({cols}×{rows} grid, {count} cells)"
    return f"{base} ({count} of {cols * rows} cells)"


@dataclass
class Plan:
    items: list[TargetPlan]
    offline: bool
    orphans: list[OrphanOutput] = field(default_factory=list)     # of removed targets: listed, not stale

    @property
    def stale(self) -> list[TargetPlan]:
        return [i for i in self.items if i.stale]

    @property
    def unapproved(self) -> list[TargetPlan]:
        """Targets whose art is not approved as it stands (``plan --check --approved``)."""
        return [i for i in self.items if i.stale or i.review != "approved"]

    @property
    def total_cost(self) -> float:
        return sum(i.cost for i in self.items)

    @property
    def max_cost(self) -> float:
        return sum(i.max_cost for i in self.items)

    def __repr__(self) -> str:           # short: the default one lists every target (see BuildReport)
        return f"Plan({len(self.items)} targets, {len(self.stale)} stale, offline={self.offline})"

    def count(self, action: Action) -> int:
        return sum(1 for i in self.items if i.action == action)

    def to_json(self) -> dict[str, Any]:
        return {
            "offline": self.offline,
            "targets": [i.to_json() for i in self.items],
            "stale": len(self.stale), "up_to_date": self.count(Action.NONE),
            "to_generate": self.count(Action.GENERATE), "total_cost": round(self.total_cost, 6),
            "max_cost": round(self.max_cost, 6),
            "orphans": [o.to_json() for o in self.orphans],
        }


BATCHED = ("gemini", "openai")            # providers whose targets `--batch` sends in a batch job (half price)


def batch_prices(plan: Plan) -> Plan:
    """``--batch``: the targets of a batching provider at the batch price (half)."""
    for item in plan.items:
        if item.target.provider in BATCHED and item.action in ("generate", "uncertain"):
            item.cost, item.max_cost, item.retry_cost = item.cost / 2, item.max_cost / 2, item.retry_cost / 2
    return plan


def price(target: Target) -> tuple[float, float]:
    """(cost, upper bound) in USD of generating this target once."""
    model = target.spec_model
    cost = target.unit_price * target.n
    bound = model.official.price * target.n if target.official_fallback else cost
    return cost, max(cost, bound)


def spec_reasons(spec: dict[str, Any], locked: LockEntry) -> list[Reason]:
    """Why ``spec`` differs from the spec recorded in the lock, field by field."""
    old = locked.spec
    reasons: list[Reason] = []
    changed = [f for f in _SPEC_FIELDS if old.get(f) != spec.get(f)]
    old_style, new_style = old.get("style") or {}, spec.get("style") or {}
    if old_style.get("name") != new_style.get("name"):
        changed.append("style")
    elif new_style and old_style.get("digest") != new_style.get("digest"):
        # The style's edit shows up in the composed prompt and fields; name the cause, not the effect.
        reasons.append(Reason(ReasonKind.STYLE, str(new_style["name"])))
        changed = []
    new_refs, old_refs = spec["references"], old.get("references", [])
    if [r["ref"] for r in new_refs] != [r.get("ref") for r in old_refs]:
        changed.append("references")
    else:
        for new, prev in zip(new_refs, old_refs, strict=True):    # same refs: checked just above
            if new["digest"] != prev.get("digest"):
                kind = ReasonKind.UPSTREAM if new["ref"].startswith("@") else ReasonKind.REFERENCE
                reasons.append(Reason(kind, new["ref"]))
    if changed:
        label = ["model" if f == "family" else f for f in changed]
        reasons.insert(0, Reason(ReasonKind.SPEC, ", ".join(label)))
    return reasons


def make_plan(manifest: Manifest, keyed: dict[str, KeyedTarget], lock: Lock, store: Store, *,
              selection: list[str] | None = None, offline: bool = False, force: bool = False,
              in_flight: dict[str, int] | None = None, uncertain: dict[str, str] | None = None,
              retry_uncertain: bool | frozenset[str] = False,
              remote_lookup: Callable[[str], IndexEntry | None] | None = None) -> Plan:
    names = selection if selection is not None else list(keyed)
    items: list[TargetPlan] = []
    generating: dict[str, str] = {}             # key → first target that generates it in this plan
    root = os.path.join(str(manifest.root), "")     # with its separator: joined by concatenation below
    # A fresh clone knows no output's hash: take them in parallel threads first (a no-op: nothing here).
    store.stat.prefetch([root + out.path for name in names for out in keyed[name].target.outputs])
    for name in names:
        kt = keyed[name]
        locked = lock.entries.get(name)
        item = TargetPlan(name=name, keyed=kt, action=Action.NONE, locked=locked)
        reasons = item.reasons
        same_key = locked is not None and locked.key == kt.key
        if locked is None:
            reasons.append(Reason(ReasonKind.NEW))
        elif not same_key:
            reasons.extend(spec_reasons(kt.spec, locked) or [Reason(ReasonKind.SPEC, "key recipe")])
        elif locked.placeholder and not offline:
            reasons.append(Reason(ReasonKind.PLACEHOLDER))
        hand = _output_reasons(kt, locked, store, offline, root, reasons)
        reasons.extend(Reason(ReasonKind.HAND, out) for out in hand)
        item.retouched = locked is not None and any(o.generated for o in locked.outputs)
        if locked is not None and locked.review is not None:
            item.review = review_state(locked.review, {o.path: o.sha256 for o in locked.outputs})
        if reasons and item.retouched and not force and not hand:
            _keep_retouch(item, same_key)
        elif reasons:
            _decide(item, hand, store, generating, offline, force, in_flight or {}, remote_lookup, root)
            if uncertain and item.action in (Action.GENERATE, Action.SHARE) and kt.key in uncertain and not offline:
                retried = retry_uncertain is True or bool(retry_uncertain and name in retry_uncertain)
                _uncertain(item, uncertain[kt.key], retried=retried)
        items.append(item)
    _mark_grid_cells(items)
    return Plan(items=items, offline=offline)


def _mark_grid_cells(items: list[TargetPlan]) -> None:
    """A grid's cells have one key: the first pays and the others share it. That is one generation of
    one target, not targets reusing another's image: ``same_grid`` says so (no "shared", no savings)."""
    bases = {i.name: i.target.base for i in items if i.target.grid is not None}
    for item in items:
        if item.action == Action.SHARE and item.target.grid is not None:
            item.same_grid = bases.get(item.shares_with or "") == item.target.base


def _output_reasons(kt: KeyedTarget, locked: LockEntry | None, store: Store, offline: bool, root: str,
                    reasons: list[Reason]) -> list[str]:
    """Add why each output on disk makes ``kt`` stale to ``reasons``; return the outputs changed by hand."""
    same_key = locked is not None and locked.key == kt.key
    locked_outputs = {o.path: o for o in locked.outputs} if locked else {}
    images = _locked_images(kt.target, locked_outputs) if same_key else {}
    hand: list[str] = []
    for out in kt.target.outputs:
        current = store.stat.probe(root + out.path)     # plain strings: 10k of these add up
        previous = locked_outputs.get(out.path)
        if current is None:
            if same_key:
                reasons.append(Reason(ReasonKind.MISSING, out.path))
        elif previous is None or current != previous.sha256:
            # A file we did not write (or wrote and someone changed): never overwrite it silently.
            if current not in _expected_shas(store, kt.key, out, offline):
                hand.append(out.path)
        elif same_key:
            reason = _derived_reason(kt.key, out, previous, images)
            if reason is not None:
                reasons.append(reason)
    return hand


def output_key(source_sha256: str, out: Output, *, converted: bool = False) -> str:
    """The derivation key recorded for an output made from the image ``source_sha256`` ("" when it is
    that image as it is; ``converted``: a copy had to be re-encoded, e.g. a PNG served for a .jpg)."""
    if out.derivation.identity and not converted:
        return ""
    return derivation_key(source_sha256, out.derivation)


def _locked_images(target: Target, locked_outputs: dict[str, LockedOutput]) -> dict[int, str | None]:
    """Generated images (by index) whose locked outputs disagree on the ``source`` they were made from,
    each with the image the lock vouches for now: the source of an output that is that image byte for
    byte (none: None, every output of it is remade). Empty for the usual, consistent lock."""
    if len(target.outputs) < 2:
        return {}
    sources: dict[int, set[str]] = {}
    plain: dict[int, str] = {}
    for out in target.outputs:
        previous = locked_outputs.get(out.path)
        if previous is not None:
            sources.setdefault(out.source, set()).add(previous.source)
            if not previous.derivation:
                plain[out.source] = previous.source
    return {index: plain.get(index) for index, found in sources.items() if len(found) > 1}


def _derived_reason(key: str, out: Output, previous: LockedOutput, images: dict[int, str | None]) -> Reason | None:
    """Why an output that is on disk as locked is stale all the same: made from an older image, or
    with other settings than the manifest's now. None when it is up to date."""
    if out.source in images and previous.source != images[out.source]:
        return Reason(ReasonKind.SOURCE, out.path)
    if previous.derivation == output_key(previous.source, out):
        return None
    if out.derivation.identity and previous.derivation == output_key(previous.source, out, converted=True):
        return None             # the served image was not a JPEG: its .jpg output is a converted copy
    if previous.derivation == legacy_derivation_key(key, out.source, out.derivation):
        return Reason(ReasonKind.LEGACY, out.path)
    return Reason(ReasonKind.DERIVE, out.path)


def _expected_shas(store: Store, key: str, out: Output, offline: bool) -> set[str]:
    """The hashes this output would have if built now from the cache, as far as the cache knows."""
    entry = store.index.lookup(key, placeholder_ok=offline)
    if entry is None or out.source >= len(entry.images):
        return set()
    source = entry.images[out.source].sha256
    found = {source} if out.derivation.identity else set()
    derived = store.index.derived(derivation_key(source, out.derivation))
    if derived is not None:
        found.add(derived.sha256)
    return found


def _decide(item: TargetPlan, hand: list[str], store: Store, generating: dict[str, str],
            offline: bool, force: bool, in_flight: dict[str, int],
            remote_lookup: Callable[[str], IndexEntry | None] | None, root: str) -> None:
    if hand and not force:
        item.action = Action.BLOCKED
        return
    cached = store.index.lookup(item.key, placeholder_ok=offline)
    if cached is None and item.locked is not None and item.locked.key == item.key:
        cached = _entry_from_lock(item.locked, item.target, store, offline, root)
    if cached is not None and len(cached.images) < item.target.n:
        cached = None
    if cached is None and remote_lookup is not None and item.key not in generating and item.key not in in_flight:
        cached = remote_lookup(item.key)             # read-only: the cost shown is what a build pays
        item.remote = cached is not None
    if cached is not None:
        item.action, item.cached = Action.RESTORE, cached
    elif item.key in generating:
        item.action, item.shares_with = Action.SHARE, generating[item.key]
    elif item.key in in_flight and not offline:
        item.action = Action.RESUME
        generating[item.key] = item.name
        missing = item.target.n - in_flight[item.key]
        if missing > 0:             # an interrupted n = 1 fallback: the build pays for the missing tasks
            cost, bound = price(item.target)
            item.cost, item.max_cost = cost * missing / item.target.n, bound * missing / item.target.n
    else:
        item.action = Action.GENERATE
        generating[item.key] = item.name
        if not offline:
            item.cost, item.max_cost = price(item.target)


def _keep_retouch(item: TargetPlan, same_key: bool) -> None:
    """A retouched target (``adopt``) is never regenerated nor restored over without ``--force``: that
    would pay for, or write over, what the artist made. Blocked, with both ways out."""
    why = "spec changed" if not same_key else "output missing"
    item.reasons.append(Reason(ReasonKind.RETOUCHED, f"{why}: `assetgen build --force {item.name}` "
                                                     f"regenerates and replaces it, `assetgen adopt "
                                                     f"{item.name}` keeps it for the "
                                                     f"{'new spec' if not same_key else 'spec'}"))
    item.action = Action.BLOCKED


def _uncertain(item: TargetPlan, why: str, *, retried: bool = False) -> None:
    """A build would not submit this key again: it may have been paid for already (see ``journal``).
    Its price is kept as ``retry_cost``; a build with ``--retry-uncertain`` (``retried``) pays it, so it
    counts in the plan's cost and the budget then (a share of a key is priced by its first target)."""
    was_share = item.action == Action.SHARE
    item.action, item.shares_with = Action.UNCERTAIN, None
    item.retry_cost = 0.0 if was_share else item.cost or price(item.target)[0]
    if not retried or was_share:
        item.cost, item.max_cost = 0.0, 0.0
    elif not item.cost:
        item.cost, item.max_cost = price(item.target)
    item.reasons.append(Reason(ReasonKind.UNCERTAIN, why))


def _entry_from_lock(locked: LockEntry, target: Target, store: Store, offline: bool,
                     root: str) -> IndexEntry | None:
    """The lock's own images, if each is still in the object store, or on disk as an output that is
    that image byte for byte (e.g. after an output move, or a derived output to remake on a clone).

    Not for targets with candidates: the lock does not record the unpicked ones.
    """
    if locked.placeholder and not offline or target.candidates:
        return None
    by_path = {o.path: o for o in locked.outputs}
    found: dict[int, CachedImage] = {}
    for out in target.outputs:
        previous = by_path.get(out.path)
        if previous is None or previous.derivation or out.source in found:
            continue
        image = CachedImage(previous.sha256, previous.size)
        if store.has_image(image) or store.stat.probe(root + out.path) == image.sha256:
            found[out.source] = image
    if sorted(found) != list(range(target.n)):
        return None
    images = tuple(found[index] for index in range(target.n))
    return IndexEntry(key=locked.key, images=images, model=locked.model, task_id=locked.task_id,
                      cost=locked.cost, placeholder=locked.placeholder, built_at=locked.built_at)
