"""What the command line shows a person: plans, summaries and the live view of a build.

``LiveReporter`` draws a live table with rich on a terminal; the plain reporters, ``Event`` and the
money formats live in ``engine.events`` (the library builds with them and must not import the CLI).
Core code never prints; it emits events or returns values that these functions render.
"""

from __future__ import annotations

import math
import sys
import time
from typing import TYPE_CHECKING, Any, TextIO, assert_never

from ..engine.events import _FAILED_KINDS, _LINE_KINDS, _MESSAGE_LIMIT, Event, EventKind, money, usd
from ..engine.events import label as event_label
from ..engine.plan import Action, ReasonKind, grid_label
from ..errors import safe_text

if TYPE_CHECKING:
    from ..engine.plan import Plan, TargetPlan
    from ..engine.scheduler import BuildReport

ACTION_LABEL = {action: "up to date" if action is Action.NONE else action.value for action in Action}
_LISTED_UP_TO_DATE = 20


def action_label(item: TargetPlan) -> str:
    """The action column: what the build does; a paid generation says the target's own action (``edit``,
    ``image2image``, …) rather than the plan's ``generate``."""
    return item.target.action if item.action is Action.GENERATE else ACTION_LABEL[item.action]


def _percent(value: object) -> int:
    """A progress figure for display: 0-100 whatever was passed (``inf`` and junk become 0)."""
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return 0
    return int(min(100.0, max(0.0, number))) if math.isfinite(number) else 0


# -- plans ------------------------------------------------------------------------------------------

def _why(item: TargetPlan) -> str:
    return "; ".join(_why_parts(item))


def _why_parts(item: TargetPlan, *, per_cell: bool = True) -> list[str]:
    """Each reason once, in order; what the action adds goes with the last one (``per_cell``: a grid's
    price per cell, which a grid's line adds once itself)."""
    parts = list(dict.fromkeys(str(r) for r in item.reasons)) or [""]
    text = ""
    match item.action:
        case Action.RESTORE:
            text += " (images in the remote cache)" if item.remote else " (images in cache)"
        case Action.SHARE if not item.same_grid:    # a grid's own cells: its one generation, said on its line
            text += f" ({item.sharing})"
        case Action.GENERATE if item.target.grid and item.cost and per_cell:    # one image pays for every cell
            text += f" ({_per_cell(item)})"
        case Action.RESUME if item.target.provider in ("gemini", "openai"):   # only a batch job leaves their tasks
            vendor = "Gemini" if item.target.provider == "gemini" else "OpenAI"
            text += f" (in a pending {vendor} batch job submitted by an earlier build: collected, no new payment)"
        case Action.RESUME if item.cost:
            text += " (some of its one-image tasks were submitted by an earlier build: collected; the rest is paid)"
        case Action.RESUME:
            text += " (task submitted by an earlier build, already paid: collected)"
        case Action.BLOCKED if not any(r.kind == ReasonKind.RETOUCHED for r in item.reasons):
            text += " (not overwritten without --force)"
        case Action.BLOCKED:
            pass
        case Action.UNCERTAIN if item.cost:
            text += " (submitted again: --retry-uncertain; it may pay twice)"
        case Action.UNCERTAIN:
            retry = f"; that would cost {money(item.retry_cost)}" if item.retry_cost else ""
            text += f" (not submitted again unless `assetgen build --retry-uncertain {item.name}`{retry})"
        case Action.NONE | Action.GENERATE | Action.SHARE:
            pass
        case _:
            assert_never(item.action)
    parts[-1] += text
    return parts


def _per_cell(item: TargetPlan) -> str:
    assert item.target.grid is not None
    cols, rows = item.target.grid
    return f"{money(item.cost / (cols * rows))} per cell"


