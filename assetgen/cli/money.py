"""What the CLI prints about money: ``spend``'s table, ``plan``'s budget and limits, the last line of
a build, and the question a build asks on a terminal before spending."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..commands.history import Generation
    from ..commands.spend import MoneyCheck, SpendReport
    from ..engine.plan import Plan
    from ..engine.project import Project
    from ..engine.scheduler import BuildReport
    from ..engine.spending import LimitState


def spend_text(report: SpendReport) -> str:
    width = max([len(report.by), len("total")] + [len(r.group) for r in report.rows])
    lines = []
    period = " to ".join(p for p in (report.since or "the start", report.until or "today") if p)
    lines.append(f"Spend by {report.by}, {period} (UTC):")
    lines.append(f"  {report.by:<{width}}  {'spent':>10}  {'tasks':>5}  {'images':>6}  {'refunded':>9}")
    for row in report.rows:
        lines.append(f"  {row.group:<{width}}  {_usd(row.spent):>10}  {row.tasks:>5}  {row.images:>6}  "
                     f"{_usd(row.refunded) if row.refunded else '':>9}")
    lines.append(f"  {'total':<{width}}  {_usd(report.total):>10}  {sum(r.tasks for r in report.rows):>5}  "
                 f"{sum(r.images for r in report.rows):>6}")
    for damage in report.damaged:
        lines.append(f"Warning: ledger line {damage.describe()}")
    lines.append(limits_line(report.limits))
    return "\n".join(lines)


def spend_json(report: SpendReport) -> str:
    return json.dumps(report.to_json(), indent=2)


def spend_csv(report: SpendReport) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow([report.by, "spent", "tasks", "images", "refunded"])
    for row in report.rows:
        writer.writerow([row.group, f"{row.spent:.6f}", row.tasks, row.images, f"{row.refunded:.6f}"])
    return out.getvalue()


def limits_line(limits: list[LimitState]) -> str:
    if not limits:
        return "Limits: none set ([settings] limits = { total = …, month = …, day = … })."
    parts = [f"{s.name} {_usd(s.spent)} of {_usd(s.limit)} ({_usd(s.left)} left)" for s in limits]
    return "Limits: " + "; ".join(parts) + "."


def plan_money_lines(check: MoneyCheck) -> list[str]:
    lines = []
    bound = f"up to {_usd(check.estimate)}"
    if check.budget is not None:
        mark = "  ← OVER: `build` refuses it" if check.over_budget else ""
        lines.append(f"Budget per build: {_usd(check.budget)}; this build {bound}{mark}")
    for s in check.limits:
        mark = "  ← OVER: `build` refuses it" if s in check.over else ""
        lines.append(f"Limit {s.name}: {_usd(s.limit)}, {_usd(s.spent)} spent {s.period}, {_usd(s.left)} left; "
                     f"this build {bound}{mark}")
    return lines


def build_money_line(report: BuildReport, project: Project) -> str:
    """Spent, saved, and the month's total against its limit, in one line."""
    from ..engine.spending import limit_states, project_totals
    from ..state.ledger import now_utc

    totals = project_totals(project)
    month = totals.month(now_utc().strftime("%Y-%m"))
    limit = next((s for s in limit_states(project, totals) if s.name == "month"), None)
    against = f" of its {_usd(limit.limit)} limit" if limit else " (no monthly limit)"
    return (f"Money: spent {_usd(report.spent)}, saved {_usd(report.saved)}; this month "
            f"{_usd(month)}{against}.")


def confirm_question(estimate: float, threshold: float) -> str:
    return (f"This build may spend up to {_usd(estimate)} (over confirm_over = {_usd(threshold)}). "
            f"Spend it?")


def _usd(value: float) -> str:
    """Whole cents as cents ($20.00), anything finer to a hundredth of a cent ($0.0638)."""
    sign, value = ("-" if value < 0 else ""), abs(round(value, 6))
    cents = value * 100
    return f"{sign}${value:.2f}" if abs(cents - round(cents)) < 1e-6 else f"{sign}${value:.4f}"


def confirm_on_terminal(project: Project) -> Callable[[Plan], bool] | None:
    """The question ``build`` asks before spending, or None without a terminal (CI never asks)."""
    import sys

    import click

    if not (sys.stdin.isatty() and sys.stdout.isatty()):
        return None
    threshold = project.manifest.settings.confirm_over

    def ask(plan: Plan) -> bool:
        return click.confirm(confirm_question(plan.max_cost, threshold), default=False)
    return ask


def ask_first_build(project: Project, targets: tuple[str, ...]) -> None:
    """A watch's first build asks as ``build`` does (on a terminal, above ``confirm_over``)."""
    from ..errors import ConfirmationDeclined

    ask = confirm_on_terminal(project)
    if ask is None:
        return
    plan = project.plan(targets)
    if plan.max_cost > project.manifest.settings.confirm_over + 1e-9 and not ask(plan):
        project.close()
        raise ConfirmationDeclined("not confirmed; nothing was submitted")


def history_lines(target: str, generations: list[Generation]) -> list[str]:
    if not generations:
        return [f"{target}: no generation in the ledger yet."]
    lines = [f"{target}: {len(generations)} generation(s), oldest first:"]
    for g in generations:
        cached = "cached" if g.cached else "not cached"
        changed = "; ".join(f"{k}: {_short(a)} → {_short(b)}" for k, (a, b) in g.changed.items()) or "first"
        lines.append(f"  {g.number:>3}  {g.time[:19].replace('T', ' ')}  {_usd(g.cost):>8}  {cached:<10}  {changed}")
    lines.append(f"`assetgen restore {target} N` writes generation N back and restores it for free when cached.")
    return lines


def _short(value: object, limit: int = 40) -> str:
    text = str(value)
    return repr(text if len(text) <= limit else text[:limit - 1] + "…")
