"""The spend ledger: every paid submission, appended and fsynced, never rewritten.

``.assetgen/ledger/YYYY-MM.MACHINE.jsonl`` holds one JSON line per event of money: a submission the
gateway accepted (``accepted``, +its cost), one whose answer was lost (``uncertain``, +its cost: it may
have been paid), a task that failed after acceptance (``failed``, −its cost: failures are not billed)
and a task cancelled while queued (``refunded``, −its cost). A refund is an entry of its own; nothing
is ever edited. One file per month and machine means two machines syncing the folder never write the
same file, and a month's file stays small.

Entries are written from the scheduler's task events (the same events that write the journal), so the
ledger is a record of what happened, never a second opinion about it.

Reading: ``totals`` sums per UTC day, per file, and remembers the sums in ``totals.json`` keyed by each
file's size and mtime, so a no-op ``plan`` reads one small file instead of the whole ledger. A damaged
line is reported (file and line number), never a traceback, and never counted.
"""

from __future__ import annotations

import getpass
import hashlib
import json
import os
import socket
import subprocess
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from .atomic import atomic_write, fsync_dir

OUTCOMES = {"accepted": 1, "uncertain": 1, "failed": -1, "refunded": -1}   # outcome → sign of amount
TOTALS_FILE = "totals.json"
_TOTALS_VERSION = 1


@dataclass
class LedgerEntry:
    time: str                  # ISO 8601, UTC
    manifest: str
    target: str
    key: str
    model: str
    tier: str                  # standard | official
    n: int
    estimate: float            # the catalogue's price × n
    reported: float | None     # what the gateway said it cost, where it says (it does not today)
    outcome: str               # accepted | uncertain | failed | refunded
    amount: float              # signed effect on the spend: + paid (or may be), − not billed / refunded
    task_id: str | None
    profile: str | None
    machine: str
    person: str
    spec: dict[str, Any] | None = None     # accepted: the canonical spec that made the key (for history)

    @property
    def day(self) -> str:
        return self.time[:10]

    @property
    def month(self) -> str:
        return self.time[:7]

    def to_line(self) -> bytes:
        return json.dumps(asdict(self), sort_keys=True).encode() + b"\n"

    @property
    def object_name(self) -> str:
        """Its name in a remote's ``ledger/``: the day, then a digest of the entry (the same entry always
        gets the same name, so writing it twice never counts it twice)."""
        return f"{self.day}.{hashlib.sha256(self.to_line()).hexdigest()[:32]}.json"


@dataclass
class Damage:
    path: Path
    line: int
    problem: str

    def describe(self) -> str:
        return f"{self.path}:{self.line}: {self.problem} (not counted)"


@dataclass
class Totals:
    """What the ledger says was spent, by UTC day ("YYYY-MM-DD" → USD)."""

    days: dict[str, float] = field(default_factory=dict)
    damaged: list[Damage] = field(default_factory=list)

    @property
    def total(self) -> float:
        return sum(self.days.values())

    def month(self, month: str) -> float:
        return sum(v for d, v in self.days.items() if d.startswith(month))

    def day(self, day: str) -> float:
        return self.days.get(day, 0.0)


def now_utc() -> datetime:
    return datetime.now(UTC)


def machine_name() -> str:
    return os.environ.get("ASSETGEN_MACHINE") or socket.gethostname() or "unknown"


_person: str | None = None


def person() -> str:
    """Git's ``user.email`` where available, else user@host (asked once per process)."""
    global _person
    if _person is None:
        try:
            found = subprocess.run(["git", "config", "user.email"], capture_output=True, text=True,
                                   timeout=5, check=False).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            found = ""
        if not found:
            try:
                user = getpass.getuser()
            except (OSError, KeyError):
                user = "unknown"
            found = f"{user}@{machine_name()}"
        _person = found
    return _person