def render_plan(plan: Plan, *, list_all: bool = False) -> str:
    lines = []
    stale = plan.stale
    fresh = [i for i in plan.items if not i.stale]
    total = len(plan.items)
    images = sum(i.target.n for i in plan.items if i.action == Action.GENERATE)
    head = f"{total} target{'s' if total != 1 else ''}: {len(stale)} to build, {len(fresh)} up to date"
    if plan.offline:
        head += " (offline: placeholders, no cost)"
    lines.append(head)
    listed_fresh = fresh if list_all or len(fresh) <= _LISTED_UP_TO_DATE else []
    rows = _group_rows(stale + listed_fresh, plan, list_all)
    width = min(max((len(name) for name, *_ in rows), default=8), 40)
    if rows:
        lines.append("")
    for name, label, cost, why in rows:
        lines.append(f"  {name:<{width}}  {label:<10} {cost:>9}  {why}".rstrip())
    if len(fresh) > len(listed_fresh):
        lines.append(f"  … and {len(fresh)} up-to-date targets (--all lists them)")
    lines.append("")
    summary = f"Total: {usd(plan.total_cost)} for {images} image{'s' if images != 1 else ''}"
    if plan.max_cost > plan.total_cost + 1e-12:
        summary += f" (up to {usd(plan.max_cost)} if official_fallback switches to the official channel)"
    free = plan.count(Action.RESTORE) + plan.count(Action.SHARE) + sum(1 for i in plan.items
                                                                       if i.action == Action.RESUME and not i.cost)
    free -= sum(1 for i in plan.items if i.same_grid)       # a grid's cells: one generation, not reuse
    restored = [i for i in plan.items if i.action == Action.RESTORE and i.target.grid is not None]
    free -= len(restored) - len({i.target.base for i in restored})     # and one grid image restored
    if free:
        summary += f"; {free} target{'s reuse' if free != 1 else ' reuses'} images for free"
    lines.append(summary if stale else "Everything is up to date. Nothing to build.")
    placeholder = _placeholder_line(plan)
    if placeholder:
        lines.append(placeholder)
    lines.extend(_orphan_lines(plan))
    sync = _sync_note(plan)
    if sync:
        lines.append(sync)
    return "\n".join(lines)


def _placeholder_line(plan: Plan) -> str:
    """Why an online plan disagrees with `build --offline` right after it: the placeholders it locked."""
    if plan.offline:
        return ""
    replaced = [i for i in plan.stale if any(r.kind == ReasonKind.PLACEHOLDER for r in i.reasons)]
    if not replaced:
        return ""
    count = len(replaced)
    return (f"{count} placeholder{'s' if count != 1 else ''} would be replaced by an online build: "
            f"{usd(sum(i.cost for i in replaced))}; `plan --offline` shows what `build --offline` would do")


def _orphan_lines(plan: Plan) -> list[str]:
    """The outputs of removed targets: listed, not stale (``assetgen prune`` deletes them)."""
    if not plan.orphans:
        return []
    note = {"locked": "", "modified": " (modified by hand: kept unless prune --force)", "missing": " (gone)"}
    lines = ["", (f"Removed from the manifest ({len(plan.orphans)} output(s); `assetgen prune` deletes "
                  f"them, the next build forgets them in the lock):")]
    lines += [f"  {o.target}: {o.path}{note[o.state]}" for o in plan.orphans]
    return lines


def _sync_note(plan: Plan) -> str:
    """What a crash can cost with providers called synchronously (Google's, OpenAI's)."""
    from .. import catalog

    if plan.offline:
        return ""
    sync = [i for i in plan.stale if i.action in (Action.GENERATE, Action.UNCERTAIN)
            and catalog.PROVIDERS[i.target.provider].submission == "sync call"]
    if not sync:
        return ""
    names = ", ".join(sorted({i.target.provider for i in sync}))
    return (f"sync: interrupted calls may be paid: {len(sync)} target{'s' if len(sync) != 1 else ''} ({names}) "
            f"are synchronous calls, with no id before they are paid; a crash or timeout during one leaves its "
            f"target uncertain (never resubmitted without --retry-uncertain)")


