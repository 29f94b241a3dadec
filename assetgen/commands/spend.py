"""``assetgen spend``: what the ledger says was spent, in a period, grouped by day, model, target,
profile or person; and the money facts ``plan`` and the end of a build show (budget, limits).

Amounts are the ledger's signed entries: accepted and uncertain submissions count, failures and
refunds take their cost back. Days and months are UTC, as the limits.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path

from ..engine.plan import Plan
from ..engine.project import CACHE_DIR, Project
from ..engine.spending import LimitState, limit_states, over_limits, team_entries
from ..errors import UsageError
from ..state.ledger import Damage, Ledger, LedgerEntry, now_utc

GROUPS = ("day", "model", "target", "profile", "person")


@dataclass
class Row:
    group: str
    spent: float = 0.0          # net: accepted + uncertain − failed − refunded
    tasks: int = 0              # accepted and uncertain submissions
    images: int = 0
    refunded: float = 0.0       # failed and refunded, as a positive number


@dataclass
class SpendReport:
    by: str
    since: str | None
    until: str | None
    rows: list[Row] = field(default_factory=list)
    entries: list[LedgerEntry] = field(default_factory=list)
    limits: list[LimitState] = field(default_factory=list)
    damaged: list[Damage] = field(default_factory=list)

    @property
    def total(self) -> float:
        return sum(r.spent for r in self.rows)

    def to_json(self) -> dict[str, object]:
        return {"by": self.by, "since": self.since, "until": self.until, "total": round(self.total, 6),
                "rows": [{**vars(r), "spent": round(r.spent, 6), "refunded": round(r.refunded, 6)}
                         for r in self.rows],
                "limits": [{"name": s.name, "limit": s.limit, "spent": round(s.spent, 6),
                            "left": round(s.left, 6)} for s in self.limits],
                "damaged": [d.describe() for d in self.damaged]}


def period(since: str | None, until: str | None, month: str | None) -> tuple[str | None, str | None]:
    """(first day, last day) inclusive, as YYYY-MM-DD; ``UsageError`` names a bad option."""
    for name, value in (("--since", since), ("--until", until)):
        if value is not None:
            try:
                date.fromisoformat(value)
            except ValueError:
                raise UsageError(f"{name} {value!r} is not a date (YYYY-MM-DD, UTC)") from None
    if month is not None:
        if month == "this":
            month = now_utc().strftime("%Y-%m")
        if not re.fullmatch(r"\d{4}-(0[1-9]|1[0-2])", month):
            raise UsageError(f"--month {month!r} is not a month (YYYY-MM, or 'this')")
        first = date.fromisoformat(f"{month}-01")
        last = (first.replace(day=28) + timedelta(days=4)).replace(day=1) - timedelta(days=1)
        since = max(since or "", first.isoformat())
        until = min(until or "9999", last.isoformat())
    return since, until


def spend(manifest_path: Path, *, by: str = "day", since: str | None = None, until: str | None = None,
          month: str | None = None, project: Project | None = None, team: bool = False) -> SpendReport:
    """The ledger of the cache beside ``manifest_path`` (every manifest sharing it), grouped; with
    ``team``, also every other machine's entries in the remote cache's ledger."""
    if by not in GROUPS:
        raise UsageError(f"--by {by!r}: choose one of {', '.join(GROUPS)}")
    since, until = period(since, until, month)
    ledger = Ledger(manifest_path.resolve().parent / CACHE_DIR / "ledger")
    entries, damaged = ledger.entries()
    if team:
        if project is None or project.remote is None:
            raise UsageError("--team reads the remote cache's ledger: set [cache] remote in the manifest")
        entries = sorted(entries + team_entries(project), key=lambda e: e.time)
    chosen = [e for e in entries if (since is None or e.day >= since) and (until is None or e.day <= until)]
    rows: dict[str, Row] = {}
    for entry in chosen:
        name = _group(entry, by)
        row = rows.setdefault(name, Row(name))
        row.spent += entry.amount
        if entry.amount >= 0:
            row.tasks += 1
            row.images += entry.n
        else:
            row.refunded -= entry.amount
    ordered = sorted(rows.values(), key=lambda r: r.group if by == "day" else (-r.spent, r.group))
    report = SpendReport(by=by, since=since, until=until, rows=ordered, entries=chosen, damaged=damaged)
    if project is not None:
        report.limits = limit_states(project)
    return report


def _group(entry: LedgerEntry, by: str) -> str:
    if by == "day":
        return entry.day
    if by == "profile":
        return entry.profile or "(final)"
    return str(getattr(entry, by))


@dataclass
class MoneyCheck:
    """What ``plan`` says about money: the build's upper bound against the budget and each limit."""

    estimate: float
    budget: float | None
    limits: list[LimitState]

    @property
    def over_budget(self) -> bool:
        return self.budget is not None and self.estimate > self.budget + 1e-9

    @property
    def over(self) -> list[LimitState]:
        return over_limits(self.limits, self.estimate) if self.estimate > 0 else []

    @property
    def refused(self) -> bool:
        return self.over_budget or bool(self.over)

    def to_json(self) -> dict[str, object]:
        return {"estimate": round(self.estimate, 6), "budget": self.budget, "refused": self.refused,
                "limits": [{"name": s.name, "limit": s.limit, "spent": round(s.spent, 6), "left": round(s.left, 6),
                            "exceeded": s in self.over} for s in self.limits]}


def money_check(project: Project, plan: Plan, *, offline: bool = False) -> MoneyCheck:
    estimate = 0.0 if offline else plan.max_cost
    return MoneyCheck(estimate=estimate, budget=project.manifest.settings.budget,
                      limits=limit_states(project))