class Ledger:
    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def append(self, entry: LedgerEntry) -> Path:
        """Append one entry and fsync it (and, for a new file, its folder) before returning."""
        self.folder.mkdir(parents=True, exist_ok=True)
        path = self.folder / f"{entry.month}.{_safe(entry.machine)}.jsonl"
        new = not path.exists()
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, entry.to_line())
            os.fsync(fd)
        finally:
            os.close(fd)
        if new:
            fsync_dir(self.folder)
        return path

    def files(self) -> list[Path]:
        return sorted(self.folder.glob("*.jsonl")) if self.folder.is_dir() else []

    def entries(self) -> tuple[list[LedgerEntry], list[Damage]]:
        """Every readable entry (oldest file first) and every line that could not be read."""
        found: list[LedgerEntry] = []
        damaged: list[Damage] = []
        for path in self.files():
            entries, bad = read_file(path)
            found += entries
            damaged += bad
        found.sort(key=lambda e: e.time)
        return found, damaged

    def totals(self) -> Totals:
        """Spend per UTC day, re-reading only the files that changed since the last call."""
        cache = self._load_totals()
        totals = Totals()
        fresh: dict[str, Any] = {}
        changed = False
        for path in self.files():
            try:
                st = path.stat()
            except OSError:
                continue
            stamp = [st.st_size, st.st_mtime_ns]
            known = cache.get(path.name)
            if known is None or known.get("stamp") != stamp:
                entries, bad = read_file(path)
                days: dict[str, float] = {}
                for entry in entries:
                    days[entry.day] = days.get(entry.day, 0.0) + entry.amount
                known = {"stamp": stamp, "days": days,
                         "damaged": [[d.line, d.problem] for d in bad]}
                changed = True
            fresh[path.name] = known
            for day, amount in known["days"].items():
                totals.days[day] = totals.days.get(day, 0.0) + amount
            totals.damaged += [Damage(path, line, problem) for line, problem in known["damaged"]]
        if changed or set(fresh) != set(cache):
            try:
                atomic_write(self.folder / TOTALS_FILE,
                             json.dumps({"version": _TOTALS_VERSION, "files": fresh}).encode())
            except OSError:
                pass            # only a cache: the next read sums the files again
        return totals

    def _load_totals(self) -> dict[str, Any]:
        try:
            data = json.loads((self.folder / TOTALS_FILE).read_bytes())
            if isinstance(data, dict) and data.get("version") == _TOTALS_VERSION:
                files = data.get("files")
                if isinstance(files, dict):
                    return {k: v for k, v in files.items() if _cached_ok(v)}
        except (OSError, ValueError):
            pass
        return {}


def read_file(path: Path) -> tuple[list[LedgerEntry], list[Damage]]:
    entries: list[LedgerEntry] = []
    damaged: list[Damage] = []
    try:
        raw = path.read_bytes()
    except OSError as exc:
        return [], [Damage(path, 0, f"cannot be read ({exc.strerror})")]
    for number, line in enumerate(raw.split(b"\n"), start=1):
        if not line.strip():
            continue
        try:
            entries.append(parse_line(line))
        except ValueError as exc:
            damaged.append(Damage(path, number, str(exc)))
    return entries, damaged


def parse_line(line: bytes) -> LedgerEntry:
    """One entry from its JSON line; ``ValueError`` says what is wrong, in words."""
    try:
        data = json.loads(line.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError):
        raise ValueError("is not a JSON line (truncated or damaged)") from None
    if not isinstance(data, dict):
        raise ValueError("is not a JSON object")  # noqa: TRY004 (a damaged line, in words)
    values: dict[str, Any] = {}
    for name, kinds, optional in _FIELDS:
        value = data.get(name)
        if value is None and optional:
            values[name] = None
            continue
        if isinstance(value, int) and not isinstance(value, bool) and float in kinds:
            value = float(value)
        if not isinstance(value, kinds) or isinstance(value, bool):
            raise ValueError(f"has a missing or wrongly typed field {name!r}")  # noqa: TRY004
        values[name] = value
    if values["outcome"] not in OUTCOMES:
        raise ValueError(f"has an unknown outcome {str(values['outcome'])[:40]!r}")
    try:
        datetime.fromisoformat(values["time"])
    except ValueError:
        raise ValueError("has an unreadable time") from None
    if abs(values["amount"]) > 1e6 or values["amount"] != values["amount"]:
        raise ValueError("has an impossible amount")
    return LedgerEntry(**values)


_FIELDS: list[tuple[str, tuple[type, ...], bool]] = [
    ("time", (str,), False), ("manifest", (str,), False), ("target", (str,), False), ("key", (str,), False),
    ("model", (str,), False), ("tier", (str,), False), ("n", (int,), False), ("estimate", (float,), False),
    ("reported", (float,), True), ("outcome", (str,), False), ("amount", (float,), False),
    ("task_id", (str,), True), ("profile", (str,), True), ("machine", (str,), False),
    ("person", (str,), False), ("spec", (dict,), True),
]


def _cached_ok(value: Any) -> bool:
    return (isinstance(value, dict) and isinstance(value.get("stamp"), list)
            and isinstance(value.get("days"), dict) and isinstance(value.get("damaged"), list))


def _safe(name: str) -> str:
    clean = "".join(c if c.isalnum() or c in "-_" else "_" for c in name)
    return clean[:64] or "machine"