def _group_rows(items: list[TargetPlan], plan: Plan, list_all: bool) -> list[tuple[str, str, str, str]]:
    """(name, action, cost, why) lines in plan order; a matrix's rows with one action share a line, and
    so do a grid's cells (those sharing its one generation on the line of the cell that pays)."""
    order = {i.name: n for n, i in enumerate(plan.items)}
    groups: dict[tuple[str, Action], list[TargetPlan]] = {}
    for item in sorted(items, key=lambda i: order[i.name]):
        row = item.target.base and item.target.base != item.name and not list_all
        action = Action.GENERATE if item.same_grid and not list_all else item.action
        groups.setdefault((item.target.base if row else item.name, action), []).append(item)
    lines = []
    for (name, action), members in groups.items():
        first = members[0]
        if len(members) == 1:
            name = first.name
        elif first.target.grid is not None:
            name = grid_label(name, first.target.grid, len(members))
        else:
            of = sum(1 for i in plan.items if i.target.base == name)
            name = f"{name} ({len(members)} of {of} rows)"
        cost = money(sum(i.cost for i in members)) if first.stale else ""
        grid = first.target.grid is not None and len(members) > 1
        whys = list(dict.fromkeys(p for i in members for p in _why_parts(i, per_cell=not grid) if p)) \
            if first.stale else []
        why = "; ".join(whys[:2]) + (f"; … ({len(whys) - 2} more reasons)" if len(whys) > 2 else "")
        payer = next((i for i in members if i.action == Action.GENERATE and i.cost), None) if grid else None
        if payer is not None:
            why += f" ({_per_cell(payer)})"
        if action == "none":
            why = _fresh_note(members, reviewing=any(i.locked is not None and i.locked.review is not None
                                                     for i in plan.items))
        lines.append((name, action_label(first), cost, why))
    return lines


def _fresh_note(members: list[TargetPlan], *, reviewing: bool) -> str:
    """What an up-to-date line adds: retouched, and (once the project records verdicts) the review."""
    notes = ["(retouched)"] if all(i.retouched for i in members) else []
    states = {i.review for i in members}
    if reviewing and states & {"unreviewed", "lapsed"}:
        notes.append("needs review")
    elif reviewing and "rejected" in states:
        notes.append("rejected")
    elif reviewing:
        notes.append("approved")
    return " ".join(notes)


def render_markdown(plan: Plan) -> str:
    rows = ["| target | action | cost | why |", "|---|---|---:|---|"]
    for item in plan.stale:
        rows.append(f"| `{item.name}` | {action_label(item)} | {money(item.cost)} | {_why(item)} |")
    if not plan.stale:
        return "**assetgen:** every image is up to date; nothing would be regenerated.\n"
    total = f"**Total: {usd(plan.total_cost)}**"
    if plan.max_cost > plan.total_cost + 1e-12:
        total += f" (up to {usd(plan.max_cost)} with official fallback)"
    return (f"### assetgen plan\n\n{len(plan.stale)} image target(s) would be rebuilt.\n\n" + "\n".join(rows)
            + f"\n\n{total}\n")


def render_summary(report: BuildReport) -> str:
    counts: dict[str, int] = {}
    cells = _grid_cells(report)
    seen: set[tuple[str, str]] = set()
    for r in report.results:
        grid = cells.get(r.name)
        if grid is not None and (grid, r.status) in seen:
            continue                        # a grid's cells count once: one generation
        if grid is not None:
            seen.add((grid, r.status))
        counts[r.status] = counts.get(r.status, 0) + 1
    if not report.results:
        return "Nothing to build: everything is up to date."
    parts = [f"{n} {status}" for status, n in sorted(counts.items())]
    text = f"Done: {', '.join(parts)}"
    sliced = sum(1 for r in report.results if r.name in cells)
    if seen and sliced > len(seen):
        grids = len({grid for grid, _status in seen})
        text += f" (a grid counts once: {sliced} cells of {grids} grid{'s' if grids != 1 else ''})"
    text += f". Spent {usd(report.spent)}"
    if report.saved:
        text += f", saved {usd(report.saved)} by reusing images"
    if report.resumed:
        text += f"; collected {report.resumed} task(s) from an earlier build"
    text += "."
    pending = [r for r in report.results if r.status == "pending"]
    if pending:
        text += (f"\n{len(pending)} target(s) pending in batch jobs (journaled, paid on completion): "
                 f"`assetgen build` collects them later without submitting them again.")
    if report.uncertain:
        names = " ".join(r.name for r in report.uncertain)
        text += (f"\n{len(report.uncertain)} target(s) uncertain (an earlier submission may have been paid "
                 f"for): not submitted again. Check the gateway's dashboard; `assetgen build --retry-uncertain "
                 f"{names}` submits them again.")
    return text


