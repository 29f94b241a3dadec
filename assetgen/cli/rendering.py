"""What ``explain``, ``gc`` and ``models`` print: lines of text from values the library returns.

Rendering only: nothing here decides anything (the plan explains itself; gc's policy is
``commands.gc``'s). Plans and build summaries are rendered in ``reporters``.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Sequence
from typing import TYPE_CHECKING, Any

from .. import catalog
from ..engine.events import money

if TYPE_CHECKING:
    from ..commands.gc import GcReport
    from ..engine.plan import Plan, TargetPlan


def models_lines(every: list[catalog.Model]) -> list[str]:
    """Every provider's models as a table (with what a crash during a call can cost), then each family's
    aspect ratios and sizes, the price tables with their source, and each provider's key and endpoint."""
    head = ("model", "provider", "series", "tier", "$/image", "resolutions", "actions",
            "a crash during a call can cost")
    rows = [(m.id, m.provider, m.series, m.tier, money(m.price), ", ".join(m.resolutions), ", ".join(m.actions),
             catalog.PROVIDERS[m.provider].crash_cost) for m in every]
    lines = table_lines(head, rows, right={"$/image"})
    lines.append("")
    for family in dict.fromkeys(m.family for m in every):
        model = next(m for m in every if m.family == family)
        sizes = dict(model.sizes)
        ratios = [f"{r} ({sizes[r][0]}x{sizes[r][1]})" if r in sizes else r for r in model.ratios]
        lines.append(f"{family} ratios: {', '.join(ratios)}")
    lines.append("")
    for m in every:
        if m.prices:
            table = ", ".join(f"{k} ${v:g}" for k, v in m.prices)
            lines.append(f"{m.id} ({m.provider}) $/image: {table}; read {m.price_read} from {m.price_source}")
    lines.append("")
    for name in catalog.CHANNELS:
        info = catalog.PROVIDERS[name]
        lines.append(f"{name}: key from {' or '.join(info.key_envs)}; endpoint {info.base_url_env} "
                     f"(default {info.base_url}); {info.submission}")
    lines.append("\nThe -official ids, and Google's own ids, are the same model on another channel: switching "
                 "tier does not change a key, nor does switching channel.")
    return lines


def table_lines(head: tuple[str, ...], rows: Sequence[tuple[str, ...]], *, right: Collection[str] = ()) -> list[str]:
    """An aligned text table: each column as wide as its widest cell, two spaces between columns (a cell
    never runs into the next), numbers in ``right`` columns right-aligned; the last column is not padded."""
    widths = [max(len(str(cell)) for cell in column) for column in zip(head, *rows, strict=True)]

    def line(cells: tuple[str, ...]) -> str:
        return "  ".join(str(c).rjust(w) if h in right else str(c).ljust(w)
                         for h, c, w in zip(head, cells, widths, strict=True)).rstrip()

    return [line(head), line(tuple("-" * w for w in widths))] + [line(r) for r in rows]


def explain_lines(item: TargetPlan) -> list[str]:
    """A target's key, the inputs that made it, and what differs from the lock."""
    t = item.target
    width, height = t.size
    status = 'up to date' if not item.stale else item.action + ': ' + '; '.join(map(str, item.reasons))
    lines = [f"{item.name}\n  key        {item.key}", f"  status     {status}",
             f"  model      {t.model} ({t.spec_model.series}, {t.spec_model.tier}; "
             f"key uses family {t.spec_model.family})",
             f"  size       {t.aspect_ratio} at {t.resolution} = {width}x{height} px, n={t.n}, seed={t.seed}",
             f"  action     {t.action}",
             f"  provider   {t.provider}" + (f"; openai = {dict(t.openai)} (in the key)" if t.openai else "")]
    lines += [f"  {flag:<10} true" for flag in ("google_search", "google_image_search", "official_fallback")
              if getattr(t, flag)]
    lines.append("  prompt     " + t.prompt.replace("\n", "\n             "))
    lines += prompt_part_lines(t.prompt_parts)
    limit = catalog.DOCUMENTED_PROMPT_CHARS
    lines.append(f"  length     {len(t.prompt):,} characters (composed; the gateway documents at most {limit:,})"
                 + ("  ← over the documented limit" if len(t.prompt) > limit else ""))
    lines += [f"  reference  {ref['ref']} → {ref['digest'][:23]}…" for ref in item.spec["references"]]
    if t.style:
        lines.append(f"  style      {t.style}")
    if t.candidates:
        lines.append(f"  candidates {t.n}, pick {t.pick}")
    for out in t.outputs:
        made = "" if out.derivation.identity else f"  ({describe_derivation(out.derivation)})"
        lines.append(f"  output     {out.path}{made}")
    lines.append(_lock_line(item))
    lines += _own_lines(item)
    return lines


