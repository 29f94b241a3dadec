"""Money over time: the ledger entries a build writes, and the hard limits they are checked against.

The scheduler's task events call ``note`` (accepted, uncertain, failed, refunded); ``check_limits``
runs before anything is submitted and ``headroom`` turns the limits into a cap the build reserves
against as tasks are accepted (as ``--budget`` does per build). Limits come from the manifest only
(``[settings] limits``): no flag raises them. Days and months are UTC. Without a remote cache the
ledger, and so the limits, are this machine's.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from .. import catalog
from ..errors import LimitExceeded
from ..state.journal import JournalRecord
from ..state.ledger import (
    Ledger,
    LedgerEntry,
    Totals,
    machine_name,
    now_utc,
    parse_line,
    person,
)
from .project import Project

LIMIT_NAMES = ("total", "month", "day")


def ledger_of(project: Project) -> Ledger:
    return Ledger(project.cache_dir / "ledger")


def note(project: Project, *, target: str, key: str, model: str, n: int, outcome: str,
         task_id: str | None, when: str | None = None, spec: dict[str, Any] | None = None) -> LedgerEntry:
    """Append (and fsync) one entry; ``OSError`` if the ledger cannot be written."""
    model_info = catalog.BY_ID.get(model)
    estimate = round(catalog.task_cost(model, n), 6)
    sign = {"accepted": 1, "uncertain": 1, "failed": -1, "refunded": -1}[outcome]
    manifest = project.manifest
    entry = LedgerEntry(
        time=when or now_utc().isoformat(timespec="milliseconds"), manifest=_manifest_name(project), target=target,
        key=key, model=model, tier=model_info.tier if model_info else "standard", n=n, estimate=estimate,
        reported=None, outcome=outcome, amount=sign * estimate, task_id=task_id, profile=manifest.profile,
        machine=machine_name(), person=person(), spec=spec)
    ledger_of(project).append(entry)
    remote = project.remote
    if remote is not None:                 # the team's ledger: one object per entry (a remote that is
        remote.put_ledger_entry(entry.object_name, entry.to_line())   # down warns once, never fails)
    return entry


def note_lost_intents(project: Project, record: JournalRecord) -> int:
    """Intents a killed build left without a task id (it may have been paid): one ``uncertain`` entry
    each, dated at the intent, written once (the next build finds it by key and time). Returns how many
    were written."""
    lost = [s for s in record.submissions if s.state == "intent" and s.task_id is None]
    if not lost:
        return 0
    entries, _damaged = ledger_of(project).entries()
    seen = {(e.key, e.time) for e in entries if e.outcome == "uncertain"}
    written = 0
    for submission in lost:
        when = datetime.fromtimestamp(submission.intent_at, UTC).isoformat(timespec="milliseconds")
        if (record.key, when) in seen:
            continue
        note(project, target=record.targets[0] if record.targets else record.key[:12], key=record.key,
             model=record.model, n=submission.n, outcome="uncertain", task_id=None, when=when)
        written += 1
    return written


def upload_missing(project: Project) -> int:
    """This machine's entries the remote lacks (written while it was down), uploaded by their digest
    names; one listing, once per build. Returns how many were uploaded (0 without a remote or when down)."""
    remote = project.remote
    if remote is None:
        return 0
    there = remote.ledger_names()
    if there is None:
        return 0
    here = machine_name()
    entries, _damaged = ledger_of(project).entries()
    missing = {e.object_name: e for e in entries if e.machine == here and e.object_name not in there}
    for name, entry in missing.items():
        remote.put_ledger_entry(name, entry.to_line())
    return len(missing)


def team_entries(project: Project) -> list[LedgerEntry]:
    """The remote's entries written by other machines (this machine's are in the local ledger)."""
    remote = project.remote
    if remote is None:
        return []
    here = machine_name()
    found = []
    for data in remote.ledger_entries().values():
        try:
            entry = parse_line(data.strip())
        except ValueError:
            continue
        if entry.machine != here:
            found.append(entry)
    return found


def project_totals(project: Project) -> Totals:
    """This machine's ledger (running totals), plus, with a remote, every other machine's entries."""
    totals = ledger_of(project).totals()
    for entry in team_entries(project):
        totals.days[entry.day] = totals.days.get(entry.day, 0.0) + entry.amount
    return totals


def _manifest_name(project: Project) -> str:
    path: Path = project.manifest.path
    try:
        return path.resolve().relative_to(project.root.resolve()).as_posix()
    except ValueError:
        return path.name


@dataclass(frozen=True)
class LimitState:
    name: str               # total | month | day
    limit: float
    spent: float            # in its period, from the ledger

    @property
    def left(self) -> float:
        return max(0.0, self.limit - self.spent)

    @property
    def period(self) -> str:
        return {"total": "in total", "month": "this month (UTC)", "day": "today (UTC)"}[self.name]


def limit_states(project: Project, totals: Totals | None = None) -> list[LimitState]:
    """Each configured limit with what the project's ledger says was spent in its period."""
    limits = getattr(project.manifest.settings, "limits", None) or {}
    if not limits:
        return []
    totals = totals if totals is not None else project_totals(project)
    now = now_utc()
    spent = {"total": totals.total, "month": totals.month(now.strftime("%Y-%m")),
             "day": totals.day(now.strftime("%Y-%m-%d"))}
    return [LimitState(name, float(limits[name]), spent[name]) for name in LIMIT_NAMES if name in limits]


def over_limits(states: list[LimitState], estimate: float) -> list[LimitState]:
    return [s for s in states if s.spent + estimate > s.limit + 1e-9]


def check_limits(project: Project, estimate: float) -> list[LimitState]:
    """Refuse (``LimitExceeded``) a build whose upper-bound estimate would cross a limit; else the states."""
    states = limit_states(project)
    crossed = over_limits(states, estimate)
    if crossed and estimate > 0:
        parts = [f"the {s.name} limit of ${s.limit:.2f} (${s.spent:.4f} spent {s.period}, ${s.left:.4f} left)"
                 for s in crossed]
        raise LimitExceeded(f"this build would cost up to ${estimate:.4f}, over {'; and over '.join(parts)}; "
                            f"nothing was submitted. Limits are set in the manifest's [settings] limits "
                            f"(no command-line flag raises them); build fewer targets or wait for the "
                            f"next period")
    return states


def headroom(states: list[LimitState]) -> float | None:
    """The most this build may still reserve under every limit (None: no limits)."""
    return min((s.left for s in states), default=None)


def session_limit(project: Project, committed: float) -> float | None:
    """The cap a session (a watch) reserves against, read again at each of its builds: what the limits
    leave now (from the running totals, so a new UTC day or spend by other processes sharing the cache
    counts) plus what the session has already committed (its reservations are in ``committed``; its
    accepted tasks are in the ledger too, so adding them back does not count them twice)."""
    room = headroom(limit_states(project))
    return None if room is None else committed + room