def _grid_cells(report: BuildReport) -> dict[str, str]:
    """Each built grid cell's grid (target name → grid target)."""
    return {i.name: i.target.base for i in report.plan.items if i.target.grid is not None}


# -- build progress ---------------------------------------------------------------------------------

class LiveReporter:
    """A live view on a terminal: in-flight targets with state, progress and elapsed time."""

    def __init__(self, total: int, stream: TextIO | None = None, *, color: bool = True) -> None:
        from rich.console import Console
        from rich.live import Live

        self.console = Console(file=stream or sys.stdout, no_color=not color)
        self.total = total
        self.done = 0
        self.spent = 0.0
        self.started = time.monotonic()
        self.active: dict[str, tuple[str, int, float]] = {}
        self.labels: dict[str, str] = {}            # a grid's task shown as the grid's (``label``)
        self.live = Live(self._render(), console=self.console, refresh_per_second=4, transient=True)

    def __enter__(self) -> LiveReporter:
        self.live.__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.live.__exit__(*exc)

    def _render(self) -> Any:
        from rich.console import Group
        from rich.table import Table
        from rich.text import Text

        table = Table(box=None, show_header=True, header_style="bold")
        table.add_column("target")
        table.add_column("state")
        table.add_column("progress", justify="right")
        table.add_column("elapsed", justify="right")
        for name, (state, progress, since) in list(self.active.items())[:20]:
            # Text cells: a name or state holding "[/]" is shown as written, never parsed as markup.
            table.add_row(Text(safe_text(self.labels.get(name, name))), Text(safe_text(state, 40)), f"{progress}%",
                          f"{time.monotonic() - since:.0f}s")
        elapsed = time.monotonic() - self.started
        status = Text(f"{self.done}/{self.total} targets done · {len(self.active)} in flight · "
                      f"spent {usd(self.spent)} · {elapsed:.0f}s", style="dim")
        return Group(table, status) if self.active else status

    def note(self, message: str) -> None:
        """A message printed above the view, where it stays (the view redraws below it)."""
        from rich.text import Text

        self.console.print(Text(message.lstrip("\n")), highlight=False)
        self.live.refresh()

    def emit(self, event: Event) -> None:
        from rich.markup import escape

        if event.data.get("label"):
            self.labels[event.target] = str(event.data["label"])
        if event.kind in (EventKind.SUBMITTED, EventKind.RESUMED):
            self.active[event.target] = ("queued", 0, time.monotonic())
        elif event.kind == EventKind.PROGRESS:
            since = self.active.get(event.target, ("", 0, time.monotonic()))[2]
            self.active[event.target] = (str(event.data.get("status")), _percent(event.data.get("progress")), since)
        elif event.kind in _LINE_KINDS and event.kind != EventKind.NOTICE:
            self.active.pop(event.target, None)
            self.done += int(event.data.get("cells", 1))      # a grid's line speaks for its cells
            self.spent = float(event.data.get("spent", self.spent))
            style = "red" if event.kind in _FAILED_KINDS else "green"
            message = safe_text(event.message, _MESSAGE_LIMIT)
            message = f" ({escape(message)})" if message else ""
            self.console.print(f"[{style}]{event.kind:>8}[/] {escape(safe_text(event_label(event)))}{message}",
                               highlight=False)
        elif event.kind == EventKind.NOTICE:
            self.console.print(f"{escape(safe_text(event_label(event)))}: "
                               f"{escape(safe_text(event.message, _MESSAGE_LIMIT))}", highlight=False)
        self.live.update(self._render())