def prompt_part_lines(parts: tuple[tuple[str, str, str], ...]) -> list[str]:
    """Where each piece of the composed prompt came from (``Target.prompt_parts``)."""
    shown = []
    for piece, where, text in parts:
        quoted = json.dumps(text if len(text) <= 70 else text[:70] + "…", ensure_ascii=False)
        shown.append(f"{piece} = {quoted}  ({where})" if piece.startswith("{") and piece not in ("{prompt}", "{style}")
                     else f"{piece} from {where}: {quoted}")
    if len(shown) < 2:
        return []                        # the target's own prompt alone: nothing to say
    return [("  from       " if i == 0 else "             ") + line for i, line in enumerate(shown)]


def _own_lines(item: TargetPlan) -> list[str]:
    """The project's own fields (not in the key) and the target's retouch, if any."""
    t = item.target
    lines = [f"  tags       {', '.join(t.tags)}"] if t.tags else []
    if t.notes:
        lines.append("  notes      " + t.notes.replace("\n", "\n             "))
    lines += [f"  meta       {k} = {json.dumps(v, ensure_ascii=False)}" for k, v in (t.meta or {}).items()]
    if item.retouched:
        lines.append("  retouched  the outputs on disk are an artist's (adopted); see `assetgen adopt`")
    return lines


def _lock_line(item: TargetPlan) -> str:
    lk = item.locked
    if not lk:
        return "  lock       not built yet"
    return (f"  lock       key {lk.key[:16]}… model {lk.model}, cost {money(lk.cost)}, "
            f"built {lk.built_at or '?'}{' (placeholder)' if lk.placeholder else ''}"
            f"{', task ' + lk.task_id if lk.task_id else ''}")


def describe_derivation(derivation: Any) -> str:
    if derivation.passthrough:
        return f"candidate {derivation.pick}, as generated" if derivation.pick else "as generated"
    parts = [derivation.format]
    if derivation.resize:
        parts.append(f"resize {derivation.resize[0]}x{derivation.resize[1]} {derivation.fit}")
    if derivation.format != "png":
        parts.append(f"quality {derivation.quality}")
    if derivation.key_out:
        key = derivation.key_out
        parts.append(f"key_out {'checkerboard' if key.checkerboard else key.color}±{key.tolerance}"
                     + (f" feather {key.feather:g}px" if key.feather != 1 else ""))
    return ", ".join(parts)


def gc_lines(report: GcReport) -> list[str]:
    lines = []
    for gone in report.vanished:
        if gone.lock_gone:
            kept = "its lock is gone too, so its images cannot be told apart: nothing was removed"
        else:
            kept = f"kept what its lock{'s reference' if len(gone.locks) > 1 else ' references'}"
        lines.append(f"{gone.name} used this cache and is gone; {kept}. Restore it, or run "
                     f"`assetgen gc --forget-missing` to forget it.")
    for name in report.forgotten:
        lines.append(f"{'Would forget' if report.dry_run else 'Forgot'} {name} (gone): its images are "
                     f"no longer kept for it.")
    result = report.result
    size = f"{result.freed / 1e6:.1f} MB"
    young = f"; kept {result.young} unreferenced younger than --grace" if result.young else ""
    if report.dry_run:
        lines.append(f"Would remove {result.removed} cached images ({size}){young}.")
    else:
        lines.append(f"Removed {result.removed} cached images ({size}); kept {report.kept} referenced by the "
                     f"locks of {', '.join(report.manifests)}{young}.")
    return lines


def unapproved_lines(plan: Plan) -> list[str]:
    """Why ``plan --check --approved`` fails: each target whose art is not approved as it stands."""
    lines = [f"{len(plan.unapproved)} target(s) not approved:"]
    for item in plan.unapproved:
        if item.stale:
            why = f"not up to date ({item.action})"
        elif item.review == "rejected" and item.locked and item.locked.review:
            why = f"rejected by {item.locked.review.by}: {item.locked.review.note}"
        else:
            why = "needs review" + (" (its outputs changed since the verdict)" if item.review == "lapsed" else "")
        lines.append(f"  {item.name}: {why}")
    return lines
